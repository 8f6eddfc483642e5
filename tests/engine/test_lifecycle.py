"""Engine lifecycle: progress in the caller's thread, stop() and a killed parent leave no
orphaned adapter or llama-server processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from tests.engine.conftest import SMOL
from wafer_playground.local.engine import start_engine

pytestmark = pytest.mark.engine


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] != "Z"
    except OSError:
        return False


def _wait_dead(pids: list[int], timeout: float) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [p for p in pids if _alive(p)]
        if not left:
            return []
        time.sleep(0.1)
    return [p for p in pids if _alive(p)]


def _child_pids(base_url: str) -> list[int]:
    health = httpx.get(base_url.removesuffix("/v1") + "/health", timeout=10).json()
    return [int(m["pid"]) for m in health["models"].values()]


def test_progress_and_stop_leave_nothing_behind() -> None:
    calls: list[tuple[str, int, int, bool]] = []
    main = threading.current_thread()

    def progress(message: str, step: int, total: int) -> None:
        calls.append((message, step, total, threading.current_thread() is main))

    handle = start_engine(models=[SMOL], progress=progress)
    try:
        assert handle.base_url.startswith("http://127.0.0.1:") and handle.base_url.endswith("/v1")
        children = _child_pids(handle.base_url)
        assert children and all(_alive(p) for p in children)
        assert calls and all(c[3] for c in calls)  # always in the calling thread
        assert any(m.startswith("serving on") for m, *_ in calls)
        build = ("compiling", "llama-server", "downloading", "unpack", "configuring",
                 "smoke-testing", "another process", "waiting for another")
        phases = [(s, t) for m, s, t, _ in calls if not m.startswith(build)]
        assert phases == sorted(phases) and phases[-1][0] == phases[-1][1]
    finally:
        handle.stop()
    assert _wait_dead([handle.pid, *children], 10) == []


def test_killed_parent_takes_the_engine_down() -> None:
    """SIGKILL the Python process that started the engine (no atexit, no cleanup): the
    adapter notices, exits, and its llama-server children follow."""
    script = (
        "import json, sys, time, httpx\n"
        "from wafer_playground.local.engine import start_engine\n"
        f"h = start_engine(models=[{SMOL!r}])\n"
        "hl = httpx.get(h.base_url[:-3] + '/health').json()\n"
        "print(json.dumps([h.pid] + [m['pid'] for m in hl['models'].values()]), flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        pids = json.loads(proc.stdout.readline())
        assert len(pids) == 2 and all(_alive(p) for p in pids)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert _wait_dead(pids, 15) == []


def test_the_llama_servers_share_the_cores_instead_of_oversubscribing_them() -> None:
    """Two llama-servers spin-waiting for more threads than there are cores crawl together
    (wafer_playground/local/cli.py threads_per_model); each gets its share, at least one."""
    handle = start_engine()  # every installed model, as the app starts it
    try:
        threads = []
        for pid in _child_pids(handle.base_url):
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            threads.append(int(argv[argv.index(b"-t") + 1]))
    finally:
        handle.stop()
    cores = len(os.sched_getaffinity(0))
    assert len(threads) >= 2 and min(threads) >= 1
    assert sum(threads) <= max(cores, len(threads))
    assert len(set(threads)) == 1  # an even share
