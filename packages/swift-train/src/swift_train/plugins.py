"""Training plugins, looked up by the names --loss_type, --optimizer and --metric give.

A Python file passed with --custom_register_path (imported before the command runs) adds its own:

    from swift_train.plugins import losses, metrics, optimizers

    def focal(logits, labels, loss_scale):          # -> (summed loss, trained-token count)
        ...
    losses["focal"] = focal

    def sgd(model, args):                           # -> a torch optimizer over the trainable weights
        return torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=args.learning_rate)
    optimizers["sgd"] = sgd

    def exact(predictions, references):             # -> {name: value}, logged as eval_<name>
        return {"exact": sum(p == r for p, r in zip(predictions, references)) / max(len(references), 1)}
    metrics["exact"] = exact

A loss gets the model's logits [batch, tokens, vocab] already shifted so position i predicts labels[i],
the labels (-100 where nothing is trained) and the per-token --loss_scale weights (None without them);
it returns the loss summed over the batch and the number of trained tokens, which the trainer divides by
across gradient accumulation as it does for its own loss. An optimizer plugin gets the (PEFT-wrapped)
model and the parsed arguments; the learning-rate schedule of --lr_scheduler_type drives it. A metric
scores the texts --predict_with_generate generated against the reference answers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from swift_args import ArgumentError

LossFn = Callable[[Any, Any, Any], tuple[Any, Any]]
OptimizerFn = Callable[[Any, Any], Any]
MetricFn = Callable[[list[str], list[str]], dict[str, float]]


def cross_entropy(logits: Any, labels: Any, loss_scale: Any) -> tuple[Any, Any]:
    """Token cross-entropy (weighted by loss_scale where given): the trainer's own loss, by name."""
    from swift_train.loss import IGNORE, token_cross_entropy

    return token_cross_entropy(logits, labels, loss_scale).sum(), (labels != IGNORE).sum()


def lora_plus(model: Any, args: Any) -> Any:
    """AdamW with LoRA+'s learning rates: B matrices learn --lorap_lr_ratio (default 16) times faster."""
    import dataclasses

    import torch

    from swift_train.tuners.lora import lora_plus_groups

    ratio = args.lorap_lr_ratio or 16.0
    groups = lora_plus_groups(model, dataclasses.replace(args, lorap_lr_ratio=ratio))
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=args.learning_rate, weight_decay=args.weight_decay,
                             betas=(args.adam_beta1, args.adam_beta2), eps=args.adam_epsilon)


losses: dict[str, LossFn] = {"cross_entropy": cross_entropy}
optimizers: dict[str, OptimizerFn] = {"lorap": lora_plus}
metrics: dict[str, MetricFn] = {}


def check_plugins(args: Any) -> None:
    """Each name given is registered (built in, or by a --custom_register_path file): one line otherwise."""
    for option, name, registry, builtin in (("--loss_type", args.loss_type, losses, ()),
                                            ("--optimizer", args.optimizer, optimizers, ()),
                                            ("--metric", args.metric, metrics, ("acc", "nlg"))):
        if name is None or name in registry or name in builtin:
            continue
        known = ", ".join(sorted([*builtin, *registry])) or "none"
        raise ArgumentError(f"{option} {name}: no such plugin (registered: {known}); add one to "
                            f"swift_train.plugins.{'losses' if option == '--loss_type' else option[2:] + 's'} "
                            "in a --custom_register_path file")
    if args.optimizer is not None and (args.use_galore or (args.lorap_lr_ratio is not None and args.optimizer != "lorap")):
        which = "--use_galore" if args.use_galore else "--lorap_lr_ratio"
        raise ArgumentError(f"--optimizer {args.optimizer} and {which} both choose the optimizer; pass one")
