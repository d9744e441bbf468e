"""How to type `swift` again in the shell this process was started from, for printed next steps.

`uv run swift ...` puts the project's virtualenv on PATH only for the command it runs, so a bare
`swift` printed as the next step fails with "command not found" in the user's own shell.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from pathlib import Path


# Set by the torchrun launcher: its workers run a module, not the command the user typed.
COMMAND_ENV = "SWIFT_COMMAND"


def swift_command() -> str:
    """`swift`, `uv run swift`, `python3 -m uv run swift`, or the script's path: what works there."""
    if os.environ.get(COMMAND_ENV):
        return os.environ[COMMAND_ENV]
    if os.environ.get("UV"):  # started by `uv run`
        return f"{_uv_command()} run{_project_option()} swift"
    script = Path(sys.argv[0]).absolute()
    found = shutil.which("swift")
    if found is not None and Path(found).resolve() == script.resolve():
        return "swift"
    return shlex.quote(str(script))


def _uv_command() -> str:
    # `python -m uv` sets UV_INTERNAL__PARENT_INTERPRETER: print what the user typed, if python3 is that one.
    interpreter = os.environ.get("UV_INTERNAL__PARENT_INTERPRETER")
    if interpreter:
        python3 = shutil.which("python3", path=_user_path())
        same = python3 is not None and Path(python3).resolve() == Path(interpreter).resolve()
        return "python3 -m uv" if same else f"{shlex.quote(interpreter)} -m uv"
    uv = shutil.which("uv", path=_user_path())
    return "uv" if uv is not None and Path(uv).resolve() == Path(os.environ["UV"]).resolve() else shlex.quote(os.environ["UV"])


def _user_path() -> str:
    """PATH as the user's shell has it: without the virtualenv's bin that `uv run` put in front."""
    venv_bin = str(Path(sys.executable).parent)
    return os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if p != venv_bin)


def _project_option() -> str:
    """` --project DIR` when the shell is outside the project whose .venv runs us (uv finds it from the cwd)."""
    venv = os.environ.get("VIRTUAL_ENV")
    if not venv:
        return ""
    project = Path(venv).parent
    return "" if Path.cwd().is_relative_to(project) else f" --project {shlex.quote(str(project))}"
