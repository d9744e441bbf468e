"""`swift app`: a chat page over a local deployment or another server, seen in a real browser."""

from __future__ import annotations

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
    wait_for_page,
    wait_until,
)
from swift_e2e import run_swift


def last_answer(driver) -> str:
    from selenium.webdriver.common.by import By

    bubbles = by_id(driver, "chatbot").find_elements(By.CSS_SELECTOR, ".message.bot, [data-testid='bot']")
    return bubbles[-1].text if bubbles else ""


def user_messages(driver) -> list[str]:
    from selenium.webdriver.common.by import By

    return [e.text for e in by_id(driver, "chatbot").find_elements(By.CSS_SELECTOR, "[data-testid='user']")]


@needs_browser
@pytest.mark.browser
def test_chat_with_smollm2_in_the_browser(tmp_path: Path) -> None:
    """Load the page, ask SmolLM2 for the capital of France and watch "Paris" stream in; then a new system
    prompt, clear, and a second answer that follows it."""
    log = tmp_path / "app.log"
    process, url = start_page("app", "--model", "SmolLM2-135M-Instruct", "--temperature", "0", "--max_new_tokens", "40",
                             log=log)
    try:
        wait_for_page(url, process, log)
        with browser() as driver:
            driver.get(url)
            wait_until(lambda: "SmolLM2-135M-Instruct" in by_id(driver, "title").text, 60, "the title", driver)
            screenshot(driver, "app-1-loaded")
            set_text(driver, "message", "What is the capital of France?")
            click(driver, "send")
            wait_until(lambda: user_messages(driver), 30, "the question in the chat", driver)
            seen = wait_until(lambda: last_answer(driver), 120, "the first streamed words", driver)
            answer = wait_until(lambda: "Paris" in last_answer(driver) and last_answer(driver), 120,
                                "Paris in the answer", driver)
            screenshot(driver, "app-2-answered")
            assert len(seen) <= len(answer)  # it grew: streamed, not shown at once at the end

            # Stop ends a long answer where it is: it grows no more.
            set_text(driver, "max_new_tokens", "400")
            set_text(driver, "message", "Write a long story about a dragon.")
            click(driver, "send")
            wait_until(lambda: len(last_answer(driver)) > 40, 120, "the story streaming", driver)
            click(driver, "stop")
            time.sleep(1)
            stopped_at = last_answer(driver)
            time.sleep(3)
            assert last_answer(driver) == stopped_at and len(stopped_at) < 1500

            set_text(driver, "system", "You are a pirate. Always answer in one short sentence and say Arr.")
            click(driver, "clear")
            wait_until(lambda: not user_messages(driver), 30, "the chat cleared", driver)
            set_text(driver, "message", "Who are you?")
            click(driver, "send")
            wait_until(lambda: len(last_answer(driver)) > 3, 120, "an answer under the new system prompt", driver)
            time.sleep(3)
            screenshot(driver, "app-3-system-prompt")
            assert len(user_messages(driver)) == 1  # the conversation started over
    finally:
        assert stop_page(process) in (0, -2, 130), log.read_text()[-3000:]
    assert "Traceback" not in log.read_text()


def test_app_refuses_what_it_cannot_honour_before_loading(tmp_path: Path) -> None:
    cases = [
        (["--model", "m", "--num_beams", "4"], "--num_beams 4: the chat page streams one sampled answer"),
        (["--base_url", "http://127.0.0.1:9/v1", "--max_batch_size", "4"],
         "--max_batch_size 4: configures the local deployment, and --base_url chats with a server"),
        (["--model", "m", "--dataset", "d.jsonl"], "--dataset d.jsonl: the chat page reads no dataset"),
        (["--model", "m", "--auth", "nocolon"], "--auth nocolon: give USER:PASSWORD"),
        (["--base_url", "http://127.0.0.1:9/v1"], "--base_url http://127.0.0.1:9/v1: cannot reach it"),
        (["--model", str(tmp_path / "missing")], "missing"),
    ]
    for argv, message in cases:
        result = run_swift("app", *argv, "--server_port", str(free_port()), cwd=tmp_path, timeout=120)
        assert result.returncode == 2, (argv, result.stderr[-2000:])
        assert message in result.stderr and "Traceback" not in result.stderr, (argv, result.stderr[-2000:])
    assert not list(tmp_path.iterdir())  # nothing written


def test_app_refuses_a_port_in_use_before_loading(tmp_path: Path) -> None:
    import socket

    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_swift("app", "--model", "SmolLM2-135M-Instruct", "--server_name", "127.0.0.1", "--server_port",
                           str(port), cwd=tmp_path, timeout=120)
    assert result.returncode == 2 and f"--server_port {port}: cannot listen there" in result.stderr, result.stderr


@pytest.mark.slow
def test_app_chats_with_another_server_through_base_url(tmp_path: Path, tiny_chat_model: Path) -> None:
    """--base_url: the server is asked for its models with --api_key; the page names the model it serves, and a
    wrong key is one line before any page starts."""
    import json
    import urllib.request

    from swift_infer.local_deployment import local_deployment

    server, _ = local_deployment(["--model", str(tiny_chat_model), "--served_model_name", "tiny",
                                  "--shutdown_timeout", "5"], None, None, "k3y", tmp_path / "deploy.log")
    server.start(300)
    try:
        wrong = run_swift("app", "--base_url", server.url, "--api_key", "nope", "--server_port", str(free_port()),
                          cwd=tmp_path, timeout=120)
        assert wrong.returncode == 2 and "refused the key (401); pass the server's key with --api_key" in wrong.stderr
        log = tmp_path / "app.log"
        process, url = start_page("app", "--base_url", server.url, "--api_key", "k3y", "--system", "Be brief.", log=log)
        try:
            wait_for_page(url, process, log)
            config = json.dumps(json.loads(urllib.request.urlopen(url + "config").read()))
            assert "# tiny" in config and server.url in config and "Be brief." in config
        finally:
            stop_page(process)
    finally:
        server.stop()
    assert "Traceback" not in log.read_text()
