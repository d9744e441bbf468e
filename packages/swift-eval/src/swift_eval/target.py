"""What answers the evaluation's questions: a local `swift deploy` of --model / --adapters, or --eval_url.

A local target is checked as the deployment will run: its argument list (the user's own, less what only
eval reads) is parsed as `swift deploy` parses it, the model resolves and the adapters fit it, all before
anything starts. A remote one is asked for its models, which also proves it is up and takes the key.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, Invocation
from swift_args.adapters import adapter_path
from swift_args.aliases import REMOVED, find_alias
from swift_args.parse import split_options

from swift_eval.deployment import LocalDeployment, local_deployment

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
    from swift_args import parse_args

    args = invocation.args
    argv = deployment_argv(invocation)
    deploy = parse_args("deploy", argv, warn=lambda message: None)  # its warnings were printed for eval already
    _check_model(deploy.args)
    served = deploy.args.served_model_name
    deployment = local_deployment(argv, args.host if "host" in invocation.passed else None,
                                  args.port if "port" in invocation.passed else None,
                                  args.api_key, Path("deploy.log"), args.shutdown_timeout)
    checkpoint = _checkpoint(args)
    model_id = f"{served}-{checkpoint.name}" if args.adapters and checkpoint else served
    what = f"{args.adapters[0]} on {args.model}" if args.adapters else str(args.model)
    return Target(deployment.url, deployment.api_key, served, _safe(model_id), what, deployment, checkpoint)


def deployment_argv(invocation: Invocation) -> list[str]:
    """The user's arguments as `swift deploy` takes them: 2.x names translated, eval's own left out, and the
    server's address, key, logging and batch size as eval sets them."""
    args = invocation.args
    options, _ = split_options(invocation.argv)
    argv: list[str] = []
    for name, values in options:
        alias = find_alias(name, "eval")
        if alias is not None:
            rewritten = alias.apply(values)
            if rewritten is None:
                continue
            name, values = rewritten
        elif name in REMOVED:
            continue
        if name not in EVAL_ONLY | PER_REQUEST | SET_BY_EVAL:
            argv += [f"--{name}", *values]
    # One request per concurrent evaluation client, batched together: the server answers as fast as it can.
    batch = args.max_batch_size if "max_batch_size" in invocation.passed else args.eval_num_proc
    return [*argv, "--max_batch_size", str(batch), "--verbose", str(args.verbose).lower()]


def _check_model(deploy_args: Any) -> None:
    """The model resolves (a hub id offline is one line), each adapter fits it, and the attention it asks for is
    installed, before a server starts."""
    import importlib.util

    from swift_data.models import model_for_args

    if deploy_args.attn_impl == "flash_attn" and importlib.util.find_spec("flash_attn") is None:
        raise ArgumentError("--attn_impl flash_attn needs the flash-attn package, which is not installed (pip "
                            "install flash-attn); the default, sdpa, runs PyTorch's own FlashAttention kernels")

    _, info = model_for_args(deploy_args)
    if deploy_args.adapters:
        from swift_infer.merge import check_adapter_fits

        for adapter in deploy_args.adapters:
            check_adapter_fits(adapter_path(adapter), info.model_dir)


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
    served = _served_models(url, args.api_key)
    if args.model is None:
        if not served:
            raise ArgumentError(f"--eval_url {url} serves no model; pass --model with the name to request")
        name = served[0]
    else:
        name = str(args.model)
        if served and name not in served:
            raise ArgumentError(f"--model {name}: {url} serves {', '.join(served)}; pass one of them")
    return Target(url, args.api_key or "EMPTY", name, _safe(name), f"{name} at {url}")


def _served_models(url: str, api_key: str | None) -> list[str]:
    request = urllib.request.Request(f"{url}/models", headers={"Authorization": f"Bearer {api_key or 'EMPTY'}"})
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            body = json.loads(response.read().decode("utf-8"))
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise ArgumentError(f"--eval_url {url} refused the key (401); pass the server's key with --api_key") from None
        if exc.code == 404:
            return []  # an endpoint without /models: --model names the model
        raise ArgumentError(f"--eval_url {url}: GET /models answered {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise ArgumentError(f"--eval_url {url}: cannot reach it ({reason}); start the server first (the URL ends in "
                            "/v1), or drop --eval_url to deploy --model locally") from None
    return [m["id"] for m in body.get("data", []) if isinstance(m, dict) and "id" in m]


def _safe(name: str) -> str:
    """A model id usable as a directory name in EvalScope's reports."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
