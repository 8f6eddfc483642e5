"""Durable storage: conversations, turns, request log, presets, prompts, grammars, votes.

`Store` is the protocol pages and components code against; `SQLiteStore` is the default
(and only tested) implementation: one stdlib sqlite3 file in WAL mode, versioned migrations
tracked in `PRAGMA user_version`. docs/STORAGE.md explains the schema and how to back the
protocol with PostgreSQL for a server deployment.

Rules enforced here, not left to callers:
- nothing key-like is ever written: a params/meta dict with a field named like a credential
  (api_key, authorization, ...) or a value that looks like a key is refused (`SecretRefused`);
- turns are written as they happen (`start_turn` then `update_turn`), so a killed process loses
  at most what was in flight; on open, turns left "streaming" by a dead process become
  "interrupted".
"""

from __future__ import annotations

import copy
import json
import os
import re
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:
    import pandas as pd

TurnStatus = Literal["streaming", "done", "stopped", "error", "interrupted"]
Surface = Literal["chat", "completions", "messages"]
Role = Literal["system", "user", "assistant", "tool"]

TURN_STATUSES: tuple[str, ...] = ("streaming", "done", "stopped", "error", "interrupted")
SURFACES: tuple[str, ...] = ("chat", "completions", "messages")
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool")

ENV_DB = "WAFER_PLAYGROUND_DB"
# The owner of history made without a key; equal to `client.key_fingerprint(None)`.
ANONYMOUS = "anonymous"
APP_NAME = "wafer-playground"


class StoreError(Exception):
    """A storage operation failed in a way the user should read (bad schema, missing row)."""


class SecretRefused(StoreError):
    """Refused to store data that contains a credential-like field or value."""


class NotFound(StoreError):
    """The row does not exist (deleted by another session, or a stale id)."""


# --------------------------------------------------------------------------- key detection

# Field names are compared after lower-casing and dropping non-alphanumerics, so "API-Key",
# "api_key" and "apiKey" all normalise to "apikey".
# Bare "token"/"key" are deliberately absent: logprobs entries carry a "token" field.
_SECRET_NAMES = frozenset({
    "apikey", "xapikey", "apikeys", "authorization", "auth", "proxyauthorization",
    "bearer", "accesstoken", "authtoken", "bearertoken", "refreshtoken", "idtoken",
    "sessiontoken", "secret", "clientsecret", "secretkey", "password", "passwd", "cookie",
    "setcookie", "credentials", "credential", "privatekey",
})
_SECRET_SUFFIXES = ("apikey", "secret", "password", "authorization", "accesstoken", "authtoken")
# Wafer keys are `wfr_…`; OpenAI/Anthropic-style keys are accepted by compatible servers too.
# The 16-character floor keeps ordinary words such as "sk-learn" from matching.
_SECRET_VALUE = re.compile(
    r"(?:\bBearer\s+\S{8,})|(?:\b(?:wfr|sk|sk-ant|sk-proj|rk)[-_][A-Za-z0-9_\-]{16,})"
)


def is_secret_name(name: str) -> bool:
    """True for field names that carry credentials (api_key, Authorization, x-api-key, ...)."""
    norm = re.sub(r"[^a-z0-9]", "", name.lower())
    return norm in _SECRET_NAMES or norm.endswith(_SECRET_SUFFIXES)


def looks_like_secret(value: str) -> bool:
    """True when a string value looks like an API key or a bearer credential."""
    return bool(_SECRET_VALUE.search(value))


def redact_secrets(text: str, replacement: str = "[redacted]") -> str:
    """`text` with every key-like substring replaced."""
    return _SECRET_VALUE.sub(replacement, text)


def secret_paths(obj: Any, path: str = "") -> list[str]:
    """Paths (e.g. `headers.Authorization`, `messages[0].content`) of key-like names/values."""
    found: list[str] = []
    if isinstance(obj, Mapping):
        for k, v in obj.items():
            p = f"{path}.{k}" if path else str(k)
            if is_secret_name(str(k)):
                found.append(p)
            else:
                found.extend(secret_paths(v, p))
    elif isinstance(obj, list | tuple):
        for i, v in enumerate(obj):
            found.extend(secret_paths(v, f"{path}[{i}]"))
    elif isinstance(obj, str) and looks_like_secret(obj):
        found.append(path or "<value>")
    return found


def _check_no_secrets(what: str, obj: Any) -> None:
    bad = secret_paths(obj)
    if bad:
        # Name the fields, never echo their values.
        raise SecretRefused(
            f"Refusing to store {what}: it contains credential-like data at {', '.join(bad)}. "
            "Keys and auth headers are never saved."
        )


# --------------------------------------------------------------------------- prompt templates

_VAR = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_.\-]*)\s*\}\}")


@dataclass(frozen=True)
class RenderResult:
    text: str
    missing: tuple[str, ...]  # variables the prompt uses but `values` lacks (left as {{name}})
    unused: tuple[str, ...]  # values given that the prompt never uses

    @property
    def ok(self) -> bool:
        return not self.missing


def prompt_variables(prompt: str) -> list[str]:
    """Variable names in first-use order, each once."""
    seen: dict[str, None] = {}
    for m in _VAR.finditer(prompt):
        seen.setdefault(m.group(1), None)
    return list(seen)


def render(prompt: str, values: Mapping[str, Any]) -> RenderResult:
    """Fill `{{name}}` placeholders in one pass (values are not re-expanded)."""
    missing: dict[str, None] = {}

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name in values and values[name] is not None:
            return str(values[name])
        missing.setdefault(name, None)
        return m.group(0)

    text = _VAR.sub(sub, prompt)
    used = set(prompt_variables(prompt))
    unused = tuple(k for k in values if k not in used)
    return RenderResult(text=text, missing=tuple(missing), unused=unused)


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    model: str | None
    surface: str
    params: dict[str, Any]
    created_at: str  # ISO 8601 UTC, microseconds, "Z"
    updated_at: str


@dataclass(frozen=True)
class ConversationSummary:
    id: str
    title: str
    model: str | None
    surface: str
    created_at: str
    updated_at: str
    turn_count: int
    cost_usd: Decimal | None  # None when no linked request had a known cost
    preview: str  # first user message, shortened


@dataclass(frozen=True)
class Turn:
    id: str
    conversation_id: str
    seq: int
    role: str
    content: str
    status: str
    meta: dict[str, Any]
    created_at: str
    updated_at: str


@dataclass(frozen=True)
class RequestRecord:
    id: str
    ts: str
    model: str
    base_url: str
    surface: str
    params: dict[str, Any]
    status: str
    conversation_id: str | None = None
    turn_id: str | None = None
    http_status: int | None = None
    request_id: str | None = None
    error_code: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None
    cost_usd: Decimal | None = None
    cost_kind: str | None = None
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    duration_s: float | None = None
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Preset:
    id: str
    name: str
    surface: str
    params: dict[str, Any]
    updated_at: str


@dataclass(frozen=True)
class SavedPrompt:
    id: str
    name: str
    text: str
    updated_at: str

    @property
    def variables(self) -> list[str]:
        return prompt_variables(self.text)


@dataclass(frozen=True)
class SavedGrammar:
    id: str
    name: str
    ebnf: str
    updated_at: str


@dataclass(frozen=True)
class Vote:
    id: str
    ts: str
    prompt: str
    candidates: list[str]  # model ids shown (in display order)
    winner: str | None  # None = tie / no preference
    blind: bool
    meta: dict[str, Any]


REQUEST_LOG_COLUMNS = (
    "id", "ts", "model", "surface", "base_url", "status", "prompt_tokens", "cached_tokens",
    "completion_tokens", "reasoning_tokens", "cost_usd", "ttft_s", "tokens_per_s",
    "request_id", "error_code", "conversation_id",
)


# --------------------------------------------------------------------------- protocol


@runtime_checkable
class Store(Protocol):
    """What the app needs from storage. SQLiteStore implements it; see docs/STORAGE.md."""

    owner: str  # whose history this store sees and writes (a key fingerprint)

    # conversations and turns
    def create_conversation(self, title: str = "", *, model: str | None = None,
                            surface: Surface = "chat",
                            params: Mapping[str, Any] | None = None) -> str: ...
    def get_conversation(self, conversation_id: str) -> Conversation | None: ...
    def update_conversation(self, conversation_id: str, *, title: str | None = None,
                            model: str | None = None,
                            params: Mapping[str, Any] | None = None) -> None: ...
    def rename_conversation(self, conversation_id: str, title: str) -> None: ...
    def delete_conversation(self, conversation_id: str) -> None: ...
    def list_conversations(self, search: str | None = None, *,
                           limit: int = 200) -> list[ConversationSummary]: ...
    def start_turn(self, conversation_id: str, role: Role, content: str = "",
                   meta: Mapping[str, Any] | None = None, *,
                   status: TurnStatus | None = None) -> str: ...
    def update_turn(self, turn_id: str, *, content: str | None = None,
                    status: TurnStatus | None = None,
                    meta: Mapping[str, Any] | None = None) -> None: ...
    def get_turn(self, turn_id: str) -> Turn | None: ...
    def list_turns(self, conversation_id: str) -> list[Turn]: ...
    def delete_turns_from(self, conversation_id: str, seq: int) -> int: ...
    def recover_interrupted(self) -> int: ...

    # request log
    def log_request(self, *, model: str, base_url: str, surface: Surface,
                    params: Mapping[str, Any], status: TurnStatus = "streaming",
                    **fields: Any) -> str: ...
    def update_request(self, request_row_id: str, **fields: Any) -> None: ...
    def get_request(self, request_row_id: str) -> RequestRecord | None: ...
    def list_requests(self, *, surface: Surface | None = None,
                      conversation_id: str | None = None,
                      limit: int = 1000) -> list[RequestRecord]: ...
    def request_log_frame(self, *, limit: int = 100_000) -> pd.DataFrame: ...

    # presets, prompts, grammars, votes
    def save_preset(self, name: str, params: Mapping[str, Any], *,
                    surface: Surface = "chat") -> str: ...
    def list_presets(self, surface: Surface | None = None) -> list[Preset]: ...
    def get_preset(self, name: str) -> Preset | None: ...
    def delete_preset(self, name: str) -> None: ...
    def save_prompt(self, name: str, text: str) -> str: ...
    def list_prompts(self) -> list[SavedPrompt]: ...
    def get_prompt(self, name: str) -> SavedPrompt | None: ...
    def delete_prompt(self, name: str) -> None: ...
    def save_grammar(self, name: str, ebnf: str) -> str: ...
    def list_grammars(self) -> list[SavedGrammar]: ...
    def get_grammar(self, name: str) -> SavedGrammar | None: ...
    def delete_grammar(self, name: str) -> None: ...
    def record_vote(self, prompt: str, candidates: Sequence[str], winner: str | None, *,
                    blind: bool = True, meta: Mapping[str, Any] | None = None) -> str: ...
    def list_votes(self, limit: int = 1000) -> list[Vote]: ...
    def vote_tally(self) -> dict[str, dict[str, int]]: ...

    # transcript import (one transaction)
    def import_conversation(self, conversation: Mapping[str, Any],
                            turns: Sequence[Mapping[str, Any]],
                            requests: Sequence[Mapping[str, Any]] = ()) -> str: ...

    def close(self) -> None: ...


# --------------------------------------------------------------------------- helpers


def default_db_path() -> Path:
    """$WAFER_PLAYGROUND_DB, else `<user data dir>/wafer-playground/playground.db`."""
    env = os.environ.get(ENV_DB, "").strip()
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)) / "playground.db"


def now_iso() -> str:
    return format_ts(datetime.now(UTC))


def format_ts(dt: datetime) -> str:
    """One fixed timestamp format, so text order is time order and round trips are exact."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(text: str) -> datetime:
    """Parse an ISO 8601 timestamp (any offset); naive values are taken as UTC."""
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def _new_id() -> str:
    return uuid.uuid4().hex


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False, default=_json_default)


def _json_default(o: Any) -> Any:
    if isinstance(o, Decimal):
        return str(o)
    if isinstance(o, datetime):
        return format_ts(o)
    raise TypeError(f"{type(o).__name__} is not JSON-serialisable")


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else {}


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


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, Decimal):
        return value
    total = getattr(value, "total", None)  # accept a costs.Cost as well as a Decimal
    if total is not None or hasattr(value, "kind"):
        return _decimal(total)
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise StoreError(f"cost {value!r} is not a number") from exc


def _usage_fields(usage: Any) -> dict[str, int | None]:
    """Accept costs.Usage, an OpenAI usage dict, or a flat dict of the four counts."""
    names = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
    if usage is None:
        return {}
    if isinstance(usage, Mapping):
        out: dict[str, int | None] = {n: usage.get(n) for n in names}
        ptd = usage.get("prompt_tokens_details") or {}
        ctd = usage.get("completion_tokens_details") or {}
        if out["cached_tokens"] is None and isinstance(ptd, Mapping):
            out["cached_tokens"] = ptd.get("cached_tokens")
        if out["reasoning_tokens"] is None and isinstance(ctd, Mapping):
            out["reasoning_tokens"] = ctd.get("reasoning_tokens")
        if out["prompt_tokens"] is None and "input_tokens" in usage:  # Anthropic shape
            out["prompt_tokens"] = usage.get("input_tokens")
            out["completion_tokens"] = usage.get("output_tokens")
            out["cached_tokens"] = usage.get("cache_read_input_tokens")
    else:
        out = {n: getattr(usage, n, None) for n in names}
    return {k: (int(v) if v is not None else None) for k, v in out.items()}


_REQUEST_FIELDS = (
    "conversation_id", "turn_id", "http_status", "request_id", "error_code", "prompt_tokens",
    "completion_tokens", "cached_tokens", "reasoning_tokens", "cost_usd", "cost_kind", "ttft_s",
    "tokens_per_s", "duration_s", "response", "status", "model", "params",
)


# --------------------------------------------------------------------------- migrations

def _rebuild_owned(table: str, columns: str, names: str) -> tuple[str, ...]:
    """Statements that rebuild a named-library table with an owner and UNIQUE(owner, name)."""
    return (
        f"CREATE TABLE {table}_new (id TEXT PRIMARY KEY,"
        f" owner TEXT NOT NULL DEFAULT '{ANONYMOUS}', name TEXT NOT NULL, {columns},"
        " updated_at TEXT NOT NULL, UNIQUE (owner, name))",
        f"INSERT INTO {table}_new (id, name, {names}, updated_at)"
        f" SELECT id, name, {names}, updated_at FROM {table}",
        f"DROP TABLE {table}",
        f"ALTER TABLE {table}_new RENAME TO {table}",
    )


# Append only: a shipped migration is never edited, a new one is added with the next version.
MIGRATIONS: list[tuple[int, str, tuple[str, ...]]] = [
    (1, "conversations, turns and the request log", (
        """CREATE TABLE conversations (
            id TEXT PRIMARY KEY,
            title TEXT NOT NULL DEFAULT '',
            model TEXT,
            surface TEXT NOT NULL DEFAULT 'chat',
            params TEXT NOT NULL DEFAULT '{}',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE turns (
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
            UNIQUE (conversation_id, seq))""",
        "CREATE INDEX turns_streaming ON turns(status) WHERE status = 'streaming'",
        """CREATE TABLE requests (
            id TEXT PRIMARY KEY,
            ts TEXT NOT NULL,
            conversation_id TEXT REFERENCES conversations(id) ON DELETE SET NULL,
            turn_id TEXT REFERENCES turns(id) ON DELETE SET NULL,
            model TEXT NOT NULL,
            base_url TEXT NOT NULL,
            surface TEXT NOT NULL,
            params TEXT NOT NULL DEFAULT '{}',
            status TEXT NOT NULL,
            http_status INTEGER,
            request_id TEXT,
            error_code TEXT,
            prompt_tokens INTEGER,
            completion_tokens INTEGER,
            cost_usd TEXT,
            ttft_s REAL,
            tokens_per_s REAL,
            writer TEXT)""",
        "CREATE INDEX requests_ts ON requests(ts)",
        "CREATE INDEX requests_conversation ON requests(conversation_id)",
    )),
    (2, "cache/reasoning token counts, cost kind, duration and response on the request log", (
        "ALTER TABLE requests ADD COLUMN cached_tokens INTEGER",
        "ALTER TABLE requests ADD COLUMN reasoning_tokens INTEGER",
        "ALTER TABLE requests ADD COLUMN cost_kind TEXT",
        "ALTER TABLE requests ADD COLUMN duration_s REAL",
        "ALTER TABLE requests ADD COLUMN response TEXT NOT NULL DEFAULT '{}'",
        "CREATE INDEX requests_streaming ON requests(status) WHERE status = 'streaming'",
    )),
    (3, "presets, saved prompts, saved grammars, compare votes", (
        """CREATE TABLE presets (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            surface TEXT NOT NULL DEFAULT 'chat',
            params TEXT NOT NULL DEFAULT '{}',
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE prompts (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            text TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE grammars (
            id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            ebnf TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE votes (
            id TEXT PRIMARY KEY,
            ts TEXT NOT NULL,
            prompt TEXT NOT NULL DEFAULT '',
            candidates TEXT NOT NULL,
            winner TEXT,
            blind INTEGER NOT NULL DEFAULT 1,
            meta TEXT NOT NULL DEFAULT '{}')""",
    )),
    # Rows from before v4 belong to the keyless owner: they were written without a key
    # fingerprint, so no key can claim them.
    (4, "history partitioned by owner (the API key's fingerprint)", (
        f"ALTER TABLE conversations ADD COLUMN owner TEXT NOT NULL DEFAULT '{ANONYMOUS}'",
        f"ALTER TABLE requests ADD COLUMN owner TEXT NOT NULL DEFAULT '{ANONYMOUS}'",
        f"ALTER TABLE votes ADD COLUMN owner TEXT NOT NULL DEFAULT '{ANONYMOUS}'",
        "CREATE INDEX conversations_owner ON conversations(owner, updated_at)",
        "CREATE INDEX requests_owner ON requests(owner, ts)",
        "CREATE INDEX votes_owner ON votes(owner, ts)",
    )),
    # A saved prompt can be as private as a chat: the library is per key too. SQLite cannot
    # change a UNIQUE constraint in place, so each table is rebuilt with UNIQUE(owner, name).
    (5, "presets, saved prompts and saved grammars partitioned by owner", (
        *_rebuild_owned("presets", "surface TEXT NOT NULL DEFAULT 'chat',"
                                   " params TEXT NOT NULL DEFAULT '{}'", "surface, params"),
        *_rebuild_owned("prompts", "text TEXT NOT NULL", "text"),
        *_rebuild_owned("grammars", "ebnf TEXT NOT NULL", "ebnf"),
    )),
]
SCHEMA_VERSION = MIGRATIONS[-1][0]

# A turn is its owner's through its conversation (two parameters: turn id, owner).
_OWNED_TURN = ("FROM turns t JOIN conversations c ON c.id = t.conversation_id"
               " WHERE t.id = ? AND c.owner = ?")


def apply_migrations(conn: sqlite3.Connection, upto: int = SCHEMA_VERSION) -> int:
    """Bring `conn` (autocommit mode) to schema `upto`; returns the resulting version.

    Each migration runs in its own IMMEDIATE transaction and re-reads user_version inside it,
    so two processes opening a fresh file at once apply each step exactly once.
    """
    current = conn.execute("PRAGMA user_version").fetchone()[0]
    if current > SCHEMA_VERSION:
        raise StoreError(
            f"The database schema is version {current}, newer than this app understands "
            f"({SCHEMA_VERSION}). Upgrade Wafer Playground or point {ENV_DB} at another file."
        )
    for version, _desc, statements in MIGRATIONS:
        if version > upto:
            break
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                conn.execute("COMMIT")
                continue
            for stmt in statements:
                conn.execute(stmt)
            conn.execute(f"PRAGMA user_version = {int(version)}")
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def _auto_title(content: str, limit: int = 60) -> str:
    text = " ".join(content.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


# --------------------------------------------------------------------------- SQLite


class SQLiteStore:
    """The Store over one SQLite file. Safe to share between threads (one lock-guarded
    connection); several processes may open the same file (WAL + busy_timeout).

    History (conversations, their turns, the request log, votes) belongs to an *owner*: the
    fingerprint of the API key that made it (`client.key_fingerprint`). A store sees and
    changes only its owner's rows; `for_owner` gives another owner's view over the same
    connection. The library (presets, saved prompts, saved grammars) is per owner too.
    """

    owner: str = ANONYMOUS

    def __init__(self, path: str | os.PathLike[str] | None = None, *,
                 busy_timeout_ms: int = 15_000, recover: bool = True,
                 owner: str = ANONYMOUS) -> None:
        self.path = Path(path) if path is not None else default_db_path()
        if str(self.path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._writer = _writer_token()
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

    def for_owner(self, owner: str) -> SQLiteStore:
        """This store seen by `owner` (same file, connection and lock; cheap to make)."""
        if not owner:
            raise StoreError("An owner is a key fingerprint; it cannot be empty.")
        view = copy.copy(self)
        view.owner = owner
        return view

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

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r}, schema={self.schema_version})"

    # -- conversations

    def create_conversation(self, title: str = "", *, model: str | None = None,
                            surface: Surface = "chat",
                            params: Mapping[str, Any] | None = None) -> str:
        _check_surface(surface)
        params = dict(params or {})
        _check_no_secrets("conversation params", params)
        cid, ts = _new_id(), now_iso()
        with self._tx() as c:
            c.execute(
                "INSERT INTO conversations (id, title, model, surface, params, created_at,"
                " updated_at, owner) VALUES (?,?,?,?,?,?,?,?)",
                (cid, title.strip(), model, surface, _dumps(params), ts, ts, self.owner),
            )
        return cid

    def get_conversation(self, conversation_id: str) -> Conversation | None:
        rows = self._query("SELECT * FROM conversations WHERE id = ? AND owner = ?",
                           (conversation_id, self.owner))
        return _conversation(rows[0]) if rows else None

    def update_conversation(self, conversation_id: str, *, title: str | None = None,
                            model: str | None = None,
                            params: Mapping[str, Any] | None = None) -> None:
        sets: list[str] = []
        args: list[Any] = []
        if title is not None:
            sets.append("title = ?")
            args.append(title.strip())
        if model is not None:
            sets.append("model = ?")
            args.append(model)
        if params is not None:
            _check_no_secrets("conversation params", params)
            sets.append("params = ?")
            args.append(_dumps(dict(params)))
        if model is not None or params is not None:
            # A rename is not activity: it must not reorder the history list.
            sets.append("updated_at = ?")
            args.append(now_iso())
        if not sets:
            return
        with self._tx() as c:
            cur = c.execute(f"UPDATE conversations SET {', '.join(sets)}"
                            " WHERE id = ? AND owner = ?", (*args, conversation_id, self.owner))
            if cur.rowcount == 0:
                raise NotFound(f"conversation {conversation_id} does not exist")

    def rename_conversation(self, conversation_id: str, title: str) -> None:
        if not title.strip():
            raise StoreError("A conversation title cannot be empty.")
        self.update_conversation(conversation_id, title=title)

    def delete_conversation(self, conversation_id: str) -> None:
        # Request-log rows survive (conversation_id -> NULL): spend history must not vanish
        # when a chat is deleted.
        with self._tx() as c:
            c.execute("DELETE FROM conversations WHERE id = ? AND owner = ?",
                      (conversation_id, self.owner))

    def list_conversations(self, search: str | None = None, *,
                           limit: int = 200) -> list[ConversationSummary]:
        where, args = "WHERE c.owner = ?", [self.owner]
        if search and search.strip():
            pat = f"%{_like_escape(search.strip())}%"
            where += (
                " AND (c.title LIKE ? ESCAPE '\\' OR EXISTS (SELECT 1 FROM turns s WHERE"
                " s.conversation_id = c.id AND s.content LIKE ? ESCAPE '\\'))"
            )
            args += [pat, pat]
        rows = self._query(
            f"""SELECT c.*,
                  (SELECT COUNT(*) FROM turns t WHERE t.conversation_id = c.id) AS turn_count,
                  (SELECT group_concat(r.cost_usd, ' ') FROM requests r
                     WHERE r.conversation_id = c.id AND r.cost_usd IS NOT NULL) AS costs,
                  (SELECT substr(t.content, 1, 160) FROM turns t WHERE t.conversation_id = c.id
                     AND t.role = 'user' ORDER BY t.seq LIMIT 1) AS preview
                FROM conversations c {where}
                ORDER BY c.updated_at DESC, c.id LIMIT ?""",
            (*args, int(limit)),
        )
        out = []
        for r in rows:
            # Summed in Python: SQLite's SUM would turn the Decimal strings into floats.
            costs = [Decimal(x) for x in (r["costs"] or "").split()]
            out.append(ConversationSummary(
                id=r["id"], title=r["title"], model=r["model"], surface=r["surface"],
                created_at=r["created_at"], updated_at=r["updated_at"],
                turn_count=int(r["turn_count"]), cost_usd=sum(costs, Decimal(0)) if costs else None,
                preview=" ".join((r["preview"] or "").split()),
            ))
        return out

    # -- turns

    def start_turn(self, conversation_id: str, role: Role, content: str = "",
                   meta: Mapping[str, Any] | None = None, *,
                   status: TurnStatus | None = None) -> str:
        if role not in ROLES:
            raise StoreError(f"unknown role {role!r} (expected one of {', '.join(ROLES)})")
        status = status or ("streaming" if role == "assistant" else "done")
        _check_status(status)
        meta = dict(meta or {})
        _check_no_secrets("turn metadata", meta)
        tid, ts = _new_id(), now_iso()
        with self._tx() as c:
            if not c.execute("SELECT 1 FROM conversations WHERE id = ? AND owner = ?",
                             (conversation_id, self.owner)).fetchone():
                raise NotFound(f"conversation {conversation_id} does not exist")
            seq = c.execute("SELECT COALESCE(MAX(seq), -1) + 1 FROM turns WHERE"
                            " conversation_id = ?", (conversation_id,)).fetchone()[0]
            c.execute(
                "INSERT INTO turns (id, conversation_id, seq, role, content, status, meta,"
                " writer, created_at, updated_at) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (tid, conversation_id, seq, role, content, status, _dumps(meta),
                 self._writer if status == "streaming" else None, ts, ts),
            )
            c.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                      (ts, conversation_id))
            if role == "user" and content.strip():
                # An untitled chat is named after its first question (renamable later).
                c.execute("UPDATE conversations SET title = ? WHERE id = ? AND title = ''",
                          (_auto_title(content), conversation_id))
        return tid

    def update_turn(self, turn_id: str, *, content: str | None = None,
                    status: TurnStatus | None = None,
                    meta: Mapping[str, Any] | None = None) -> None:
        """Cheap enough to call about once a second while streaming (one small transaction).

        `meta` is merged into the stored meta (a key set to None is removed).
        """
        if status is not None:
            _check_status(status)
        if meta is not None:
            _check_no_secrets("turn metadata", meta)
        ts = now_iso()
        with self._tx() as c:
            row = c.execute(f"SELECT t.conversation_id, t.meta {_OWNED_TURN}",
                            (turn_id, self.owner)).fetchone()
            if row is None:
                raise NotFound(f"turn {turn_id} does not exist")
            sets, args = ["updated_at = ?"], [ts]
            if content is not None:
                sets.append("content = ?")
                args.append(content)
            if status is not None:
                sets += ["status = ?", "writer = ?"]
                args += [status, self._writer if status == "streaming" else None]
            if meta:
                merged = _loads(row["meta"])
                for k, v in meta.items():
                    if v is None:
                        merged.pop(k, None)
                    else:
                        merged[k] = v
                sets.append("meta = ?")
                args.append(_dumps(merged))
            c.execute(f"UPDATE turns SET {', '.join(sets)} WHERE id = ?", (*args, turn_id))
            c.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                      (ts, row["conversation_id"]))

    def get_turn(self, turn_id: str) -> Turn | None:
        rows = self._query(f"SELECT t.* {_OWNED_TURN}", (turn_id, self.owner))
        return _turn(rows[0]) if rows else None

    def list_turns(self, conversation_id: str) -> list[Turn]:
        rows = self._query(
            "SELECT t.* FROM turns t JOIN conversations c ON c.id = t.conversation_id"
            " WHERE t.conversation_id = ? AND c.owner = ? ORDER BY t.seq",
            (conversation_id, self.owner))
        return [_turn(r) for r in rows]

    def delete_turns_from(self, conversation_id: str, seq: int) -> int:
        """Drop turns with seq >= `seq` (edit/regenerate); returns how many were removed."""
        with self._tx() as c:
            if not c.execute("SELECT 1 FROM conversations WHERE id = ? AND owner = ?",
                             (conversation_id, self.owner)).fetchone():
                return 0
            cur = c.execute("DELETE FROM turns WHERE conversation_id = ? AND seq >= ?",
                            (conversation_id, int(seq)))
            c.execute("UPDATE conversations SET updated_at = ? WHERE id = ?",
                      (now_iso(), conversation_id))
            return cur.rowcount

    def recover_interrupted(self) -> int:
        """Mark turns/requests left "streaming" by dead processes as "interrupted".

        Returns the number of turns marked. Rows written by live processes (including this
        one) are left alone, so two servers sharing a file do not break each other's streams.
        """
        # Read first (partial indexes make this cheap): the History page calls this on every
        # draw, and it should not take the write lock when there is nothing to do.
        dead_turns = [(r["id"], r["writer"]) for r in self._query(
            "SELECT id, writer FROM turns WHERE status = 'streaming'")
            if not _writer_alive(r["writer"])]
        dead_reqs = [(r["id"], r["writer"]) for r in self._query(
            "SELECT id, writer FROM requests WHERE status = 'streaming'")
            if not _writer_alive(r["writer"])]
        if not dead_turns and not dead_reqs:
            return 0
        ts = now_iso()
        marked = 0
        with self._tx() as c:
            # Guarded by writer too: the row may have finished (or been taken over) meanwhile.
            for tid, writer in dead_turns:
                marked += c.execute(
                    "UPDATE turns SET status = 'interrupted', writer = NULL, updated_at = ?"
                    " WHERE id = ? AND status = 'streaming' AND writer IS ?",
                    (ts, tid, writer)).rowcount
            for rid, writer in dead_reqs:
                c.execute("UPDATE requests SET status = 'interrupted', writer = NULL"
                          " WHERE id = ? AND status = 'streaming' AND writer IS ?",
                          (rid, writer))
        return marked

    # -- request log

    def log_request(self, *, model: str, base_url: str, surface: Surface,
                    params: Mapping[str, Any], status: TurnStatus = "streaming",
                    **fields: Any) -> str:
        """Record a request when it is sent; `update_request` fills in the outcome.

        Extra fields: conversation_id, turn_id, http_status, request_id, error_code,
        usage (costs.Usage or an OpenAI/Anthropic usage dict), cost (Decimal dollars or a
        costs.Cost), cost_kind, ttft_s, tokens_per_s, duration_s, response (dict).
        `params` is the request body; it must not contain keys or headers.
        """
        _check_surface(surface)
        _check_status(status)
        rid = _new_id()
        cols = self._request_columns(dict(fields, params=params, status=status, model=model))
        cols.update(id=rid, ts=fields.get("ts") or now_iso(), base_url=_clean_base_url(base_url),
                    surface=surface, writer=self._writer if status == "streaming" else None,
                    owner=self.owner)
        names = list(cols)
        with self._tx() as c:
            c.execute(f"INSERT INTO requests ({', '.join(names)}) VALUES "
                      f"({', '.join('?' * len(names))})", [cols[n] for n in names])
        return rid

    def update_request(self, request_row_id: str, **fields: Any) -> None:
        cols = self._request_columns(fields)
        if "status" in cols:
            cols["writer"] = self._writer if cols["status"] == "streaming" else None
        if not cols:
            return
        with self._tx() as c:
            cur = c.execute(f"UPDATE requests SET {', '.join(f'{k} = ?' for k in cols)}"
                            " WHERE id = ? AND owner = ?",
                            (*cols.values(), request_row_id, self.owner))
            if cur.rowcount == 0:
                raise NotFound(f"request {request_row_id} does not exist")

    def _request_columns(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        fields = dict(fields)
        unknown = set(fields) - set(_REQUEST_FIELDS) - {"usage", "cost", "ts"}
        if unknown:
            raise StoreError(f"unknown request field(s): {', '.join(sorted(unknown))}")
        if "usage" in fields:
            for k, v in _usage_fields(fields.pop("usage")).items():
                fields.setdefault(k, v)
        if "cost" in fields:
            cost = fields.pop("cost")
            fields.setdefault("cost_usd", cost)
            kind = getattr(cost, "kind", None)
            if kind is not None:
                fields.setdefault("cost_kind", kind)
        fields.pop("ts", None)
        cols: dict[str, Any] = {}
        for k, v in fields.items():
            if k == "params":
                _check_no_secrets("request params", v)
                cols[k] = _dumps(dict(v))
            elif k == "response":
                _check_no_secrets("response metadata", v or {})
                cols[k] = _dumps(dict(v or {}))
            elif k == "cost_usd":
                d = _decimal(v)
                # fixed-point text: str() would give "1.2E-7" for tiny per-request costs
                cols[k] = None if d is None else format(d, "f")
            elif k == "status":
                _check_status(v)
                cols[k] = v
            elif k in ("request_id", "error_code") and isinstance(v, str) and looks_like_secret(v):
                raise SecretRefused(f"Refusing to store {k}: it looks like a credential.")
            else:
                cols[k] = v
        return cols

    def get_request(self, request_row_id: str) -> RequestRecord | None:
        rows = self._query("SELECT * FROM requests WHERE id = ? AND owner = ?",
                           (request_row_id, self.owner))
        return _request(rows[0]) if rows else None

    def list_requests(self, *, surface: Surface | None = None,
                      conversation_id: str | None = None,
                      limit: int = 1000) -> list[RequestRecord]:
        where, args = ["owner = ?"], [self.owner]
        if surface:
            where.append("surface = ?")
            args.append(surface)
        if conversation_id:
            where.append("conversation_id = ?")
            args.append(conversation_id)
        clause = f"WHERE {' AND '.join(where)}"
        rows = self._query(f"SELECT * FROM requests {clause} ORDER BY ts DESC, id LIMIT ?",
                           (*args, int(limit)))
        return [_request(r) for r in rows]

    def request_log_frame(self, *, limit: int = 100_000) -> pd.DataFrame:
        """The request log as a DataFrame for the Costs page's reprice (newest first).

        Token columns are nullable Int64 (a failed request may have no usage); `ts` is a
        UTC datetime; `cost_usd` holds the Decimal recorded at request time (or None).
        """
        import pandas as pd

        rows = self._query(
            f"SELECT {', '.join(REQUEST_LOG_COLUMNS)} FROM requests WHERE owner = ?"
            " ORDER BY ts DESC, id LIMIT ?",
            (self.owner, int(limit)),
        )
        df = pd.DataFrame([tuple(r) for r in rows], columns=list(REQUEST_LOG_COLUMNS))
        for col in ("prompt_tokens", "cached_tokens", "completion_tokens", "reasoning_tokens"):
            df[col] = pd.array(df[col].tolist(), dtype="Int64")
        df["ts"] = pd.to_datetime(df["ts"], utc=True, format="ISO8601")
        # From the raw rows: pandas' string dtype has already turned None into NaN.
        df["cost_usd"] = pd.Series(
            [None if r["cost_usd"] is None else Decimal(r["cost_usd"]) for r in rows],
            index=df.index, dtype=object)
        for col in ("ttft_s", "tokens_per_s"):
            df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
        return df

    # -- presets / prompts / grammars

    def save_preset(self, name: str, params: Mapping[str, Any], *,
                    surface: Surface = "chat") -> str:
        _check_surface(surface)
        _check_no_secrets("preset", params)
        return self._upsert_named("presets", name, {"surface": surface,
                                                    "params": _dumps(dict(params))})

    def list_presets(self, surface: Surface | None = None) -> list[Preset]:
        if surface:
            rows = self._query("SELECT * FROM presets WHERE owner = ? AND surface = ?"
                               " ORDER BY name", (self.owner, surface))
        else:
            rows = self._query("SELECT * FROM presets WHERE owner = ? ORDER BY name",
                               (self.owner,))
        return [_preset(r) for r in rows]

    def get_preset(self, name: str) -> Preset | None:
        rows = self._query("SELECT * FROM presets WHERE owner = ? AND name = ?",
                           (self.owner, name))
        return _preset(rows[0]) if rows else None

    def delete_preset(self, name: str) -> None:
        self._delete_named("presets", name)

    def save_prompt(self, name: str, text: str) -> str:
        if looks_like_secret(text):
            raise SecretRefused("Refusing to save this prompt: it contains something that "
                                "looks like an API key.")
        return self._upsert_named("prompts", name, {"text": text})

    def list_prompts(self) -> list[SavedPrompt]:
        return [_prompt(r) for r in self._query(
            "SELECT * FROM prompts WHERE owner = ? ORDER BY name", (self.owner,))]

    def get_prompt(self, name: str) -> SavedPrompt | None:
        rows = self._query("SELECT * FROM prompts WHERE owner = ? AND name = ?",
                           (self.owner, name))
        return _prompt(rows[0]) if rows else None

    def delete_prompt(self, name: str) -> None:
        self._delete_named("prompts", name)

    def save_grammar(self, name: str, ebnf: str) -> str:
        return self._upsert_named("grammars", name, {"ebnf": ebnf})

    def list_grammars(self) -> list[SavedGrammar]:
        return [_grammar(r) for r in self._query(
            "SELECT * FROM grammars WHERE owner = ? ORDER BY name", (self.owner,))]

    def get_grammar(self, name: str) -> SavedGrammar | None:
        rows = self._query("SELECT * FROM grammars WHERE owner = ? AND name = ?",
                           (self.owner, name))
        return _grammar(rows[0]) if rows else None

    def delete_grammar(self, name: str) -> None:
        self._delete_named("grammars", name)

    def _upsert_named(self, table: str, name: str, values: dict[str, Any]) -> str:
        name = name.strip()
        if not name:
            raise StoreError("A name is required.")
        ts = now_iso()
        cols = ["id", "owner", "name", *values, "updated_at"]
        updates = ", ".join(f"{k} = excluded.{k}" for k in [*values, "updated_at"])
        with self._tx() as c:
            c.execute(
                f"INSERT INTO {table} ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})"
                f" ON CONFLICT(owner, name) DO UPDATE SET {updates}",
                (_new_id(), self.owner, name, *values.values(), ts),
            )
            return str(c.execute(f"SELECT id FROM {table} WHERE owner = ? AND name = ?",
                                 (self.owner, name)).fetchone()[0])

    def _delete_named(self, table: str, name: str) -> None:
        with self._tx() as c:
            c.execute(f"DELETE FROM {table} WHERE owner = ? AND name = ?", (self.owner, name))

    # -- votes

    def record_vote(self, prompt: str, candidates: Sequence[str], winner: str | None, *,
                    blind: bool = True, meta: Mapping[str, Any] | None = None) -> str:
        cands = [str(c) for c in candidates]
        if len(cands) < 2:
            raise StoreError("A vote needs at least two candidates.")
        if winner is not None and winner not in cands:
            raise StoreError(f"winner {winner!r} is not among the candidates")
        meta = dict(meta or {})
        _check_no_secrets("vote metadata", meta)
        vid = _new_id()
        with self._tx() as c:
            c.execute("INSERT INTO votes (id, ts, prompt, candidates, winner, blind, meta, owner)"
                      " VALUES (?,?,?,?,?,?,?,?)",
                      (vid, now_iso(), prompt, _dumps(cands), winner, int(blind), _dumps(meta),
                       self.owner))
        return vid

    def list_votes(self, limit: int = 1000) -> list[Vote]:
        rows = self._query("SELECT * FROM votes WHERE owner = ? ORDER BY ts DESC, id LIMIT ?",
                           (self.owner, int(limit)))
        return [Vote(id=r["id"], ts=r["ts"], prompt=r["prompt"],
                     candidates=json.loads(r["candidates"]), winner=r["winner"],
                     blind=bool(r["blind"]), meta=_loads(r["meta"])) for r in rows]

    def vote_tally(self) -> dict[str, dict[str, int]]:
        """Per model: appearances, wins, ties (a tie is a vote with no winner)."""
        tally: dict[str, dict[str, int]] = {}
        for v in self.list_votes(limit=1_000_000):
            for m in v.candidates:
                t = tally.setdefault(m, {"appearances": 0, "wins": 0, "ties": 0})
                t["appearances"] += 1
                if v.winner is None:
                    t["ties"] += 1
                elif v.winner == m:
                    t["wins"] += 1
        return tally

    # -- import (used by transcript.import_json)

    def import_conversation(self, conversation: Mapping[str, Any],
                            turns: Sequence[Mapping[str, Any]],
                            requests: Sequence[Mapping[str, Any]] = ()) -> str:
        """Insert a whole conversation in ONE transaction (all or nothing), new ids, the
        given timestamps kept. `requests[i]["turn_index"]` links a request to turns[i]."""
        _check_no_secrets("imported conversation", {
            "params": conversation.get("params", {}),
            "turns": [t.get("meta", {}) for t in turns],
            "requests": [{"params": r.get("params", {}), "response": r.get("response", {})}
                         for r in requests],
        })
        cid = _new_id()
        turn_ids = [_new_id() for _ in turns]
        with self._tx() as c:
            c.execute(
                "INSERT INTO conversations (id, title, model, surface, params, created_at,"
                " updated_at, owner) VALUES (?,?,?,?,?,?,?,?)",
                (cid, conversation.get("title", ""), conversation.get("model"),
                 conversation.get("surface", "chat"), _dumps(conversation.get("params", {})),
                 conversation["created_at"], conversation["updated_at"], self.owner),
            )
            for seq, (tid, t) in enumerate(zip(turn_ids, turns, strict=True)):
                _check_status(t["status"])
                c.execute(
                    "INSERT INTO turns (id, conversation_id, seq, role, content, status, meta,"
                    " writer, created_at, updated_at) VALUES (?,?,?,?,?,?,?,NULL,?,?)",
                    (tid, cid, seq, t["role"], t["content"],
                     # an imported "streaming" turn has no live writer: it was cut off
                     "interrupted" if t["status"] == "streaming" else t["status"],
                     _dumps(t.get("meta", {})), t["created_at"], t["updated_at"]),
                )
            for r in requests:
                idx = r.get("turn_index")
                cols = self._request_columns({k: v for k, v in r.items()
                                              if k not in ("turn_index", "ts", "base_url",
                                                           "surface")})
                if cols.get("status") == "streaming":
                    cols["status"] = "interrupted"
                cols.update(id=_new_id(), ts=r["ts"], base_url=_clean_base_url(r["base_url"]),
                            surface=r["surface"], conversation_id=cid,
                            turn_id=turn_ids[idx] if isinstance(idx, int) else None,
                            writer=None, owner=self.owner)
                names = list(cols)
                c.execute(f"INSERT INTO requests ({', '.join(names)}) VALUES "
                          f"({', '.join('?' * len(names))})", [cols[n] for n in names])
        return cid


@dataclass(frozen=True)
class LogTotals:
    requests: int
    errors: int
    cost_usd: Decimal | None  # None when no request in the frame had a recorded cost
    priced: int  # how many requests the cost covers


def request_log_totals(df: pd.DataFrame) -> LogTotals:
    """Totals over (a filtered view of) `request_log_frame()`; Decimal, not float, sums."""
    known = [c for c in df["cost_usd"] if isinstance(c, Decimal)]
    return LogTotals(requests=len(df), errors=int((df["status"] == "error").sum()),
                     cost_usd=sum(known, Decimal(0)) if known else None, priced=len(known))


# --------------------------------------------------------------------------- row mapping


def _check_status(status: str) -> None:
    if status not in TURN_STATUSES:
        raise StoreError(f"unknown status {status!r} (expected one of {', '.join(TURN_STATUSES)})")


def _check_surface(surface: str) -> None:
    if surface not in SURFACES:
        raise StoreError(f"unknown surface {surface!r} (expected one of {', '.join(SURFACES)})")


def _clean_base_url(url: str) -> str:
    """Drop userinfo and query from a base URL: `https://user:key@host/v1?key=…` leaks keys."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    host = parts.netloc.rsplit("@", 1)[-1]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _conversation(r: sqlite3.Row) -> Conversation:
    return Conversation(id=r["id"], title=r["title"], model=r["model"], surface=r["surface"],
                        params=_loads(r["params"]), created_at=r["created_at"],
                        updated_at=r["updated_at"])


def _turn(r: sqlite3.Row) -> Turn:
    return Turn(id=r["id"], conversation_id=r["conversation_id"], seq=r["seq"], role=r["role"],
                content=r["content"], status=r["status"], meta=_loads(r["meta"]),
                created_at=r["created_at"], updated_at=r["updated_at"])


def _request(r: sqlite3.Row) -> RequestRecord:
    return RequestRecord(
        id=r["id"], ts=r["ts"], model=r["model"], base_url=r["base_url"], surface=r["surface"],
        params=_loads(r["params"]), status=r["status"], conversation_id=r["conversation_id"],
        turn_id=r["turn_id"], http_status=r["http_status"], request_id=r["request_id"],
        error_code=r["error_code"], prompt_tokens=r["prompt_tokens"],
        completion_tokens=r["completion_tokens"], cached_tokens=r["cached_tokens"],
        reasoning_tokens=r["reasoning_tokens"],
        cost_usd=None if r["cost_usd"] is None else Decimal(r["cost_usd"]),
        cost_kind=r["cost_kind"], ttft_s=r["ttft_s"], tokens_per_s=r["tokens_per_s"],
        duration_s=r["duration_s"], response=_loads(r["response"]),
    )


def _preset(r: sqlite3.Row) -> Preset:
    return Preset(id=r["id"], name=r["name"], surface=r["surface"], params=_loads(r["params"]),
                  updated_at=r["updated_at"])


def _prompt(r: sqlite3.Row) -> SavedPrompt:
    return SavedPrompt(id=r["id"], name=r["name"], text=r["text"], updated_at=r["updated_at"])


def _grammar(r: sqlite3.Row) -> SavedGrammar:
    return SavedGrammar(id=r["id"], name=r["name"], ebnf=r["ebnf"], updated_at=r["updated_at"])
