"""The PostgreSQL backend, for a team server: several app processes (replicas) on one database.

`WAFER_PLAYGROUND_DB=postgresql://user:password@host:5432/db` selects it (open.py). Same
tables, columns and migrations as SQLite (migrations.py), the same SQL (base.py); psycopg 3
with a `psycopg_pool.ConnectionPool`. Every store call borrows a pooled connection for one
short transaction and gives it back, so nothing is held open while a reply streams.

Which writer is alive: each store holds a session-level advisory lock, on a connection of
its own, for as long as its process lives. Its writer token (`pg:<lock id>:<host>:<pid>`)
names that lock. PostgreSQL drops the lock the moment the connection ends (process exit,
kill -9, container removed; TCP keepalives catch a vanished host), so recovery on any
replica can tell a live stream on another machine from a dead one by asking `pg_locks`.
"""

from __future__ import annotations

import functools
import os
import random
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from . import migrations
from .base import SQLStore
from .records import ANONYMOUS, StoreError
from .values import _clean_base_url

# First key of the two-key advisory locks this app takes ('WAFR'); the second is the writer
# id. Migrations lock (LOCK_SPACE, 0); writer ids start at 1.
LOCK_SPACE = 0x57414652
_MIGRATION_LOCK = 0
# Detect a dead peer (a replica whose host vanished) within about half a minute.
_KEEPALIVE = {"keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
              "keepalives_count": 3}


class _Row:
    """A row that answers r["column"], r[0] and tuple(r), like sqlite3.Row."""

    __slots__ = ("_index", "_values")

    def __init__(self, values: Sequence[Any], index: dict[str, int]) -> None:
        self._values, self._index = values, index

    def __getitem__(self, key: str | int) -> Any:
        return self._values[self._index[key] if isinstance(key, str) else key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def _row_factory(cursor: Any) -> Callable[[Sequence[Any]], _Row]:
    index = {c.name: i for i, c in enumerate(cursor.description or ())}
    return lambda values: _Row(values, index)


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    """base.py's `?` placeholders in psycopg's `%s` style (a literal % doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _pg_value(v: Any) -> Any:
    # PostgreSQL text cannot hold NUL; SQLite can. A model that emits one must not make the
    # write fail mid-stream, so it becomes U+FFFD (JSON columns already escape it as \\u0000).
    return v.replace("\x00", "\ufffd") if isinstance(v, str) and "\x00" in v else v


class _Cursor:
    """What base.py's `_tx()` callers see: `execute(sql, args)` returning a new cursor, as
    sqlite3's `Connection.execute` does (each keeps its own rows and rowcount)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, args: Sequence[Any] = ()) -> psycopg.Cursor[Any]:
        cur = self._conn.cursor(row_factory=_row_factory)
        cur.execute(_pg_sql(sql), [_pg_value(v) for v in args])
        return cur


def _read_version(conn: psycopg.Connection[Any]) -> int:
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else 0


class _WriterLock:
    """The session advisory lock that says this process's streams are live, on a connection
    of its own; shared by a store and its `for_owner` views. If the connection is lost (the
    server restarted, a proxy cut it), `ensure()` takes a new lock and returns the old token,
    so the store can move its own live rows over before anyone takes them for dead."""

    def __init__(self, url: str, kwargs: dict[str, Any]) -> None:
        self._url, self._kwargs = url, kwargs
        self._mutex = threading.Lock()
        self.conn: psycopg.Connection[Any] | None = None
        self.token = ""
        self._take()

    def _take(self) -> None:
        self.conn = psycopg.connect(self._url, autocommit=True, **self._kwargs)
        for _ in range(100):
            wid = random.randint(1, 2**31 - 1)
            got = self.conn.execute("SELECT pg_try_advisory_lock(%s, %s)",
                                    (LOCK_SPACE, wid)).fetchone()
            if got and got[0]:
                self.token = f"pg:{wid}:{socket.gethostname()}:{os.getpid()}"
                return
        raise StoreError("Could not take a writer lock in PostgreSQL.")

    def ensure(self) -> str | None:
        """Check the lock's connection; if it is gone, take a new lock. Returns the previous
        token when it changed, else None."""
        with self._mutex:
            try:
                assert self.conn is not None
                self.conn.execute("SELECT 1")
                return None
            except (psycopg.Error, AssertionError):
                old = self.token
                self.close()
                self._take()
                return old

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def apply_pg_migrations(conn: psycopg.Connection[Any], upto: int | None = None) -> int:
    """Bring the database behind `conn` to schema `upto` (default: the latest); returns the
    resulting version, kept in the one-row table `schema_version`.

    Every step runs in its own transaction holding a transaction-level advisory lock and
    re-reads the version inside it, so replicas starting together migrate each step once,
    and a failing step rolls back completely (PostgreSQL DDL is transactional).
    """
    upto = migrations.SCHEMA_VERSION if upto is None else upto
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, _MIGRATION_LOCK))
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        migrations.check_not_newer(_read_version(conn), "another database")
    schema = migrations.Schema(conn.execute, real="DOUBLE PRECISION")
    for step in migrations.MIGRATIONS:
        if step.version > upto:
            break
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_SPACE, _MIGRATION_LOCK))
            if _read_version(conn) >= step.version:
                continue
            step.apply(schema)
            conn.execute("DELETE FROM schema_version")
            conn.execute("INSERT INTO schema_version (version) VALUES (%s)", (step.version,))
    return _read_version(conn)


class PostgresStore(SQLStore):
    """The Store over a PostgreSQL database (psycopg 3 + a connection pool); thread-safe, and
    any number of processes on any number of hosts may share the database."""

    _like = "ILIKE"
    _concat = "string_agg"
    _same = "IS NOT DISTINCT FROM"
    _bytewise = ' COLLATE "C"'
    _row_locks = True

    def __init__(self, url: str, *, recover: bool = True, owner: str = ANONYMOUS,
                 min_size: int = 1, max_size: int = 10, timeout_s: float = 15.0) -> None:
        self.url = _clean_base_url(url)  # no user, password or query: for repr() and errors
        kwargs: dict[str, Any] = {"connect_timeout": max(2, int(timeout_s)),
                                  "application_name": "wafer-playground", **_KEEPALIVE}
        try:
            self._writer_lock = _WriterLock(url, kwargs)
        except psycopg.OperationalError as exc:
            raise StoreError(f"Cannot reach the PostgreSQL store at {self.url}: "
                             f"{str(exc).strip().splitlines()[-1]}") from None
        try:
            with psycopg.connect(url, **kwargs) as conn:
                self.schema_version = apply_pg_migrations(conn)
            # check=: a connection the server dropped (restart, failover) is replaced before
            # a store call gets it, instead of failing that call
            self._pool = ConnectionPool(
                url, min_size=min_size, max_size=max_size, timeout=timeout_s,
                kwargs={**kwargs, "options": f"-c lock_timeout={int(timeout_s * 1000)}"},
                check=ConnectionPool.check_connection, name="wafer-playground-store",
                open=True)
        except BaseException:
            self._writer_lock.close()
            raise
        self.owner = owner
        self.recovered_on_open = self.recover_interrupted() if recover else 0

    @property
    def _writer(self) -> str:
        return self._writer_lock.token

    # -- plumbing

    @contextmanager
    def _tx(self) -> Iterator[_Cursor]:
        # The pool commits when the block ends normally and rolls back on an exception.
        try:
            with self._pool.connection() as conn:
                yield _Cursor(conn)
        except PoolTimeout as exc:
            raise StoreError(f"The PostgreSQL store at {self.url} is busy or unreachable: "
                             f"{exc}") from None

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._tx() as c:
            return c.execute(sql, args).fetchall()

    def _writer_check(self) -> Callable[[str | None], bool]:
        old = self._writer_lock.ensure()
        if old:  # our lock was lost and taken again: our live rows follow it
            with self._tx() as c:
                for table in ("turns", "requests"):
                    c.execute(f"UPDATE {table} SET writer = ? WHERE writer = ?"
                              " AND status = 'streaming'", (self._writer, old))
        live = {int(r[0]) for r in self._query(
            "SELECT objid::bigint FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND classid::bigint = ? AND objsubid = 2", (LOCK_SPACE,))}

        def alive(token: str | None) -> bool:
            kind, _, rest = (token or "").partition(":")
            wid = rest.partition(":")[0]
            return kind == "pg" and wid.isdigit() and int(wid) in live
        return alive

    def close(self) -> None:
        self._pool.close()
        self._writer_lock.close()

    def __repr__(self) -> str:
        return f"PostgresStore({self.url!r}, schema={self.schema_version})"
