"""Evaluation storage: test sets, runs and their cells; versioned prompt templates (issue 18).

A thin layer over an `SQLStore` (the same connection, owner and secret rules), kept apart
from base.py so the store's one class does not grow a fourth table family. Every cell is
written as it completes; a run's `writer` says which process is driving it, so a run whose
process died is found (`resumable`) and its cells that are not `done` are run again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from .base import SQLStore
from .records import NotFound, StoreError
from .rows import Row
from .secrets import _check_no_secrets, looks_like_secret
from .values import _dumps, _loads, _new_id, now_iso

RunStatus = Literal["pending", "running", "done", "stopped", "refused"]
CellStatus = Literal["pending", "running", "done", "error"]
CELL_STATUSES: tuple[CellStatus, ...] = ("pending", "running", "done", "error")


@dataclass(frozen=True)
class TemplateVersion:
    id: str
    name: str
    version: int
    text: str
    created_at: str


@dataclass(frozen=True)
class SavedTestSet:
    id: str
    name: str
    data: dict[str, Any]  # evals.TestSet.to_json()
    updated_at: str


@dataclass(frozen=True)
class EvalRun:
    id: str
    ts: str
    name: str
    setup: dict[str, Any]  # evals.EvalSetup.to_json()
    status: RunStatus
    base_url: str
    template_name: str
    template_version: str | None
    writer: str | None
    updated_at: str
    note: str = ""


@dataclass(frozen=True)
class EvalCell:
    id: str
    run_id: str
    row: int
    model: str
    repeat: int
    status: CellStatus
    output: str = ""
    passed: bool | None = None
    reasons: list[str] = field(default_factory=list)
    cost_usd: Decimal | None = None
    judge_cost_usd: Decimal | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    duration_s: float | None = None
    request_row_id: str | None = None
    judge_row_id: str | None = None
    error: str | None = None
    updated_at: str = ""

    @property
    def key(self) -> tuple[int, str, int]:
        return (self.row, self.model, self.repeat)


def _dec(v: Any) -> Decimal | None:
    return None if v is None or v == "" else Decimal(str(v))


def _cell(r: Row) -> EvalCell:
    p = r["passed"]
    return EvalCell(
        id=r["id"], run_id=r["run_id"], row=int(r["row_index"]), model=r["model"],
        repeat=int(r["repeat"]), status=r["status"], output=r["output"] or "",
        passed=None if p is None else bool(p), reasons=list(_loads(r["reasons"]).get("r", [])),
        cost_usd=_dec(r["cost_usd"]), judge_cost_usd=_dec(r["judge_cost_usd"]),
        ttft_s=r["ttft_s"], tokens_per_s=r["tokens_per_s"], duration_s=r["duration_s"],
        request_row_id=r["request_row_id"], judge_row_id=r["judge_row_id"], error=r["error"],
        updated_at=r["updated_at"])


def _run(r: Row) -> EvalRun:
    return EvalRun(id=r["id"], ts=r["ts"], name=r["name"], setup=_loads(r["setup"]),
                   status=r["status"], base_url=r["base_url"], template_name=r["template_name"],
                   template_version=r["template_version"], writer=r["writer"],
                   updated_at=r["updated_at"], note=r["note"] or "")


_CELL_FIELDS = ("status", "output", "passed", "reasons", "cost_usd", "judge_cost_usd", "ttft_s",
                "tokens_per_s", "duration_s", "request_row_id", "judge_row_id", "error")


class EvalStore:
    """Evaluations in `store`'s database, seen by `store.owner` (use `store.for_owner`)."""

    def __init__(self, store: SQLStore) -> None:
        self.store = store

    @property
    def owner(self) -> str:
        return self.store.owner

    # -- templates (versioned: an edit adds a version; old versions stay)

    def save_template(self, name: str, text: str) -> TemplateVersion:
        """Save `text` as `name`'s newest version (the saved prompt shows it too). Saving
        the same text again returns the existing newest version."""
        name = name.strip()
        if not name:
            raise StoreError("A template needs a name.")
        latest = self.template_versions(name)
        if latest and latest[0].text == text:
            return latest[0]
        self.store.save_prompt(name, text)  # refuses key-like text; History lists it
        vid, ts = _new_id(), now_iso()
        with self.store._tx() as c:
            n = c.execute("SELECT COALESCE(MAX(version), 0) + 1 FROM prompt_versions"
                          " WHERE owner = ? AND name = ?", (self.owner, name)).fetchone()[0]
            c.execute("INSERT INTO prompt_versions (id, owner, name, version, text, created_at)"
                      " VALUES (?,?,?,?,?,?)", (vid, self.owner, name, int(n), text, ts))
        return TemplateVersion(vid, name, int(n), text, ts)

    def template_versions(self, name: str) -> list[TemplateVersion]:
        """Newest first."""
        rows = self.store._query("SELECT * FROM prompt_versions WHERE owner = ? AND name = ?"
                                 " ORDER BY version DESC", (self.owner, name.strip()))
        return [TemplateVersion(r["id"], r["name"], int(r["version"]), r["text"],
                                r["created_at"]) for r in rows]

    def get_template_version(self, version_id: str) -> TemplateVersion | None:
        rows = self.store._query("SELECT * FROM prompt_versions WHERE owner = ? AND id = ?",
                                 (self.owner, version_id))
        return (TemplateVersion(rows[0]["id"], rows[0]["name"], int(rows[0]["version"]),
                                rows[0]["text"], rows[0]["created_at"]) if rows else None)

    # -- test sets

    def save_test_set(self, name: str, data: Mapping[str, Any]) -> str:
        name = name.strip()
        if not name:
            raise StoreError("A test set needs a name.")
        _check_no_secrets("test set", data)
        text = _dumps(dict(data))
        if looks_like_secret(text):
            raise StoreError("Refusing to save this test set: it contains something that "
                             "looks like an API key.")
        ts = now_iso()
        with self.store._tx() as c:
            c.execute("INSERT INTO eval_test_sets (id, owner, name, data, updated_at)"
                      " VALUES (?,?,?,?,?) ON CONFLICT(owner, name) DO UPDATE SET"
                      " data = excluded.data, updated_at = excluded.updated_at",
                      (_new_id(), self.owner, name, text, ts))
            return str(c.execute("SELECT id FROM eval_test_sets WHERE owner = ? AND name = ?",
                                 (self.owner, name)).fetchone()[0])

    def list_test_sets(self) -> list[SavedTestSet]:
        rows = self.store._query("SELECT * FROM eval_test_sets WHERE owner = ? ORDER BY name",
                                 (self.owner,))
        return [SavedTestSet(r["id"], r["name"], _loads(r["data"]), r["updated_at"])
                for r in rows]

    def delete_test_set(self, name: str) -> None:
        with self.store._tx() as c:
            c.execute("DELETE FROM eval_test_sets WHERE owner = ? AND name = ?",
                      (self.owner, name))

    # -- runs

    def create_run(self, setup: Mapping[str, Any], cells: Sequence[tuple[int, str, int]], *,
                   base_url: str, name: str = "") -> str:
        """A run and all its cells, `pending`, in one transaction."""
        _check_no_secrets("evaluation setup", setup)
        rid, ts = _new_id(), now_iso()
        with self.store._tx() as c:
            c.execute("INSERT INTO eval_runs (id, owner, ts, name, setup, status, base_url,"
                      " template_name, template_version, writer, updated_at, note)"
                      " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                      (rid, self.owner, ts, name, _dumps(dict(setup)), "pending", base_url,
                       str(setup.get("template_name") or ""), setup.get("template_version"),
                       None, ts, ""))
            for row, model, repeat in cells:
                c.execute("INSERT INTO eval_cells (id, run_id, row_index, model, repeat,"
                          " status, output, reasons, updated_at) VALUES (?,?,?,?,?,?,?,?,?)",
                          (_new_id(), rid, int(row), model, int(repeat), "pending", "",
                           "{}", ts))
        return rid

    def get_run(self, run_id: str) -> EvalRun | None:
        rows = self.store._query("SELECT * FROM eval_runs WHERE id = ? AND owner = ?",
                                 (run_id, self.owner))
        return _run(rows[0]) if rows else None

    def list_runs(self, limit: int = 200) -> list[EvalRun]:
        rows = self.store._query("SELECT * FROM eval_runs WHERE owner = ?"
                                 " ORDER BY ts DESC, id LIMIT ?", (self.owner, int(limit)))
        return [_run(r) for r in rows]

    def set_run_status(self, run_id: str, status: RunStatus, *, note: str | None = None,
                       claim: bool = False) -> None:
        """`claim`: this process drives the run now (its writer token is stamped)."""
        sets: list[str] = ["status = ?", "updated_at = ?"]
        args: list[Any] = [status, now_iso()]
        if status == "running" or claim:
            sets.append("writer = ?")
            args.append(self.store._writer if status == "running" else None)
        else:
            sets.append("writer = NULL")
        if note is not None:
            sets.append("note = ?")
            args.append(note)
        with self.store._tx() as c:
            cur = c.execute(f"UPDATE eval_runs SET {', '.join(sets)} WHERE id = ? AND owner = ?",
                            (*args, run_id, self.owner))
            if cur.rowcount == 0:
                raise NotFound(f"evaluation run {run_id} does not exist")

    def resumable(self, run: EvalRun) -> bool:
        """A run left `running` by a process that is gone (a closed server, a crash)."""
        if run.status != "running":
            return False
        return not self.store._writer_check()(run.writer)

    def claim(self, run: EvalRun) -> bool:
        """Take over an orphaned run for this process: only one of several servers sharing
        the database wins (compare-and-set on the dead writer's token)."""
        with self.store._tx() as c:
            cur = c.execute(f"UPDATE eval_runs SET writer = ?, updated_at = ? WHERE id = ?"
                            f" AND owner = ? AND status = 'running'"
                            f" AND writer {self.store._same} ?",
                            (self.store._writer, now_iso(), run.id, self.owner, run.writer))
            return bool(cur.rowcount == 1)

    def delete_run(self, run_id: str) -> None:
        with self.store._tx() as c:
            if c.execute("SELECT 1 FROM eval_runs WHERE id = ? AND owner = ?",
                         (run_id, self.owner)).fetchone():
                c.execute("DELETE FROM eval_cells WHERE run_id = ?", (run_id,))
                c.execute("DELETE FROM eval_runs WHERE id = ?", (run_id,))

    # -- cells

    def cells(self, run_id: str) -> list[EvalCell]:
        rows = self.store._query(
            "SELECT e.* FROM eval_cells e JOIN eval_runs r ON r.id = e.run_id"
            " WHERE e.run_id = ? AND r.owner = ? ORDER BY e.repeat, e.row_index, e.model",
            (run_id, self.owner))
        return [_cell(r) for r in rows]

    def progress(self, run_id: str) -> dict[str, Any]:
        """Counts per status and the money so far: cheap enough for a 1 s progress redraw."""
        rows = self.store._query(
            "SELECT e.row_index, e.status, e.cost_usd, e.judge_cost_usd FROM eval_cells e"
            " JOIN eval_runs r ON r.id = e.run_id WHERE e.run_id = ? AND r.owner = ?",
            (run_id, self.owner))
        counts = {s: 0 for s in CELL_STATUSES}
        spent = Decimal(0)
        open_rows: set[int] = set()
        all_rows: set[int] = set()
        for r in rows:
            counts[r["status"]] = counts.get(r["status"], 0) + 1
            all_rows.add(r["row_index"])
            if r["status"] not in ("done", "error"):
                open_rows.add(r["row_index"])
            for col in ("cost_usd", "judge_cost_usd"):
                if r[col] is not None:
                    spent += Decimal(r[col])
        return {"total": len(rows), "counts": counts, "spent": spent,
                "rows": len(all_rows), "rows_done": len(all_rows - open_rows)}

    def update_cell(self, cell_id: str, **fields: Any) -> None:
        unknown = set(fields) - set(_CELL_FIELDS)
        if unknown:
            raise StoreError(f"unknown cell field(s): {', '.join(sorted(unknown))}")
        cols: dict[str, Any] = {}
        for k, v in fields.items():
            if k == "status" and v not in CELL_STATUSES:
                raise StoreError(f"unknown cell status {v!r}")
            if k == "reasons":
                cols[k] = json.dumps({"r": [str(x)[:300] for x in v]})
            elif k == "passed":
                cols[k] = None if v is None else int(bool(v))
            elif k in ("cost_usd", "judge_cost_usd"):
                cols[k] = None if v is None else format(Decimal(v), "f")
            else:
                cols[k] = v
        cols["updated_at"] = now_iso()
        with self.store._tx() as c:
            cur = c.execute(
                f"UPDATE eval_cells SET {', '.join(f'{k} = ?' for k in cols)} WHERE id = ?"
                " AND run_id IN (SELECT id FROM eval_runs WHERE owner = ?)",
                (*cols.values(), cell_id, self.owner))
            if cur.rowcount == 0:
                raise NotFound(f"evaluation cell {cell_id} does not exist")


__all__ = ["CELL_STATUSES", "CellStatus", "EvalCell", "EvalRun", "EvalStore", "RunStatus",
           "SavedTestSet", "TemplateVersion"]
