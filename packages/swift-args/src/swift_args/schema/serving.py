"""Arguments of `swift infer`, `deploy`, `web-ui`, `app`, `eval` and `sample`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from swift_args.fields import arg
from swift_args.model_names import model_suffix
from swift_args.schema.base import ModelLoadingArguments
from swift_args.schema.engines import LmdeployArguments, MergeArguments, VllmArguments


@dataclass(kw_only=True)
class InferArguments(ModelLoadingArguments, MergeArguments, VllmArguments, LmdeployArguments):
    """`swift infer`: base + merge + vLLM + LMDeploy arguments and the inference extras below."""

    GROUP = "infer"

    infer_backend: Literal["pt", "vllm", "lmdeploy"] = arg("pt", hot=True, help="Inference engine: pt, vllm or lmdeploy.")
    max_batch_size: int = arg(1, hot=True, help="Batch size for the pt engine.")
    ddp_backend: Literal["nccl", "gloo", "mpi", "ccl", "hccl", "cncl", "mccl"] | None = arg(
        None, help="Distributed backend for multi-GPU pt inference. None: automatic."
    )
    result_path: str | None = arg(
        None, hot=True, help="Where results are written (jsonl). None: beside the checkpoint's args.json, or ./result."
    )
    metric: Literal["acc", "rouge"] | None = arg(None, help="Score the results: acc or rouge. None: no scoring.")
    val_dataset_sample: int | None = arg(None, help="Number of samples taken from the inference dataset.")

    def _resolve(self, passed: set[str]) -> None:
        if self.load_args is None:
            self.load_args = True

    def _needs_local_model(self) -> bool:
        """Commands that can talk to a remote URL instead (app, eval) override this."""
        return True

    def _check(self) -> list[str]:
        problems = []
        if self.max_batch_size < 1:
            problems.append(f"--max_batch_size must be at least 1, got {self.max_batch_size}")
        if self.val_dataset_sample is not None and self.val_dataset_sample < 1:
            problems.append(f"--val_dataset_sample must be at least 1, got {self.val_dataset_sample}")
        if self.result_path is not None and Path(self.result_path).is_dir():
            problems.append(f"--result_path {self.result_path} is a directory; name the .jsonl file to write")
        if self.model is None and not self.adapters and self._needs_local_model():
            problems.append("--model is required (or --adapters pointing at a training run's checkpoint)")
        return problems


@dataclass(kw_only=True)
class DeployArguments(InferArguments):
    """`swift deploy`: inference arguments plus the server's."""

    GROUP = "deploy"

    host: str = arg("0.0.0.0", help="Address to listen on.")
    port: int = arg(8000, help="Port to listen on.")
    api_key: str | None = arg(None, help="API key clients must send. None: no key.")
    owned_by: str = arg("swift", help="owned_by field of /v1/models.")
    served_model_name: str | None = arg(None, hot=True, help="Name the model is served under. None: the model's suffix.")
    verbose: bool = arg(True, help="Log each request.")
    log_interval: int = arg(20, help="Seconds between throughput statistics; -1 disables them.")
    max_logprobs: int = arg(20, help="Most logprobs a client may ask for.")
    shutdown_timeout: float = arg(
        10.0, help="Seconds a SIGTERM or Ctrl-C gives running requests to finish before they are cancelled "
        "(streams get an error event). Not in the reference."
    )

    def _resolve(self, passed: set[str]) -> None:
        if self.served_model_name is None and self.model is not None:
            self.served_model_name = model_suffix(self.model)

    def _check(self) -> list[str]:
        problems = []
        if not 0 < self.port < 65536:
            problems.append(f"--port must be between 1 and 65535, got {self.port}")
        if self.max_logprobs < 0:
            problems.append(f"--max_logprobs must be at least 0, got {self.max_logprobs}")
        if not 0 <= self.shutdown_timeout < float("inf"):
            problems.append(f"--shutdown_timeout must be a number of seconds, at least 0, got {self.shutdown_timeout}")
        return problems


@dataclass(kw_only=True)
class WebServerArguments:
    """The reference's Web-UI arguments, shared by `swift web-ui` and `swift app`: where the gradio page listens."""

    GROUP = "web_ui"

    server_name: str = arg("0.0.0.0", help="Address the page listens on.")
    server_port: int = arg(7860, help="Port of the page.")
    share: bool = arg(False, help="Create a public gradio share link (needs gradio's share server online).")
    lang: Literal["zh", "en"] = arg("zh", help="Language of the page's labels.")
    auth: str | None = arg(
        None, help="Not in the reference: USER:PASSWORD the page asks for (gradio's login), or @FILE holding that "
        "line, which keeps the password out of the process table. None: no login.")

    def _check(self) -> list[str]:
        problems = []
        if not 0 < self.server_port < 65536:
            problems.append(f"--server_port must be between 1 and 65535, got {self.server_port}")
        if self.auth is not None and not self.auth.startswith("@") and ":" not in self.auth:
            problems.append(f"--auth {self.auth}: give USER:PASSWORD, or @FILE naming a file that holds that line")
        return problems


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach `host` (127.0.0.0/8, ::1, localhost)."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


@dataclass(kw_only=True)
class WebUIArguments(WebServerArguments):
    """`swift web-ui`: a console that runs swift commands, so by default reachable from this machine only."""

    GROUP = "web_ui"

    server_name: str = arg(
        "127.0.0.1", help="Address the web UI listens on. 127.0.0.1 (the 2.x default; 3.x says 0.0.0.0): the console "
        "runs commands, and --external_plugins runs any Python, so another address needs --auth.")
    output_dir: str = arg(
        "output", help="Not in the reference: where the web UI keeps its jobs (web_ui/jobs/) and looks for past runs "
        "(every run directory below it). Training runs started here write below it unless their own --output_dir "
        "says otherwise.")

    def _check(self) -> list[str]:
        problems = []  # (WebServerArguments' own checks run too: each class's _check is called)
        exposed = [f"--server_name {self.server_name}"] if not is_loopback(self.server_name) else []
        exposed += ["--share true"] if self.share else []
        if exposed and self.auth is None:
            problems.append(f"{' and '.join(exposed)} would let others run commands (and any Python, through "
                            "--external_plugins) on this machine; add --auth USER:PASSWORD (or --auth @FILE), or keep "
                            "the default --server_name 127.0.0.1")
        return problems


@dataclass(kw_only=True)
class AppArguments(DeployArguments, WebServerArguments):
    """`swift app`: deploy + web-ui arguments."""

    GROUP = "app"

    base_url: str | None = arg(None, help="URL of an existing deployment, e.g. http://localhost:8000/v1. None: deploy locally.")
    studio_title: str | None = arg(None, help="Title of the app. None: the model name.")
    is_multimodal: bool | None = arg(
        None, help="Launch the multimodal app (image upload). None: decided by the model; every model this release "
        "loads is text-only, so pass true for a multimodal --base_url server.")
    lang: Literal["zh", "en"] = arg("en", help="Language of the app.")

    def _resolve(self, passed: set[str]) -> None:
        if self.studio_title is None and self.model is not None:
            self.studio_title = model_suffix(self.model)

    def _needs_local_model(self) -> bool:
        return self.base_url is None


@dataclass(kw_only=True)
class EvalArguments(DeployArguments):
    """`swift eval`: deploy arguments (for the local deployment) plus the evaluation's."""

    GROUP = "eval"

    eval_backend: Literal["Native", "OpenCompass", "VLMEvalKit"] = arg(
        "Native", hot=True, help="Evaluation backend: EvalScope's own (Native), or its OpenCompass / VLMEvalKit bridge.")
    eval_dataset: list[str] = arg(
        factory=list, hot=True, split_commas=True,
        help="What to evaluate on: basic-qa / basic-mcq (built in, offline; :en or :zh picks one language), a file "
        "or folder of rows in EvalScope's multiple-choice or short-answer format, or an EvalScope benchmark (gsm8k, "
        "mmlu, ...; NAME=DIR evaluates a local copy of it). NAME:a/b picks subsets.")
    eval_limit: int | None = arg(None, help="Items evaluated per subset. None: all.")
    eval_output_dir: str = arg("eval_output", help="Where evaluation runs are written, each in <time>/.")
    local_dataset: bool = arg(False, hot=True, help="Download the extra data packages some sets need into ./data.")
    temperature: float | None = arg(0.0, help="Evaluation decodes greedily by default.")
    verbose: bool = arg(False, help="Log each request of the local deployment (in its log file).")
    eval_num_proc: int = arg(16, help="Most concurrent evaluation requests (also the local deployment's batch size).")
    eval_url: str | None = arg(
        None, hot=True, help="OpenAI-compatible URL to evaluate, e.g. http://localhost:8000/v1 (--model: the model "
        "name to request; default: the first it serves). None: deploy --model / --adapters locally."
    )
    deploy_timeout: float = arg(
        600.0, help="Seconds the local deployment may take to answer before eval gives up (2.x; its default was 60).")
    eval_use_cache: bool = arg(
        False, help="2.x: continue the run of --name (else the newest) in --eval_output_dir, reusing the answers it "
        "already has.")
    name: str | None = arg(
        None, help="2.x: the run directory's name under --eval_output_dir. None: the time the evaluation starts.")

    def _needs_local_model(self) -> bool:
        return self.eval_url is None

    def _check(self) -> list[str]:
        problems = []
        if self.eval_num_proc < 1:
            problems.append(f"--eval_num_proc must be at least 1, got {self.eval_num_proc}")
        if self.eval_limit is not None and self.eval_limit < 1:
            problems.append(f"--eval_limit must be at least 1 (or unset for all items), got {self.eval_limit}")
        if not 0 < self.deploy_timeout < float("inf"):
            problems.append(f"--deploy_timeout must be a positive number of seconds, got {self.deploy_timeout}")
        if self.name is not None and (not self.name.strip() or "/" in self.name or self.name in (".", "..")):
            problems.append(f"--name must be a directory name (no '/'), got '{self.name}'")
        if self.eval_url is not None and not self.eval_url.startswith(("http://", "https://")):
            problems.append(f"--eval_url must be an http:// or https:// URL, got '{self.eval_url}'")
        return problems


@dataclass(kw_only=True)
class McstArguments:
    GROUP = "mcts"

    rollout_depth: int = arg(5, help="Maximum rollout depth.")
    rollout_start_depth: int = arg(3, help="Depth at which rollouts begin.")
    max_iterations: int = arg(100, help="Maximum MCTS iterations.")
    process_reward_rate: float = arg(0.0, help="Share of process reward in the selection value.")
    exploration_rate: float = arg(0.5, help="UCT exploration rate.")
    api_key: str = arg("EMPTY", help="API key when a client is the inference engine.")
    base_url: str = arg(
        "https://dashscope.aliyuncs.com/compatible-mode/v1", help="Base URL when a client is the inference engine."
    )


@dataclass(kw_only=True)
class SampleArguments(ModelLoadingArguments, McstArguments):
    """`swift sample`: base arguments plus the sampler's."""

    GROUP = "sampling"

    prm_model: str | None = arg(None, help="Process reward model: a model id, or a prm plugin key.")
    orm_model: str | None = arg(None, help="Outcome reward model: an orm plugin key.")
    sampler_type: Literal["sample", "mcts"] = arg("sample", help="Sampling method.")
    sampler_engine: Literal["pt", "lmdeploy", "vllm", "no", "client"] = arg("pt", help="Engine that samples.")
    output_dir: str = arg("sample_output", help="Output directory.")
    output_file: str | None = arg(None, help="Output file name (jsonl, no directory). None: a timestamp.")
    override_exist_file: bool = arg(False, help="Overwrite output_file if it exists.")
    num_sampling_per_gpu_batch_size: int = arg(1, help="Batch size of each sampling operation.")
    num_sampling_per_gpu_batches: int | None = arg(None, help="Number of batches to sample. None: the whole dataset.")
    n_best_to_keep: int = arg(5, help="Best sequences kept per query.")
    data_range: list[int] = arg(factory=list, help="`INDEX COUNT`: split the dataset into COUNT parts and sample part INDEX (0-based), e.g. 2 3.")
    temperature: float | None = arg(1.0, help="Sampling temperature.")
    prm_threshold: float = arg(0.0, help="Drop results whose PRM score is below this.")
    easy_query_threshold: float | None = arg(
        None, help="Drop queries whose share of ORM-correct samples exceeds this. None: keep all."
    )
    engine_kwargs: dict | None = arg(None, help="Extra engine options as JSON.")
    num_return_sequences: int = arg(64, help="Sequences sampled per query.")
    cache_files: list[str] = arg(factory=list, help="Results of an earlier sampling run to score (with sampler_engine no).")

    def _resolve(self, passed: set[str]) -> None:
        if self.load_args is None:
            self.load_args = True

    def _check(self) -> list[str]:
        problems = []
        if self.data_range and (len(self.data_range) != 2 or not 0 <= self.data_range[0] < self.data_range[1]):
            problems.append(f"--data_range takes `INDEX COUNT` with 0 <= INDEX < COUNT, got {self.data_range}")
        if self.output_file is not None and ("/" in self.output_file or not self.output_file.endswith(".jsonl")):
            problems.append(f"--output_file must be a .jsonl file name without a directory, got '{self.output_file}'")
        if self.sampler_engine == "no" and not self.cache_files:
            problems.append("--sampler_engine no needs --cache_files from an earlier sampling run")
        return problems
