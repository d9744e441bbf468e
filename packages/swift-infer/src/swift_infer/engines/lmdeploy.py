"""The lmdeploy engine (`--infer_backend lmdeploy`): LMDeploy's `pipeline` with the reference's
LMDeploy arguments (tp, session_len, cache_max_entry_count, quant_policy).

Our encoder renders the prompt; LMDeploy's pass-through 'base' chat template hands that text to the
model unchanged, so the prompt is the one training and the pt engine use. LMDeploy is installed on
its own (`pip install lmdeploy`): like vLLM it pins its own torch.
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


def import_lmdeploy() -> Any:
    try:
        import lmdeploy
    except ImportError:
        raise ArgumentError("--infer_backend lmdeploy needs LMDeploy, which is not installed: pip install lmdeploy") from None
    return lmdeploy


def backend_options(args: Any) -> dict[str, Any]:
    """TurbomindEngineConfig(...) keyword arguments from the reference's LMDeploy arguments."""
    options: dict[str, Any] = dict(tp=args.tp, cache_max_entry_count=args.cache_max_entry_count,
                                   quant_policy=args.quant_policy)
    if args.session_len is not None:
        options["session_len"] = args.session_len
    return options


class LmdeployEngine:
    def __init__(self, pipe: Any, tokenizer: Any, encoder: Encoder, generation_config: Any = None):
        self.lmdeploy = import_lmdeploy()
        self.pipe, self.tokenizer, self.encoder, self.generation_config = pipe, tokenizer, encoder, generation_config

    @classmethod
    def load(cls, args: Any, tokenizer: Any, encoder: Encoder, model_dir: str) -> LmdeployEngine:
        from transformers import GenerationConfig

        lmdeploy = import_lmdeploy()
        if args.adapters:
            raise ArgumentError("--infer_backend lmdeploy does not take --adapters here; merge them first "
                                "(swift merge-lora) and pass the merged model")
        pipe = lmdeploy.pipeline(model_dir, backend_config=lmdeploy.TurbomindEngineConfig(**backend_options(args)),
                                 chat_template_config=lmdeploy.ChatTemplateConfig(model_name="base"))
        try:
            generation_config = GenerationConfig.from_pretrained(model_dir)
        except OSError:
            generation_config = None
        return cls(pipe, tokenizer, encoder, generation_config)

    def gen_config(self, settings: GenerationSettings) -> Any:
        if settings.num_beams > 1:
            raise ArgumentError("--num_beams > 1 is not supported with --infer_backend lmdeploy; use the pt engine")
        params = settings.sampling_params(self.generation_config)
        options = dict(max_new_tokens=params.max_new_tokens or 2048, do_sample=not params.greedy,
                       temperature=params.temperature, top_p=params.top_p, top_k=params.top_k,
                       repetition_penalty=params.repetition_penalty, stop_words=params.stop_words or None,
                       random_seed=params.seed, logprobs=params.top_logprobs if params.logprobs else None)
        # Unset values keep LMDeploy's own defaults.
        return self.lmdeploy.GenerationConfig(**{k: v for k, v in options.items() if v is not None})

    def complete(self, conversations: list[Conversation], settings: GenerationSettings) -> list[Completion]:
        prompts = [self.encoder.prompt_text(c) for c in conversations]
        responses = self.pipe(prompts, gen_config=self.gen_config(settings))
        return [self._completion(r) for r in responses]

    def _completion(self, response: Any) -> Completion:
        tokens = []
        for index, token in enumerate(response.token_ids or []):
            choice = TokenChoice(int(token))
            if response.logprobs:
                candidates = response.logprobs[index]
                choice.logprob = candidates.get(token)
                choice.top = sorted(((int(t), lp) for t, lp in candidates.items()), key=lambda kv: kv[1], reverse=True)
            tokens.append(choice)
        reason = "length" if response.finish_reason == "length" else "stop"
        return Completion(response.text, tokens, reason, response.input_token_len)

    def complete_iter(self, conversations: list[Conversation], settings: GenerationSettings) -> Iterator[Completion]:
        yield from self.complete(conversations, settings)

    def generate(self, conversations: list[Conversation], settings: GenerationSettings) -> list[str]:
        return [c.text for c in self.complete(conversations, settings)]

    def stream(self, conversation: Conversation, settings: GenerationSettings) -> Iterator[str]:
        for piece in self.pipe.stream_infer([self.encoder.prompt_text(conversation)], gen_config=self.gen_config(settings)):
            if piece.text:
                yield piece.text
