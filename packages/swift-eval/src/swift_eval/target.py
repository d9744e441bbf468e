"""What answers the evaluation's questions: a local `swift deploy` of --model / --adapters, or --eval_url.

A local target is checked as the deployment will run: its argument list (the user's own, less what only
eval reads) is parsed as `swift deploy` parses it, the model resolves and the adapters fit it, all before
anything starts. A remote one is asked for its models, which also proves it is up and takes the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, Invocation
from swift_args.adapters import adapter_path
from swift_infer.local_deployment import LocalDeployment, deploy_argv, local_deployment, models_at

# What eval reads itself, and what every request carries (so that --eval_url gets the same settings): not
# passed to the deployment. host, port, api_key and the batch size are passed as eval decides them.
EVAL_ONLY = {"eval_backend", "eval_dataset", "eval_limit", "eval_output_dir", "local_dataset", "eval_num_proc",
             "eval_url", "deploy_timeout", "eval_use_cache", "name"}
PER_REQUEST = {"temperature", "top_p", "top_k", "max_new_tokens", "repetition_penalty", "seed", "stop_words",
               "stream"}
SET_BY_EVAL = {"host", "port", "api_key", "verbose", "max_batch_size"}


@dataclass
class Target:
    """The endpoint EvalScope sends its requests to."""

    url: str
    api_key: str
    served_name: str  # the model name in each request
    model_id: str  # the name reports are filed under
    description: str
    local: LocalDeployment | None = None
    checkpoint: Path | None = None  # where eval_result.jsonl goes: the evaluated adapter or swift-written model

    def deployment(self, log: Path) -> LocalDeployment | None:
        if self.local is not None:
            self.local.log = log
        return self.local


def local_target(invocation: Invocation) -> Target:
    args = invocation.args
    deployment, deploy_args = local_deployment(deployment_argv(invocation),
                                               args.host if "host" in invocation.passed else None,
                                               args.port if "port" in invocation.passed else None,
                                               args.api_key, Path("deploy.log"))  # the log: set once the run's is known
    served = deploy_args.served_model_name
    checkpoint = _checkpoint(args)
    model_id = f"{served}-{checkpoint.name}" if args.adapters and checkpoint else served
    what = f"{args.adapters[0]} on {args.model}" if args.adapters else str(args.model)
    return Target(deployment.url, deployment.api_key, served, _safe(model_id), what, deployment, checkpoint)


def deployment_argv(invocation: Invocation) -> list[str]:
    """The user's arguments as `swift deploy` takes them: 2.x names translated, eval's own left out, and the
    server's address, key, logging and batch size as eval sets them."""
    args = invocation.args
    argv = deploy_argv(invocation.argv, "eval", EVAL_ONLY | PER_REQUEST | SET_BY_EVAL)
    # One request per concurrent evaluation client, batched together: the server answers as fast as it can.
    batch = args.max_batch_size if "max_batch_size" in invocation.passed else args.eval_num_proc
    return [*argv, "--max_batch_size", str(batch), "--verbose", str(args.verbose).lower()]


def _checkpoint(args: Any) -> Path | None:
    """The directory a swift run wrote that is evaluated: the adapter, or a --model with an args.json."""
    if args.adapters:
        return Path(adapter_path(args.adapters[0]))
    model = Path(str(args.model)).expanduser()
    if model.is_dir() and (model / "args.json").is_file():
        return model
    return None


def remote_target(args: Any) -> Target:
    """--eval_url: the server is asked for its models; --model names one of them (default: the first)."""
    url = args.eval_url.rstrip("/")
    served = models_at(url, args.api_key, "--eval_url")
    if args.model is None:
        if not served:
            raise ArgumentError(f"--eval_url {url} serves no model; pass --model with the name to request")
        name = served[0]
    else:
        name = str(args.model)
        if served and name not in served:
            raise ArgumentError(f"--model {name}: {url} serves {', '.join(served)}; pass one of them")
    return Target(url, args.api_key or "EMPTY", name, _safe(name), f"{name} at {url}")


def _safe(name: str) -> str:
    """A model id usable as a directory name in EvalScope's reports."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
