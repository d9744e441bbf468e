"""--report_to swanlab: the SwanLab run is started here with the swanlab_* arguments, and transformers'
SwanLabCallback then logs every step into it (it reuses a run that already exists)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

MODES = {"cloud": "online", "local": "local"}  # the reference's names -> swanlab's


def reports_to_swanlab(args: Any) -> bool:
    """--report_to swanlab, or all (transformers' every installed integration) with swanlab installed."""
    import importlib.util

    asked = set(args.report_to or [])
    return "swanlab" in asked or ("all" in asked and importlib.util.find_spec("swanlab") is not None)


def check_swanlab(args: Any) -> None:
    import importlib.util

    if "swanlab" in (args.report_to or []) and importlib.util.find_spec("swanlab") is None:
        raise ArgumentError("--report_to swanlab needs swanlab: pip install 'swift-train[swanlab]'")


def start_swanlab(args: Any, run_dir: Path) -> None:
    """Log in (with --swanlab_token) and start the run; local mode writes under <run_dir>/swanlog."""
    if not reports_to_swanlab(args) or os.environ.get("RANK", "0") != "0":
        return
    import swanlab

    try:
        if args.swanlab_token:
            swanlab.login(api_key=args.swanlab_token)
        swanlab.init(project=args.swanlab_project, workspace=args.swanlab_workspace, name=args.swanlab_exp_name,
                     mode=MODES[args.swanlab_mode], log_dir=str(run_dir / "swanlog"))
    except Exception as exc:  # noqa: BLE001 - no network, a bad key, an unknown workspace
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ArgumentError(f"--report_to swanlab (--swanlab_mode {args.swanlab_mode}): {first}; "
                            "--swanlab_mode local works offline") from None
