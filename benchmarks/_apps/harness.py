"""Shared machinery for the browser benchmarks (stream_render.py, latency.py).

Processes: the fake upstream (`benchmarks/_fake_sse.py`) and one `streamlit run` per variant,
all on free 127.0.0.1 ports and stopped by PID. Browser: Debian's headless Chromium through
Playwright. Times are wall-clock seconds (`time.time()`); the page reports
`performance.timeOrigin + performance.now()`, corrected by an offset measured per page.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil
from playwright.sync_api import Browser, Page, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks"
sys.path.insert(0, str(ROOT))
from wafer_playground.local.net import free_port  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
MODEL = "bench-model"


# ---- machine ------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    cpu = platform.processor() or "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"nproc": os.cpu_count(), "cpu": cpu, "load": os.getloadavg()}


def load_line(when: str) -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {when}: {one:.1f} {five:.1f} {fifteen:.1f} on {os.cpu_count()} cores"


def med(values: Sequence[float | None]) -> float | None:
    vals = [v for v in values if v is not None]
    return statistics.median(vals) if vals else None


def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sample."""
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))]


def cpu_of(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def tree_cpu(name_part: str) -> float:
    """CPU seconds of this process's descendants whose name contains `name_part`."""
    total = 0.0
    for child in psutil.Process().children(recursive=True):
        try:
            if name_part in child.name():
                total += cpu_of(child)
        except psutil.Error:
            pass
    return total


# ---- processes ----------------------------------------------------------------------------

def _wait_http(url: str, proc: subprocess.Popen[bytes], what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited early (code {proc.returncode})")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{what} did not answer {url} in {timeout:.0f} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


class FakeUpstream:
    def __init__(self) -> None:
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "_fake_sse.py"), "--port", str(self.port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(f"{self.base_url}/models", self.proc, "fake upstream")

    def config(self, tokens: int, rate: float, tag: str, prefill_s: float = 0.0) -> None:
        httpx.post(f"http://127.0.0.1:{self.port}/_bench/config", timeout=10,
                   json={"tokens": tokens, "rate": rate, "tag": tag, "prefill_s": prefill_s})

    def log(self) -> list[dict[str, Any]]:
        return httpx.get(f"http://127.0.0.1:{self.port}/_bench/log",  # type: ignore[no-any-return]
                         timeout=10).json()

    def record(self, tag: str) -> dict[str, Any] | None:
        found = [r for r in self.log() if r["tag"] == tag]
        return found[-1] if found else None

    def stop(self) -> None:
        _stop(self.proc)


@dataclass
class App:
    """One `streamlit run` process for one variant."""

    name: str
    script: Path
    kind: str  # "product" (app.py chat page) or "naive" (benchmarks/_apps/naive_chat.py)
    query: str = ""
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    opened: bool = False

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, upstream: FakeUpstream, tmp: Path) -> None:
        self.port = free_port()
        env = {**os.environ, **self.env,
               # the product reaches the fake as the "local engine" (no key needed)
               "WAFER_ENDPOINT": "local", "WAFER_LOCAL_URL": upstream.base_url,
               "BENCH_BASE_URL": upstream.base_url,
               "WAFER_PLAYGROUND_DB": str(tmp / f"{self.name}.db")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", str(self.script),
             "--server.headless=true", "--server.address=127.0.0.1",
             f"--server.port={self.port}", "--browser.gatherUsageStats=false",
             "--server.fileWatcherType=none"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_http(f"{self.url}/_stcore/health", self.proc, f"streamlit ({self.name})")

    @property
    def ps(self) -> psutil.Process:
        assert self.proc is not None
        return psutil.Process(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc)


def product(name: str = "chat", script: str = "app.py", **env: str) -> App:
    return App(name, ROOT / script, "product", env=env)


def naive(name: str, mode: str) -> App:
    return App(name, BENCH / "_apps" / "naive_chat.py", "naive", query=f"?mode={mode}")


@contextmanager
def running(apps: Sequence[App]) -> Iterator[tuple[FakeUpstream, Browser]]:
    """Fake upstream + every app + one headless Chromium; all stopped on exit."""
    upstream = FakeUpstream()
    started: list[App] = []
    with tempfile.TemporaryDirectory(prefix="wafer-bench-") as tmp:
        try:
            for app in apps:
                app.start(upstream, Path(tmp))
                started.append(app)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                try:
                    yield upstream, browser
                finally:
                    browser.close()
        finally:
            for app in started:
                app.stop()
            upstream.stop()


# ---- the page -----------------------------------------------------------------------------

OBSERVER_JS = """tag => {
  // Record when `<tag>first` / `<tag>end` first appear in the main area: in the mutation
  // callback (in the DOM) and in the next animation frame (about to be painted).
  const root = document.querySelector('[data-testid="stMain"]') || document.body;
  const now = () => performance.timeOrigin + performance.now();
  const b = window.__bench = {tag, first: null, firstFrame: null, last: null, lastFrame: null,
                              click: null, enter: null};
  const check = () => {
    const t = root.textContent;
    if (b.first === null && t.includes(tag + 'first')) {
      b.first = now(); requestAnimationFrame(() => { b.firstFrame = now(); });
    }
    if (b.last === null && t.includes(tag + 'end')) {
      b.last = now(); requestAnimationFrame(() => { b.lastFrame = now(); });
      obs.disconnect();
    }
  };
  const obs = new MutationObserver(check);
  obs.observe(root, {childList: true, subtree: true, characterData: true});
  if (!window.__benchClick) {
    window.__benchClick = true;
    document.addEventListener('keydown', e => {  // the key that sends the message
      if (e.key === 'Enter' && window.__bench && window.__bench.enter === null)
        window.__bench.enter = now();
    }, true);
    document.addEventListener('click', e => {
      if (e.target.closest && e.target.closest('[data-testid="stChatInputStopButton"]')
          && window.__bench && window.__bench.click === null) window.__bench.click = now();
    }, true);
  }
  check();
}"""


class BenchPage:
    """A fresh browser page (= a fresh Streamlit session) on one app."""

    def __init__(self, browser: Browser, app: App) -> None:
        self.app = app
        self.page: Page = browser.new_page(viewport={"width": 1440, "height": 1200})
        self.ws_bytes = 0
        self.ws_frames = 0
        self.page.on("websocket", self._on_ws)
        self.offset = 0.0  # browser clock - python clock, seconds

    def _on_ws(self, ws: Any) -> None:
        def frame(payload: str | bytes) -> None:
            self.ws_bytes += len(payload)
            self.ws_frames += 1
        ws.on("framereceived", frame)

    def open(self) -> None:
        if self.app.kind == "product":
            if not self.app.opened:
                # a fresh server answers a deep link before st.navigation has run once in
                # legacy pages/ mode (see tests/e2e/test_chat_e2e.py): open the root first
                self.page.goto(self.app.url)
                self.wait_idle()
                self.app.opened = True
            self.page.goto(f"{self.app.url}/chat?model={MODEL}")
        else:
            self.page.goto(f"{self.app.url}/{self.app.query}")
        self.wait_idle()
        self.page.get_by_test_id("stChatInputTextArea").wait_for(timeout=120_000)
        self.calibrate()

    def calibrate(self) -> None:
        """Offset between the page's clock and time.time() (best of 5 round trips)."""
        best: tuple[float, float] | None = None
        for _ in range(5):
            t0 = time.time()
            browser_now = float(self.page.evaluate("performance.timeOrigin + performance.now()"))
            t1 = time.time()
            if best is None or t1 - t0 < best[0]:
                best = (t1 - t0, browser_now / 1000 - (t0 + t1) / 2)
        assert best is not None
        self.offset = best[1]

    def wait_idle(self, timeout_ms: float = 180_000, stable_s: float = 0.6) -> None:
        """Connected, script not running, and still so `stable_s` later (a st.rerun)."""
        sel = ("[data-testid='stApp'][data-test-connection-state='CONNECTED']"
               "[data-test-script-state='notRunning']")
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            self.page.wait_for_selector(sel, timeout=timeout_ms)
            time.sleep(stable_s)
            if self.page.query_selector(sel) is not None:
                return
            if time.monotonic() > deadline:
                raise TimeoutError("app never became idle")

    def watch(self, tag: str) -> None:
        self.page.evaluate(OBSERVER_JS, tag)

    def marks(self) -> dict[str, float | None]:
        """The observer's timestamps on the Python clock (None = not seen)."""
        raw: dict[str, Any] = self.page.evaluate("window.__bench")
        return {k: (None if raw.get(k) is None else raw[k] / 1000 - self.offset)
                for k in ("first", "firstFrame", "last", "lastFrame", "click", "enter")}

    def wait_mark(self, key: str, timeout_s: float) -> None:
        self.page.wait_for_function(f"() => window.__bench && window.__bench.{key} !== null",
                                    polling=50, timeout=timeout_s * 1000)

    def send(self, text: str) -> None:
        box = self.page.get_by_test_id("stChatInputTextArea")
        box.wait_for(timeout=60_000)
        # the input is disabled while a run is active; wait until it is usable again
        self.page.wait_for_function(
            "() => { const b = document.querySelector("
            "'[data-testid=\"stChatInputTextArea\"]'); return b && !b.disabled; }",
            polling=100, timeout=120_000)
        box.fill(text)
        box.press("Enter")

    def close(self) -> None:
        self.page.close()


def wait_until(cond: Callable[[], Any], timeout_s: float, poll_s: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = cond()
        if value:
            return value
        time.sleep(poll_s)
    raise TimeoutError("condition not met")


def dump(path: Path | None, payload: Any) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2, default=str))
        print(f"raw results: {path}")
