"""Start and stop the local engine (`wafer-local` + its llama-server children) from Python.

`start_engine()` runs `wafer-local` as a subprocess in its own session (process group), on
127.0.0.1, and waits until `/v1/models` answers. `EngineHandle.stop()` terminates the whole
group, so the llama-server children go too; they also carry PR_SET_PDEATHSIG, and the
adapter watches our pid, so nothing is orphaned if this process dies abruptly.

`SERVICE` is the app's engine: one per Python process, owned by the server rather than by a
browser session. `SERVICE.ensure_started()` provisions and starts it in a daemon thread that
no script run can stop (Streamlit stops a session's script when its tab closes), so a reload
or a closed tab never interrupts a build; every session reads the same `SERVICE.status()`.
The engine is stopped at interpreter exit.
"""

from __future__ import annotations

import atexit
import collections
import contextlib
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import httpx

from wafer_playground.local.net import free_port

Progress = Callable[[str, int, int], None]
"""progress(message, step, total), called in the thread that called start_engine: build and
start-up steps, e.g. ('compiling … [67/208]', 67,
208) while llama-server compiles (once, ~11 min on 2 cores), then ('starting …', 4, 6)."""

_PROGRESS = re.compile(r"^\[wafer-local\] progress (\d+)/(\d+) (.*)$")
_READY = re.compile(r"^\[wafer-local\] ready (\S+)")
_NOTE = re.compile(r"^\[wafer-local\] note (.*)$")
_ERROR = re.compile(r"^\[wafer-local\] error (.*)$")


class EngineError(RuntimeError):
    """The engine could not be started. `reason` is one sentence (the adapter's own `error`
    line when it printed one); the message carries the adapter's last output."""

    def __init__(self, message: str, reason: str = "") -> None:
        super().__init__(message)
        self.reason = reason or message.split("\n", 1)[0]


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
                 timeout: float = 1800, extra_args: list[str] | None = None,
                 note: Callable[[str], None] | None = None) -> EngineHandle:
    """Start `wafer-local` and wait until it serves. The first run may compile llama-server
    (minutes; `progress` reports the steps); later runs start in a few seconds."""
    port = port or free_port()
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
    steps: queue.SimpleQueue[tuple[str, int, int] | str] = queue.SimpleQueue()
    errors: list[str] = []

    def read_output() -> None:
        assert proc.stderr is not None
        for raw in proc.stderr:
            line = raw.rstrip("\n")
            handle.output.append(line)
            if m := _PROGRESS.match(line):
                steps.put((m[3], int(m[1]), int(m[2])))
            elif m := _NOTE.match(line):
                steps.put(m[1])
            elif m := _ERROR.match(line):
                errors.append(m[1])
            if _READY.match(line):
                ready.set()

    def report() -> None:
        while not steps.empty():
            step = steps.get()
            if isinstance(step, str):
                if note is not None:
                    note(step)
            elif progress is not None:
                progress(*step)

    threading.Thread(target=read_output, name=f"wafer-local-{port}", daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        with httpx.Client(timeout=2) as client:
            while True:
                if proc.poll() is not None:
                    time.sleep(0.2)  # let the reader drain the last lines
                    report()
                    raise EngineError(f"wafer-local exited with code {proc.returncode}:\n"
                                      f"{handle.log_tail()}", errors[-1] if errors else "")
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


Phase = Literal["idle", "provisioning", "ready", "failed"]
# Before the first compile step reports, the estimate is the measured build time on 2 cores
# (wafer_playground/local/README.md), scaled by the cores this machine has.
_BUILD_S_ON_2_CORES = 420.0


@dataclass(frozen=True)
class EngineStatus:
    """A snapshot of the app's engine, the same for every session of the process."""

    phase: Phase
    message: str = ""
    step: int = 0
    total: int = 0
    started_at: float | None = None  # time.time() of ensure_started()
    compile_started_at: float | None = None
    finished_at: float | None = None
    base_url: str | None = None
    notes: tuple[str, ...] = ()
    reason: str = ""  # one sentence, when failed
    log_tail: str = ""
    attempt: int = 0

    @property
    def compiling(self) -> bool:
        return "compiling" in self.message and self.total > 4

    @property
    def fraction(self) -> float:
        """Overall progress for one bar: the compile is most of a first run (5–90 %), the
        smoke test and the model start-up the rest; a cached start moves through the last
        few percent."""
        message = self.message
        if self.compiling:
            return 0.05 + 0.85 * min(1.0, self.step / self.total)
        for word, at in (("downloading", 0.01), ("unpacking", 0.03), ("configuring", 0.04),
                         ("smoke-testing", 0.91), ("llama-server ready", 0.93)):
            if word in message:
                return at
        if self.phase == "ready":
            return 1.0
        if self.total and self.step:
            return 0.93 + 0.07 * min(1.0, self.step / self.total)
        return 0.0

    def elapsed_s(self, now: float | None = None) -> float:
        if self.started_at is None:
            return 0.0
        return max(0.0, (self.finished_at or now or time.time()) - self.started_at)

    def eta_s(self, now: float | None = None) -> float | None:
        """Seconds left, from the compile rate so far; None when nothing honest can be said."""
        now = now or time.time()
        if self.phase != "provisioning":
            return None
        if self.compiling and self.compile_started_at and self.step >= 5:
            rate = (now - self.compile_started_at) / self.step
            return rate * (self.total - self.step) + 15  # + smoke test and model load
        if self.compiling or "downloading" in self.message or "configuring" in self.message \
                or "unpacking" in self.message:
            return _BUILD_S_ON_2_CORES * 2 / max(1, os.cpu_count() or 2)
        return None


class EngineService:
    """The process-wide local engine: provisioned and started in a background thread that
    belongs to the server, restarted on demand if it died, stopped at exit."""

    def __init__(self, starter: Callable[..., EngineHandle] | None = None) -> None:
        self._starter = starter or start_engine
        self._lock = threading.Lock()
        self._status = EngineStatus("idle")
        self._handle: EngineHandle | None = None
        self._thread: threading.Thread | None = None

    def status(self) -> EngineStatus:
        with self._lock:
            handle, status = self._handle, self._status
        if status.phase == "ready" and handle is not None and not handle.alive():
            with self._lock:
                if self._handle is handle:
                    self._status = replace(status, phase="failed",
                                           reason="the local engine stopped unexpectedly "
                                                  f"(exit code {handle.process.returncode})",
                                           log_tail=handle.log_tail())
                    self._handle = None
                return self._status
        return status

    @property
    def handle(self) -> EngineHandle | None:
        return self._handle if self.status().phase == "ready" else None

    def ensure_started(self, *, after_s: float = 0.0) -> EngineStatus:
        """Start provisioning unless it runs, is done, or failed (failure waits for retry()).

        `after_s` holds the heavy work back a moment: the app's first page render and a
        first-run compile compete for the same cores, and the page is what the user is
        looking at (components/connection.boot passes it).
        """
        with self._lock:
            if self._status.phase == "idle":
                self._begin(after_s)
        return self.status()

    def retry(self) -> EngineStatus:
        """After a failure: forget failed smoke-test verdicts and start again."""
        from wafer_playground.local import provision

        with self._lock:
            if self._status.phase in ("failed", "idle"):
                provision.forget_failures()
                self._begin()
        return self.status()

    def wait(self, timeout: float) -> EngineStatus:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status()
            if status.phase in ("ready", "failed"):
                return status
            time.sleep(0.1)
        return self.status()

    def stop(self) -> None:
        with self._lock:
            handle, self._handle = self._handle, None
            self._status = EngineStatus("idle")
        if handle is not None:
            handle.stop()

    def _begin(self, after_s: float = 0.0) -> None:  # with self._lock held
        attempt = self._status.attempt + 1
        self._status = EngineStatus("provisioning", "starting the local engine",
                                    started_at=time.time(), attempt=attempt)
        self._thread = threading.Thread(target=self._run, args=(attempt, after_s),
                                        name="wafer-local-service", daemon=True)
        self._thread.start()

    def _update(self, attempt: int, **changes: Any) -> None:
        with self._lock:
            if self._status.attempt == attempt:
                self._status = replace(self._status, **changes)

    def _run(self, attempt: int, after_s: float = 0.0) -> None:
        if after_s > 0:
            time.sleep(after_s)
        def progress(message: str, step: int, total: int) -> None:
            changes: dict[str, Any] = {"message": message, "step": step, "total": total}
            if "compiling" in message and self._status.compile_started_at is None:
                changes["compile_started_at"] = time.time()
            self._update(attempt, **changes)

        def note(text: str) -> None:
            with self._lock:
                if self._status.attempt == attempt:
                    self._status = replace(self._status, notes=(*self._status.notes, text))

        try:
            handle = self._starter(progress=progress, note=note)
        except EngineError as exc:
            tail = str(exc).split("\n", 1)[1] if "\n" in str(exc) else ""
            self._update(attempt, phase="failed", reason=exc.reason, log_tail=tail,
                         finished_at=time.time())
            return
        except Exception as exc:  # noqa: BLE001 - a failure panel, never a dead thread
            self._update(attempt, phase="failed", reason=f"{type(exc).__name__}: {exc}",
                         finished_at=time.time())
            return
        with self._lock:
            if self._status.attempt != attempt:  # stopped meanwhile
                handle.stop()
                return
            self._handle = handle
            self._status = replace(self._status, phase="ready", message="ready",
                                   base_url=handle.base_url.rstrip("/"),
                                   finished_at=time.time())


SERVICE = EngineService()


@atexit.register
def _stop_service() -> None:
    SERVICE.stop()
