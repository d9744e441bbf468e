"""swift-infer: Model and adapter loading, inference engines, swift infer / deploy / sample / merge-lora."""
