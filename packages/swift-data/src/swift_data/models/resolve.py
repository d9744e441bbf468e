"""`--model` -> a local Hugging Face directory, whatever form the user gave it in.

Accepted: a local model directory; a local .gguf file; a training run directory or checkpoint;
the built-in alias SmolLM2-135M-Instruct; a hub id (`org/name`, optionally `MS::` / `HF::`).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from swift_args import ArgumentError
from swift_args.adapters import is_adapter_dir
from swift_args.checkpoint_files import (
    checkpoint_dirs,
    damage_refusal,
    is_complete,
    newest_whole_checkpoint,
    run_dirs,
    step_of,
)

from swift_data.models.builtin import BUILTIN_MODELS, find_builtin
from swift_data.models.gguf import ensure_converted
from swift_data.models.hub import download_model

_HUB_ID = re.compile(r"^(?:(HF|MS)::)?([\w.\-]+/[\w.\-]+)$")


def resolve_model_dir(
    model: str, *, use_hf: bool = False, revision: str | None = None, hub_token: str | None = None,
    check: bool = True,
) -> Path:
    """The local directory holding config.json and weights for `model`.

    With `check` (--check_model, true by default), a checkpoint we saved is verified against its
    marker's sizes and checksums before it is used.
    """
    builtin = find_builtin(model)
    if builtin is not None:
        return ensure_converted(builtin.locate())
    path = Path(model).expanduser()
    if path.is_file():
        if path.suffix.lower() != ".gguf":
            raise ArgumentError(f"--model {model} is a file but not a .gguf; pass a model directory or a .gguf file")
        return ensure_converted(path)
    if path.is_dir():
        return _model_in_directory(path, verified=not check)
    hub = _HUB_ID.match(model.strip())
    if hub is not None and not model.startswith((".", "/", "~")):
        prefix, model_id = hub.groups()
        return download_model(model_id, use_hf=use_hf if prefix is None else prefix == "HF", revision=revision, token=hub_token)
    aliases = ", ".join(m.alias for m in BUILTIN_MODELS.values())
    raise ArgumentError(
        f"--model {model}: no such file or directory, and not a hub id (org/name) or a built-in model ({aliases})"
    )


def _model_in_directory(path: Path, verified: bool = False) -> Path:
    if (path / "config.json").is_file():
        if not verified:
            _check_whole(path)
        return path
    if is_adapter_dir(path):
        raise ArgumentError(
            f"--model {path} is an adapter, not a model: pass it as --adapters {path} "
            "(the base model is read from its args.json)"
        )
    checkpoint = latest_checkpoint(path)
    if checkpoint is not None:
        return _model_in_directory(checkpoint, verified=True)
    if checkpoint_dirs(path):
        raise ArgumentError(f"--model {path}: none of its checkpoint-N directories holds a whole model; "
                            "pass a model or a checkpoint directory")
    raise ArgumentError(f"--model {path} has no config.json and no checkpoint-N directory; is it a model directory?")


def _check_whole(checkpoint: Path) -> None:
    """A saved checkpoint (it has a marker) whose weights changed since is refused, naming the file, before loading."""
    problem = damage_refusal(checkpoint, "--model")
    if problem is not None:
        raise ArgumentError(problem)


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest whole `checkpoint-N` of a run directory (or of an output dir's runs); each newer
    damaged one is named on stderr. Checkpoints of other tools have no marker: there, the
    highest-numbered one with a config is taken."""
    if not any(is_complete(c) for run in run_dirs(run_dir) for c in checkpoint_dirs(run)):
        numbered = [(step_of(p), p) for p in checkpoint_dirs(run_dir)]
        complete = [(n, p) for n, p in numbered if (p / "config.json").is_file() or is_adapter_dir(p)]
        return max(complete)[1] if complete else None
    found, skipped = newest_whole_checkpoint(run_dir, training_state=False)
    for checkpoint, why in skipped:
        using = f"; using {found.relative_to(run_dir)}" if found is not None else ""
        print(f"swift: skipping {checkpoint.relative_to(run_dir)}: {why}{using}", file=sys.stderr)
    return found


def portable_model_name(model: str) -> str:
    """How an artifact names its base model so that it resolves on any machine.

    The built-in alias and hub ids stay as given (their local copies live in per-machine caches);
    a local path is made absolute, so it still names the same files from another directory.
    """
    builtin = find_builtin(model)
    if builtin is not None:
        return builtin.alias
    path = Path(model).expanduser()
    if path.exists():
        return str(path.resolve())
    hub = _HUB_ID.match(model.strip())
    return hub.group(2) if hub is not None else model
