"""`swift web-ui` in a real browser: build a training command in the sft tab, run it, follow it, stop another,
and chat with the checkpoint the first one saved."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from browser import (
    browser,
    by_id,
    click,
    free_port,
    needs_browser,
    screenshot,
    set_text,
    start_page,
    stop_page,
    text_input,
    wait_for_page,
    wait_until,
)
from swift_app.jobs import JobStore
from swift_e2e import run_swift


def start_web_ui(home: Path, log: Path, *extra: str) -> tuple[subprocess.Popen, str]:
    return start_page("web-ui", "--lang", "en", *extra, log=log, cwd=home)


def job_records(home: Path) -> list[dict]:
    folder = home / "output" / "web_ui" / "jobs"
    return sorted((json.loads(p.read_text()) for p in folder.glob("*.json")), key=lambda job: job["started"])


def group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def processes_naming(marker: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


def open_tab(driver, name: str) -> None:
    from selenium.webdriver.common.by import By

    def tab():
        return next((b for b in driver.find_elements(By.CSS_SELECTOR, "button[role='tab']") if b.text.strip() == name),
                    None)

    wait_until(tab, 60, f"the {name} tab", driver).click()


def plot_drawn(driver, elem_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return bool(by_id(driver, elem_id).find_elements(By.CSS_SELECTOR, "canvas, svg .mark-line, svg path"))


def fill_sft(driver, max_steps: str, *extra: tuple[str, str]) -> None:
    open_tab(driver, "sft")
    for name, value in (("model", "SmolLM2-135M-Instruct"), ("dataset", "general-instructions#24"),
                        ("max_steps", max_steps), ("logging_steps", "1"), ("split_dataset_ratio", "0"), *extra):
        set_text(driver, f"sft-{name}", value)


def log_shown(driver) -> str:
    return text_input(driver, "job-log").get_attribute("value") or ""


def command_shown(driver, command: str) -> str:
    return by_id(driver, f"{command}-command").text


@needs_browser
@pytest.mark.browser
def test_train_follow_stop_and_chat_in_the_web_ui(tmp_path: Path) -> None:
    log = tmp_path / "web-ui.log"
    process, url = start_web_ui(tmp_path, log)
    try:
        wait_for_page(url, process, log)
        with browser() as driver:
            driver.get(url)
            wait_until(lambda: by_id(driver, "tab-sft"), 60, "the sft tab", driver)
            fill_sft(driver, "3", ("per_device_train_batch_size", "2"), ("lora_rank", "x"))
            click(driver, "sft-start")  # refused by the CLI's own parser, shown under the form
            wait_until(lambda: "--lora_rank: expected an integer, got 'x'" in by_id(driver, "sft-message").text, 30,
                       "the inline error", driver)
            screenshot(driver, "web-ui-0-refused")
            assert not job_records(tmp_path) if (tmp_path / "output" / "web_ui" / "jobs").is_dir() else True
            set_text(driver, "sft-lora_rank", "8")
            expected = ("swift sft --model SmolLM2-135M-Instruct --dataset 'general-instructions#24' --split_dataset_ratio 0"
                        " --max_steps 3 --logging_steps 1 --per_device_train_batch_size 2")
            wait_until(lambda: all(part in command_shown(driver, "sft") for part in expected.split(" --")), 30,
                       "the command preview", driver)
            assert "--output_dir output/SmolLM2-135M-Instruct" in command_shown(driver, "sft")
            screenshot(driver, "web-ui-1-sft-form")
            click(driver, "sft-start")

            # The Jobs tab opens on the new job; its log grows and its loss curve appears.
            wait_until(lambda: "running" in by_id(driver, "job-status").text or "finished" in
                       by_id(driver, "job-status").text, 60, "the job's status", driver)
            wait_until(lambda: "swift web-ui: sft job" in log_shown(driver), 60, "the job's log", driver)
            wait_until(lambda: "finished" in by_id(driver, "job-status").text, 600, "the 3-step run to finish",
                       driver)
            wait_until(lambda: plot_drawn(driver, "job-plot-loss"), 30, "the loss plot", driver)
            screenshot(driver, "web-ui-2-job-finished")
            first = job_records(tmp_path)[0]
            log_text = (tmp_path / "output" / "web_ui" / "jobs" / f"{first['id']}.log").read_text()
            assert "'global_step': 3" in log_text or '"global_step": 3' in log_text or "3/3" in log_text, log_text[-2000:]

            # A reload, and a restart of the web UI itself, list the job with its log.
            for restart in (False, True):
                if restart:
                    stop_page(process)
                    process, url = start_web_ui(tmp_path, log)
                    wait_for_page(url, process, log)
                    driver.get(url)
                else:
                    driver.refresh()
                open_tab(driver, "Jobs")
                wait_until(lambda: first["id"] in text_input(driver, "job-select").get_attribute("value"), 60,
                           "the job listed after a reload", driver)
                wait_until(lambda: "swift web-ui: sft job" in log_shown(driver), 30, "the log after a reload",
                           driver)
                wait_until(lambda: "finished" in by_id(driver, "job-status").text, 30, "its status", driver)
            screenshot(driver, "web-ui-3-after-restart")

            # A long run, stopped with the button: its whole process group goes.
            fill_sft(driver, "100000", ("output_dir", str(tmp_path / "long")))
            click(driver, "sft-start")
            wait_until(lambda: len(job_records(tmp_path)) == 2 and "running" in by_id(driver, "job-status").text,
                       60, "the long run running", driver)
            long_job = job_records(tmp_path)[1]
            wait_until(lambda: "'loss'" in (tmp_path / "output" / "web_ui" / "jobs" /
                                            f"{long_job['id']}.log").read_text(), 300,
                       "the long run's first steps", driver)
            assert processes_naming(long_job["id"])
            click(driver, "job-stop")
            wait_until(lambda: "stopped" in by_id(driver, "job-status").text, 60, "the job stopped", driver)
            wait_until(lambda: not group_alive(long_job["pid"]) and not processes_naming(long_job["id"]), 30,
                       "its processes gone", driver)
            screenshot(driver, "web-ui-4-stopped")

            # The finished run's checkpoint, sent to the infer tab, answers.
            open_tab(driver, "Past runs")
            wait_until(lambda: "checkpoint-3" in text_input(driver, "checkpoint-select").get_attribute("value"), 60,
                       "the finished run's checkpoint", driver)
            wait_until(lambda: plot_drawn(driver, "run-plot-loss"), 30, "the run's loss plot", driver)
            screenshot(driver, "web-ui-5-runs")
            click(driver, "run-to-infer")
            wait_until(lambda: "checkpoint-3" in command_shown(driver, "infer"), 30, "the checkpoint in infer",
                       driver)
            click(driver, "infer-chat-load")
            wait_until(lambda: "Ready" in by_id(driver, "infer-chat-status").text, 300, "the model loaded", driver)
            # gradio retires idle worker threads after 10 s; the deployment must not go with the one that loaded it.
            time.sleep(12)
            set_text(driver, "temperature", "0")
            set_text(driver, "max_new_tokens", "20")
            set_text(driver, "message", "What is the capital of France?")
            click(driver, "send")
            # The checkpoint answers on the page exactly as `swift infer` makes it answer at a terminal.
            checkpoint = next((tmp_path / "output" / "SmolLM2-135M-Instruct").glob("v0-*/checkpoint-3"))
            at_terminal = run_swift("infer", "--adapters", str(checkpoint), "--temperature", "0", "--max_new_tokens",
                                    "20", input="What is the capital of France?\n", cwd=tmp_path)
            expected = at_terminal.stdout.split(">>> ", 1)[1].splitlines()[0].strip()
            assert expected, at_terminal.stdout
            wait_until(lambda: _bot_text(driver).strip() == expected, 180, f"the answer {expected!r}", driver)
            screenshot(driver, "web-ui-6-infer-chat")
    finally:
        stop_page(process)
    assert "Traceback" not in log.read_text(), log.read_text()[-4000:]
    # The chat's deployment went with the web UI; no job is left running.
    assert not [pid for job in job_records(tmp_path) for pid in processes_naming(job["id"])]


def _bot_text(driver) -> str:
    from selenium.webdriver.common.by import By

    bubbles = by_id(driver, "chatbot").find_elements(By.CSS_SELECTOR, "[data-testid='bot']")
    return bubbles[-1].text if bubbles else ""


@pytest.mark.slow
def test_stopping_a_server_job_ends_its_process_group(tmp_path: Path, tiny_chat_model: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    store = JobStore(tmp_path / "output")
    job = store.start("deploy", ["--model", str(tiny_chat_model), "--host", "127.0.0.1", "--port", str(port)])
    wait_until(lambda: "swift deploy: serving" in store.read_log(job.id), 300, "the server up")
    job = JobStore(tmp_path / "output").load(job.id)
    assert store.status(job) == "running" and group_alive(job.pid)

    JobStore(tmp_path / "output").stop(job.id)  # from a store that did not start it
    assert store.status(job) == "stopped"
    wait_until(lambda: not group_alive(job.pid), 30, "its process group gone")
    assert f"job {job.id} stopped" in store.tail(job.id)


@pytest.mark.parametrize("argv,message", [
    (["--server_name", "0.0.0.0"], "--server_name 0.0.0.0 would let others run commands"),
    (["--share", "true"], "--share true would let others run commands"),
    (["--auth", "nocolon"], "--auth nocolon: give USER:PASSWORD"),
    (["--auth", "@/nonexistent/login"], "--auth @/nonexistent/login: cannot read"),
])
def test_web_ui_refuses_an_open_console(tmp_path: Path, argv: list[str], message: str) -> None:
    result = run_swift("web-ui", *argv, "--server_port", str(free_port()), cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())


def test_an_exposed_console_asks_for_the_login_from_its_auth_file(tmp_path: Path) -> None:
    import http.cookiejar
    import urllib.error
    import urllib.parse
    import urllib.request

    login = tmp_path / "login"
    login.write_text("alice:s3cret\n")
    log = tmp_path / "web-ui.log"
    process, url = start_web_ui(tmp_path, log, "--server_name", "0.0.0.0", "--auth", f"@{login}")
    try:
        wait_for_page(url, process, log)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(url + "config", timeout=10)
        assert refused.value.code == 401
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with pytest.raises(urllib.error.HTTPError):
            opener.open(url + "login", urllib.parse.urlencode({"username": "alice", "password": "no"}).encode())
        opener.open(url + "login", urllib.parse.urlencode({"username": "alice", "password": "s3cret"}).encode())
        assert opener.open(url + "config", timeout=10).status == 200
    finally:
        stop_page(process)
    assert "s3cret" not in log.read_text()
