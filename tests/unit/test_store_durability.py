"""Store durability on both backends (tests/pg.py): migrations, concurrent writers (threads and
processes), recovery."""

from __future__ import annotations

import multiprocessing as mp
import socket
import sqlite3
import sys
import threading
from typing import Any

import psycopg
import pytest

from tests.pg import Backend
from wafer_playground.store import (
    SCHEMA_VERSION,
    Migration,
    Schema,
    SQLiteStore,
    SQLStore,
    StoreError,
    is_postgres_url,
    migrations,
    open_store,
)


def _v1_database(backend: Backend, db: str) -> None:
    """A database as the first release left it: schema 1 with a conversation and a request."""
    backend.migrate(db, upto=1)
    with backend.connect(db) as con:
        _v1_rows(con)


def _v1_rows(con: Any) -> None:
    con.execute("INSERT INTO conversations (id, title, model, surface, params, created_at,"
                " updated_at) VALUES ('c1', 'Old chat', 'm', 'chat', '{}',"
                " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
    con.execute("INSERT INTO turns (id, conversation_id, seq, role, content, status, meta,"
                " created_at, updated_at) VALUES ('t1', 'c1', 0, 'user', 'hi', 'done', '{}',"
                " '2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')")
    con.execute("INSERT INTO requests (id, ts, conversation_id, model, base_url, surface, params,"
                " status, prompt_tokens, completion_tokens, cost_usd) VALUES ('r1',"
                " '2026-01-01T00:00:01.000000Z', 'c1', 'm', 'https://x/v1', 'chat', '{}', 'done',"
                " 10, 5, '0.0001')")


def test_migrates_old_schema_and_keeps_data(backend: Backend) -> None:
    _v1_database(backend, "old")
    assert "cached_tokens" not in backend.columns("old", "requests")  # really the old shape

    s = backend.open("old")
    assert s.schema_version == SCHEMA_VERSION == 6
    assert backend.version("old") == SCHEMA_VERSION
    rec = s.get_request("r1")
    assert rec is not None and (rec.prompt_tokens, rec.cached_tokens) == (10, None)
    assert [t.content for t in s.list_turns("c1")] == ["hi"]
    s.update_request("r1", cached_tokens=4)  # the new column works
    s.save_preset("p", {"temperature": 1})  # tables from migration 3 exist
    assert s.list_conversations()[0].title == "Old chat"
    # rows from before owners belong to the keyless owner, never to a key
    assert s.owner == "anonymous"
    assert s.for_owner("0123456789abcdef").list_conversations() == []
    assert s.for_owner("0123456789abcdef").get_request("r1") is None
    s.close()
    # reopening is a no-op
    assert backend.open("old").schema_version == SCHEMA_VERSION


def test_v4_library_moves_to_the_keyless_owner(backend: Backend) -> None:
    """v5 rebuilds presets/prompts/grammars with an owner; old rows stay, keyless."""
    backend.migrate("v4", upto=4)
    ts = "2026-01-01T00:00:00.000000Z"
    with backend.connect("v4") as con:
        con.execute("INSERT INTO presets (id, name, surface, params, updated_at)"
                    f" VALUES ('p1', 'hot', 'chat', '{{\"temperature\": 1.5}}', '{ts}')")
        con.execute(f"INSERT INTO prompts (id, name, text, updated_at) VALUES ('q1', 'hi',"
                    f" 'Hi', '{ts}')")
        con.execute("INSERT INTO grammars (id, name, ebnf, updated_at) VALUES ('g1', 'yn',"
                    f" 'root ::= \"y\" | \"n\"', '{ts}')")
    s = backend.open("v4")
    assert s.schema_version == SCHEMA_VERSION
    preset, prompt, gram = s.get_preset("hot"), s.get_prompt("hi"), s.get_grammar("yn")
    assert preset is not None and preset.params == {"temperature": 1.5}
    assert prompt is not None and prompt.text == "Hi"
    assert gram is not None and gram.id == "g1"
    other = s.for_owner("0123456789abcdef")
    assert other.list_presets() == [] and other.get_prompt("hi") is None
    # the same name under two owners: two entries, neither overwrites the other
    other.save_grammar("yn", 'root ::= "yes" | "no"')
    assert s.get_grammar("yn").ebnf == 'root ::= "y" | "n"'  # type: ignore[union-attr]
    assert other.get_grammar("yn").ebnf == 'root ::= "yes" | "no"'  # type: ignore[union-attr]
    other.delete_grammar("yn")
    assert s.get_grammar("yn") is not None and other.get_grammar("yn") is None
    s.close()


def test_newer_schema_is_refused(backend: Backend) -> None:
    backend.migrate("future", upto=SCHEMA_VERSION)
    with backend.connect("future") as con:
        con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}" if backend.name == "sqlite"
                    else f"UPDATE schema_version SET version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer than this app"):
        backend.open("future")
    assert backend.version("future") == SCHEMA_VERSION + 1  # refused, not touched


def test_failed_migration_rolls_back(backend: Backend, monkeypatch: pytest.MonkeyPatch) -> None:
    _v1_database(backend, "m")

    def half_broken(db: Schema) -> None:
        db.execute("ALTER TABLE requests ADD COLUMN cached_tokens INTEGER")
        db.execute("THIS IS NOT SQL")

    broken = [*migrations.MIGRATIONS[:1], Migration(2, "m002_half_broken", "", half_broken)]
    monkeypatch.setattr(migrations, "MIGRATIONS", broken)
    monkeypatch.setattr(migrations, "SCHEMA_VERSION", 2)
    with pytest.raises((sqlite3.OperationalError, psycopg.errors.SyntaxError)):
        backend.open("m")
    assert backend.version("m") == 1
    assert "cached_tokens" not in backend.columns("m", "requests")


def test_threads_share_one_store_and_two_stores_on_one_file(backend: Backend) -> None:
    """Four threads on one store plus two threads on a second store (another 'session')."""
    a, b = backend.open("c"), backend.open("c")
    cid = a.create_conversation("shared")
    errors: list[BaseException] = []

    def work(s: SQLStore, n: int) -> None:
        try:
            for i in range(n):
                t = s.start_turn(cid, "assistant")
                for k in range(3):  # streaming updates
                    s.update_turn(t, content="x" * (k + 1))
                s.update_turn(t, status="done", meta={"i": i})
                s.log_request(model="m", base_url="https://x/v1", surface="chat", params={},
                              status="done", conversation_id=cid, turn_id=t)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s, 40)) for s in (a, a, a, a, b, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    turns = a.list_turns(cid)
    assert len(turns) == 240
    assert [t.seq for t in turns] == list(range(240))
    assert all(t.status == "done" and t.content == "xxx" for t in turns)
    assert len(b.list_requests(limit=10_000)) == 240


def _process_writer(target: str, cid: str, n: int, start: mp.synchronize.Event) -> None:
    s = (open_store(target) if is_postgres_url(target)
         else SQLiteStore(target, busy_timeout_ms=30_000))
    start.wait()
    for i in range(n):
        t = s.start_turn(cid, "assistant", meta={"pid_turn": i})
        s.update_turn(t, content=f"turn {i}", status="done")
    s.close()


def test_two_processes_write_concurrently(backend: Backend,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    # spawn re-runs __main__ in the child; after an AppTest in this process that is a
    # temporary page script, so the children must not import it
    monkeypatch.delattr(sys.modules["__main__"], "__file__", raising=False)
    target = backend.target("p")
    s = backend.open("p")
    cid = s.create_conversation("two writers")
    ctx = mp.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_process_writer, args=(target, cid, 60, start))
             for _ in range(2)]
    for p in procs:
        p.start()
    start.set()
    for p in procs:
        p.join(timeout=120)
    assert [p.exitcode for p in procs] == [0, 0]
    turns = s.list_turns(cid)
    assert len(turns) == 120 and [t.seq for t in turns] == list(range(120))
    assert all(t.status == "done" for t in turns)


def test_live_writers_streaming_turns_are_not_recovered(backend: Backend) -> None:
    a = backend.open("live")
    cid = a.create_conversation("live")
    t = a.start_turn(cid, "assistant", "Hel")
    b = backend.open("live")  # another session opening the database while `a` streams
    assert b.recovered_on_open == 0
    assert b.get_turn(t).status == "streaming"  # type: ignore[union-attr]


def test_dead_writer_is_recovered(backend: Backend) -> None:
    a = backend.open("dead")
    cid = a.create_conversation("x")
    t = a.start_turn(cid, "assistant", "partial")
    rid = a.log_request(model="m", base_url="https://x/v1", surface="chat", params={})
    # pretend the rows came from processes that no longer exist: pid 0 is never a writer,
    # and neither backend takes an SQLite-style token from another host for a live one
    backend.execute("dead", "UPDATE turns SET writer = 'other-host:123:456'")
    backend.execute("dead", "UPDATE requests SET writer = ?", (f"{socket.gethostname()}:0:1",))
    b = backend.open("dead")
    assert b.recovered_on_open == 1
    turn = b.get_turn(t)
    assert turn is not None and (turn.status, turn.content) == ("interrupted", "partial")
    assert b.get_request(rid).status == "interrupted"  # type: ignore[union-attr]
