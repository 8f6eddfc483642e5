"""Move an SQLite history into PostgreSQL, verified: `wafer-playground-db migrate --from PATH
--to postgresql://…`.

Stop the app first. The source file is brought to the current schema (as opening it in the
app would), the target database is migrated and must hold no rows yet. Every table is copied
in one PostgreSQL transaction, ids, owners and timestamps unchanged, so a failure half-way
leaves the target empty. Then the move is checked: per table, the row count and a digest of
every row (sorted by id) must be the same on both sides. A turn that was still `streaming`
in the file is copied as it is; the PostgreSQL store marks it `interrupted` when it next
opens, as SQLite would have (its writer is not a live PostgreSQL writer).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sqlite3
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .records import StoreError

# Parents before children (turns and requests point at conversations, requests at turns,
# evaluation cells at their run).
TABLES = ("conversations", "turns", "requests", "presets", "prompts", "grammars", "votes",
          "prompt_versions", "eval_test_sets", "eval_runs", "eval_cells")


@dataclass(frozen=True)
class TableCheck:
    table: str
    source_rows: int
    target_before: int
    target_rows: int
    source_digest: str
    target_digest: str

    @property
    def ok(self) -> bool:
        return (self.target_before == 0 and self.source_rows == self.target_rows
                and self.source_digest == self.target_digest)


def _digest(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    from .postgres import _pg_value

    h = hashlib.sha256(json.dumps(list(columns)).encode())
    for row in sorted(rows, key=lambda r: str(r[0])):  # column 0 is the id in every table
        # compare what PostgreSQL can hold (NUL in text becomes U+FFFD there)
        h.update(json.dumps([_pg_value(v) for v in row], default=str).encode())
    return h.hexdigest()


def _sqlite_rows(con: sqlite3.Connection, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    cur = con.execute(f"SELECT * FROM {table}")
    return [d[0] for d in cur.description], cur.fetchall()


def _pg_rows(con: Any, table: str, columns: Sequence[str]) -> list[tuple[Any, ...]]:
    return list(con.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall())


def move_sqlite_to_postgres(source: str | Path, target_url: str) -> list[TableCheck]:
    """Copy every table of the SQLite file `source` into the PostgreSQL database at
    `target_url`, in one transaction, and return the per-table check."""
    import psycopg

    from .postgres import PostgresStore, _pg_value
    from .sqlite import SQLiteStore

    source = Path(source)
    if not source.is_file():
        raise StoreError(f"No SQLite history at {source}.")
    SQLiteStore(source, recover=False).close()  # bring the file to the current schema
    PostgresStore(target_url, recover=False).close()  # and the target database
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        data = {t: _sqlite_rows(src, t) for t in TABLES}
    finally:
        src.close()
    with psycopg.connect(target_url) as pg:
        before = {t: pg.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
        if any(before.values()):
            busy = ", ".join(f"{t} ({n})" for t, n in before.items() if n)
            raise StoreError(f"The target database already holds rows: {busy}. Move into an "
                             "empty database; nothing was copied.")
        with pg.transaction(), pg.cursor() as cur:
            for table in TABLES:
                columns, rows = data[table]
                if rows:
                    cur.executemany(
                        f"INSERT INTO {table} ({', '.join(columns)}) VALUES"
                        f" ({', '.join(['%s'] * len(columns))})",
                        [[_pg_value(v) for v in row] for row in rows])
        checks = []
        for table in TABLES:
            columns, rows = data[table]
            after = _pg_rows(pg, table, columns)
            checks.append(TableCheck(table, len(rows), before[table], len(after),
                                     _digest(columns, rows), _digest(columns, after)))
    return checks


def _report(checks: Sequence[TableCheck], source: str, target: str) -> str:
    lines = [f"Moved {source} -> {target}", "",
             f"{'table':<14} {'sqlite':>8} {'pg before':>10} {'pg after':>9}  rows match"]
    for c in checks:
        lines.append(f"{c.table:<14} {c.source_rows:>8} {c.target_before:>10} "
                     f"{c.target_rows:>9}  {'yes' if c.ok else 'NO'}")
    total = sum(c.source_rows for c in checks)
    verdict = ("verified: every table has the same rows on both sides" if all(c.ok for c in checks)
               else "NOT verified: see the tables marked NO")
    lines += ["", f"{total} rows, {verdict}."]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="wafer-playground-db", description="Wafer Playground's history database.")
    sub = parser.add_subparsers(dest="command", required=True)
    mig = sub.add_parser("migrate", help="move an SQLite history into PostgreSQL, verified")
    mig.add_argument("--from", dest="source", required=True, help="the SQLite file")
    mig.add_argument("--to", dest="target", required=True,
                     help="postgresql://user:password@host:5432/database (an empty database)")
    args = parser.parse_args(argv)

    from .open import is_postgres_url
    from .values import _clean_base_url

    if not is_postgres_url(args.target):
        parser.error("--to must be a postgresql:// URL")
    shown = _clean_base_url(args.target)  # never print the password
    try:
        checks = move_sqlite_to_postgres(args.source, args.target)
    except StoreError as exc:
        print(f"wafer-playground-db: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a driver error: say it, the copy rolled back
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        print(f"wafer-playground-db: the move failed and was rolled back, nothing was copied: "
              f"{first}", file=sys.stderr)
        return 1
    print(_report(checks, args.source, shown))
    return 0 if all(c.ok for c in checks) else 1


if __name__ == "__main__":
    raise SystemExit(main())
