"""The store's vocabulary: statuses, surfaces, roles, errors and the records it returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from .templates import prompt_variables

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


@dataclass(frozen=True)
class SpendRow:
    """One person's requests to one model on one UTC day (the admin spend page)."""

    owner: str
    model: str
    day: str  # YYYY-MM-DD, UTC
    requests: int
    errors: int
    cost_usd: Decimal  # recorded costs summed; requests without a known cost add nothing


REQUEST_LOG_COLUMNS = (
    "id", "ts", "model", "surface", "base_url", "status", "prompt_tokens", "cached_tokens",
    "completion_tokens", "reasoning_tokens", "cost_usd", "ttft_s", "tokens_per_s",
    "request_id", "error_code", "conversation_id",
)
