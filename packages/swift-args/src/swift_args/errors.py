"""The one error type every command turns into a clean exit 2."""

from __future__ import annotations


class ArgumentError(Exception):
    """Bad input from the user: one line per problem, no traceback, exit code 2."""

    exit_code = 2

    def __init__(self, problems: str | list[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))
