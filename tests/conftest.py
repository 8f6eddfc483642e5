"""Shared fixtures: free ports, the local engine, a Streamlit server, headless Chromium."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.pg import backend, postgres_server, postgres_url  # noqa: F401 - fixtures
from wafer_playground.local.net import free_port

ROOT = Path(__file__).resolve().parent.parent
# The suite's fake upstreams listen on loopback, which a server refuses as a Custom URL by
# default (wafer_playground/endpoints.py); the endpoint-lock tests turn this off themselves.
os.environ.setdefault("WAFER_ALLOW_PRIVATE_URLS", "1")


def _steady_state_navigation() -> None:
    """Make AppTest behave like a running server with `st.navigation`.

    A folder named `pages/` makes Streamlit start each process in the legacy multipage
    wrapper until the first `st.navigation` call turns it off for good. AppTest resets that
    flag before every run, so from the second run on the sidebar vanishes. Forcing the flag
    off after PagesManager init reproduces the server's steady state.
    """
    from streamlit.runtime import pages_manager

    original = pages_manager.PagesManager.__init__
    if getattr(original, "_wafer_patched", False):
        return

    def init(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        original(self, *args, **kwargs)
        pages_manager.PagesManager.uses_pages_directory = False

    init._wafer_patched = True  # type: ignore[attr-defined]
    pages_manager.PagesManager.__init__ = init  # type: ignore[method-assign]


_steady_state_navigation()
CHROMIUM = os.environ.get("WAFER_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """pytest-playwright hook: Debian's Chromium, since `playwright install` cannot download."""
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": CHROMIUM_ARGS}


@pytest.fixture(autouse=True)
def _stop_the_app_engine() -> Iterator[None]:
    """An AppTest that starts the app's own engine (in this process) must not leave it
    polling into the next test's mocked transport."""
    yield
    from wafer_playground.local.engine import SERVICE

    if SERVICE.status().phase != "idle":
        SERVICE.stop()


@pytest.fixture(scope="session")
def local_engine() -> Iterator[str]:
    """One real `wafer-local` (adapter + llama-server) for the whole session; yields base URL."""
    from wafer_playground.local.engine import start_engine

    handle = start_engine(port=free_port())
    try:
        yield handle.base_url
    finally:
        handle.stop()


class StreamlitServer:
    """`streamlit run app.py` on a free loopback port, stopped by PID."""

    def __init__(self, env: dict[str, str] | None = None, script: str = "app.py") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, **(env or {})}
        db = ROOT / ".pytest_cache" / f"e2e-{self.port}.db"
        full_env.setdefault("WAFER_PLAYGROUND_DB", str(db))
        self.log_path = ROOT / ".pytest_cache" / f"streamlit-{self.port}.log"
        self.log_path.parent.mkdir(exist_ok=True)
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", script,
             "--server.headless=true", "--server.address=127.0.0.1",
             f"--server.port={self.port}", "--browser.gatherUsageStats=false",
             "--server.fileWatcherType=none"],
            cwd=ROOT, env=full_env, stdout=self._log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"streamlit exited early:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/_stcore/health", timeout=2).text == "ok":
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise RuntimeError("streamlit did not become healthy in 60 s")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        self._log.close()


@pytest.fixture
def streamlit_server_factory() -> Iterator[type[StreamlitServer]]:
    started: list[StreamlitServer] = []

    class _Factory(StreamlitServer):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, **kw)  # type: ignore[arg-type]
            started.append(self)

    yield _Factory
    for s in started:
        s.stop()


def wait_for_app(page, timeout: float = 30_000) -> None:  # type: ignore[no-untyped-def]
    """Wait until Streamlit is connected and idle (Streamlit's own e2e readiness rule).

    A click marks the app "rerunRequested" on React's next render, not at once: the short
    settle keeps a wait right after an action from seeing the idle state from before it.
    """
    page.wait_for_timeout(50)
    page.wait_for_selector("[data-testid='stApp'][data-test-connection-state='CONNECTED']",
                           timeout=timeout)
    page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']",
                           timeout=timeout)


def _takes(value: str, option: str, starts: bool) -> bool:
    return value.startswith(option) if starts else value == option


def select_option(page, key: str, option: str, timeout: float = 30_000, *,  # type: ignore[no-untyped-def]
                  starts: bool = False) -> None:
    """Pick `option` in the selectbox with widget key `key`, surviving a rerun mid-pick.

    A rerun that is still in flight when the dropdown opens re-renders the list and detaches
    the option under the cursor, so: open, click, check the box shows it; retry on a miss.
    `starts`: the option's label only begins with `option` (pickers that add prices).
    """
    from playwright.sync_api import Error as PlaywrightError

    box = page.locator(f".st-key-{key}")
    shown = box.get_by_role("combobox")  # the combobox input's value is the current choice
    for _ in range(4):
        wait_for_app(page, timeout)
        if _takes(shown.input_value(), option, starts):
            return
        try:
            box.click()
            page.get_by_role("option", name=option, exact=not starts).first.click(
                timeout=10_000)
        except PlaywrightError:
            page.keyboard.press("Escape")
            continue
        wait_for_app(page, timeout)
    if not _takes(shown.input_value(), option, starts):
        raise AssertionError(f"selectbox {key!r} did not take {option!r}: {shown.input_value()!r}")
