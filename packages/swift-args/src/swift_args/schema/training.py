"""Arguments of `swift sft`, `swift pt` and `swift rlhf` (reference: "Training Arguments", "RLHF Arguments")."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from swift_args.fields import arg
from swift_args.model_names import model_suffix
from swift_args.schema.base import TRAIN_TYPES, ModelLoadingArguments
from swift_args.schema.trainer import TrainerArguments
from swift_args.schema.tuners import AllTunerArguments


@dataclass(kw_only=True)
class SwanlabArguments:
    GROUP = "swanlab"

    swanlab_token: str | None = arg(None, help="SwanLab API key.")
    swanlab_project: str | None = arg(None, help="SwanLab project (create it on the SwanLab site first).")
    swanlab_workspace: str | None = arg(None, help="SwanLab workspace. None: the API key's user.")
    swanlab_exp_name: str | None = arg(None, help="SwanLab experiment name. None: output_dir.")
    swanlab_mode: Literal["cloud", "local"] = arg("cloud", help="SwanLab mode: cloud or local.")


@dataclass(kw_only=True)
class TrainArguments(ModelLoadingArguments, TrainerArguments, AllTunerArguments, SwanlabArguments):
    """`swift sft`: base + trainer + tuner arguments and the training extras below."""

    GROUP = "train"

    add_version: bool = arg(
        True, help="Write each run into a new <output_dir>/vN-YYYYMMDD-HHMMSS directory so nothing is overwritten."
    )
    resume_only_model: bool = arg(False, help="With resume_from_checkpoint, load only the model weights.")
    check_model: bool = arg(True, help="Check local model files for corruption or modification.")
    create_checkpoint_symlink: bool = arg(
        False, hot=True, help="Create <output_dir>/best and <output_dir>/last links to those checkpoints."
    )
    external_plugins: list[str] = arg(factory=list, help="Python files registering plugins (rewards, metrics, ...).")
    loss_type: str | None = arg(
        None, help="Loss plugin name: cross_entropy, or one a --custom_register_path file adds to "
        "swift_train.plugins.losses. None: token cross-entropy with --loss_scale."
    )
    packing: bool = arg(False, help="Pack samples into max_length rows without cross-sample attention.")
    lazy_tokenize: bool | None = arg(
        None, hot=True, help="Tokenize while training instead of before. None: false for LLMs, true for MLLMs."
    )
    acc_strategy: Literal["token", "seq"] = arg("token", help="Accuracy per token or per sequence.")
    show_sample: int = arg(
        0, help="Print the first N encoded training samples with the trained tokens marked, then stop (no training)."
    )
    max_new_tokens: int | None = arg(64, help="Generation override for predict_with_generate.")
    temperature: float | None = arg(0.0, help="Generation override for predict_with_generate (0: greedy).")
    optimizer: str | None = arg(
        None, help="Optimizer plugin name: lorap, or one a --custom_register_path file adds to "
        "swift_train.plugins.optimizers. None: --optim."
    )
    metric: str | None = arg(
        None, help="Metric of --predict_with_generate: acc, nlg (rouge-l, bleu-4), or a plugin in "
        "swift_train.plugins.metrics. None: acc, or nlg with predict_with_generate."
    )

    def _resolve(self, passed: set[str]) -> None:
        if self.learning_rate is None:
            self.learning_rate = 1e-5 if self.train_type == "full" else 1e-4
        if self.load_args is None:
            self.load_args = False
        if self.metric is None:
            self.metric = "nlg" if self.predict_with_generate else "acc"
        if self.output_dir is None and self.model is not None:
            self.output_dir = f"output/{model_suffix(self.model)}"
        if self.swanlab_exp_name is None:
            self.swanlab_exp_name = self.output_dir
        if self.packing and "lazy_tokenize" not in passed:
            self.lazy_tokenize = False  # packing bins need every sample's length up front (also for pt)

    def _check(self) -> list[str]:
        problems = []
        if self.model is None and not self.resume_from_checkpoint:
            problems.append("--model is required (a local directory, a .gguf file, a hub id or SmolLM2-135M-Instruct)")
        if self.streaming and self.max_steps <= 0:
            problems.append("--streaming true needs --max_steps (the dataset length is unknown)")
        if self.resume_only_model and not self.resume_from_checkpoint:
            problems.append("--resume_only_model needs --resume_from_checkpoint")
        if self.packing and (self.lazy_tokenize or self.streaming):
            which = "--streaming true" if self.streaming else "--lazy_tokenize true"
            problems.append(f"--packing true cannot be combined with {which}: packing needs every sample's length "
                            "before training; drop one of them")
        init = self.init_weights.lower()
        if (init in ("pissa", "olora", "lora-ga") or init.startswith("pissa_niter_")) and self.load_best_model_at_end:
            problems.append(f"--init_weights {self.init_weights} saves checkpoints converted for the original model "
                            "(rank 2r), which cannot be loaded back into the training model; drop --load_best_model_at_end "
                            "and pick the best checkpoint from the log")
        if init == "lora-ga" and (self.streaming or self.task_type == "seq_cls"):
            which = "--streaming" if self.streaming else "--task_type seq_cls"
            problems.append(f"--init_weights lora-ga estimates gradients on encoded chat samples; not with {which}")
        if self.task_type == "seq_cls" and (self.packing or self.predict_with_generate):
            which = "--packing" if self.packing else "--predict_with_generate"
            problems.append(f"--task_type seq_cls classifies whole samples; drop {which}")
        if self.task_type == "seq_cls" and self.num_labels == 1 and getattr(self, "rlhf_type", None) != "rm":
            problems.append("--num_labels 1 is a reward model's single score: train one with swift rlhf --rlhf_type rm "
                            "on chosen/rejected pairs")
        if self.task_type == "seq_cls" and self.train_type not in ("lora", "full"):
            problems.append(f"--task_type seq_cls trains with --train_type lora or full (got {self.train_type})")
        if self.train_type == "full" and self.adapters:
            problems.append("--adapters cannot be combined with --train_type full; merge them first (swift merge-lora)")
        return problems


@dataclass(kw_only=True)
class PtArguments(TrainArguments):
    """`swift pt`: sft's arguments with pre-training defaults (full training, generation template)."""

    train_type: Literal[TRAIN_TYPES] = arg(  # type: ignore[valid-type]
        "full", group="base", hot=True, help="Fine-tuning method; swift pt trains all weights by default."
    )
    lazy_tokenize: bool | None = arg(True, help="Tokenize while training (pt default: true).")
    use_chat_template: bool = arg(False, group="template", help="pt uses the generation template by default.")


@dataclass(kw_only=True)
class RewardModelArguments:
    GROUP = "reward_model"

    reward_model: str | None = arg(None, help="Reward model for PPO and GRPO.")
    reward_adapters: list[str] = arg(factory=list, help="Adapters of the reward model.")
    reward_model_type: str | None = arg(None, help="Reward model type.")
    reward_model_revision: str | None = arg(None, help="Reward model revision.")


@dataclass(kw_only=True)
class PpoArguments:
    GROUP = "ppo"

    num_ppo_epochs: int = arg(4, help="PPO epochs per batch.")
    whiten_rewards: bool = arg(False, help="Whiten rewards.")
    kl_coef: float = arg(0.05, help="KL coefficient.")
    cliprange: float = arg(0.2, help="Policy clip range.")
    vf_coef: float = arg(0.1, help="Value loss coefficient.")
    cliprange_value: float = arg(0.2, help="Value clip range.")
    gamma: float = arg(1.0, help="Discount factor.")
    lam: float = arg(0.95, help="GAE lambda.")
    num_mini_batches: int = arg(1, help="Mini-batches per PPO batch.")
    local_rollout_forward_batch_size: int = arg(64, help="Rollout forward batch size.")
    num_sample_generations: int = arg(10, help="Sample generations logged during training.")
    response_length: int = arg(512, help="Maximum response length.")
    missing_eos_penalty: float | None = arg(None, help="Penalty for responses without eos.")


@dataclass(kw_only=True)
class GrpoArguments:
    GROUP = "grpo"

    num_generations: int = arg(8, help="G: completions per prompt.")
    max_completion_length: int = arg(512, help="Maximum completion length.")
    ds3_gather_for_generation: bool = arg(True, help="ZeRO-3: gather weights for generation (faster, more memory).")
    reward_funcs: list[str] = arg(factory=list, help="Reward functions: accuracy, format, cosine, repetition, plugins.")
    reward_weights: list[float] | None = arg(None, help="Weight per reward function. None: all 1.0.")
    log_completions: bool = arg(False, help="Log generated completions.")
    use_vllm: bool = arg(False, help="Generate with vLLM.")
    num_infer_workers: int = arg(1, help="Inference workers per node (vLLM or lmdeploy).")
    vllm_device: list[str] = arg(factory=lambda: ["auto"], help="Devices for vLLM, e.g. cuda:1 cuda:2, or auto.")
    vllm_gpu_memory_utilization: float = arg(0.9, help="vLLM passthrough.")
    vllm_max_model_len: int | None = arg(None, help="vLLM passthrough.")
    vllm_max_num_seqs: int = arg(256, help="vLLM passthrough.")
    vllm_enforce_eager: bool = arg(False, help="vLLM passthrough.")
    vllm_limit_mm_per_prompt: dict | None = arg(None, help="vLLM passthrough.")
    vllm_enable_prefix_caching: bool = arg(True, help="vLLM passthrough.")
    num_iterations: int = arg(1, help="Iterations per batch.")
    epsilon: float = arg(0.2, help="Clipping epsilon.")
    async_generate: bool = arg(False, help="Asynchronous rollouts.")
    cosine_min_len_value_wrong: float = arg(0.0, help="Cosine reward: value at minimum length, wrong answer.")
    cosine_max_len_value_wrong: float = arg(-0.5, help="Cosine reward: value at maximum length, wrong answer.")
    cosine_min_len_value_correct: float = arg(1.0, help="Cosine reward: value at minimum length, right answer.")
    cosine_max_len_value_correct: float = arg(0.5, help="Cosine reward: value at maximum length, right answer.")
    cosine_max_len: int | None = arg(None, help="Cosine reward length limit. None: max_completion_length.")
    repetition_n_grams: int = arg(3, help="Repetition reward n-gram size.")
    repetition_max_penalty: float = arg(-1.0, help="Repetition reward maximum penalty.")

    def _resolve(self, passed: set[str]) -> None:
        if self.cosine_max_len is None:
            self.cosine_max_len = self.max_completion_length


RLHF_TYPES = ("dpo", "orpo", "simpo", "kto", "cpo", "rm", "ppo", "grpo")
ONLINE_RL = ("ppo", "grpo")
# --loss_type of the DPO family (the DPO, IPO, robust DPO, APO, SPPO, NCA, EXO and AOT papers) and of CPO.
DPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo", "robust", "apo_zero", "apo_down", "sppo_hard", "nca_pair", "exo_pair",
                  "aot", "aot_unpaired", "sigmoid_norm")
CPO_LOSS_TYPES = ("sigmoid", "hinge", "ipo")
WHOLE_MODEL_TUNERS = ("full", "llamapro")  # trained weights are the model's own: the reference is a second model


@dataclass(kw_only=True)
class RlhfArguments(TrainArguments, RewardModelArguments, PpoArguments, GrpoArguments):
    """`swift rlhf`: training arguments plus the alignment algorithm's."""

    GROUP = "rlhf"

    rlhf_type: Literal[RLHF_TYPES] = arg("dpo", hot=True, help="Alignment algorithm: " + ", ".join(RLHF_TYPES) + ".")  # type: ignore[valid-type]
    ref_model: str | None = arg(
        None, help="Reference model of dpo and kto with --train_type full. None: the starting --model (loaded once, "
        "frozen). With LoRA and the other tuners the reference is the model with its adapter disabled."
    )
    ref_model_type: str | None = arg(None, help="Reference model type.")
    ref_model_revision: str | None = arg(None, help="Reference model revision.")
    beta: float | None = arg(None, hot=True, help="KL coefficient. None: 2.0 for simpo, 0.04 for grpo, else 0.1.")
    label_smoothing: float = arg(0.0, help="DPO label smoothing.")
    rpo_alpha: float = arg(1.0, hot=True, help="Weight of the SFT loss added to DPO.")
    cpo_alpha: float = arg(1.0, help="NLL loss weight in CPO/SimPO.")
    simpo_gamma: float = arg(1.0, help="SimPO reward margin (0.5 to 1.5 suggested).")
    desirable_weight: float = arg(1.0, help="KTO weight of desirable responses.")
    undesirable_weight: float = arg(1.0, help="KTO weight of undesirable responses.")
    loss_scale: str = arg("last_round", help="rlhf trains on the last round by default.")
    loss_type: str | None = arg(
        None, help="The loss variant: for dpo " + ", ".join(DPO_LOSS_TYPES) + "; for cpo " + ", ".join(CPO_LOSS_TYPES)
        + ". None: sigmoid."
    )
    temperature: float | None = arg(0.9, help="Sampling temperature for PPO and GRPO.")
    # Declared here, not in GrpoArguments: the generation group's None defaults would win otherwise.
    top_k: int | None = arg(50, group="grpo", help="Sampling top_k for rollouts.")
    top_p: float | None = arg(0.9, group="grpo", help="Sampling top_p for rollouts.")
    repetition_penalty: float | None = arg(1.0, group="grpo", help="Repetition penalty for rollouts.")

    def _resolve(self, passed: set[str]) -> None:
        if self.beta is None:
            self.beta = {"simpo": 2.0, "grpo": 0.04}.get(self.rlhf_type, 0.1)
        # Full training keeps a frozen copy of the starting model as the reference (grpo only with a KL term).
        uses_reference = self.rlhf_type in ("dpo", "kto", "ppo") or (self.rlhf_type == "grpo" and self.beta)
        if self.ref_model is None and self.train_type in WHOLE_MODEL_TUNERS and uses_reference:
            self.ref_model = self.model
        if self.rlhf_type == "rm" and not passed & {"task_type", "num_labels"}:
            self.task_type, self.num_labels = "seq_cls", 1  # a reward model: the causal LM with a one-output score head
        if "metric_for_best_model" not in passed:
            if self.rlhf_type == "ppo":
                self.metric_for_best_model = None
                self.greater_is_better = None
            elif self.rlhf_type == "grpo":
                self.metric_for_best_model = "reward"
                self.greater_is_better = True

    def _check(self) -> list[str]:
        problems = []
        kind = self.rlhf_type
        if kind == "ppo" and not self.reward_model:
            problems.append("--rlhf_type ppo needs --reward_model")
        if self.reward_weights is not None and len(self.reward_weights) != len(self.reward_funcs) + bool(self.reward_model):
            problems.append(
                f"--reward_weights has {len(self.reward_weights)} values but there are "
                f"{len(self.reward_funcs) + bool(self.reward_model)} reward functions"
            )
        if kind in ONLINE_RL:
            return problems
        allowed = {"dpo": DPO_LOSS_TYPES, "cpo": CPO_LOSS_TYPES}.get(kind, ())
        if self.loss_type is not None and self.loss_type not in allowed:
            problems.append(f"--loss_type {self.loss_type}: --rlhf_type {kind} takes "
                            + (", ".join(allowed) if allowed else "no --loss_type; drop it"))
        for name in ("ref_model_type", "ref_model_revision"):
            if getattr(self, name) is not None and not self.ref_model:
                problems.append(f"--{name}: applies to --ref_model, which only full-parameter dpo and kto load; drop it")
        if self.loss_type == "exo_pair" and not self.label_smoothing:
            problems.append("--loss_type exo_pair needs --label_smoothing above 0 (its epsilon, e.g. 0.001)")
        if self.ref_model and kind not in ("dpo", "kto"):
            problems.append(f"--ref_model: --rlhf_type {kind} uses no reference model; drop it")
        elif self.ref_model and self.train_type not in WHOLE_MODEL_TUNERS:
            problems.append(f"--ref_model with --train_type {self.train_type}: the reference is the model with its "
                            "adapter disabled (no second copy in memory); drop --ref_model")
        if kind in ("dpo", "kto") and self.adapters and self.train_type in ("adapter", "reft"):
            problems.append(f"--adapters with --train_type {self.train_type}: {kind}'s reference would be the base "
                            "model without the tuner you start from; continue from a LoRA adapter (kept as the "
                            "reference) or use a reference-free algorithm (orpo, simpo, cpo)")
        if kind == "rm" and (self.task_type, self.num_labels) != ("seq_cls", 1):
            problems.append("--rlhf_type rm trains a one-output score head (task_type seq_cls, num_labels 1) and sets "
                            "both itself; drop --num_labels and --task_type")
        if kind == "rm" and self.train_type not in ("lora", "full"):
            problems.append(f"--rlhf_type rm trains a score head with --train_type lora or full (got {self.train_type})")
        if self.beta <= 0:
            problems.append(f"--beta must be positive, got {self.beta}")
        if not 0 <= self.label_smoothing < 0.5:
            problems.append(f"--label_smoothing must be in [0, 0.5), got {self.label_smoothing}")
        return problems
