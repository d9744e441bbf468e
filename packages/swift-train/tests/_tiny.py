"""Tiny models and batches shared by the loss and attention tests."""

from __future__ import annotations

import torch
from swift_args import parse_args
from swift_train.trainer import SwiftTrainer
from transformers import LlamaConfig, LlamaForCausalLM, Seq2SeqTrainingArguments

IGNORE = -100
VOCAB = 96


def sft(*argv: str):
    return parse_args("sft", ["--model", "m", *argv], warn=lambda _: None).args


def tiny_llama(tied: bool = True, attn: str = "sdpa", seed: int = 0) -> LlamaForCausalLM:
    torch.manual_seed(seed)
    config = LlamaConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                         num_key_value_heads=2, vocab_size=VOCAB, max_position_embeddings=128,
                         tie_word_embeddings=tied, attn_implementation=attn)
    return LlamaForCausalLM(config).float()


def lora_model(*argv: str, tied: bool = True, attn: str = "sdpa"):
    """A LoRA-wrapped tiny Llama with non-zero B matrices, so every adapter weight gets a gradient."""
    from swift_train.tuners import prepare_lora

    model = prepare_lora(tiny_llama(tied, attn), sft("--lora_dropout", "0", *argv))
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.1)
    return model


def samples(lengths: list[int], seed: int = 2) -> list[dict[str, torch.Tensor]]:
    """Chat-like samples: the first third of each is prompt (label -100), with per-token loss_scale."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for n in lengths:
        ids = torch.randint(0, VOCAB, (n,), generator=generator)
        labels = ids.clone()
        labels[: n // 3] = IGNORE
        scale = torch.rand(n, generator=generator) * 2
        out.append({"input_ids": ids, "labels": labels, "loss_scale": scale})
    return out


def packed(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    row = {k: torch.cat([s[k] for s in batch])[None] for k in ("input_ids", "labels", "loss_scale")}
    row["position_ids"] = torch.cat([torch.arange(len(s["input_ids"])) for s in batch])[None]
    return row


def padded(batch: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    width = max(len(s["input_ids"]) for s in batch)
    fill = {"input_ids": 0, "labels": IGNORE, "loss_scale": 0.0, "attention_mask": 0}
    rows = {k: [] for k in fill}
    for s in batch:
        n = len(s["input_ids"])
        values = {**s, "attention_mask": torch.ones(n, dtype=torch.long)}
        for k, v in fill.items():
            rows[k].append(torch.cat([values[k], torch.full((width - n,), v, dtype=values[k].dtype)]))
    return {k: torch.stack(v) for k, v in rows.items()}


def trainer(model, tmp_path, *argv: str) -> SwiftTrainer:
    args = Seq2SeqTrainingArguments(output_dir=str(tmp_path), use_cpu=not torch.cuda.is_available(), report_to=[],
                                    remove_unused_columns=False, dataloader_pin_memory=False)
    return SwiftTrainer(model=model, args=args, swift_args=sft(*argv))
