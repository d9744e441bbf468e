"""Shared pytest setup: GPU tests run only where a CUDA device is present; subprocesses share bytecode."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest


def pytest_configure(config: pytest.Config) -> None:
    """Where bytecode writing is off (PYTHONDONTWRITEBYTECODE), each `swift` subprocess the end-to-end
    tests start would compile its thousands of modules again, about half of its seconds. They share one
    bytecode cache outside the source tree instead (Python checks each entry against its source)."""
    if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
        os.environ.pop("PYTHONDONTWRITEBYTECODE")
        os.environ["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / f"swift-tests-pycache-{os.getuid()}")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    gpu_items = [item for item in items if "gpu" in item.keywords]
    if not gpu_items:
        return
    import torch

    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in gpu_items:
        item.add_marker(skip)
