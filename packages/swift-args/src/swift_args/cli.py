"""The `swift` command: a thin dispatcher over the packages that register subcommands.

Run as: swift <command> [--name value ...]

Each package lists its commands in the `swift.commands` entry-point group; `COMMANDS` says which
package provides which command, so a command whose package is missing names what to install.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Callable
from importlib import metadata
from typing import Any

from swift_args.adapters import missing_adapters
from swift_args.commands import COMMANDS, ENTRY_POINT_GROUP
from swift_args.errors import ArgumentError
from swift_args.help import format_help
from swift_args.plugins import import_files
from swift_args.quiet import silence_known_noise
from swift_args.resolve import Invocation, parse_args

CommandMain = Callable[[Invocation], Any]


def installed_commands() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


def _version() -> str:
    return metadata.version("swift-args")


def format_overview() -> str:
    installed = installed_commands()
    lines = ["usage: swift <command> [--name value ...]", "", "commands:"]
    for name, command in COMMANDS.items():
        note = f"  [not installed: pip install {command.package}]" if name not in installed else ""
        lines.append(f"  {name:<11} {command.summary}{note}")
    lines += ["", "swift <command> --help lists every argument of a command."]
    return "\n".join(lines) + "\n"


def _fail(message: str) -> int:
    print(f"swift: error: {message}", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        sys.stdout.write(format_overview())
        return 0
    if argv[0] in ("-V", "--version"):
        print(f"swift-args {_version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        close = difflib.get_close_matches(name, list(COMMANDS), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else "; run swift --help for the list"
        return _fail(f"unknown command '{name}'{hint}")
    entry_point = installed_commands().get(name)
    if entry_point is None:
        package = COMMANDS[name].package
        return _fail(f"swift {name} is provided by the {package} package, which is not installed: pip install {package}")
    return int(entry_point.load()(rest) or 0)


def run_command(name: str, argv: list[str], command_main: CommandMain) -> int:
    """What every package's entry point calls: help, parsing, then the command itself.

    Bad input anywhere (parsing, checks, or an ArgumentError raised by the command) becomes one
    line per problem on stderr and exit code 2, never a traceback.
    """
    command = COMMANDS[name]
    if any(a in ("-h", "--help") for a in argv):
        sys.stdout.write(format_help(command))
        return 0
    silence_known_noise()
    try:
        invocation = parse_args(name, argv)
        missing = missing_adapters(getattr(invocation.args, "adapters", []))
        if missing:  # parsing leaves paths alone (args.json and tests name paths of other machines)
            raise ArgumentError(missing)
        # Registrations (models, templates, datasets, reward functions) exist before the command looks anything up.
        import_files(getattr(invocation.args, "custom_register_path", []), "--custom_register_path")
        return int(command_main(invocation) or 0)
    except ArgumentError as exc:
        for problem in exc.problems:
            print(f"swift {name}: error: {problem}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print(f"swift {name}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
