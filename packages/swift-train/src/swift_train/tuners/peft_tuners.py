"""AdaLoRA, VeRA, BOFT and FourierFT through peft: each saves a plain PEFT adapter directory.

They share LoRA's module selection (--target_modules / --target_regex / --modules_to_save, and the
multimodal --freeze_* rules); each takes its own group of the reference's arguments.
"""

from __future__ import annotations

from typing import Any

from swift_args import ArgumentError

PEFT_TUNERS = ("adalora", "vera", "boft", "fourierft")


def tuner_config(args: Any, model: Any = None) -> Any:
    """The peft config --train_type asks for (LoRA's included)."""
    from swift_train.tuners.lora import lora_config, module_selection

    if args.train_type in ("lora", "longlora"):  # LongLoRA differs in its attention while training only
        return lora_config(args, model)
    return _BUILDERS[args.train_type](args, module_selection(args, model))


def _adalora(args: Any, targets: dict[str, Any]) -> Any:
    from peft import AdaLoraConfig, TaskType

    return AdaLoraConfig(
        task_type=TaskType.CAUSAL_LM, r=args.lora_rank, lora_alpha=args.lora_alpha, lora_dropout=args.lora_dropout,
        bias=args.lora_bias, target_r=args.adalora_target_r, init_r=args.adalora_init_r, tinit=args.adalora_tinit,
        tfinal=args.adalora_tfinal, deltaT=args.adalora_deltaT, beta1=args.adalora_beta1, beta2=args.adalora_beta2,
        orth_reg_weight=args.adalora_orth_reg_weight,
        # The schedule's length is only known once the trainer is built: AdaLoraSchedule sets it then.
        total_step=args.max_steps if args.max_steps > 0 else args.adalora_tinit + args.adalora_tfinal + 1,
        **targets,
    )


def _vera(args: Any, targets: dict[str, Any]) -> Any:
    from peft import TaskType, VeraConfig

    return VeraConfig(
        task_type=TaskType.CAUSAL_LM, r=args.vera_rank, save_projection=args.vera_projection_prng_key,
        projection_prng_key=args.seed, vera_dropout=args.vera_dropout, d_initial=args.vera_d_initial, **targets,
    )


def _boft(args: Any, targets: dict[str, Any]) -> Any:
    from peft import BOFTConfig, TaskType

    return BOFTConfig(
        task_type=TaskType.CAUSAL_LM, boft_block_size=args.boft_block_size, boft_block_num=args.boft_block_num or 0,
        boft_dropout=args.boft_dropout, **targets,
    )


def _fourierft(args: Any, targets: dict[str, Any]) -> Any:
    from peft import FourierFTConfig, TaskType

    return FourierFTConfig(
        task_type=TaskType.CAUSAL_LM, n_frequency=args.fourier_n_frequency, scaling=args.fourier_scaling,
        random_loc_seed=args.seed, **targets,
    )


_BUILDERS = {"adalora": _adalora, "vera": _vera, "boft": _boft, "fourierft": _fourierft}


def prepare_peft_tuner(model: Any, args: Any) -> Any:
    """Wrap the model with the --train_type tuner (or load --adapters of that kind to keep training)."""
    from peft import get_peft_model
    from swift_args.adapters import adapter_path
    from swift_infer.loading import attach_adapter

    from swift_train.tuners.lora import name_base_portably

    if args.adapters:
        model = attach_adapter(model, adapter_path(args.adapters[0]), is_trainable=True)
    else:
        try:
            model = get_peft_model(model, tuner_config(args, model))
        except ValueError as exc:
            raise ArgumentError(f"--train_type {args.train_type}: {str(exc).splitlines()[0]}") from None
    name_base_portably(model, args.model)
    if args.gradient_checkpointing:
        model.enable_input_require_grads()
    return model


def orthogonal_regularisation(model: Any) -> Any:
    """AdaLoRA's penalty on P and Q drifting from orthogonal (peft adds it only where the model computes
    the loss itself; our trainer computes the loss, so it adds this)."""
    import torch

    config = next(iter(model.peft_config.values()))
    terms = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad and ("lora_A" in name or "lora_B" in name):
            covariance = parameter @ parameter.T if "lora_A" in name else parameter.T @ parameter
            identity = torch.eye(*covariance.shape, device=covariance.device, dtype=covariance.dtype)
            terms.append(torch.linalg.matrix_norm(covariance - identity))
    return config.orth_reg_weight * torch.stack(terms).mean() if terms else 0.0


def adalora_schedule() -> Any:
    """The trainer callback AdaLoRA needs: its budget schedule spans the run's real step count, and after
    each optimizer step (gradients still present) it updates importance scores and prunes ranks."""
    from transformers import TrainerCallback

    class AdaLoraSchedule(TrainerCallback):
        def on_train_begin(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            for config in model.peft_config.values():
                if config.tinit + config.tfinal >= state.max_steps:
                    raise ArgumentError(f"--adalora_tinit {config.tinit} + --adalora_tfinal {config.tfinal} leave no "
                                        f"steps of the run's {state.max_steps} to reallocate ranks in; lower them")
                config.total_step = state.max_steps

        def on_optimizer_step(self, args: Any, state: Any, control: Any, model: Any = None, **kwargs: Any) -> None:
            model.base_model.update_and_allocate(state.global_step)

    return AdaLoraSchedule()
