"""First run on a machine, seen in Chromium: the engine panel while provisioning, a session
closed mid-provisioning, the catalog from the snapshot meanwhile, and the failure panel.

The app runs for real (`streamlit run app.py`, its own `wafer-local`), with an empty engine
cache of its own (WAFER_PLAYGROUND_CACHE) seeded with misbehaving llama-server executables
(tests/fixtures/fake_llama.py), so no 6-minute compile happens here.
"""

from __future__ import annotations

import time
from pathlib import Path

import psutil
import pytest
from playwright.sync_api import expect

from tests.conftest import wait_for_app
from tests.fixtures.fake_llama import write_fake
from wafer_playground.local import provision

pytestmark = pytest.mark.e2e
SHOTS = Path(__file__).resolve().parents[2] / ".pytest_cache" / "shots"


def _seed(cache: Path, first_mode: str, *, delay: float = 0.0) -> list[str]:
    """A fake binary per profile this machine would try: the first misbehaves as asked,
    the fallbacks crash at load. Returns the profile names in order."""
    chain = provision.profile_chain()
    for i, profile in enumerate(chain):
        target = cache / provision.build_key(profile) / "llama-server"
        write_fake(target, first_mode if i == 0 else "segv_load", delay=delay if i == 0 else 0)
    return [p.name for p in chain]


def _server_env(cache: Path) -> dict[str, str]:
    return {"WAFER_PLAYGROUND_CACHE": str(cache), "WAFER_API_KEY": "", "WAFER_ENDPOINT": "",
            "WAFER_LOCAL_URL": ""}


def _elapsed_s(page) -> int:  # type: ignore[no-untyped-def]
    """The panel's "Elapsed 1 min 05 s" / "Elapsed 8 s", in seconds."""
    text = page.get_by_text("Elapsed").first.inner_text().split("Elapsed", 1)[1]
    numbers = [int(part) for part in text.replace("min", " ").replace("s", " ").split()
               if part.isdigit()][:2]
    return numbers[0] * 60 + numbers[1] if len(numbers) == 2 else numbers[0]


def _wafer_local_procs(app_pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(app_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children
            if any("wafer_playground.local.cli" in part for part in p.cmdline())]


def test_a_closed_tab_leaves_provisioning_running_and_the_catalog_works(
        tmp_path: Path, streamlit_server_factory, browser) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    _seed(tmp_path, "slow_segv", delay=40)  # its smoke test takes 40 s to even load
    server = streamlit_server_factory(env=_server_env(tmp_path))

    first = browser.new_context(viewport={"width": 1440, "height": 900})
    page = first.new_page()
    page.goto(f"{server.url}/chat")
    panel = page.get_by_text("Preparing the local engine")
    panel.wait_for(timeout=30_000)
    page.get_by_text("Smoke-testing the").first.wait_for(timeout=30_000)
    page.screenshot(path=str(SHOTS / "first_run_progress.png"))
    assert page.get_by_role("button", name="Use Wafer with this key").is_visible()
    assert page.get_by_role("button", name="Use this URL").is_visible()
    engines = _wafer_local_procs(server.proc.pid)
    assert len(engines) == 1
    seen_before, closed_at = _elapsed_s(page), time.monotonic()
    first.close()  # the tab goes away mid-provisioning
    time.sleep(3)
    assert engines[0].is_running(), "closing the tab stopped provisioning"

    second = browser.new_context(viewport={"width": 1440, "height": 900})
    page = second.new_page()
    page.goto(f"{server.url}/chat")
    page.get_by_text("Smoke-testing the").first.wait_for(timeout=30_000)
    # the same provisioning, not a new one: its clock started before this tab existed
    assert _elapsed_s(page) >= seen_before + int(time.monotonic() - closed_at) - 4
    assert _wafer_local_procs(server.proc.pid) == engines

    # the catalog does not wait for the engine: the bundled snapshot, labelled as such
    page.goto(f"{server.url}/catalog")
    wait_for_app(page)
    body = page.inner_text("body")
    assert "snapshot" in body.lower()
    assert "Local engine:" in body  # the sidebar says what the engine is doing
    assert "Traceback" not in body and "EngineError" not in body
    page.screenshot(path=str(SHOTS / "first_run_catalog.png"))
    second.close()


def test_a_build_that_segfaults_falls_back_then_shows_the_failure_panel(
        tmp_path: Path, streamlit_server_factory, browser,
        monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    SHOTS.mkdir(parents=True, exist_ok=True)
    chain = _seed(tmp_path, "segv")  # the AMX machine: crashes on its first decode
    server = streamlit_server_factory(env=_server_env(tmp_path))
    ctx = browser.new_context(viewport={"width": 1440, "height": 1100})
    page = ctx.new_page()
    page.goto(f"{server.url}/chat")
    page.get_by_text("The local engine could not start").wait_for(timeout=90_000)
    wait_for_app(page)
    body = page.inner_text("body")
    assert "no llama-server build works on this machine" in body
    assert f"The {chain[0]} build failed its smoke test: llama-server crashed on its first " \
           "decode with SIGSEGV (rc -11)." in body
    if len(chain) > 1:  # the fallback was tried, once
        assert f"Building the safer {chain[1]} profile instead (once)." in body
    assert "Traceback" not in body and "This app has encountered an error" not in body
    page.get_by_text("Doctor report", exact=True).click()
    page.get_by_text("wafer-local doctor").wait_for(timeout=10_000)
    page.screenshot(path=str(SHOTS / "first_run_failure.png"), full_page=True)
    # nothing was cached as good (read from the app's cache, not this process's)
    monkeypatch.setenv("WAFER_PLAYGROUND_CACHE", str(tmp_path))
    for name in chain:
        verdict = provision.read_verdict(provision.PROFILES[name])
        assert verdict is not None and not verdict.ok
    # Retry: the verdicts are forgotten and provisioning runs again (fakes put back first,
    # since a failed binary is deleted and would otherwise be compiled again)
    _seed(tmp_path, "segv")
    page.get_by_role("button", name="Retry").click()
    # the old panel's heading can still be on screen while the retry's run redraws the page
    # (a clean-clone CI read the body in between), so wait for the reason itself
    expect(page.locator("body")).to_contain_text("crashed on its first decode", timeout=90_000)
    expect(page.get_by_text("The local engine could not start")).to_be_visible()
    ctx.close()
