"""`wafer-playground-db migrate`: an SQLite history moves into PostgreSQL, verified per table,
and reads back the same through the store (exports byte-identical); a non-empty target or a
failure half-way copies nothing."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from wafer_playground.client import key_fingerprint
from wafer_playground.store import SQLiteStore
from wafer_playground.store.evals import EvalStore
from wafer_playground.store.move import TABLES, main
from wafer_playground.store.postgres import PostgresStore
from wafer_playground.transcript import export_json

A, B = key_fingerprint("wfr_alpha_key"), key_fingerprint("wfr_bravo_key")


def _history(path: Path) -> dict[str, int]:
    """A file with every kind of row, two owners and the keyless one; returns row counts."""
    base = SQLiteStore(path)
    for owner in (A, B, "anonymous"):
        s = base.for_owner(owner)
        for n in range(3):
            cid = s.create_conversation(f"{owner[:4]} chat {n} ✓", model="glm-5.2",
                                        params={"temperature": 0.1 * n})
            s.start_turn(cid, "user", f"question {n} — ünïcødé")
            t = s.start_turn(cid, "assistant")
            rid = s.log_request(model="glm-5.2", base_url="https://pass.wafer.ai/v1",
                                surface="chat", params={"n": n}, conversation_id=cid, turn_id=t)
            s.update_turn(t, content=f"answer {n}", status="done", meta={"ttft_s": 0.1 + 0.2})
            s.update_request(rid, status="done", usage={"prompt_tokens": 10 + n,
                                                        "completion_tokens": 5},
                             cost=Decimal("0.00000012"), ttft_s=0.3, tokens_per_s=41.5)
        s.log_request(model="m", base_url="http://127.0.0.1:9/v1", surface="completions",
                      params={"prompt": [1, 2]}, status="error", error_code="server_error")
        s.save_preset("hot", {"temperature": 1.5})
        s.save_prompt("plan", "Plan {{x}}")
        s.save_grammar("yn", 'root ::= "y" | "n"')
        s.record_vote("q", ["m1", "m2"], "m1")
        ev = EvalStore(s)  # evaluations move too (issue 18)
        ev.save_template("plan", "Plan {{x}}")
        ev.save_test_set("set", {"variables": ["x"], "rows": [{"values": {"x": "1"}}]})
        run = ev.create_run({"template": "Plan {{x}}"}, [(0, "m1", 0)], base_url="http://x/v1")
        ev.update_cell(ev.cells(run)[0].id, status="done", passed=True, cost_usd="1E-7")
    # one reply cut off by a crash: still "streaming" in the file
    cut = base.for_owner(A).create_conversation("cut off")
    base.for_owner(A).start_turn(cut, "assistant", "half")
    base.close()
    con = sqlite3.connect(path)
    counts = {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    con.close()
    return counts


def test_move_is_verified_and_reads_back_the_same(tmp_path: Path, postgres_url: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "h.db"
    counts = _history(path)
    assert counts == {"conversations": 10, "turns": 19, "requests": 12, "presets": 3,
                      "prompts": 3, "grammars": 3, "votes": 3, "prompt_versions": 3,
                      "eval_test_sets": 3, "eval_runs": 3, "eval_cells": 3}
    assert main(["migrate", "--from", str(path), "--to", postgres_url]) == 0
    out = capsys.readouterr().out
    for table, n in counts.items():
        assert f"{table:<14} {n:>8} {0:>10} {n:>9}  yes" in out
    assert "65 rows, verified" in out
    password = postgres_url.split(":")[2].split("@")[0]
    assert password not in out

    lite = SQLiteStore(path, recover=False)
    pg = PostgresStore(postgres_url)
    assert pg.recovered_on_open == 1  # the cut-off reply: its writer is long gone
    for owner in (A, B, "anonymous"):
        ls, ps = lite.for_owner(owner), pg.for_owner(owner)
        assert [c.id for c in ps.list_conversations()] == [c.id for c in ls.list_conversations()]
        for c in ls.list_conversations():
            if c.title != "cut off":
                assert export_json(ps, c.id) == export_json(ls, c.id)
        assert ps.list_presets() == ls.list_presets()
        assert ps.list_prompts() == ls.list_prompts()
        assert ps.list_grammars() == ls.list_grammars()
        assert ps.list_votes() == ls.list_votes()
        assert ps.list_requests() == ls.list_requests()
    cut = pg.for_owner(A).list_conversations("cut off")[0]
    assert [t.status for t in pg.for_owner(A).list_turns(cut.id)] == ["interrupted"]
    pg.close()
    lite.close()


def test_the_console_script_refuses_a_target_with_rows(tmp_path: Path,
                                                       postgres_url: str) -> None:
    path = tmp_path / "h.db"
    _history(path)
    s = PostgresStore(postgres_url)
    s.create_conversation("already here")
    s.close()
    script = Path(sys.executable).parent / "wafer-playground-db"  # pyproject [project.scripts]
    done = subprocess.run([str(script), "migrate", "--from", str(path), "--to", postgres_url],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "already holds rows: conversations (1)" in done.stderr
    with psycopg.connect(postgres_url) as con:
        assert con.execute("SELECT count(*) FROM conversations").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM turns").fetchone()[0] == 0


def test_a_failure_half_way_copies_nothing(tmp_path: Path, postgres_url: str,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "h.db"
    _history(path)
    # a request pointing at a turn that does not exist (SQLite with foreign keys off lets it
    # in; PostgreSQL refuses it): the requests table comes after conversations and turns
    con = sqlite3.connect(path)
    con.execute("UPDATE requests SET turn_id = 'no-such-turn' WHERE rowid = 3")
    con.commit()
    con.close()
    assert main(["migrate", "--from", str(path), "--to", postgres_url]) == 1
    assert "rolled back, nothing was copied" in capsys.readouterr().err
    with psycopg.connect(postgres_url) as con:
        for table in TABLES:
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
