"""A real PostgreSQL server for the tests, and the `backend` fixture that runs the store suite
on both SQLite and PostgreSQL.

The session fixture runs Debian's `initdb` and `pg_ctl` (PostgreSQL 15 at
/usr/lib/postgresql/15/bin, or `WAFER_PG_BIN`) in a temporary folder, listening on a free
127.0.0.1 port with a random password, and stops the server by its PID at the end. Both tools
refuse to run as root, so as root (CI) they run as the `postgres` user, in a folder it owns.
Without the binaries the PostgreSQL params skip, unless `WAFER_REQUIRE_POSTGRES=1` (set by
.ci/run), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wafer_playground.local.net import HOST, free_port
from wafer_playground.store import SQLStore, open_store

REQUIRE_ENV = "WAFER_REQUIRE_POSTGRES"
TABLES = ("conversations", "turns", "requests", "presets", "prompts", "grammars", "votes",
          "prompt_versions", "eval_test_sets", "eval_runs", "eval_cells")


def find_pg_bin() -> Path | None:
    """The folder holding initdb/pg_ctl/postgres: $WAFER_PG_BIN, else the newest Debian one."""
    env = os.environ.get("WAFER_PG_BIN")
    candidates = [Path(env)] if env else sorted(
        Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name)
        if p.parent.name.isdigit() else 0, reverse=True)
    for d in candidates:
        if all((d / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return d
    initdb = None if env else shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


class PostgresServer:
    """One throwaway cluster: `start()`, `create_database()`, `stop()` (by PID)."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.port = free_port()
        self.password = secrets.token_hex(16)
        self.user = "wafer"
        self.root = Path(tempfile.mkdtemp(prefix="wafer-pg-"))
        self.data = self.root / "data"
        self.pid: int | None = None

    def _as_owner(self, argv: list[str]) -> list[str]:
        # initdb and pg_ctl refuse to run as root; CI runs as root.
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        (self.root / "sock").mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres", "postgres")
            for p in (pwfile, self.root / "sock"):
                shutil.chown(p, "postgres", "postgres")
        subprocess.run(self._as_owner([
            str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user,
            "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8", "--locale=C.UTF-8",
        ]), check=True, capture_output=True, timeout=120)
        pwfile.unlink()
        # fsync off: this cluster lives for one test session; a process crash (what the
        # store tests kill) loses nothing either way, only an OS crash would.
        opts = (f"-p {self.port} -k {self.root / 'sock'} -c listen_addresses={HOST}"
                " -c fsync=off -c full_page_writes=off -c max_connections=300")
        subprocess.run(self._as_owner([
            str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"),
            "-w", "-t", "60", "-o", opts, "start",
        ]), check=True, capture_output=True, timeout=90)
        self.pid = int((self.data / "postmaster.pid").read_text().split()[0])

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{HOST}:{self.port}/{database}"

    def create_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def log(self) -> str:
        with contextlib.suppress(OSError):
            return (self.root / "log").read_text(errors="replace")
        return ""

    def stop(self) -> None:
        if self.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGINT)  # "fast" shutdown
            deadline = time.monotonic() + 30
            while Path(f"/proc/{self.pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            if Path(f"/proc/{self.pid}").exists():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(self.pid, signal.SIGKILL)
            self.pid = None
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    bindir = find_pg_bin()
    if bindir is None:
        reason = ("PostgreSQL binaries not found (apt-get install postgresql, or set "
                  "WAFER_PG_BIN to the folder holding initdb and pg_ctl)")
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{REQUIRE_ENV}=1 but {reason}")
        pytest.skip(reason)
    server = PostgresServer(bindir)
    try:
        server.start()
    except BaseException:
        server.stop()
        raise
    yield server
    server.stop()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """A fresh database on the session's server."""
    return postgres_server.create_database()


class Backend:
    """One store backend for a test: named databases, raw SQL, and closing what it opened."""

    def __init__(self, name: str, tmp_path: Path, server: PostgresServer | None) -> None:
        self.name = name
        self._tmp = tmp_path
        self._server = server
        self._targets: dict[str, str] = {}
        self._opened: list[SQLStore] = []

    def target(self, db: str = "t") -> str:
        """The file path or URL of database `db` (created on first use)."""
        if db not in self._targets:
            self._targets[db] = (str(self._tmp / f"{db}.db") if self._server is None
                                 else self._server.create_database())
        return self._targets[db]

    def open(self, db: str = "t", **kw: Any) -> Any:
        store = open_store(self.target(db), **kw)
        self._opened.append(store)
        return store

    @contextlib.contextmanager
    def connect(self, db: str = "t") -> Iterator[Any]:
        """A raw autocommit connection; `execute(sql)` works on both (no parameters)."""
        if self._server is None:
            con = sqlite3.connect(self.target(db), isolation_level=None)
        else:
            import psycopg

            con = psycopg.connect(self.target(db), autocommit=True)
        try:
            yield con
        finally:
            con.close()

    def execute(self, db: str, sql: str, args: tuple[Any, ...] = ()) -> None:
        """Raw SQL with `?` placeholders, outside the store (to fake other writers)."""
        with self.connect(db) as con:
            con.execute(sql if self._server is None else sql.replace("?", "%s"), args)

    def columns(self, db: str, table: str) -> set[str]:
        with self.connect(db) as con:
            if self._server is None:
                return {r[1] for r in con.execute(f"PRAGMA table_info({table})")}
            return {r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s",
                (table,))}

    def version(self, db: str) -> int:
        """The schema version as the database records it (user_version / schema_version)."""
        with self.connect(db) as con:
            if self._server is None:
                return int(con.execute("PRAGMA user_version").fetchone()[0])
            return int(con.execute("SELECT max(version) FROM schema_version").fetchone()[0])

    def migrate(self, db: str, upto: int) -> None:
        """Bring database `db` to schema `upto` only, as an older release left it."""
        from wafer_playground.store import apply_migrations
        from wafer_playground.store.postgres import apply_pg_migrations

        with self.connect(db) as con:
            if self._server is None:
                assert apply_migrations(con, upto=upto) == upto
            else:
                con.autocommit = False
                assert apply_pg_migrations(con, upto=upto) == upto
                con.commit()

    def dump(self, db: str = "t") -> str:
        """Every value stored in every table, as text (to prove a secret never got in)."""
        out: list[str] = []
        with self.connect(db) as con:
            for table in TABLES:
                for row in con.execute(f"SELECT * FROM {table}"):
                    out.extend(str(v) for v in row)
        if self._server is None:  # and the file's raw bytes, WAL included
            for suffix in ("", "-wal"):
                p = Path(self.target(db) + suffix)
                if p.exists():
                    out.append(p.read_bytes().decode("utf-8", "replace"))
        return "\n".join(out)

    def close_all(self) -> None:
        for s in self._opened:
            with contextlib.suppress(Exception):
                s.close()


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """The store suite's backend: every test using it runs on SQLite and on PostgreSQL."""
    server = (request.getfixturevalue("postgres_server") if request.param == "postgres"
              else None)
    b = Backend(request.param, tmp_path, server)
    yield b
    b.close_all()
