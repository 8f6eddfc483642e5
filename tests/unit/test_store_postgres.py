"""What only the PostgreSQL store has to prove (the shared suite runs on it too): selection by
URL, pooling without held transactions, writers alive across processes, concurrent
migrations, and text PostgreSQL cannot hold."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from tests.pg import PostgresServer
from wafer_playground.store import SCHEMA_VERSION, SQLiteStore, StoreError, open_store
from wafer_playground.store.postgres import PostgresStore

ROOT = Path(__file__).resolve().parents[2]


def test_the_setting_picks_the_backend(postgres_url: str, tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", postgres_url)
    s = open_store()
    try:
        assert isinstance(s, PostgresStore) and s.schema_version == SCHEMA_VERSION
        password = postgres_url.split(":")[2].split("@")[0]
        assert password not in repr(s) and "wafer@" not in repr(s)
    finally:
        s.close()
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(tmp_path / "x.db"))
    s2 = open_store()
    assert isinstance(s2, SQLiteStore) and s2.path == tmp_path / "x.db"
    s2.close()


def test_unreachable_server_is_one_readable_error(postgres_server: PostgresServer) -> None:
    url = postgres_server.url("nope").replace(str(postgres_server.port), "1")
    with pytest.raises(StoreError, match="Cannot reach the PostgreSQL store") as exc:
        PostgresStore(url, timeout_s=2)
    assert postgres_server.password not in str(exc.value)
    bad_password = postgres_server.url().replace(postgres_server.password, "not_it_7f3a91")
    with pytest.raises(StoreError, match="password authentication failed") as exc:
        PostgresStore(bad_password, timeout_s=2)
    assert "not_it_7f3a91" not in str(exc.value)


def _sessions(url: str) -> list[tuple[str, str | None]]:
    """(state, xact_start) of every other session on the store's database."""
    with psycopg.connect(url, autocommit=True) as con:
        return [(r[0], r[1]) for r in con.execute(
            "SELECT state, xact_start FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()")]


def test_no_transaction_is_held_while_a_reply_streams(postgres_url: str) -> None:
    s = PostgresStore(postgres_url, max_size=4)
    try:
        cid = s.create_conversation("stream")
        t = s.start_turn(cid, "assistant")
        rid = s.log_request(model="m", base_url="https://x/v1", surface="chat", params={},
                            conversation_id=cid, turn_id=t)
        text = ""
        for k in range(20):  # the chat page writes about once a second; here, at once
            text += f"tok{k} "
            s.update_turn(t, content=text)
            # between writes: every session is idle, none inside a transaction
            states = _sessions(postgres_url)
            assert states and all(st == "idle" and xs is None for st, xs in states), states
        s.update_turn(t, status="done")
        s.update_request(rid, status="done")
        # the pool plus the writer-lock connection, never one connection per call
        assert len(_sessions(postgres_url)) <= 4 + 1
    finally:
        s.close()
    assert _sessions(postgres_url) == []  # close() gives every connection back


def test_more_threads_than_connections_queue_for_the_pool(postgres_url: str) -> None:
    s = PostgresStore(postgres_url, max_size=2)
    cid = s.create_conversation("busy")
    errors: list[BaseException] = []

    def work() -> None:
        try:
            for _ in range(15):
                t = s.start_turn(cid, "assistant")
                s.update_turn(t, content="x", status="done")
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    assert [t.seq for t in s.list_turns(cid)] == list(range(90))
    s.close()


def test_replicas_opening_a_fresh_database_together_migrate_once(postgres_url: str) -> None:
    stores: list[PostgresStore] = []
    errors: list[BaseException] = []
    go = threading.Event()

    def opener() -> None:
        go.wait()
        try:
            stores.append(PostgresStore(postgres_url))
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=opener) for _ in range(4)]
    for th in threads:
        th.start()
    go.set()
    for th in threads:
        th.join()
    assert errors == [] and len(stores) == 4
    assert {s.schema_version for s in stores} == {SCHEMA_VERSION}
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT version FROM schema_version").fetchall() == [
            (SCHEMA_VERSION,)]
    for s in stores:
        s.close()


# A replica in another process: streams one turn, then waits to be killed.
REPLICA = r"""
import sys, time
from wafer_playground.store import open_store
s = open_store(sys.argv[1])
cid = s.create_conversation("on replica A")
t = s.start_turn(cid, "assistant", "half an answer")
print(cid, t, flush=True)
time.sleep(600)
"""


def test_a_live_replicas_stream_is_left_alone_until_it_dies(postgres_url: str) -> None:
    proc = subprocess.Popen([sys.executable, "-c", REPLICA, postgres_url], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        cid, tid = proc.stdout.readline().split()
        # another replica (this process) opens the database and looks for dead streams
        b = PostgresStore(postgres_url)
        assert b.recovered_on_open == 0 and b.recover_interrupted() == 0
        assert b.get_turn(tid).status == "streaming"  # type: ignore[union-attr]
        # The writer's token names its host; unlike SQLite, another host is not taken for
        # dead: only its lock counts.
        with psycopg.connect(postgres_url, autocommit=True) as con:
            con.execute("UPDATE turns SET writer = regexp_replace(writer,"
                        " '^(pg:[0-9]+):[^:]*', '\\1:some-other-host')")
        assert b.recover_interrupted() == 0
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        deadline = time.monotonic() + 10
        while b.recover_interrupted() == 0:
            assert time.monotonic() < deadline, "a killed replica's stream was never recovered"
            time.sleep(0.05)
        turn = b.get_turn(tid)
        assert turn is not None and (turn.status, turn.content) == ("interrupted",
                                                                    "half an answer")
        b.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_nul_in_text_is_kept_as_a_replacement_character(postgres_url: str) -> None:
    s = PostgresStore(postgres_url)
    cid = s.create_conversation("a\x00b")
    t = s.start_turn(cid, "assistant", "x\x00y")
    s.update_turn(t, content="x\x00y\x00z", meta={"raw": "a\x00b"}, status="done")
    turn = s.get_turn(t)
    assert turn is not None and turn.content == "x\ufffdy\ufffdz"
    assert turn.meta == {"raw": "a\x00b"}  # JSON text escapes it: kept exactly
    assert s.get_conversation(cid).title == "a\ufffdb"  # type: ignore[union-attr]
    s.close()


def test_a_lost_connection_takes_the_writer_lock_again(postgres_url: str) -> None:
    """The server drops every connection of the store (as a restart would): its next
    recovery notices, takes a new writer lock, and its live stream stays live; the pool
    replaces its dropped connections instead of failing the next call."""
    a = PostgresStore(postgres_url)
    cid = a.create_conversation("through a restart")
    t = a.start_turn(cid, "assistant", "partial")
    rid = a.log_request(model="m", base_url="https://x/v1", surface="chat", params={},
                        conversation_id=cid, turn_id=t)
    old = a._writer
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        killed = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()").fetchone()[0]
    assert killed >= 2  # the lock's connection and the pool's
    assert a.recover_interrupted() == 0
    assert a._writer != old
    assert a.get_turn(t).status == "streaming"  # type: ignore[union-attr]
    b = PostgresStore(postgres_url)  # another replica looking for dead streams
    assert b.recovered_on_open == 0 and b.get_request(rid).status == "streaming"  # type: ignore[union-attr]
    a.update_turn(t, content="partial and the rest", status="done")
    assert b.get_turn(t).status == "done"  # type: ignore[union-attr]
    a.close()
    b.close()
