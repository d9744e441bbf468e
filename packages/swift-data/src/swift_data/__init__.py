"""swift-data: Datasets, chat templates, tokenization, loss masks, packing; model file resolution (local, GGUF, hub)."""
