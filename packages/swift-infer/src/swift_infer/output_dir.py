"""Where a command writes a whole model (merge-lora, export): checked before any work, staged, renamed into place.

An output directory never overlaps what is being read (the model, the adapters), never is the directory the
user is in, and replaces an existing one only with --exist_ok and only when that one is itself a model or
an earlier export: `--exist_ok true --output_dir .` must not wipe a project.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from swift_args import ArgumentError
from swift_args.files import apply_umask
from swift_args.run_dir import check_writable_dir

# What the top level of a model or export directory holds: --exist_ok replaces only a directory with one of them.
MODEL_FILES = ("config.json", "args.json", "Modelfile", "adapter_config.json")


def check_output_dir(output: str | Path, sources: list[str | Path], exist_ok: bool,
                     argument: str = "--output_dir") -> None:
    """Refuse, before anything is read or written, an output that the command could not write safely."""
    path = Path(output).expanduser().resolve()
    cwd = Path.cwd().resolve()
    if path == cwd or path in cwd.parents:
        raise ArgumentError(f"{argument} {output} is the current directory (or holds it); name a new directory, "
                            "e.g. ./exported")
    for source in sources:
        source_path = Path(source).expanduser().resolve()
        if path == source_path or source_path in path.parents or path in source_path.parents:
            raise ArgumentError(f"{argument} {output} overlaps {source}, which this command reads; choose a "
                                "directory outside it")
    check_writable_dir(path, argument)  # also creatable: its nearest existing ancestor is a writable directory
    if not path.exists() or not any(path.iterdir()):
        return
    if not exist_ok:
        raise ArgumentError(f"{argument} {output} exists and is not empty; pass --exist_ok true to replace it (the "
                            "new output replaces it only once complete)")
    if not any((path / name).exists() for name in MODEL_FILES) and not any(path.glob("*.gguf")):
        found = ", ".join(sorted(p.name for p in path.iterdir())[:3])
        raise ArgumentError(f"{argument} {output} holds files that are not a model or an earlier export ({found}); "
                            "--exist_ok replaces only those; choose another directory")


@contextmanager
def staged(output: str | Path) -> Iterator[Path]:
    """A directory beside `output` to write into. When the block completes it replaces `output` (files get the
    umask's mode: safetensors writes 0600); when it fails, it is removed and `output` stays as it was."""
    output = Path(output).expanduser().resolve()
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = output.with_name(f".{output.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        apply_umask(staging)
        if output.is_dir() and not output.is_symlink():
            # Renamed aside first: a crash between the two renames leaves the old output under a hidden name,
            # never half of it.
            old = output.with_name(f".{output.name}.old")
            shutil.rmtree(old, ignore_errors=True)
            output.rename(old)
            staging.rename(output)
            shutil.rmtree(old, ignore_errors=True)
        else:
            if output.exists() or output.is_symlink():
                os.unlink(output)
            staging.rename(output)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
