"""`swift sample` as a user runs it: sample, score with reward functions, keep the best, in two steps."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from swift_e2e import read_jsonl, run_swift, write_jsonl

ROWS = [
    {"query": "Capital of France?", "response": "Paris"},
    {"query": "2 + 3?", "response": "5"},
    {"query": "Capital of Japan?", "response": "Tokyo"},
    {"query": "Capital of Italy?", "response": "Rome"},
]
# What an earlier `swift sample` run sampled for each row (4 answers each).
SAMPLED = [
    ["It is Paris.", "Lyon", "paris!", "Paris, of course"],  # 3 of 4 contain the answer
    ["5", "six", "It's 5", "4"],  # 2 of 4
    ["Kyoto", "Osaka", "Tokyo", "Nagoya"],  # 1 of 4
    ["Milan", "Naples", "Turin", "Venice"],  # none
]


def md5_of(row: dict) -> str:
    """The reference: a query's id is the MD5 of its original dataset row."""
    return hashlib.md5(json.dumps(row, sort_keys=True).encode()).hexdigest()


def write_cache(tmp_path: Path) -> tuple[Path, Path]:
    data = write_jsonl(tmp_path / "questions.jsonl", ROWS)
    cache = write_jsonl(tmp_path / "raw.jsonl", [
        {"id": md5_of(row), "messages": [{"role": "user", "content": row["query"]}, {"role": "assistant", "content": answer}]}
        for row, answers in zip(ROWS, SAMPLED) for answer in answers])
    return data, cache


def kept(records: list[dict]) -> list[tuple[str, str, str | None]]:
    return [(r["messages"][0]["content"], r["messages"][-1]["content"], r.get("rejected_response")) for r in records]


def test_sample_with_the_model_then_score_the_cache_with_plugin_rewards(tmp_path: Path, tiny_chat_model: Path) -> None:
    data = write_jsonl(tmp_path / "questions.jsonl", ROWS[:3])
    sampled = run_swift("sample", "--model", str(tiny_chat_model), "--dataset", str(data), "--num_return_sequences", "4",
                        "--num_sampling_per_gpu_batch_size", "2", "--max_new_tokens", "6", "--output_file", "raw.jsonl",
                        cwd=tmp_path)
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert [p.name for p in (tmp_path / "sample_output").iterdir()] == ["raw.jsonl"]  # no temporary file left
    raw = read_jsonl(tmp_path / "sample_output" / "raw.jsonl")
    assert [r["id"] for r in raw] == [md5_of(row) for row in ROWS[:3] for _ in range(4)]
    by_id: dict[str, list[str]] = {}
    for record, row in zip(raw, [row for row in ROWS[:3] for _ in range(4)]):
        assert record["messages"][:-1] == [{"role": "user", "content": row["query"]}]  # the reference answer is replaced
        assert record["messages"][-1]["role"] == "assistant" and "orm_score" not in record
        by_id.setdefault(record["id"], []).append(record["messages"][-1]["content"])
    assert all(len(set(answers)) > 1 for answers in by_id.values())  # temperature 1.0 by default: different samples

    # Step 2 scores those samples without loading a model: an ORM says which are right, a PRM ranks them.
    plugin = tmp_path / "rewards_plugin.py"
    plugin.write_text("from swift_infer.rewards import orms, prms\n"
                      "orms['even'] = lambda messages, responses, reference: [len(r) % 2 == 0 for r in responses]\n"
                      "prms['longer'] = lambda messages, responses, reference: [float(len(r)) for r in responses]\n")
    scored = run_swift("sample", "--sampler_engine", "no", "--cache_files", "sample_output/raw.jsonl", "--dataset", str(data),
                       "--custom_register_path", str(plugin), "--orm_model", "even", "--prm_model", "longer",
                       "--n_best_to_keep", "2", "--output_file", "scored.jsonl", cwd=tmp_path)
    assert scored.returncode == 0, scored.stderr[-2000:]
    records = read_jsonl(tmp_path / "sample_output" / "scored.jsonl")
    expected = []
    for row in ROWS[:3]:
        answers = by_id[md5_of(row)]
        for answer in sorted([a for a in answers if len(a) % 2 == 0], key=len, reverse=True)[:2]:
            expected.append((row["query"], answer))
    assert [(r["messages"][0]["content"], r["messages"][-1]["content"]) for r in records] == expected
    for record in records:
        assert record["orm_score"] == 1.0 and record["prm_score"] == len(record["messages"][-1]["content"])
        wrong = [a for a in by_id[record["id"]] if len(a) % 2]
        if wrong:  # the worst answer is kept beside each good one, for DPO
            assert record["rejected_response"] in wrong and len(record["rejected_response"]) == min(map(len, wrong))

    # The result trains as it is: the sampled answer is what `swift sft` learns.
    if records:
        shown = run_swift("sft", "--model", str(tiny_chat_model), "--dataset", "sample_output/scored.jsonl",
                          "--show_sample", "1", "--split_dataset_ratio", "0", cwd=tmp_path)
        assert shown.returncode == 0, shown.stderr[-2000:]
        assert f"[[{records[0]['messages'][-1]['content']}" in shown.stdout


def test_orm_filters_ranks_and_drops_easy_queries_prm_threshold_and_data_range(tmp_path: Path) -> None:
    data, cache = write_cache(tmp_path)
    output = tmp_path / "sample_output"
    output.mkdir()
    (output / "best.jsonl").write_text("an older result\n")
    common = ("sample", "--sampler_engine", "no", "--cache_files", str(cache), "--dataset", str(data))
    # Built-in ORM `contains`: France has 3 of 4 right (> 0.5, too easy), Italy none (nothing kept).
    best = run_swift(*common, "--orm_model", "contains", "--easy_query_threshold", "0.5", "--n_best_to_keep", "1",
                     "--output_file", "best.jsonl", "--override_exist_file", "true", cwd=tmp_path)
    assert best.returncode == 0, best.stderr[-2000:]
    records = read_jsonl(output / "best.jsonl")
    assert kept(records) == [("2 + 3?", "5", "six"), ("Capital of Japan?", "Tokyo", "Kyoto")]
    assert [r["id"] for r in records] == [md5_of(ROWS[1]), md5_of(ROWS[2])]
    assert all(r["orm_score"] == 1.0 and "prm_score" not in r for r in records)
    assert "2 records from 16 responses to 4 queries" in best.stdout
    assert "dropped as too easy (--easy_query_threshold): 1; queries with no response kept: 1" in best.stdout

    # A PRM plugin with step scores (the weakest step counts), --prm_threshold, and the 2nd of 2 parts.
    plugin = tmp_path / "prm_plugin.py"
    plugin.write_text("from swift_infer.rewards import prms\n"
                      "S = {'Kyoto': 0.2, 'Osaka': 0.6, 'Tokyo': [0.9, 0.8], 'Nagoya': 0.5,\n"
                      "     'Milan': 0.1, 'Naples': 0.3, 'Turin': 0.4, 'Venice': [0.7, 0.45]}\n"
                      "prms['table'] = lambda messages, responses, reference: [S[r] for r in responses]\n")
    part = run_swift(*common, "--custom_register_path", str(plugin), "--prm_model", "table", "--prm_threshold", "0.5",
                     "--data_range", "1", "2", cwd=tmp_path)
    assert part.returncode == 0, part.stderr[-2000:]
    [default_name] = [p for p in output.iterdir() if p.name != "best.jsonl"]
    assert re.fullmatch(r"\d{8}-\d{6}-part1of2\.jsonl", default_name.name)
    records = read_jsonl(default_name)
    assert kept(records) == [("Capital of Japan?", answer, "Kyoto") for answer in ("Tokyo", "Osaka", "Nagoya")]
    assert [r["prm_score"] for r in records] == [0.8, 0.6, 0.5] and "orm_score" not in records[0]


def test_refusals_name_the_problem_and_leave_files_alone(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from swift_args.cli import main  # in-process: each refusal comes before any model is loaded

    data, cache = write_cache(tmp_path)
    monkeypatch.chdir(tmp_path)
    taken = tmp_path / "sample_output" / "taken.jsonl"
    taken.parent.mkdir()
    taken.write_text("keep me\n")
    common = ("sample", "--sampler_engine", "no", "--cache_files", str(cache), "--dataset", str(data))
    cases = [
        ((*common, "--output_file", "taken.jsonl", "--orm_model", "contains"),
         "taken.jsonl exists; pass --override_exist_file true"),
        ((*common, "--sampler_type", "mcts"), "--sampler_type mcts is not available yet; supported: sample"),
        ((*common, "--prm_model", "Qwen/Qwen2.5-Math-PRM-7B"), "loading a process reward model by id is not supported yet"),
        ((*common, "--orm_model", "math"), "no orm registered under that name (registered: contains, exact_match, last_number)"),
        ((*common, "--easy_query_threshold", "0.5"), "--easy_query_threshold needs --orm_model"),
        (("sample", "--model", "SmolLM2-135M-Instruct", "--dataset", str(data), "--sampler_engine", "vllm"),
         "--sampler_engine vllm is not available yet; supported: pt, and no"),
        (("sample", "--model", "SmolLM2-135M-Instruct"), "--dataset is required"),
        ((*common, "--num_return_sequences", "0"), "--num_return_sequences must be at least 1, got 0"),
    ]
    for argv, message in cases:
        assert main(list(argv)) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert taken.read_text() == "keep me\n" and [p.name for p in taken.parent.iterdir()] == ["taken.jsonl"]


@pytest.mark.slow
def test_smollm2_rejection_sampling_keeps_answers_the_orm_accepts(tmp_path: Path, smollm2_dir: Path) -> None:
    data = write_jsonl(tmp_path / "q.jsonl", [{"query": "What is the capital of France?", "response": "Paris"}])
    result = run_swift("sample", "--model", "SmolLM2-135M-Instruct", "--dataset", str(data), "--num_return_sequences", "6",
                       "--max_new_tokens", "16", "--orm_model", "contains", "--n_best_to_keep", "3",
                       "--output_file", "paris.jsonl", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    records = read_jsonl(tmp_path / "sample_output" / "paris.jsonl")
    assert 1 <= len(records) <= 3
    for record in records:
        assert "paris" in record["messages"][-1]["content"].lower() and record["orm_score"] == 1.0
        assert "paris" not in record.get("rejected_response", "").lower()
