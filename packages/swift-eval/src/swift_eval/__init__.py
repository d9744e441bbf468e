"""swift-eval: swift eval against a local model or any OpenAI-compatible URL."""
