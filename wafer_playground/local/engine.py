"""Start and stop the local engine (`wafer-local` + its llama-server children) from Python.

`start_engine()` runs `wafer-local` as a subprocess in its own session (process group), on
127.0.0.1, and waits until `/v1/models` answers. `EngineHandle.stop()` terminates the whole
group, so the llama-server children go too; they also carry PR_SET_PDEATHSIG, and the
adapter watches our pid, so nothing is orphaned if this process dies abruptly.

`shared_engine()` is the app's engine: one per Python process, started on first use,
stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx

Progress = Callable[[str, int, int], None]
"""progress(message, step, total), called in the thread that called start_engine: build and
start-up steps, e.g. ('compiling … [67/208]', 67,
208) while llama-server compiles (once, ~11 min on 2 cores), then ('starting …', 4, 6)."""

_PROGRESS = re.compile(r"^\[wafer-local\] progress (\d+)/(\d+) (.*)$")
_READY = re.compile(r"^\[wafer-local\] ready (\S+)")


class EngineError(RuntimeError):
    """The engine could not be started (the message carries the adapter's last output)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EngineHandle:
    base_url: str  # "http://127.0.0.1:PORT/v1"
    port: int
    process: subprocess.Popen[str]
    output: collections.deque[str] = field(default_factory=lambda: collections.deque(maxlen=200))

    @property
    def pid(self) -> int:
        return self.process.pid

    def alive(self) -> bool:
        return self.process.poll() is None

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(list(self.output)[-n:])

    def stop(self, timeout: float = 10) -> None:
        """Stop the adapter and its llama-server children (the whole process group)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=timeout)
        # children left in the group (they should not be) are killed, not waited on
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def start_engine(port: int | None = None, api_key: str | None = None,
                 models: list[str] | None = None, progress: Progress | None = None, *,
                 timeout: float = 1800, extra_args: list[str] | None = None) -> EngineHandle:
    """Start `wafer-local` and wait until it serves. The first run may compile llama-server
    (minutes; `progress` reports the steps); later runs start in a few seconds."""
    port = port or _free_port()
    cmd = [sys.executable, "-m", "wafer_playground.local.cli", "--port", str(port),
           "--parent-pid", str(os.getpid())]
    if models:
        cmd += ["--models", *models]
    cmd += extra_args or []
    env = dict(os.environ)
    env.pop("WAFER_LOCAL_API_KEY", None)
    if api_key:
        env["WAFER_LOCAL_API_KEY"] = api_key  # never on the command line (visible in ps)
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    handle = EngineHandle(base_url=f"http://127.0.0.1:{port}/v1", port=port, process=proc)
    ready = threading.Event()
    # progress is reported from the calling thread (Streamlit only allows st.* calls from
    # the script thread), so the reader thread just queues it
    steps: queue.SimpleQueue[tuple[str, int, int]] = queue.SimpleQueue()

    def read_output() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.rstrip("\n")
            handle.output.append(line)
            m = _PROGRESS.match(line)
            if m:
                steps.put((m[3], int(m[1]), int(m[2])))
            if _READY.match(line):
                ready.set()

    def report() -> None:
        while not steps.empty():
            step = steps.get()
            if progress is not None:
                progress(*step)

    threading.Thread(target=read_output, name=f"wafer-local-{port}", daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    time.sleep(0.2)  # let the reader drain the last lines
                    raise EngineError(f"wafer-local exited with code {proc.returncode}:\n"
                                      f"{handle.log_tail()}")
                if time.monotonic() > deadline:
                    raise EngineError(f"wafer-local did not answer within {timeout:.0f} s:\n"
                                      f"{handle.log_tail()}")
                got_ready = ready.wait(0.2)
                report()
                if got_ready:
                    try:
                        if client.get(handle.base_url + "/models").status_code == 200:
                            return handle
                    except httpx.HTTPError:
                        pass
    except BaseException:
        handle.stop()
        raise


_shared: EngineHandle | None = None
_shared_lock = threading.Lock()


def shared_engine(progress: Progress | None = None) -> EngineHandle:
    """The process-wide engine (thread-safe); restarted if it died; stopped at exit."""
    global _shared
    with _shared_lock:
        if _shared is not None and _shared.alive():
            return _shared
        if _shared is not None:
            _shared.stop()
        _shared = start_engine(progress=progress)
        return _shared


@atexit.register
def _stop_shared() -> None:
    if _shared is not None:
        _shared.stop()
