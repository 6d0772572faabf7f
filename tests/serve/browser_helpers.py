"""Helpers for the browser tests: Debian's headless Chromium driven by Selenium, and a real
``iranker serve`` process on a free loopback port.

The browser is never downloaded: the tests use ``/usr/bin/chromium`` and ``/usr/bin/chromedriver``
from Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run`` installs them) and
switch Selenium Manager offline. Without them a test skips with the install command; under
``CI=true`` it fails instead, so CI cannot pass by skipping the browser.
"""

from __future__ import annotations

import base64
import contextlib
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx
import pytest

INSTALL = "apt-get install -y chromium chromium-driver"
#: flags that work on these machines (no sandbox as root, nothing that reaches the network)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--window-size=1360,1000",
)


def browser_paths() -> tuple[str | None, str | None]:
    chromium = (
        shutil.which("chromium") or (Path("/usr/bin/chromium").exists() and "/usr/bin/chromium") or None
    )
    driver = (
        shutil.which("chromedriver")
        or (Path("/usr/bin/chromedriver").exists() and "/usr/bin/chromedriver")
        or None
    )
    return chromium or None, driver or None


def missing_browser() -> str | None:
    """Why the browser tests cannot run here, or None."""
    chromium, driver = browser_paths()
    missing = [name for name, path in (("chromium", chromium), ("chromedriver", driver)) if not path]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package (pip install -e '.[test]')")
    return f"missing {', '.join(missing)}" if missing else None


def require_browser() -> None:
    """Skip (or, under CI=true, fail) with the install command when the browser is missing."""
    reason = missing_browser()
    if reason:
        msg = f"browser test needs Debian's Chromium: {reason}; install it with: {INSTALL}"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)


def launch_chromium(profile_dir: Path):
    """A fresh headless Chromium (its own --user-data-dir) under chromedriver."""
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must never fetch a browser or driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (*CHROMIUM_FLAGS, f"--user-data-dir={profile_dir}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(driver), options=options)


def full_page_png(driver, path: Path) -> Path:
    """A screenshot of the whole page (not only the window), written to ``path``."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
        },
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(base64.b64decode(shot["data"]))
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve_process(*args: str, env: dict[str, str] | None = None, ready_s: float = 300) -> Iterator[str]:
    """Run ``python -m iranker.serve ARGS`` on a free port until the block ends; yields its URL.

    The server's output goes to a log file that a start-up failure quotes. The process started
    here is the only one stopped here (by its own handle).
    """
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = Path(tempfile.mkstemp(prefix="iranker-serve-", suffix=".log")[1])
    cmd = [
        sys.executable,
        "-m",
        "iranker.serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
        *args,
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
    try:
        deadline = time.monotonic() + ready_s
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"iranker serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"iranker serve not ready after {ready_s:.0f} s:\n{log.read_text()[-3000:]}"
                )
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.unlink(missing_ok=True)


class PlaygroundPage:
    """What a person does on the page, in Selenium calls (ids are the page's own)."""

    def __init__(self, driver, base_url: str) -> None:
        self.d = driver
        self.url = base_url

    def open(self) -> "PlaygroundPage":
        self.d.get(self.url + "/")
        self.wait(lambda: self.d.find_element("tag name", "body").get_attribute("data-ready") == "true", 20)
        return self

    def wait(self, condition, timeout: float = 30):
        from selenium.webdriver.support.ui import WebDriverWait

        return WebDriverWait(self.d, timeout, poll_frequency=0.1).until(lambda _: condition())

    def el(self, element_id: str):
        return self.d.find_element("id", element_id)

    def tab(self, name: str) -> None:
        self.el(f"tab-{name}").click()

    def type_into(self, element_id: str, text: str) -> None:
        box = self.el(element_id)
        box.clear()
        if text:
            box.send_keys(text)

    def fill_passage(self, query: str, documents: list[str]) -> None:
        self.tab("passage")
        self.type_into("passage-query", query)
        self.type_into("passage-docs", "\n".join(documents))

    def load_example(self, scenario: str, index: int) -> None:
        from selenium.webdriver.support.ui import Select

        self.tab(scenario)
        Select(self.el(f"{scenario}-example")).select_by_value(str(index))

    @property
    def state(self) -> str:
        return self.d.find_element("tag name", "body").get_attribute("data-state")

    def submit(self, scenario: str, timeout: float = 60) -> str:
        """Press Rank and wait until the page shows a ranking or an error; returns which."""
        self.el(f"{scenario}-submit").click()
        self.wait(lambda: self.state in ("done", "error"), timeout)
        return self.state

    def ranking_indices(self) -> list[int]:
        return [
            int(li.get_attribute("data-index")) for li in self.d.find_elements("css selector", "#ranking li")
        ]

    def step_chips(self):
        return self.d.find_elements("css selector", "#timeline .step-chip")

    def current_step(self) -> int:
        chips = self.step_chips()
        return next(i for i, c in enumerate(chips) if "current" in c.get_attribute("class"))

    def pool_rows(self):
        return self.d.find_elements("css selector", "#step .cand")

    def error_text(self) -> str:
        return self.el("error").text if self.el("error").is_displayed() else ""
