"""The error types every command turns into one clean line and an exit code, never a traceback."""

from __future__ import annotations


class ArgumentError(Exception):
    """Bad input from the user: one line per problem, no traceback, exit code 2."""

    exit_code = 2

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class RunStopped(ArgumentError):
    """A run that stopped on what it computed, not on its arguments (a NaN loss): one line, exit code 1.

    An ArgumentError subclass so every command's one handler prints it the same way.
    """

    exit_code = 1
