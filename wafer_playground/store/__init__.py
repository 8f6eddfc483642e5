"""Durable storage: conversations, turns, request log, presets, prompts, grammars, votes.

`Store` (protocol.py) is what pages and components code against. Two backends share one SQL
implementation (base.py) and one list of migrations (migrations.py): `SQLiteStore`
(sqlite.py, the default: one file) and `PostgresStore` (postgres.py, for a team server).
`open_store()` picks one from `WAFER_PLAYGROUND_DB` (open.py). Key detection lives in
secrets.py, prompt templates in templates.py. docs/STORAGE.md explains the schema and rules.
"""

from .base import SQLStore
from .migrations import MIGRATIONS, SCHEMA_VERSION, Migration, Schema, apply_migrations
from .open import default_db_path, default_db_target, is_postgres_url, open_store
from .protocol import Store
from .records import (
    ANONYMOUS,
    APP_NAME,
    ENV_DB,
    REQUEST_LOG_COLUMNS,
    ROLES,
    SURFACES,
    TURN_STATUSES,
    Conversation,
    ConversationSummary,
    NotFound,
    Preset,
    RequestRecord,
    Role,
    SavedGrammar,
    SavedPrompt,
    SecretRefused,
    SpendRow,
    StoreError,
    Surface,
    Turn,
    TurnStatus,
    Vote,
)
from .secrets import is_secret_name, looks_like_secret, redact_secrets, secret_paths
from .sqlite import SQLiteStore
from .templates import RenderResult, prompt_variables, render
from .totals import SPEND_KEYS, LogTotals, request_log_totals, spend_frame
from .values import format_ts, now_iso, parse_ts

__all__ = [
    "ANONYMOUS", "APP_NAME", "ENV_DB", "MIGRATIONS", "REQUEST_LOG_COLUMNS", "ROLES",
    "SCHEMA_VERSION", "SPEND_KEYS", "SURFACES", "TURN_STATUSES", "Conversation",
    "ConversationSummary", "LogTotals", "Migration", "NotFound", "Preset", "RenderResult",
    "RequestRecord", "Role", "SQLStore", "SQLiteStore", "SavedGrammar", "SavedPrompt", "Schema",
    "SecretRefused", "SpendRow", "Store", "StoreError", "Surface", "Turn", "TurnStatus", "Vote",
    "apply_migrations", "default_db_path", "default_db_target", "format_ts", "is_postgres_url",
    "is_secret_name", "looks_like_secret", "now_iso", "open_store", "parse_ts", "prompt_variables",
    "redact_secrets", "render", "request_log_totals", "secret_paths", "spend_frame",
]
