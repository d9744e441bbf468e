"""The vllm engine (`--infer_backend vllm`): vLLM's offline `LLM` with the reference's vLLM arguments.

Prompts are rendered by our own encoder and handed to vLLM as token ids, so vLLM sees exactly the
prompt the pt engine and training see. Adapters are served as LoRA requests (`enable_lora`).
vLLM is installed on its own (`pip install vllm`): it pins its own torch, so it is not an extra of
this package, whose lock would otherwise follow vLLM's torch everywhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from swift_args import ArgumentError
from swift_data.preprocess.conversation import Conversation
from swift_data.templates.encode import Encoder

from swift_infer.engines.batcher import Completion
from swift_infer.engines.pt import GenerationSettings
from swift_infer.engines.sampling import TokenChoice


def import_vllm() -> Any:
    try:
        import vllm
    except ImportError:
        raise ArgumentError("--infer_backend vllm needs vLLM, which is not installed: pip install vllm "
                            "(or use the swift-infer vLLM image, docker/swift-infer/Dockerfile.vllm)") from None
    from vllm.platforms import current_platform

    # vLLM's own detection (through NVML, so CUDA stays uninitialised for the workers it forks). A vLLM
    # built for CUDA on a machine without a GPU otherwise fails deep inside ("Device string must not be empty").
    if current_platform.is_unspecified():
        raise ArgumentError("--infer_backend vllm: vLLM finds no device it was built for here (its CUDA build "
                            "needs a CUDA GPU); use --infer_backend pt (the default), which also runs on CPUs")
    return vllm


def engine_options(args: Any, model_dir: str, dtype: str) -> dict[str, Any]:
    """LLM(...) keyword arguments from the reference's vLLM arguments."""
    options = dict(
        model=model_dir, dtype=dtype, seed=args.seed,
        gpu_memory_utilization=args.gpu_memory_utilization, tensor_parallel_size=args.tensor_parallel_size,
        pipeline_parallel_size=args.pipeline_parallel_size, max_num_seqs=args.max_num_seqs,
        max_model_len=args.max_model_len, disable_custom_all_reduce=args.disable_custom_all_reduce,
        enforce_eager=args.enforce_eager, enable_prefix_caching=args.enable_prefix_caching,
    )
    if args.limit_mm_per_prompt:
        options["limit_mm_per_prompt"] = args.limit_mm_per_prompt
    if args.adapters:
        options.update(enable_lora=True, max_lora_rank=args.vllm_max_lora_rank, max_loras=len(args.adapters))
    return options


class VllmEngine:
    def __init__(self, llm: Any, tokenizer: Any, encoder: Encoder, adapters: list[tuple[str, str, bool]],
                 generation_config: Any = None):
        vllm = import_vllm()
        from vllm.lora.request import LoRARequest

        self.vllm, self.llm, self.tokenizer, self.encoder = vllm, llm, tokenizer, encoder
        self.generation_config = generation_config
        # LoRA ids start at 1 in vLLM; the first adapter answers by default, as with the pt engine.
        self.lora = [LoRARequest(name, index + 1, path) for index, (name, path, _) in enumerate(adapters)]

    @classmethod
    def load(cls, args: Any, tokenizer: Any, encoder: Encoder, model_dir: str, dtype: str,
             adapters: list[tuple[str, str, bool]]) -> VllmEngine:
        from transformers import GenerationConfig

        vllm = import_vllm()
        try:
            generation_config = GenerationConfig.from_pretrained(model_dir)
        except OSError:  # no generation_config.json: greedy unless asked otherwise
            generation_config = None
        return cls(vllm.LLM(**engine_options(args, model_dir, dtype)), tokenizer, encoder, adapters, generation_config)

    def prompt_ids(self, conversation: Conversation) -> list[int]:
        return self.tokenizer(self.encoder.prompt_text(conversation), add_special_tokens=False)["input_ids"]

    def sampling_params(self, settings: GenerationSettings) -> Any:
        if settings.num_beams > 1:
            raise ArgumentError("--num_beams > 1 is not supported with --infer_backend vllm; use the pt engine")
        params = settings.sampling_params(self.generation_config)  # None: as generation_config.json says
        return self.vllm.SamplingParams(
            temperature=params.temperature or 0.0, top_p=params.top_p or 1.0, top_k=params.top_k or -1,
            repetition_penalty=params.repetition_penalty or 1.0, max_tokens=params.max_new_tokens,
            stop=params.stop_words or None, include_stop_str_in_output=True,  # the reference keeps stop words
            logprobs=params.top_logprobs if params.logprobs else None, seed=params.seed,
        )

    def complete(self, conversations: list[Conversation], settings: GenerationSettings) -> list[Completion]:
        prompts = [{"prompt_token_ids": self.prompt_ids(c)} for c in conversations]
        lora = self.lora[0] if self.lora else None
        outputs = self.llm.generate(prompts, self.sampling_params(settings), lora_request=lora, use_tqdm=False)
        return [self._completion(out, len(p["prompt_token_ids"])) for out, p in zip(outputs, prompts)]

    def _completion(self, output: Any, prompt_tokens: int) -> Completion:
        first = output.outputs[0]
        tokens = []
        for index, token in enumerate(first.token_ids):
            choice = TokenChoice(int(token))
            if first.logprobs:
                candidates = first.logprobs[index]
                choice.logprob = candidates[token].logprob
                ranked = sorted(candidates.items(), key=lambda kv: kv[1].logprob, reverse=True)
                choice.top = [(int(t), lp.logprob) for t, lp in ranked]
            tokens.append(choice)
        return Completion(first.text, tokens, first.finish_reason or "stop", prompt_tokens)

    def complete_iter(self, conversations: list[Conversation], settings: GenerationSettings) -> Iterator[Completion]:
        yield from self.complete(conversations, settings)

    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        return [c.text for c in self.complete(conversations, settings)]

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        # The offline LLM class answers whole; the terminal shows the answer when it is complete.
        yield self.generate([conversation], settings)[0]
