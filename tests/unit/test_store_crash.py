"""Crash test at store level, on both backends: a writer streams turns, gets kill -9'd
mid-stream, and a fresh process finds the completed turns intact and the cut-off one marked
"interrupted" with the text saved up to its last update."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.pg import Backend

ROOT = Path(__file__).resolve().parents[2]

# Streams like the chat page will: user turn, assistant turn started as "streaming",
# content rewritten every ~20 ms, finished with "done"; the third reply never finishes.
WRITER = r"""
import sys, time
from wafer_playground.store import open_store
s = open_store(sys.argv[1])
cid = s.create_conversation("crash test", model="m")
print(cid, flush=True)
for n in range(3):
    s.start_turn(cid, "user", f"question {n}")
    t = s.start_turn(cid, "assistant")
    rid = s.log_request(model="m", base_url="https://x/v1", surface="chat", params={"n": n},
                        conversation_id=cid, turn_id=t)
    text = ""
    for k in range(10 if n < 2 else 10**6):
        text += f"tok{k} "
        s.update_turn(t, content=text)
        if n == 2 and k == 5:
            print("MIDSTREAM", flush=True)
        time.sleep(0.02)
    s.update_turn(t, status="done")
    s.update_request(rid, status="done")
"""


def test_kill_9_mid_stream_then_restart(backend: Backend) -> None:
    db = backend.target("crash")
    proc = subprocess.Popen([sys.executable, "-c", WRITER, db], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        cid = proc.stdout.readline().strip()
        deadline = time.monotonic() + 60
        while proc.stdout.readline().strip() != "MIDSTREAM":
            assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.1)  # a few more updates land
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL

    if backend.name == "postgres":
        _wait_until_writer_gone(backend)
    s = backend.open("crash")  # "restart"
    assert s.recovered_on_open == 1
    turns = s.list_turns(cid)
    assert [(t.role, t.status) for t in turns] == [
        ("user", "done"), ("assistant", "done"),
        ("user", "done"), ("assistant", "done"),
        ("user", "done"), ("assistant", "interrupted"),
    ]
    assert turns[1].content == "".join(f"tok{k} " for k in range(10))
    cut = turns[-1].content
    # everything up to the last committed update survived: at least the 6 tokens printed
    # before MIDSTREAM, and a whole-token prefix (no torn write)
    assert cut.startswith("tok0 tok1 tok2 tok3 tok4 tok5 ")
    assert cut.endswith(" ") and cut.count("tok") >= 6
    statuses = sorted(r.status for r in s.list_requests(conversation_id=cid))
    assert statuses == ["done", "done", "interrupted"]
    # recovery is done once: a second open finds nothing left to mark
    assert backend.open("crash").recovered_on_open == 0


def _wait_until_writer_gone(backend: Backend) -> None:
    """PostgreSQL ends the killed client's session (and frees its writer lock) as soon as it
    sees the socket close; that takes a moment, which an SQLite file does not need."""
    probe = backend.open("crash", recover=False)
    writers = [r["writer"] for r in probe._query(
        "SELECT writer FROM turns WHERE status = 'streaming'")]
    assert len(writers) == 1
    deadline = time.monotonic() + 10
    while probe._writer_check()(writers[0]):
        assert time.monotonic() < deadline, "the killed writer's lock was never released"
        time.sleep(0.05)
    probe.close()
