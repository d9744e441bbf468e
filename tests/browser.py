"""Driving a real browser in the tests: Debian's headless chromium through chromedriver (selenium).

`.ci/run` installs the two Debian packages; where they are missing the browser tests skip, naming them.
Each test saves screenshots of what it saw under $SWIFT_SCREENSHOTS (default /tmp/swift-screenshots).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from swift_e2e import SWIFT, free_port

SCREENSHOTS = Path(os.environ.get("SWIFT_SCREENSHOTS", "/tmp/swift-screenshots"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")

needs_browser = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver; .ci/run does)")


def start_page(command: str, *args: str, log: Path, cwd: Path | None = None) -> tuple[subprocess.Popen, str]:
    """`swift app` or `swift web-ui` on loopback at a free port, its output appended to `log`; its URL."""
    port = free_port()
    address = [] if "--server_name" in args else ["--server_name", "127.0.0.1"]
    with open(log, "ab") as out:
        process = subprocess.Popen([SWIFT, command, *args, *address, "--server_port", str(port)],
                                   cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                                   env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    return process, f"http://127.0.0.1:{port}/"


def stop_page(process: subprocess.Popen) -> int:
    """Ctrl-C, as a user stops it; whatever of its session is left after a minute is killed. Its exit code."""
    process.send_signal(signal.SIGINT)
    try:
        return process.wait(timeout=60)
    finally:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()


def wait_for_page(url: str, process: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    """Until `url` answers; fails with the server's log if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited ({process.returncode}):\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{url} did not answer in {timeout:.0f}s:\n{log.read_text()[-4000:]}")


@contextmanager
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                 "--disable-gpu"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    try:
        yield driver
    finally:
        driver.quit()


def screenshot(driver: Any, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def wait_until(condition: Callable[[], Any], timeout: float, what: str, driver: Any = None) -> Any:
    """Poll `condition` until it returns something truthy; fail naming `what` (and save a screenshot)."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the page is redrawing: an element went stale
            last_error = exc
        time.sleep(0.3)
    if driver is not None:
        screenshot(driver, "failed-" + "".join(c if c.isalnum() else "-" for c in what)[:60])
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}" + (f" ({last_error})" if last_error else ""))


def by_id(driver: Any, elem_id: str) -> Any:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, elem_id)


def text_input(driver: Any, elem_id: str) -> Any:
    """The <textarea> or <input> inside the gradio component with this elem_id."""
    from selenium.webdriver.common.by import By

    return by_id(driver, elem_id).find_element(By.CSS_SELECTOR, "textarea, input")


def set_text(driver: Any, elem_id: str, value: str) -> None:
    """Replace a gradio textbox's text as a user would (select all, type), then leave it so gradio sees it."""
    from selenium.webdriver.common.keys import Keys

    box = text_input(driver, elem_id)
    box.click()
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(Keys.DELETE)
    box.send_keys(value)
    box.send_keys(Keys.TAB)


def click(driver: Any, elem_id: str) -> None:
    element = by_id(driver, elem_id)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", element)
    element.click()
