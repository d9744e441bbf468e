"""GRPO's reward functions, looked up by the names --reward_funcs gives.

Built in, with the values of ms-swift 3.x's swift/plugin/orm.py: `accuracy`, `format`, `cosine` and
`repetition`. A Python file passed with --external_plugins (or --custom_register_path), imported before the
command runs, adds its own:

    from swift_train.rewards import reward_funcs

    def brevity(completions, **kwargs):                 # -> one float (or None) per completion
        return [-len(c) / 1000 for c in completions]
    reward_funcs["brevity"] = brevity

    def exact(completions, solution, **kwargs):         # naming a column makes the dataset need it
        return [float(c.strip() == s) for c, s in zip(completions, solution)]
    reward_funcs["exact"] = exact

    class Budget:                                       # ms-swift style: built once, then called
        def __init__(self, tokenizer, max_completion_length):
            self.tokenizer, self.limit = tokenizer, max_completion_length
        def __call__(self, completions, **kwargs):
            return [-len(self.tokenizer.encode(c)) / self.limit for c in completions]
    reward_funcs["budget"] = Budget

A function gets the completions and, as keyword arguments, every dataset column of the batch as a list with
one value per completion (a prompt's completions each repeat its row's value), `messages` (each completion's
prompt conversation) among them. Its named parameters after `completions` (those without a default) are the
columns it needs: a dataset without one is refused before training starts. A class is instantiated once, with
those parameters of its __init__ that name a parsed argument (--cosine_max_len, --max_completion_length, ...)
plus `tokenizer` if it names one. None for a sample means "no reward from this function here": it scores NaN,
and the trainer sums the weighted rewards with nansum, as TRL does.
"""

from __future__ import annotations

import inspect
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from swift_args import ArgumentError

RewardFn = Callable[..., list[float | None]]

# ms-swift 3.10+'s accuracy: an answer inside these tags is parsed on its own, so a bare "7" counts there.
_ANSWER = re.compile(r"<answer>(.*?)</answer>", re.DOTALL)
# Thinking, then the answer, then nothing at all (not even a newline): ms-swift's `format`.
_THINK_ANSWER = re.compile(r"^<think>.*?</think>\s*<answer>.*?</answer>(?![\s\S])", re.DOTALL | re.MULTILINE)


class RewardFunctionError(ArgumentError):
    """A reward function failed or returned something unusable: one line naming it (and the sample)."""


@dataclass(frozen=True)
class RewardFunction:
    """One --reward_funcs entry, ready to call: its name, the callable and the dataset columns it needs."""

    name: str
    fn: RewardFn
    columns: tuple[str, ...]


# -- the built-ins ----------------------------------------------------------------------------------------


def _require_math_verify() -> None:
    try:
        import math_verify  # noqa: F401
    except ImportError:
        raise ArgumentError("--reward_funcs accuracy and cosine need the math-verify package: "
                            'pip install "math-verify[antlr4_13_2]"') from None


@cache
def _latex_only() -> Any:
    """Untagged completions' extraction: \\boxed{} or $...$ after "answer"; no bare numbers in prose."""
    from latex2sympy2_extended import NormalizationConfig
    from math_verify import LatexExtractionConfig

    # No malformed-operator repair: the answer must be well-formed LaTeX. (ms-swift before 3.10 also passed
    # equations=True, which latex2sympy2-extended now ignores, printing a warning on every call.)
    normalization = NormalizationConfig(nits=False, malformed_operators=False, basic_latex=True, boxed=True,
                                        units=True)
    return LatexExtractionConfig(normalization_config=normalization, boxed_match_priority=0,
                                 try_extract_without_anchor=False)


def _inside_answer_tag(text: str) -> tuple[str, bool]:
    match = _ANSWER.search(text)
    return (match.group(1).strip(), True) if match else (text, False)


def is_correct(completion: str, solution: str) -> float:
    """1.0 when the completion's answer has the solution's value by math_verify, else 0.0 (bad solution too).

    The answer is the text inside the first <answer>...</answer>, parsed the default way (numbers, plain
    expressions, LaTeX); without the tags, only LaTeX in \\boxed{} or in $...$ after the word "answer" counts.
    Values are compared, so "<answer>3+4</answer>" is right for 7.
    """
    from math_verify import parse, verify

    gold = parse(_inside_answer_tag(solution)[0], extraction_mode="first_match")
    if not gold:  # ms-swift scores 0 rather than train towards an answer it cannot check
        return 0.0
    text, tagged = _inside_answer_tag(completion)
    config = {} if tagged else {"extraction_config": [_latex_only()]}
    answer = parse(text, extraction_mode="first_match", **config)
    try:
        return float(verify(gold, answer))
    except Exception:  # noqa: BLE001 - sympy edge cases; ms-swift scores them 0 too
        return 0.0


class MathAccuracy:
    """`accuracy`: 1.0 for a completion whose answer matches the row's `solution` (is_correct), else 0.0."""

    def __init__(self) -> None:
        _require_math_verify()

    def __call__(self, completions: list[str], solution: list[str], **kwargs: Any) -> list[float]:
        return [is_correct(c, s) for c, s in zip(completions, solution)]


def format_reward(completions: list[str], **kwargs: Any) -> list[float]:
    """`format`: 1.0 for "<think>...</think> <answer>...</answer>" with nothing after, else 0.0."""
    return [1.0 if _THINK_ANSWER.match(c) else 0.0 for c in completions]


def cosine_interpolation(length: int, max_len: int, at_zero: float, at_max: float) -> float:
    """From `at_zero` (length 0) to `at_max` (length max_len) along half a cosine wave.

    Not clamped, as in ms-swift: past max_len the value turns back towards `at_zero`.
    """
    return at_zero - (at_zero - at_max) * (1 - math.cos(length * math.pi / max_len)) / 2


class CosineReward:
    """`cosine`: correctness scaled by length (Demystifying Long Chain-of-Thought Reasoning, 2502.03373).

    Right answers earn most when short, wrong ones lose most when short (better to think on when unsure).
    The length is len(tokenizer.encode(completion)), with any special tokens it adds, as in ms-swift 3.4.
    """

    def __init__(self, tokenizer: Any, cosine_min_len_value_wrong: float = -0.5,
                 cosine_max_len_value_wrong: float = 0.0, cosine_min_len_value_correct: float = 1.0,
                 cosine_max_len_value_correct: float = 0.5, cosine_max_len: int = 1000) -> None:
        self.tokenizer = tokenizer
        self.wrong = (cosine_min_len_value_wrong, cosine_max_len_value_wrong)
        self.correct = (cosine_min_len_value_correct, cosine_max_len_value_correct)
        self.max_len = cosine_max_len
        self.accuracy = MathAccuracy()

    @classmethod
    def from_args(cls, args: Any, tokenizer: Any) -> CosineReward:
        return cls(tokenizer, args.cosine_min_len_value_wrong, args.cosine_max_len_value_wrong,
                   args.cosine_min_len_value_correct, args.cosine_max_len_value_correct, args.cosine_max_len)

    def __call__(self, completions: list[str], solution: list[str], **kwargs: Any) -> list[float]:
        right = self.accuracy(completions, solution)
        return [self.reward(c, ok >= 1.0) for c, ok in zip(completions, right)]

    def reward(self, completion: str, correct: bool) -> float:
        at_zero, at_max = self.correct if correct else self.wrong
        return cosine_interpolation(len(self.tokenizer.encode(completion)), self.max_len, at_zero, at_max)


class RepetitionPenalty:
    """`repetition`: max_penalty times the share of repeated word n-grams (lower-cased, split on whitespace).

    0 for a completion of fewer than n words; one n-gram over and over approaches max_penalty as it grows.
    """

    def __init__(self, repetition_n_grams: int = 3, repetition_max_penalty: float = -1.0) -> None:
        self.n = repetition_n_grams
        self.max_penalty = repetition_max_penalty

    @classmethod
    def from_args(cls, args: Any, tokenizer: Any) -> RepetitionPenalty:
        return cls(args.repetition_n_grams, args.repetition_max_penalty)

    def __call__(self, completions: list[str], **kwargs: Any) -> list[float]:
        return [self.penalty(c) for c in completions]

    def penalty(self, completion: str) -> float:
        words = completion.lower().split()
        if len(words) < self.n:
            return 0.0
        ngrams = list(zip(*(words[i:] for i in range(self.n))))
        return (1 - len(set(ngrams)) / len(ngrams)) * self.max_penalty


reward_funcs: dict[str, type | RewardFn] = {
    "accuracy": MathAccuracy,
    "format": format_reward,
    "cosine": CosineReward,
    "repetition": RepetitionPenalty,
}


# -- building and checking --------------------------------------------------------------------------------


def build_reward_functions(names: list[str], args: Any, tokenizer: Any) -> list[RewardFunction]:
    """The --reward_funcs entries, classes instantiated; one line per unknown name, or a failing __init__."""
    known = ", ".join(sorted(reward_funcs))
    unknown = [f"--reward_funcs {name}: no such reward function (registered: {known}); register one in "
               "swift_train.rewards.reward_funcs from an --external_plugins file"
               for name in names if name not in reward_funcs]
    if unknown:
        raise ArgumentError(unknown)
    functions = []
    for name in names:
        fn = reward_funcs[name]
        if isinstance(fn, type):
            fn = _instantiate(name, fn, args, tokenizer)
        functions.append(RewardFunction(name, fn, required_columns(fn)))
    return functions


def _instantiate(name: str, cls: type, args: Any, tokenizer: Any) -> RewardFn:
    """cls(its __init__'s parameters that are parsed arguments, + tokenizer): how ms-swift builds one."""
    if hasattr(cls, "from_args"):  # the built-ins name the arguments they read
        return cls.from_args(args, tokenizer)
    params = inspect.signature(cls.__init__).parameters
    variadic = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)
    kwargs = {p: getattr(args, p) for p, param in params.items()
              if p not in ("self", "tokenizer") and param.kind not in variadic and hasattr(args, p)}
    if "tokenizer" in params:
        kwargs["tokenizer"] = tokenizer
    try:
        return cls(**kwargs)
    except ArgumentError:
        raise
    except Exception as exc:  # noqa: BLE001 - the plugin's own code
        raise ArgumentError(f"--reward_funcs {name}: {cls.__name__}({', '.join(kwargs)}) failed: "
                            f"{_one_line(exc)}") from None


def required_columns(fn: type | RewardFn) -> tuple[str, ...]:
    """The dataset columns a reward function reads: its parameters without a default after the first one.

    The first (the completions, whatever its name) is passed by position, as ms-swift does.
    """
    try:
        signature = inspect.signature(fn.__call__ if isinstance(fn, type) else fn)
    except (TypeError, ValueError):  # a builtin without a signature can only take what it is given
        return ()
    params = [p for p in signature.parameters.values() if not (isinstance(fn, type) and p.name == "self")]
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if params and params[0].kind in positional:
        params = params[1:]
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return tuple(p.name for p in params if p.kind in named and p.default is p.empty)


def check_columns(functions: list[RewardFunction], columns: set[str], where: str) -> None:
    """Each function's columns are in the dataset; every missing one reported at once, a line per function."""
    problems = []
    for f in functions:
        missing = [c for c in f.columns if c not in columns]
        if missing:
            quoted = ", ".join(f"'{c}'" for c in missing)
            what = f"a {quoted} column" if len(missing) == 1 else f"columns {quoted}"
            problems.append(f"--reward_funcs {f.name} needs {what}, which {where} lacks "
                            f"(its columns: {', '.join(sorted(columns))})")
    if problems:
        raise ArgumentError(problems)


# -- scoring ----------------------------------------------------------------------------------------------


def score(functions: list[RewardFunction], completions: list[str], columns: dict[str, list]) -> Any:
    """The rewards as a float32 tensor [completions, functions]; NaN where a function returned None."""
    import torch

    rewards = torch.empty(len(completions), len(functions), dtype=torch.float32)
    for j, f in enumerate(functions):
        rewards[:, j] = torch.tensor(_values(f, completions, columns), dtype=torch.float32)
    return rewards


def _values(f: RewardFunction, completions: list[str], columns: dict[str, list]) -> list[float]:
    try:
        values = f.fn(completions, **columns)
    except Exception as exc:  # noqa: BLE001 - the plugin's own code: find the sample it fails on
        _raise_for_failing_sample(f, completions, columns, exc)
    return _checked(f, values, len(completions))


def _raise_for_failing_sample(f: RewardFunction, completions: list[str], columns: dict[str, list],
                              batch_error: Exception) -> None:
    """Calls again sample by sample so the error names one; the batch's error if each alone passes."""
    for i, completion in enumerate(completions):
        try:
            f.fn([completion], **{k: v[i:i + 1] for k, v in columns.items()})
        except Exception as exc:  # noqa: BLE001
            shown = completion[:80] + ("..." if len(completion) > 80 else "")
            raise RewardFunctionError(f"reward function '{f.name}' failed on sample {i} "
                                      f"(completion: {shown!r}): {_one_line(exc)}") from exc
    raise RewardFunctionError(f"reward function '{f.name}' failed on the batch of {len(completions)} "
                              f"completions (each alone scores): {_one_line(batch_error)}") from batch_error


def _checked(f: RewardFunction, values: Any, n: int) -> list[float]:
    """One number (None -> NaN) per completion, or a one-line error naming the function."""
    if isinstance(values, (str, bytes, dict)) or not hasattr(values, "__len__"):
        raise RewardFunctionError(f"reward function '{f.name}' returned a {type(values).__name__}; it must "
                                  f"return a list of {n} floats, one per completion")
    if len(values) != n:
        raise RewardFunctionError(f"reward function '{f.name}' returned {len(values)} values for {n} "
                                  "completions; it must return one per completion")
    return [_number(f, v, i) for i, v in enumerate(values)]


def _number(f: RewardFunction, value: Any, i: int) -> float:
    if value is None:
        return math.nan
    if not isinstance(value, (str, bytes)):  # float("1.5") would pass, but a string is no reward
        try:
            return float(value)
        except (TypeError, ValueError):
            pass
    raise RewardFunctionError(f"reward function '{f.name}' returned {value!r} for sample {i}; each value "
                              "must be a number (or None for no reward)")


def _one_line(exc: Exception) -> str:
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__
