"""First run on a machine, timed as a new user meets it: from `streamlit run app.py` with an
empty engine cache to a usable catalog, and to the first local token in Chat.

    uv run python benchmarks/first_run.py [--keep-cache DIR]

The app gets a fresh cache folder (WAFER_PLAYGROUND_CACHE), so llama-server is compiled and
smoke-tested from the pinned sdist and Gemma is assembled, exactly as on a new machine; the
uv environment is assumed installed (`uv sync`, about 30 s on a new machine, is not counted).
Headless Chromium plays the user: it opens the app at once, waits for the catalog table,
then opens Chat, waits for the engine, sends one message and waits for the first token.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.conftest import CHROMIUM, CHROMIUM_ARGS, free_port  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--keep-cache", default=None, help="use this folder as the cache")
    args = ap.parse_args()
    from playwright.sync_api import sync_playwright

    cache = Path(args.keep_cache or tempfile.mkdtemp(prefix="wafer-first-run-"))
    port = free_port()
    env = {**os.environ, "WAFER_PLAYGROUND_CACHE": str(cache), "WAFER_API_KEY": "",
           "WAFER_ENDPOINT": "", "WAFER_LOCAL_URL": "",
           "WAFER_PLAYGROUND_DB": str(cache / "first-run.db")}
    with sync_playwright() as p:
        # the user's browser is already open: Chromium's own start-up is not the app's time
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 900})
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless=true",
             "--server.address=127.0.0.1", f"--server.port={port}"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            while True:
                try:
                    if httpx.get(url + "/_stcore/health", timeout=1).text == "ok":
                        break
                except httpx.HTTPError:
                    time.sleep(0.05)
            t_health = time.monotonic() - t0
            page.goto(url)
            page.get_by_test_id("stDataFrame").first.wait_for(timeout=60_000)
            t_catalog = time.monotonic() - t0
            print(f"server healthy      {t_health:7.1f} s", flush=True)
            print(f"catalog usable      {t_catalog:7.1f} s (goal < 5 s)", flush=True)
            page.goto(url + "/chat")
            page.get_by_test_id("stChatInput").wait_for(timeout=1_800_000)
            t_ready = time.monotonic() - t0
            print(f"engine ready        {t_ready:7.1f} s", flush=True)
            box = page.get_by_test_id("stChatInput").locator("textarea")
            box.fill("Say hello in one short sentence.")
            box.press("Enter")
            page.wait_for_function(
                "() => { const m = document.querySelectorAll('[data-testid=stChatMessage]');"
                " return m.length > 1 && m[1].innerText.trim().length > 0; }",
                timeout=120_000)
            t_token = time.monotonic() - t0
            print(f"first local token   {t_token:7.1f} s (goal < 420 s, build included)",
                  flush=True)
        finally:
            proc.terminate()
            proc.wait(timeout=20)
            browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
