"""Inference-engine and merge arguments (reference: "LMDeploy", "vLLM" and "Merge Arguments")."""

from __future__ import annotations

from dataclasses import dataclass

from swift_args.fields import arg


@dataclass(kw_only=True)
class LmdeployArguments:
    GROUP = "lmdeploy"

    tp: int = arg(1, hot=True, help="LMDeploy tensor parallel degree.")
    session_len: int | None = arg(None, help="LMDeploy session length.")
    cache_max_entry_count: float = arg(0.8, help="LMDeploy share of free GPU memory for the KV cache.")
    quant_policy: int = arg(0, help="LMDeploy KV cache quantization (0, 4 or 8).")
    vision_batch_size: int = arg(1, help="LMDeploy vision batch size.")


@dataclass(kw_only=True)
class VllmArguments:
    GROUP = "vllm"

    gpu_memory_utilization: float = arg(0.9, hot=True, help="vLLM share of GPU memory.")
    tensor_parallel_size: int = arg(1, hot=True, help="vLLM tensor parallel size.")
    pipeline_parallel_size: int = arg(1, help="vLLM pipeline parallel size.")
    max_num_seqs: int = arg(256, help="vLLM maximum concurrent sequences.")
    max_model_len: int | None = arg(None, hot=True, help="vLLM maximum model length.")
    disable_custom_all_reduce: bool = arg(False, help="vLLM: use NCCL instead of the custom all-reduce.")
    enforce_eager: bool = arg(False, help="vLLM: run eagerly instead of with CUDA graphs (less memory, slower).")
    limit_mm_per_prompt: dict | None = arg(
        None, hot=True, help="vLLM media per prompt, e.g. '{\"image\": 5, \"video\": 2}'."
    )
    vllm_max_lora_rank: int = arg(16, help="vLLM maximum LoRA rank.")
    enable_prefix_caching: bool = arg(False, help="vLLM automatic prefix caching.")

    def _check(self) -> list[str]:
        if not 0 < self.gpu_memory_utilization <= 1:
            return [f"--gpu_memory_utilization must be in (0, 1], got {self.gpu_memory_utilization}"]
        return []


@dataclass(kw_only=True)
class MergeArguments:
    GROUP = "merge"

    merge_lora: bool = arg(False, hot=True, help="Merge LoRA (also llamapro, longlora) into the base weights.")
    safe_serialization: bool = arg(True, help="Save merged weights as safetensors.")
    max_shard_size: str = arg("5GB", help="Largest weight file when saving, e.g. 5GB.")
