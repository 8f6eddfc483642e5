"""Conversation export (versioned JSON, Markdown) and validated, transactional JSON import.

The JSON export holds no database ids and no export timestamp, only the conversation's own
data, in a canonical form (sorted keys, fixed timestamp format), so export -> import -> export
is byte-identical. Import validates the whole file before writing anything and then inserts
in one transaction: a bad file changes nothing and the error names the problem.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

import jsonschema

from .costs import MAX_REQUEST_TOKENS
from .store import (
    ROLES,
    SURFACES,
    TURN_STATUSES,
    Store,
    StoreError,
    format_ts,
    parse_ts,
    secret_paths,
)

FORMAT = "wafer-playground/conversation"
VERSION = 1
MAX_IMPORT_BYTES = 20 * 1024 * 1024

_TS = {"type": "string", "minLength": 10, "maxLength": 40}
_OBJ = {"type": "object"}
# Numbers in a file are untrusted (issue 14): counts and timings are bounded, costs are plain
# non-negative decimals, and NaN/Infinity literals are refused by the parser itself.
_INT = {"type": ["integer", "null"], "minimum": 0, "maximum": MAX_REQUEST_TOKENS}
_NUM = {"type": ["number", "null"], "minimum": 0, "maximum": 1e9}
_STR = {"type": ["string", "null"]}

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["format", "version", "conversation", "turns"],
    "additionalProperties": False,
    "properties": {
        "format": {"const": FORMAT},
        "version": {"type": "integer"},
        "conversation": {
            "type": "object",
            "required": ["title", "surface", "created_at", "updated_at"],
            "additionalProperties": False,
            "properties": {
                "title": {"type": "string", "maxLength": 500},
                "model": _STR,
                "surface": {"enum": list(SURFACES)},
                "params": _OBJ,
                "created_at": _TS,
                "updated_at": _TS,
            },
        },
        "turns": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["role", "content", "status", "created_at", "updated_at"],
                "additionalProperties": False,
                "properties": {
                    "role": {"enum": list(ROLES)},
                    "content": {"type": "string"},
                    "status": {"enum": list(TURN_STATUSES)},
                    "meta": _OBJ,
                    "created_at": _TS,
                    "updated_at": _TS,
                },
            },
        },
        "requests": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["ts", "model", "base_url", "surface", "params", "status"],
                "additionalProperties": False,
                "properties": {
                    "ts": _TS,
                    "model": {"type": "string"},
                    "base_url": {"type": "string"},
                    "surface": {"enum": list(SURFACES)},
                    "params": _OBJ,
                    "status": {"enum": list(TURN_STATUSES)},
                    "turn_index": {"type": ["integer", "null"], "minimum": 0},
                    "http_status": {"type": ["integer", "null"], "minimum": 100, "maximum": 599},
                    "request_id": _STR,
                    "error_code": _STR,
                    "prompt_tokens": _INT,
                    "completion_tokens": _INT,
                    "cached_tokens": _INT,
                    "reasoning_tokens": _INT,
                    "cost_usd": {"type": ["string", "null"],
                                 "pattern": r"^[0-9]{1,12}(\.[0-9]{1,30})?$"},
                    "cost_kind": {"enum": ["actual", "estimate", None]},
                    "ttft_s": _NUM,
                    "tokens_per_s": _NUM,
                    "duration_s": _NUM,
                    "response": _OBJ,
                },
            },
        },
    },
}

_REQUEST_KEYS = (
    "ts", "model", "base_url", "surface", "params", "status", "http_status", "request_id",
    "error_code", "prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
    "cost_usd", "cost_kind", "ttft_s", "tokens_per_s", "duration_s", "response",
)


class TranscriptError(ValueError):
    """A file could not be imported; the message says what is wrong and where."""


# --------------------------------------------------------------------------- export


def export_dict(store: Store, conversation_id: str) -> dict[str, Any]:
    conv = store.get_conversation(conversation_id)
    if conv is None:
        raise StoreError(f"conversation {conversation_id} does not exist")
    turns = store.list_turns(conversation_id)
    index = {t.id: i for i, t in enumerate(turns)}
    requests = []
    for r in store.list_requests(conversation_id=conversation_id, limit=1_000_000):
        d: dict[str, Any] = {k: getattr(r, k) for k in _REQUEST_KEYS}
        d["cost_usd"] = None if r.cost_usd is None else format(r.cost_usd, "f")
        d["turn_index"] = index.get(r.turn_id) if r.turn_id else None
        requests.append(d)
    # Row ids are not exported, so order by content: stable across an import.
    requests.sort(key=lambda d: (d["ts"], _canonical(d)))
    return {
        "format": FORMAT,
        "version": VERSION,
        "conversation": {
            "title": conv.title, "model": conv.model, "surface": conv.surface,
            "params": conv.params, "created_at": conv.created_at, "updated_at": conv.updated_at,
        },
        "turns": [
            {"role": t.role, "content": t.content, "status": t.status, "meta": t.meta,
             "created_at": t.created_at, "updated_at": t.updated_at}
            for t in turns
        ],
        "requests": requests,
    }


def export_json(store: Store, conversation_id: str) -> str:
    return _canonical(export_dict(store, conversation_id), indent=2) + "\n"


def _canonical(obj: Any, indent: int | None = None) -> str:
    return json.dumps(obj, indent=indent, sort_keys=True, ensure_ascii=False, allow_nan=False)


def export_markdown(store: Store, conversation_id: str) -> str:
    data = export_dict(store, conversation_id)
    conv = data["conversation"]
    lines = [f"# {conv['title'] or 'Untitled conversation'}", ""]
    if conv.get("model"):
        lines.append(f"- Model: `{conv['model']}`")
    lines.append(f"- Surface: {conv['surface']}")
    lines.append(f"- Created: {conv['created_at']}")
    lines.append(f"- Updated: {conv['updated_at']}")
    if conv.get("params"):
        lines.append(f"- Parameters: `{json.dumps(conv['params'], sort_keys=True)}`")
    costs = [Decimal(r["cost_usd"]) for r in data["requests"] if r.get("cost_usd")]
    if costs:
        total = sum(costs, Decimal(0))
        lines.append(f"- Cost: ${total:f} over {len(data['requests'])} request(s)")
    lines += ["", "---", ""]
    for t in data["turns"]:
        heading = t["role"].capitalize()
        if t["status"] != "done":
            heading += f" ({t['status']})"
        lines += [f"### {heading}", ""]
        reasoning = (t.get("meta") or {}).get("reasoning")
        if isinstance(reasoning, str) and reasoning.strip():
            lines += ["<details><summary>Reasoning</summary>", "", reasoning.strip(), "",
                      "</details>", ""]
        lines += [t["content"].rstrip() or "_(empty)_", ""]
    return "\n".join(lines).rstrip() + "\n"


# --------------------------------------------------------------------------- import


def _where(path: Any) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out or "the file"


def _no_constant(name: str) -> Any:
    raise TranscriptError(f"The file holds {name}, which is not a number an export can hold.")


def parse_transcript(data: str | bytes | Mapping[str, Any]) -> dict[str, Any]:
    """Validate an export without touching storage; returns the normalised document."""
    if isinstance(data, bytes | bytearray):
        if len(data) > MAX_IMPORT_BYTES:
            raise TranscriptError(
                f"The file is {len(data) / 1e6:.1f} MB; the limit is "
                f"{MAX_IMPORT_BYTES / 1e6:.0f} MB.")
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise TranscriptError(f"The file is not UTF-8 text (byte {exc.start}).") from exc
    if isinstance(data, str):
        try:
            doc = json.loads(data, parse_constant=_no_constant)
        except json.JSONDecodeError as exc:
            raise TranscriptError(
                f"The file is not valid JSON: {exc.msg} at line {exc.lineno}, "
                f"column {exc.colno}.") from exc
        except RecursionError as exc:  # e.g. 100k "[": json's decoder recurses per level
            raise TranscriptError("The file's JSON is nested too deeply to be an "
                                  "export.") from exc
    else:
        # detach from the caller's objects
        doc = json.loads(json.dumps(data), parse_constant=_no_constant)
    if not isinstance(doc, dict):
        raise TranscriptError("The file is not a Wafer Playground conversation export "
                              "(expected a JSON object).")
    if doc.get("format") != FORMAT:
        raise TranscriptError(f"The file is not a Wafer Playground conversation export "
                              f"(\"format\" should be \"{FORMAT}\").")
    version = doc.get("version")
    if isinstance(version, int) and version > VERSION:
        raise TranscriptError(f"The file uses export version {version}; this app reads up to "
                              f"version {VERSION}. Update Wafer Playground to import it.")
    validator = jsonschema.Draft202012Validator(SCHEMA)
    errors = sorted(validator.iter_errors(doc), key=lambda e: (list(e.absolute_path), e.message))
    if errors:
        err = jsonschema.exceptions.best_match(errors) or errors[0]
        msg = err.message
        if err.validator == "pattern":
            msg = (f"{str(err.instance)[:40]!r} is not a plain, non-negative decimal number "
                   "(e.g. \"0.0012\")")
        elif err.validator == "additionalProperties":
            msg = f"unexpected field(s): {msg.split('(', 1)[-1].rstrip(')')}"
        raise TranscriptError(f"{_where(err.absolute_path)}: {msg}")
    if version != VERSION:
        raise TranscriptError(f"version: unsupported export version {version!r}.")

    # Checks JSON Schema cannot express.
    def norm_ts(value: str, where: str) -> str:
        try:
            out = format_ts(parse_ts(value))
        except ValueError as exc:
            raise TranscriptError(f"{where}: {value!r} is not an ISO 8601 timestamp.") from exc
        return out

    conv = doc["conversation"]
    conv.setdefault("model", None)
    conv.setdefault("params", {})
    for k in ("created_at", "updated_at"):
        conv[k] = norm_ts(conv[k], f"conversation.{k}")
    for i, t in enumerate(doc["turns"]):
        t.setdefault("meta", {})
        for k in ("created_at", "updated_at"):
            t[k] = norm_ts(t[k], f"turns[{i}].{k}")
    requests = doc.setdefault("requests", [])
    for i, r in enumerate(requests):
        r["ts"] = norm_ts(r["ts"], f"requests[{i}].ts")
        idx = r.get("turn_index")
        if idx is not None and idx >= len(doc["turns"]):
            raise TranscriptError(f"requests[{i}].turn_index: {idx} points past the last turn "
                                  f"({len(doc['turns'])} turns).")
        if r.get("cost_usd") is not None:
            try:
                Decimal(r["cost_usd"])
            except InvalidOperation as exc:
                raise TranscriptError(f"requests[{i}].cost_usd: not a number.") from exc
    bad = secret_paths({"conversation": conv.get("params"),
                        "turns": [t.get("meta") for t in doc["turns"]],
                        "requests": [{"params": r.get("params"), "response": r.get("response")}
                                     for r in requests]})
    if bad:
        raise TranscriptError("The file contains credential-like data at "
                              f"{', '.join(bad)}; remove it before importing.")
    return doc


def import_json(store: Store, data: str | bytes | Mapping[str, Any]) -> str:
    """Validate then import in one transaction; returns the new conversation id."""
    doc = parse_transcript(data)
    try:
        return store.import_conversation(doc["conversation"], doc["turns"], doc["requests"])
    except StoreError as exc:
        raise TranscriptError(f"Import failed, nothing was saved: {exc}") from exc
