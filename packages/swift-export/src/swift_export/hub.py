"""`--push_to_hub`: upload a finished export folder with the hub's own client (ModelScope, or Hugging Face
with --use_hf), creating the repo when it does not exist.

The export is complete on disk before the push starts, so a push that fails loses nothing: the one
line says what failed and where the export is. A push is reported as done only after the client
returned the commit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import sys
from pathlib import Path
from typing import Any

from swift_args import ArgumentError, RunStopped

MODELSCOPE_PUBLIC, MODELSCOPE_PRIVATE = 5, 1  # ModelScope's visibility codes


def check_push(args: Any) -> None:
    """The hub's client is installed: said before any work."""
    if args.push_to_hub and not args.use_hf and importlib.util.find_spec("modelscope") is None:
        raise ArgumentError("--push_to_hub to ModelScope needs its client: pip install 'swift-export[modelscope]' "
                            "(or pass --use_hf true to push to the Hugging Face hub)")


class _Push:
    """Which step a push reached: a failure before the upload started left nothing in the repo."""

    uploading = False


def push_folder(args: Any, folder: Path) -> str:
    """Upload `folder` to --hub_model_id; returns the repo's address."""
    hub = "the Hugging Face hub" if args.use_hf else "ModelScope"
    print(f"swift: pushing {folder} to {hub} as {args.hub_model_id}", file=sys.stderr)
    push, chatter = _Push(), io.StringIO()
    try:
        with contextlib.redirect_stdout(chatter):  # the clients print upload reports; we say one line
            url = _push_hf(args, folder, push) if args.use_hf else _push_modelscope(args, folder, push)
    except Exception as exc:  # noqa: BLE001 - each client raises its own types for network and auth failures
        # The Hugging Face hub commits a folder at once; ModelScope commits it in batches, so a failed upload may
        # have left some of them in the repo.
        pushed = ("nothing was pushed" if not push.uploading or args.use_hf
                  else "the upload did not complete (the repo may hold part of it; push again to finish it)")
        raise RunStopped(f"--push_to_hub: {hub} refused or could not be reached ({_reason(exc)}); {pushed}, and "
                         f"the export is complete on disk at {folder}") from None
    print(f"swift: pushed {folder} to {url}", file=sys.stderr)
    return url


def _push_hf(args: Any, folder: Path, push: _Push) -> str:
    from huggingface_hub import HfApi

    api = HfApi(token=args.hub_token)
    repo = api.create_repo(args.hub_model_id, private=args.hub_private_repo, exist_ok=True)
    push.uploading = True
    api.upload_folder(repo_id=repo.repo_id, folder_path=folder, commit_message=args.commit_message)
    return str(repo)


def _push_modelscope(args: Any, folder: Path, push: _Push) -> str:
    from modelscope.hub.api import HubApi

    api = HubApi()
    if args.hub_token:
        api.login(args.hub_token)
    visibility = MODELSCOPE_PRIVATE if args.hub_private_repo else MODELSCOPE_PUBLIC
    api.create_repo(args.hub_model_id, token=args.hub_token, visibility=visibility, exist_ok=True)
    push.uploading = True
    api.upload_folder(repo_id=args.hub_model_id, folder_path=str(folder), commit_message=args.commit_message,
                      token=args.hub_token)
    return f"https://modelscope.cn/models/{args.hub_model_id}"


def _reason(exc: BaseException) -> str:
    """The innermost cause's first line: a connection error names the host, not the client's wrapper."""
    while exc.__cause__ is not None or exc.__context__ is not None:
        exc = exc.__cause__ or exc.__context__
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__
