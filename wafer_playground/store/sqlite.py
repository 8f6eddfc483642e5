"""The SQLite backend: one stdlib sqlite3 file in WAL mode, the version in `PRAGMA
user_version`. The default store; docs/STORAGE.md explains the schema and its rules."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .base import SQLStore
from .migrations import apply_migrations
from .open import default_db_path
from .records import ANONYMOUS


def _proc_start(pid: int) -> str:
    """Kernel start time of `pid` (Linux), to tell a live writer from a reused pid."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    # Field 22 (starttime); the command name (field 2) may contain spaces, so split after ')'.
    rest = stat.rsplit(")", 1)[-1].split()
    return rest[19] if len(rest) > 19 else ""


def _writer_token() -> str:
    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{_proc_start(pid)}"


def _writer_alive(token: str | None) -> bool:
    if not token:
        return False
    host, _, rest = token.partition(":")
    pid_s, _, start = rest.partition(":")
    # SQLite files are single-machine; a row from another host (or a container that was
    # replaced) can only be from a process that is gone as far as this file is concerned.
    if host != socket.gethostname() or not pid_s.isdigit():
        return False
    pid = int(pid_s)
    if pid == os.getpid():
        return start == _proc_start(pid)
    if Path("/proc").is_dir():
        now = _proc_start(pid)
        return bool(now) and now == start
    if os.name == "posix":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return False  # no cheap liveness check elsewhere: recovery is the safer default


class SQLiteStore(SQLStore):
    """The Store over one SQLite file. Safe to share between threads (one lock-guarded
    connection); several processes may open the same file (WAL + busy_timeout).
    `for_owner` views share the connection and lock.
    """

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 busy_timeout_ms: int = 15_000, recover: bool = True,
                 owner: str = ANONYMOUS) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._writer_value = _writer_token()
        # isolation_level=None: we issue BEGIN IMMEDIATE ourselves, so a write transaction
        # takes the write lock up front instead of failing on a read->write upgrade (which
        # the busy handler cannot retry) when another process writes at the same moment.
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout_ms / 1000, isolation_level=None,
            check_same_thread=False,
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        self._conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL in WAL: a committed write survives a process crash (kill -9); only an OS
        # crash/power cut can lose the last commits. Per-second turn updates stay cheap.
        self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.execute("PRAGMA foreign_keys = ON")
        self.schema_version = apply_migrations(self._conn)
        self.owner = owner
        self.recovered_on_open = self.recover_interrupted() if recover else 0

    # -- plumbing

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def _writer_check(self) -> Callable[[str | None], bool]:
        return _writer_alive

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, schema={self.schema_version})"
