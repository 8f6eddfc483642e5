"""Row mapping: a row read back by either backend -> the store's records."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from .records import Conversation, Preset, RequestRecord, SavedGrammar, SavedPrompt, Turn
from .values import _loads

# A row read back: supports r["column"], r[0] and tuple(r) (sqlite3.Row, or postgres._Row).
Row = Any


def _conversation(r: Row) -> Conversation:
    return Conversation(id=r["id"], title=r["title"], model=r["model"], surface=r["surface"],
                        params=_loads(r["params"]), created_at=r["created_at"],
                        updated_at=r["updated_at"])


def _turn(r: Row) -> Turn:
    return Turn(id=r["id"], conversation_id=r["conversation_id"], seq=r["seq"], role=r["role"],
                content=r["content"], status=r["status"], meta=_loads(r["meta"]),
                created_at=r["created_at"], updated_at=r["updated_at"])


def _request(r: Row) -> RequestRecord:
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


def _preset(r: Row) -> Preset:
    return Preset(id=r["id"], name=r["name"], surface=r["surface"], params=_loads(r["params"]),
                  updated_at=r["updated_at"])


def _prompt(r: Row) -> SavedPrompt:
    return SavedPrompt(id=r["id"], name=r["name"], text=r["text"], updated_at=r["updated_at"])


def _grammar(r: Row) -> SavedGrammar:
    return SavedGrammar(id=r["id"], name=r["name"], ebnf=r["ebnf"], updated_at=r["updated_at"])
