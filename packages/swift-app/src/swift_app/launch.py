"""Serving a gradio page: the login it asks for, the address it listens on, and gradio's own chatter kept quiet.

Both pages are checked before anything starts (the port is free, the --auth file reads), so a bad
address is one line, not a traceback from gradio after a model has loaded.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from swift_args import ArgumentError

# gradio phones home for analytics and version checks; this machine may be offline, and we promise no surprise traffic.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


def read_auth(value: str | None) -> tuple[str, str] | None:
    """--auth USER:PASSWORD or @FILE (its first line is USER:PASSWORD) as gradio's (user, password)."""
    if value is None:
        return None
    line = value
    if value.startswith("@"):
        path = Path(value[1:]).expanduser()
        try:
            line = next(iter(path.read_text(encoding="utf-8").splitlines()), "")
        except OSError as exc:
            raise ArgumentError(f"--auth {value}: cannot read {path} ({exc.strerror}); write USER:PASSWORD in it") from None
    user, sep, password = line.strip().partition(":")
    if not sep or not user or not password:
        where = f"the first line of {value[1:]}" if value.startswith("@") else "it"
        raise ArgumentError(f"--auth: {where} must be USER:PASSWORD, both non-empty")
    return user, password


def check_address(server_name: str, server_port: int) -> None:
    """One line now if the page cannot listen there (the port taken, the address not this machine's)."""
    from swift_infer.deploy import check_can_listen

    check_can_listen(server_name, server_port, names=("--server_name", "--server_port"))


def serve(page: Any, args: Any, auth: tuple[str, str] | None, command: str) -> None:
    """Serve `page` until Ctrl-C; prints the address to open (gradio's own lines only for a share link: its
    hint to "set share=True in launch()" means nothing to a swift user)."""
    host = "127.0.0.1" if args.server_name in ("0.0.0.0", "::", "") else args.server_name
    print(f"swift {command}: open http://{host}:{args.server_port} (listening on {args.server_name}; Ctrl-C stops)",
          file=sys.stderr, flush=True)
    page.queue(default_concurrency_limit=16).launch(
        server_name=args.server_name, server_port=args.server_port, share=args.share, auth=auth,
        show_error=True, quiet=not args.share, inbrowser=False, footer_links=[], ssr_mode=False)
