"""Inference engines behind one interface; `pt` (transformers) is the default."""

from swift_infer.engines.pt import GenerationSettings, PtEngine

__all__ = ["GenerationSettings", "PtEngine"]
