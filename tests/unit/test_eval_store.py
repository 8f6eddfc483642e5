"""Evaluation storage on SQLite and PostgreSQL (tests/pg.py): versioned templates, test sets,
runs and cells, each owner seeing only its own (issue 18)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.pg import Backend
from wafer_playground.store import SecretRefused, StoreError
from wafer_playground.store.evals import EvalStore


def test_templates_keep_every_version(backend: Backend) -> None:
    db = backend.open()
    e = EvalStore(db.for_owner("k1"))
    v1 = e.save_template("sum", "{{a}} + {{b}}")
    assert e.save_template("sum", "{{a}} + {{b}}") == v1  # unchanged text: no new version
    v2 = e.save_template("sum", "What is {{a}} plus {{b}}?")
    assert (v1.version, v2.version) == (1, 2)
    assert [v.text for v in e.template_versions("sum")] == [v2.text, v1.text]
    assert e.get_template_version(v1.id) == v1  # results stay tied to the old text
    assert db.for_owner("k1").get_prompt("sum").text == v2.text  # type: ignore[union-attr]
    other = EvalStore(db.for_owner("k2"))
    assert other.template_versions("sum") == [] and other.get_template_version(v1.id) is None
    with pytest.raises(SecretRefused):
        # built at run time, so no key-shaped literal sits in the repository
        e.save_template("leak", "use " + "sk-" + "abcdefghijklmnopqrstuvwxyz0123456789")
    db.close()


def test_runs_and_cells_round_trip_per_owner(backend: Backend) -> None:
    db = backend.open()
    e = EvalStore(db.for_owner("k1"))
    tid = e.save_test_set("set", {"variables": ["a"], "rows": [{"values": {"a": "1"}}]})
    assert tid == e.save_test_set("set", {"variables": ["a"], "rows": []})
    assert [t.name for t in e.list_test_sets()] == ["set"]
    rid = e.create_run({"template_name": "sum", "template_version": "v"},
                       [(0, "m1", 0), (0, "m2", 0), (1, "m1", 0)], base_url="http://x/v1")
    cells = e.cells(rid)
    assert [c.status for c in cells] == ["pending"] * 3
    e.update_cell(cells[0].id, status="done", passed=True, output="2", reasons=["number: ok"],
                  cost_usd=Decimal("1E-7"), ttft_s=0.25, tokens_per_s=40.0, duration_s=1.5,
                  request_row_id="r1")
    c = e.cells(rid)[0]
    assert (c.status, c.passed, c.output, c.reasons, c.cost_usd, c.ttft_s) == (
        "done", True, "2", ["number: ok"], Decimal("0.0000001"), 0.25)
    p = e.progress(rid)
    assert p["counts"]["done"] == 1 and p["total"] == 3 and p["spent"] == Decimal("1E-7")
    assert (p["rows"], p["rows_done"]) == (2, 0)  # row 0 still waits for m2
    e.update_cell(cells[1].id, status="error", error="boom")
    assert e.progress(rid)["rows_done"] == 1
    with pytest.raises(StoreError):
        e.update_cell(cells[1].id, status="finished")
    e.set_run_status(rid, "running")
    run = e.get_run(rid)
    assert run is not None and run.status == "running" and not e.resumable(run)
    other = EvalStore(db.for_owner("k2"))
    assert other.get_run(rid) is None and other.cells(rid) == [] and other.list_runs() == []
    with pytest.raises(StoreError):
        other.update_cell(cells[1].id, status="done")
    other.delete_run(rid)  # not theirs: nothing happens
    assert e.get_run(rid) is not None
    e.delete_run(rid)
    assert e.get_run(rid) is None and e.cells(rid) == []
    db.close()


def test_a_run_left_running_by_a_dead_writer_is_resumable(backend: Backend) -> None:
    db = backend.open()
    e = EvalStore(db.for_owner("k1"))
    rid = e.create_run({}, [(0, "m", 0)], base_url="http://x/v1")
    e.set_run_status(rid, "running")
    backend.execute("t", "UPDATE eval_runs SET writer = ? WHERE id = ?",
                    ("dead-host:1:1", rid))
    run = e.get_run(rid)
    assert run is not None and e.resumable(run)
    assert e.claim(run) and not e.claim(run)  # the second taker (another server) loses
    run = e.get_run(rid)
    assert run is not None and not e.resumable(run)  # this process drives it now
    db.close()
