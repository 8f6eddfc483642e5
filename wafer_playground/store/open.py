"""Where the store lives: `WAFER_PLAYGROUND_DB` names an SQLite file or a PostgreSQL URL."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .records import APP_NAME, ENV_DB

if TYPE_CHECKING:
    from .base import SQLStore


def is_postgres_url(target: str | os.PathLike[str]) -> bool:
    """True for `postgresql://…` / `postgres://…` connection URLs."""
    return str(target).strip().lower().startswith(("postgresql://", "postgres://"))


def default_db_target() -> str:
    """$WAFER_PLAYGROUND_DB as given (a file path or a PostgreSQL URL), else the default file."""
    env = os.environ.get(ENV_DB, "").strip()
    return env if is_postgres_url(env) else str(default_db_path())


def default_db_path() -> Path:
    """$WAFER_PLAYGROUND_DB, else `<user data dir>/wafer-playground/playground.db`."""
    env = os.environ.get(ENV_DB, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "playground.db"


def open_store(target: str | os.PathLike[str] | None = None, *, recover: bool = True) -> SQLStore:
    """The store for `target` (default: `default_db_target()`): a PostgreSQL URL opens a
    `PostgresStore`, anything else is an SQLite file."""
    target = default_db_target() if target is None else target
    if is_postgres_url(target):
        from .postgres import PostgresStore

        return PostgresStore(str(target), recover=recover)
    from .sqlite import SQLiteStore

    return SQLiteStore(target, recover=recover)
