"""swift-export: swift export: merge LoRA, quantization, Ollama/GGUF, hub push."""
