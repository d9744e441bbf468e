"""GRPO's reward functions: the built-ins' values (ms-swift 3.x's orm.py), the plugin registry, and the
one-line errors for an unknown name, a missing column and a reward function that fails or returns junk."""

from __future__ import annotations

import dataclasses
import math
import sys
import textwrap

import pytest
import torch
from swift_args import ArgumentError, parse_args
from swift_args.plugins import import_files
from swift_train import rewards
from swift_train.rewards import (
    CosineReward,
    MathAccuracy,
    RepetitionPenalty,
    RewardFunctionError,
    build_reward_functions,
    check_columns,
    format_reward,
    required_columns,
    reward_funcs,
    score,
)


@pytest.fixture(scope="module")
def tokenizer():
    from swift_data.models import load_tokenizer, resolve_model_dir

    return load_tokenizer(resolve_model_dir("SmolLM2-135M-Instruct"))


@pytest.fixture
def args():
    """swift rlhf's parsed arguments, GRPO's reward options at their defaults."""
    return parse_args("rlhf", ["--model", "m"], warn=lambda _: None).args


@pytest.fixture
def registry():
    """reward_funcs as it was before the test registered anything."""
    saved = dict(reward_funcs)
    yield reward_funcs
    reward_funcs.clear()
    reward_funcs.update(saved)


# -- accuracy ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("completion", "expected"), [
    # Without <answer> tags, only anchored LaTeX counts: \boxed{}, or $...$ after "answer".
    ("\\boxed{7}", 1.0),
    ("Adding gives \\boxed{7.0}.", 1.0),
    ("The answer is $7$.", 1.0),
    ("The final answer is \\(7\\)", 1.0),
    ("$7$", 0.0),
    ("7", 0.0),
    ("The answer is 7", 0.0),
    ("\\boxed{8}", 0.0),
    ("\\boxed{7} or \\boxed{8}", 0.0),  # two boxes are the set {7, 8}
    # The first <answer>...</answer> is parsed on its own, numbers and plain expressions included.
    ("<answer>7</answer>", 1.0),
    ("<think>3 + 4 = 7</think>\n<answer>7</answer>", 1.0),
    ("<answer>The answer is 7</answer>", 1.0),
    ("<answer>3+4</answer>", 1.0),  # values are compared, not strings
    ("\\boxed{7} <answer>8</answer>", 0.0),  # the tag wins over the box
    ("<answer>8</answer>", 0.0),
    ("<answer>seven</answer>", 0.0),
])
def test_accuracy_of_completions_for_solution_7(completion: str, expected: float) -> None:
    assert MathAccuracy()([completion], ["7"]) == [expected]


@pytest.mark.parametrize(("solution", "expected"), [
    ("12", 1.0), ("<answer>12</answer>", 1.0), ("$12$", 1.0), ("\\frac{24}{2}", 1.0),
    ("13", 0.0), ("twelve", 0.0), ("", 0.0),  # a solution math_verify cannot parse scores 0
])
def test_accuracy_against_solutions(solution: str, expected: float) -> None:
    assert MathAccuracy()(["So the answer is \\boxed{12}."], [solution]) == [expected]


def test_accuracy_without_math_verify_names_the_package(monkeypatch: pytest.MonkeyPatch, args) -> None:
    monkeypatch.setitem(sys.modules, "math_verify", None)  # import math_verify raises ImportError
    for name in ("accuracy", "cosine"):
        with pytest.raises(ArgumentError) as error:
            build_reward_functions([name], args, tokenizer=None)
        assert str(error.value) == ('--reward_funcs accuracy and cosine need the math-verify package: '
                                    'pip install "math-verify[antlr4_13_2]"')


# -- format -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("completion", "expected"), [
    ("<think>3 + 4</think><answer>7</answer>", 1.0),
    ("<think>\nfirst 3,\nthen 4\n</think>\n\n<answer>\n7\n</answer>", 1.0),
    ("<think></think> <answer></answer>", 1.0),
    ("<answer>7</answer>", 0.0),
    ("<think>3 + 4</think>7", 0.0),
    ("<think>3 + 4</think><answer>7</answer> done", 0.0),
    ("<think>3 + 4</think><answer>7</answer>\n", 0.0),  # nothing after </answer>, not even a newline
    (" <think>3 + 4</think><answer>7</answer>", 0.0),
    ("Sure. <think>3 + 4</think><answer>7</answer>", 0.0),
])
def test_format(completion: str, expected: float) -> None:
    assert format_reward([completion]) == [expected]


# -- cosine -----------------------------------------------------------------------------------------------

RIGHT, WRONG = "\\boxed{7}", "\\boxed{8}"  # 6 SmolLM2 tokens each
LONG_RIGHT = "Let me think step by step. 3 plus 4 makes 7, so the answer is \\boxed{7}"  # 26 tokens
LONG_WRONG = LONG_RIGHT.replace("7", "8")


def test_cosine_lengths_are_tokens(tokenizer) -> None:
    assert [len(tokenizer.encode(c)) for c in (RIGHT, WRONG, LONG_RIGHT, LONG_WRONG, "")] == [6, 6, 26, 26, 0]


def test_cosine_at_zero_half_and_full_length(tokenizer) -> None:
    # reward(t) = r0 - (r0 - rL) * (1 - cos(pi * t / L)) / 2: r0 at t = 0, rL at t = L, their mean at L / 2.
    # ms-swift's defaults: right answers 1.0 -> 0.5, wrong ones -0.5 -> 0.0.
    half = CosineReward(tokenizer, cosine_max_len=12)
    assert half([RIGHT, WRONG, ""], ["7"] * 3) == pytest.approx([0.75, -0.25, -0.5])
    full = CosineReward(tokenizer, cosine_max_len=26)
    assert full([LONG_RIGHT, LONG_WRONG], ["7", "7"]) == [pytest.approx(0.5), pytest.approx(0.0)]


def test_cosine_short_and_long(tokenizer) -> None:
    # L = 26, t = 6: (1 - cos(6 pi / 26)) / 2 = 0.1257446...; right 1 - 0.5 * that, wrong -0.5 + 0.5 * that.
    cosine = CosineReward(tokenizer, cosine_max_len=26)
    values = cosine([RIGHT, LONG_RIGHT, WRONG, LONG_WRONG], ["7"] * 4)
    short_right, long_right, short_wrong, long_wrong = values
    assert short_right == pytest.approx(0.9371277, abs=1e-7) and long_right == pytest.approx(0.5)
    assert short_wrong == pytest.approx(-0.4371277, abs=1e-7) and long_wrong == pytest.approx(0.0)
    assert short_right > long_right > long_wrong > short_wrong  # brevity pays when right, effort when wrong


def test_cosine_takes_its_values_from_the_arguments(tokenizer, args) -> None:
    args = dataclasses.replace(args, cosine_max_len=12, cosine_min_len_value_correct=2.0,
                               cosine_max_len_value_correct=1.0, cosine_min_len_value_wrong=-10.0,
                               cosine_max_len_value_wrong=0.0)
    [cosine] = build_reward_functions(["cosine"], args, tokenizer)
    assert cosine.fn.tokenizer is tokenizer and cosine.columns == ("solution",)
    assert cosine.fn([RIGHT, WRONG], solution=["7", "7"]) == [pytest.approx(1.5), pytest.approx(-5.0)]


# -- repetition -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("completion", "expected"), [
    ("", 0.0),
    ("seven seven", 0.0),  # fewer words than n: no n-gram at all
    ("the cat sat on the mat", 0.0),
    ("the cat sat the cat sat", -0.25),  # 4 trigrams, one of them a repeat
    ("The cat sat\nthe CAT sat", -0.25),  # lower-cased words split on any whitespace
    ("a " * 102, -0.99),  # 100 trigrams, all the same one: approaches the maximum penalty
])
def test_repetition(completion: str, expected: float) -> None:
    assert RepetitionPenalty()([completion]) == [pytest.approx(expected)]


def test_repetition_takes_n_and_the_penalty_from_the_arguments(args) -> None:
    args = dataclasses.replace(args, repetition_n_grams=2, repetition_max_penalty=-2.0)
    [repetition] = build_reward_functions(["repetition"], args, tokenizer=None)
    # Bigrams (a b) (b a) (a b): one repeat in three.
    assert repetition.fn(["a b a b"]) == [pytest.approx(-2.0 / 3)]


# -- the registry -----------------------------------------------------------------------------------------


def test_builtins_and_their_columns(args) -> None:
    built = build_reward_functions(["accuracy", "format", "repetition"], args, tokenizer=None)
    assert [(f.name, f.columns) for f in built] == [("accuracy", ("solution",)), ("format", ()),
                                                    ("repetition", ())]


def test_a_plugin_file_registers_a_function_and_a_class(tmp_path, registry, args, tokenizer) -> None:
    plugin = tmp_path / "my_rewards.py"
    plugin.write_text(
        "from swift_train.rewards import reward_funcs\n"
        "\n"
        "def exact(completions, solution, **kwargs):\n"
        "    return [float(c.strip() == s) for c, s in zip(completions, solution)]\n"
        "\n"
        "def first_turn(completions, messages, **kwargs):\n"
        "    return [float(m[0]['content'] in c) for c, m in zip(completions, messages)]\n"
        "\n"
        "class Budget:\n"
        "    def __init__(self, tokenizer, max_completion_length, scale=2.0):\n"
        "        self.tokenizer, self.limit, self.scale = tokenizer, max_completion_length, scale\n"
        "    def __call__(self, completions, **kwargs):\n"
        "        return [-self.scale * len(self.tokenizer.encode(c)) / self.limit for c in completions]\n"
        "\n"
        "reward_funcs.update(exact=exact, first_turn=first_turn, budget=Budget)\n",
        encoding="utf-8")
    import_files([str(plugin)], "--external_plugins")  # as the CLI does before the command runs
    args = dataclasses.replace(args, max_completion_length=26)
    built = build_reward_functions(["exact", "first_turn", "budget", "format"], args, tokenizer)
    assert [(f.name, f.columns) for f in built] == [("exact", ("solution",)), ("first_turn", ("messages",)),
                                                    ("budget", ()), ("format", ())]
    budget = built[2].fn
    assert (budget.tokenizer, budget.limit, budget.scale) == (tokenizer, 26, 2.0)

    completions = ["7", "<think>hi</think><answer>8</answer>"]
    columns = {"solution": ["7", "7"], "messages": [[{"role": "user", "content": "7"}]] * 2}
    assert [len(tokenizer.encode(c)) for c in completions] == [1, 13]
    expected = torch.tensor([[1.0, 1.0, -2.0 * 1 / 26, 0.0], [0.0, 0.0, -2.0 * 13 / 26, 1.0]])
    rewards = score(built, completions, columns)
    assert rewards.dtype == torch.float32 and torch.equal(rewards, expected)


def test_unknown_names_are_refused_with_the_registered_ones(registry, args) -> None:
    registry["my_reward"] = format_reward
    with pytest.raises(ArgumentError) as error:
        build_reward_functions(["accuracy", "foo", "acuracy"], args, tokenizer=None)
    known = "accuracy, cosine, format, my_reward, repetition"
    assert error.value.problems == [
        f"--reward_funcs {name}: no such reward function (registered: {known}); register one in "
        "swift_train.rewards.reward_funcs from an --external_plugins file" for name in ("foo", "acuracy")]


def test_a_class_needing_what_no_argument_gives_is_one_line(registry, args) -> None:
    class Needy:
        def __init__(self, max_completion_length, threshold):
            pass

    registry["needy"] = Needy
    with pytest.raises(ArgumentError) as error:
        build_reward_functions(["needy"], args, tokenizer=None)
    message = str(error.value)
    assert message.startswith("--reward_funcs needy: Needy(max_completion_length) failed: TypeError: ")
    assert message.endswith("__init__() missing 1 required positional argument: 'threshold'")


def test_required_columns() -> None:
    def plain(completions, **kwargs): ...
    def two(completions, solution, *args, answer_type, hint=None, **kwargs): ...

    class Scorer:
        def __call__(self, completions, reference, **kwargs): ...

    def renamed(texts, solution, **kwargs): ...

    assert required_columns(plain) == ()
    assert required_columns(renamed) == ("solution",)  # the first parameter is the completions, by position
    assert required_columns(two) == ("solution", "answer_type")  # hint has a default: optional
    assert required_columns(Scorer) == ("reference",) == required_columns(Scorer())
    assert required_columns(MathAccuracy) == ("solution",) == required_columns(CosineReward)
    assert required_columns(RepetitionPenalty) == () == required_columns(format_reward)


def test_missing_columns_are_reported_per_function(registry, args) -> None:
    registry["graded"] = lambda completions, solution, difficulty, **kwargs: [0.0] * len(completions)
    built = build_reward_functions(["accuracy", "format", "graded"], args, tokenizer=None)
    check_columns(built, {"messages", "solution", "difficulty"}, "--dataset arithmetic")  # all there
    with pytest.raises(ArgumentError) as error:
        check_columns(built, {"messages", "rejected_response"}, "--dataset preference-pairs")
    assert error.value.problems == [
        "--reward_funcs accuracy needs a 'solution' column, which --dataset preference-pairs lacks "
        "(its columns: messages, rejected_response)",
        "--reward_funcs graded needs columns 'solution', 'difficulty', which --dataset preference-pairs "
        "lacks (its columns: messages, rejected_response)",
    ]


# -- scoring ----------------------------------------------------------------------------------------------


def _one(registry, args, fn):
    registry["plugin"] = fn
    return build_reward_functions(["plugin"], args, tokenizer=None)


def test_none_scores_nan(registry, args) -> None:
    functions = _one(registry, args, lambda cs, **kw: [None if c == "skip" else 1 for c in cs])
    rewards = score(functions + build_reward_functions(["format"], args, None), ["skip", "x"], {})
    assert rewards.shape == (2, 2) and math.isnan(rewards[0, 0]) and rewards[1].tolist() == [1.0, 0.0]
    assert torch.nansum(rewards, dim=1).tolist() == [0.0, 1.0]


def test_a_failing_function_names_itself_and_the_sample(registry, args) -> None:
    def by_solution(completions, solution, **kwargs):
        return [float(int(s)) for s in solution]

    functions = _one(registry, args, by_solution)
    long = "x" * 100
    with pytest.raises(RewardFunctionError) as error:
        score(functions, ["a", "b", long], {"solution": ["1", "2", "three"]})
    assert str(error.value) == (f"reward function 'plugin' failed on sample 2 (completion: '{'x' * 80}...'): "
                                "ValueError: invalid literal for int() with base 10: 'three'")
    assert isinstance(error.value, ArgumentError) and error.value.exit_code == 2


def test_a_completion_is_shown_on_one_line(registry, args) -> None:
    functions = _one(registry, args, lambda completions, **kwargs: [1 / 0 for _ in completions])
    with pytest.raises(RewardFunctionError) as error:
        score(functions, ["first\nsecond"], {})
    assert str(error.value) == ("reward function 'plugin' failed on sample 0 (completion: 'first\\nsecond'): "
                                "ZeroDivisionError: division by zero")


def test_a_function_failing_only_on_the_whole_batch(registry, args) -> None:
    def small_batches(completions, **kwargs):
        if len(completions) > 2:
            raise RuntimeError("batch too large\nsecond line")
        return [0.0] * len(completions)

    with pytest.raises(RewardFunctionError) as error:
        score(_one(registry, args, small_batches), ["a", "b", "c"], {})
    assert str(error.value) == ("reward function 'plugin' failed on the batch of 3 completions (each alone "
                                "scores): RuntimeError: batch too large")


@pytest.mark.parametrize(("returned", "message"), [
    ([1.0], "returned 1 values for 2 completions; it must return one per completion"),
    ([1.0, 0.0, 1.0], "returned 3 values for 2 completions; it must return one per completion"),
    (1.0, "returned a float; it must return a list of 2 floats, one per completion"),
    ("10", "returned a str; it must return a list of 2 floats, one per completion"),
    ([1.0, "yes"], "returned 'yes' for sample 1; each value must be a number (or None for no reward)"),
    ([[1.0], 0.0], "returned [1.0] for sample 0; each value must be a number (or None for no reward)"),
])
def test_what_a_function_returns_is_checked(registry, args, returned, message) -> None:
    with pytest.raises(RewardFunctionError) as error:
        score(_one(registry, args, lambda completions, **kwargs: returned), ["a", "b"], {})
    assert str(error.value) == f"reward function 'plugin' {message}"


def test_numbers_of_any_kind_are_accepted(registry, args) -> None:
    import numpy as np

    functions = _one(registry, args, lambda completions, **kwargs: [True, np.float64(0.5), torch.tensor(2)])
    assert score(functions, ["a", "b", "c"], {}).tolist() == [[1.0], [0.5], [2.0]]


def test_the_module_docstring_example_runs(registry, args, tokenizer) -> None:
    example = rewards.__doc__.split("adds its own:\n")[1].split("\nA function gets")[0]
    exec(textwrap.dedent(example), {})  # noqa: S102
    built = build_reward_functions(["brevity", "exact", "budget"], args, tokenizer)
    assert score(built, ["7"], {"solution": ["7"]})[0].tolist() == pytest.approx([-0.001, 1.0, -1 / 512])
