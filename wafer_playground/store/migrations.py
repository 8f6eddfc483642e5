"""Schema migrations: one function per step, the same steps for SQLite and PostgreSQL.

Append only: a shipped step is never edited; a change is a new `@migration` function named
`mNNN_what`, whose number is the schema version it brings the database to. Each step gets a
`Schema` and runs plain DDL through it; the few type names the two backends spell differently
come from the `Schema` (`db.real`). The runners (`apply_migrations` here for SQLite,
`postgres.apply_pg_migrations`) run each pending step in its own transaction that re-reads
the version first, so two processes opening a fresh database apply each step once.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from .records import ANONYMOUS, ENV_DB, StoreError


@dataclass(frozen=True)
class Schema:
    """What a migration step may do: run one DDL statement at a time on its transaction."""

    execute: Callable[[str], object]
    real: str = "REAL"  # a float column: SQLite REAL is 8 bytes, PostgreSQL's is 4


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    description: str
    apply: Callable[[Schema], None]


MIGRATIONS: list[Migration] = []


def migration(fn: Callable[[Schema], None]) -> Callable[[Schema], None]:
    """Register `fn` (named `mNNN_…`, docstring = description) as schema version NNN."""
    m = re.fullmatch(r"m(\d{3})_\w+", fn.__name__)
    if not m or int(m.group(1)) != len(MIGRATIONS) + 1:
        raise ValueError(f"migration {fn.__name__} is out of order")
    MIGRATIONS.append(Migration(int(m.group(1)), fn.__name__, (fn.__doc__ or "").strip(), fn))
    return fn


@migration
def m001_conversations_turns_requests(db: Schema) -> None:
    """conversations, turns and the request log"""
    db.execute("""CREATE TABLE conversations (
        id TEXT PRIMARY KEY,
        title TEXT NOT NULL DEFAULT '',
        model TEXT,
        surface TEXT NOT NULL DEFAULT 'chat',
        params TEXT NOT NULL DEFAULT '{}',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE turns (
        id TEXT PRIMARY KEY,
        conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
        seq INTEGER NOT NULL,
        role TEXT NOT NULL,
        content TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL,
        meta TEXT NOT NULL DEFAULT '{}',
        writer TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (conversation_id, seq))""")
    db.execute("CREATE INDEX turns_streaming ON turns(status) WHERE status = 'streaming'")
    db.execute(f"""CREATE TABLE requests (
        id TEXT PRIMARY KEY,
        ts TEXT NOT NULL,
        conversation_id TEXT REFERENCES conversations(id) ON DELETE SET NULL,
        turn_id TEXT REFERENCES turns(id) ON DELETE SET NULL,
        model TEXT NOT NULL,
        base_url TEXT NOT NULL,
        surface TEXT NOT NULL,
        params TEXT NOT NULL DEFAULT '{{}}',
        status TEXT NOT NULL,
        http_status INTEGER,
        request_id TEXT,
        error_code TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        cost_usd TEXT,
        ttft_s {db.real},
        tokens_per_s {db.real},
        writer TEXT)""")
    db.execute("CREATE INDEX requests_ts ON requests(ts)")
    db.execute("CREATE INDEX requests_conversation ON requests(conversation_id)")


@migration
def m002_request_details(db: Schema) -> None:
    """cache/reasoning token counts, cost kind, duration and response on the request log"""
    db.execute("ALTER TABLE requests ADD COLUMN cached_tokens INTEGER")
    db.execute("ALTER TABLE requests ADD COLUMN reasoning_tokens INTEGER")
    db.execute("ALTER TABLE requests ADD COLUMN cost_kind TEXT")
    db.execute(f"ALTER TABLE requests ADD COLUMN duration_s {db.real}")
    db.execute("ALTER TABLE requests ADD COLUMN response TEXT NOT NULL DEFAULT '{}'")
    db.execute("CREATE INDEX requests_streaming ON requests(status) WHERE status = 'streaming'")


@migration
def m003_library_and_votes(db: Schema) -> None:
    """presets, saved prompts, saved grammars, compare votes"""
    db.execute("""CREATE TABLE presets (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        surface TEXT NOT NULL DEFAULT 'chat',
        params TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE prompts (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        text TEXT NOT NULL,
        updated_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE grammars (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        ebnf TEXT NOT NULL,
        updated_at TEXT NOT NULL)""")
    db.execute("""CREATE TABLE votes (
        id TEXT PRIMARY KEY,
        ts TEXT NOT NULL,
        prompt TEXT NOT NULL DEFAULT '',
        candidates TEXT NOT NULL,
        winner TEXT,
        blind INTEGER NOT NULL DEFAULT 1,
        meta TEXT NOT NULL DEFAULT '{}')""")


@migration
def m004_history_owner(db: Schema) -> None:
    """history partitioned by owner (the API key's fingerprint)"""
    # Rows from before v4 belong to the keyless owner: they were written without a key
    # fingerprint, so no key can claim them.
    for table in ("conversations", "requests", "votes"):
        db.execute(f"ALTER TABLE {table} ADD COLUMN owner TEXT NOT NULL DEFAULT '{ANONYMOUS}'")
    db.execute("CREATE INDEX conversations_owner ON conversations(owner, updated_at)")
    db.execute("CREATE INDEX requests_owner ON requests(owner, ts)")
    db.execute("CREATE INDEX votes_owner ON votes(owner, ts)")


@migration
def m005_library_owner(db: Schema) -> None:
    """presets, saved prompts and saved grammars partitioned by owner"""
    # A saved prompt can be as private as a chat: the library is per key too. SQLite cannot
    # change a UNIQUE constraint in place, so each table is rebuilt with UNIQUE(owner, name).
    for table, columns, names in (
        ("presets", "surface TEXT NOT NULL DEFAULT 'chat', params TEXT NOT NULL DEFAULT '{}'",
         "surface, params"),
        ("prompts", "text TEXT NOT NULL", "text"),
        ("grammars", "ebnf TEXT NOT NULL", "ebnf"),
    ):
        db.execute(f"CREATE TABLE {table}_new (id TEXT PRIMARY KEY,"
                   f" owner TEXT NOT NULL DEFAULT '{ANONYMOUS}', name TEXT NOT NULL, {columns},"
                   " updated_at TEXT NOT NULL, UNIQUE (owner, name))")
        db.execute(f"INSERT INTO {table}_new (id, name, {names}, updated_at)"
                   f" SELECT id, name, {names}, updated_at FROM {table}")
        db.execute(f"DROP TABLE {table}")
        db.execute(f"ALTER TABLE {table}_new RENAME TO {table}")


@migration
def m006_evaluations(db: Schema) -> None:
    """versioned prompt templates, evaluation test sets, runs and cells (issue 18)"""
    db.execute(f"""CREATE TABLE prompt_versions (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL DEFAULT '{ANONYMOUS}',
        name TEXT NOT NULL,
        version INTEGER NOT NULL,
        text TEXT NOT NULL,
        created_at TEXT NOT NULL,
        UNIQUE (owner, name, version))""")
    db.execute(f"""CREATE TABLE eval_test_sets (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL DEFAULT '{ANONYMOUS}',
        name TEXT NOT NULL,
        data TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        UNIQUE (owner, name))""")
    db.execute(f"""CREATE TABLE eval_runs (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL DEFAULT '{ANONYMOUS}',
        ts TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        setup TEXT NOT NULL,
        status TEXT NOT NULL,
        base_url TEXT NOT NULL,
        template_name TEXT NOT NULL DEFAULT '',
        template_version TEXT,
        writer TEXT,
        updated_at TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '')""")
    db.execute("CREATE INDEX eval_runs_owner ON eval_runs(owner, ts)")
    db.execute(f"""CREATE TABLE eval_cells (
        id TEXT PRIMARY KEY,
        run_id TEXT NOT NULL REFERENCES eval_runs(id) ON DELETE CASCADE,
        row_index INTEGER NOT NULL,
        model TEXT NOT NULL,
        repeat INTEGER NOT NULL,
        status TEXT NOT NULL,
        output TEXT NOT NULL DEFAULT '',
        passed INTEGER,
        reasons TEXT NOT NULL DEFAULT '{{}}',
        cost_usd TEXT,
        judge_cost_usd TEXT,
        ttft_s {db.real},
        tokens_per_s {db.real},
        duration_s {db.real},
        request_row_id TEXT,
        judge_row_id TEXT,
        error TEXT,
        updated_at TEXT NOT NULL,
        UNIQUE (run_id, row_index, model, repeat))""")
    db.execute("CREATE INDEX eval_cells_run ON eval_cells(run_id, status)")


SCHEMA_VERSION = MIGRATIONS[-1].version


def check_not_newer(current: int, where: str) -> None:
    """Refuse a database written by a newer app, before touching it."""
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"The database schema is version {current}, newer than this app understands "
            f"({SCHEMA_VERSION}). Upgrade Wafer Playground or point {ENV_DB} at {where}."
        )


def apply_migrations(conn: sqlite3.Connection, upto: int | None = None) -> int:
    """Bring `conn` (an SQLite connection in autocommit mode) to schema `upto` (default: the
    latest); returns the resulting version, kept in `PRAGMA user_version`.

    Each migration runs in its own IMMEDIATE transaction and re-reads user_version inside it,
    so two processes opening a fresh file at once apply each step exactly once.
    """
    upto = SCHEMA_VERSION if upto is None else upto
    check_not_newer(conn.execute("PRAGMA user_version").fetchone()[0], "another file")
    schema = Schema(conn.execute)
    for step in MIGRATIONS:
        if step.version > upto:
            break
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] >= step.version:
                conn.execute("COMMIT")
                continue
            step.apply(schema)
            conn.execute(f"PRAGMA user_version = {int(step.version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return int(conn.execute("PRAGMA user_version").fetchone()[0])
