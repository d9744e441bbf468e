"""swift-args: argument schemas for every `swift` command, parsing, args.json and run directories.

This package imports neither torch nor transformers, so `swift <command> --help` is instant and
every later stage can read a run's arguments cheaply.
"""

from swift_args.args_file import ARGS_FILE, SCHEMA_VERSION, read_args_file, save_args
from swift_args.commands import COMMANDS, Command
from swift_args.errors import ArgumentError, RunStopped
from swift_args.files import apply_umask, umask_mode
from swift_args.resolve import Invocation, build_args, parse_args
from swift_args.run_dir import create_run_dir

__all__ = [
    "ARGS_FILE",
    "COMMANDS",
    "SCHEMA_VERSION",
    "ArgumentError",
    "Command",
    "Invocation",
    "RunStopped",
    "apply_umask",
    "build_args",
    "create_run_dir",
    "parse_args",
    "read_args_file",
    "save_args",
    "umask_mode",
]
