"""Share links: a page's configuration <-> URL query parameters. Pure functions.

Layout: readable `page` and `model` params plus one compact `s` param holding the rest
(JSON -> zlib -> URL-safe base64 without padding). If a reader edits the readable params,
those win over the copy inside `s`.

Never in a link: API keys, auth headers, anything that looks like a key, or personal fields
(`user`, `metadata`, `email`, ...). `encode` strips them and reports what it removed; `decode`
applies the same rules to whatever arrives, and drops unknown or invalid fields instead of
failing. A state too large for a ~6 KB URL is not truncated: `encode` returns ok=False with a
notice so the page can offer `state_to_file` instead.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from .store import ROLES, is_secret_name, looks_like_secret, redact_secrets

VERSION = 1
PAGES = ("catalog", "chat", "tokens", "costs", "compare", "history", "evaluate")
MAX_URL_CHARS = 6000  # conservative: proxies, chat apps and some browsers cut around 8 KB
MAX_BLOB_CHARS = 16_000  # refuse to even decode `s` beyond this
MAX_INFLATED_BYTES = 512 * 1024  # zip-bomb guard for `s`
MAX_TEXT_CHARS = 200_000
MAX_DEPTH = 6
REDACTED = "[redacted]"
FILE_FORMAT = "wafer-playground/share"

# Request fields that identify a person or an account: never shared.
_PERSONAL_NAMES = frozenset({
    "user", "userid", "username", "fullname", "email", "emailaddress", "phone", "phonenumber",
    "address", "ip", "ipaddress", "metadata", "safetyidentifier", "promptcachekey",
    "accountid", "passaccountid", "organization", "organizationid", "orgid", "project",
    "projectid",
})
_MODEL_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+\-]{0,199}$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\-]{0,63}$")
_NUMBER_PARAMS = frozenset({
    "temperature", "top_p", "min_p", "presence_penalty", "frequency_penalty",
    "repetition_penalty",
})
_INT_PARAMS = frozenset({
    "top_k", "max_tokens", "max_completion_tokens", "seed", "n", "top_logprobs",
    "thinking_budget",
})
_BOOL_PARAMS = frozenset({"logprobs", "stream", "echo", "skip_special_tokens"})


@dataclass(frozen=True)
class ShareState:
    page: str
    model: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    prompt: str | None = None  # free prompt text (tokens page, system prompt, ...)
    messages: list[dict[str, str]] = field(default_factory=list)  # chat setup
    grammar: str | None = None  # EBNF
    scenario: dict[str, Any] | None = None  # cost planner scenario
    compare: dict[str, Any] | None = None  # compare page: mode, models, per-pane settings
    evaluate: dict[str, Any] | None = None  # evaluate page: template, test set, models, checks


@dataclass(frozen=True)
class EncodeResult:
    ok: bool
    query: dict[str, str]  # what to put in st.query_params (only page/model when not ok)
    length: int  # characters of the full URL (or of the query when no base was given)
    removed: tuple[str, ...]  # fields stripped or redacted (keys, personal data)
    notice: str | None  # tell the user this when not None

    def url(self, base: str) -> str:
        return f"{base}?{urlencode(self.query)}" if self.query else base


@dataclass(frozen=True)
class DecodeResult:
    state: ShareState | None  # None when the query held nothing usable
    ignored: tuple[str, ...]  # fields dropped as unknown, invalid, or not allowed
    notice: str | None = None


# What a link can make the model do, beyond sampling: shown and confirmed before applying
# (issue 14: a link that silently sets a system prompt is an exfiltration vector).
_INSTRUCTION_PARAMS = {"system": "System prompt", "tools": "Tools",
                       "json_schema": "JSON schema"}


def instructions(state: ShareState) -> list[tuple[str, str]]:
    """(label, text) for every system prompt, tool list or grammar `state` would set."""
    out: list[tuple[str, str]] = []
    if state.page == "chat" and state.prompt:
        out.append(("System prompt", state.prompt))
    out += [("System prompt", str(m.get("content"))) for m in state.messages
            if m.get("role") == "system" and m.get("content")]
    for name, label in _INSTRUCTION_PARAMS.items():
        value = state.params.get(name)
        if value not in (None, "", [], {}):
            out.append((label, value if isinstance(value, str) else
                        json.dumps(value, indent=2, ensure_ascii=False)))
    if state.grammar:
        out.append(("Grammar (EBNF)", state.grammar))
    return out


def is_personal_name(name: str) -> bool:
    return re.sub(r"[^a-z0-9]", "", name.lower()) in _PERSONAL_NAMES


# --------------------------------------------------------------------------- sanitising


class _Cleaner:
    """Applies the same rules on the way out (encode) and the way in (decode)."""

    def __init__(self) -> None:
        self.dropped: list[str] = []

    def drop(self, path: str) -> None:
        self.dropped.append(path)

    def text(self, value: Any, path: str) -> str | None:
        if value is None:
            return None
        if not isinstance(value, str) or len(value) > MAX_TEXT_CHARS:
            self.drop(path)
            return None
        if looks_like_secret(value):
            self.drop(f"{path} (key-like text redacted)")
            return redact_secrets(value, REDACTED)
        return value

    def tree(self, value: Any, path: str, depth: int = 0) -> Any:
        """A JSON value with key-like / personal fields and key-like strings removed."""
        if depth > MAX_DEPTH:
            self.drop(path)
            return None
        if isinstance(value, Mapping):
            out: dict[str, Any] = {}
            for k, v in value.items():
                p = f"{path}.{k}" if path else str(k)
                if not isinstance(k, str) or is_secret_name(k) or is_personal_name(k):
                    self.drop(p)
                    continue
                cleaned = self.tree(v, p, depth + 1)
                if cleaned is not None or v is None:
                    out[k] = cleaned
            return out
        if isinstance(value, list | tuple):
            return [self.tree(v, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        if isinstance(value, str):
            return self.text(value, path)
        if isinstance(value, bool) or value is None or isinstance(value, int):
            return value
        if isinstance(value, float):
            if math.isfinite(value):
                return value
            self.drop(path)
            return None
        self.drop(path)
        return None

    def params(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, Mapping):
            if value is not None:
                self.drop("params")
            return {}
        out: dict[str, Any] = {}
        for k, v in value.items():
            p = f"params.{k}"
            if not isinstance(k, str) or not _NAME_RE.match(k):
                self.drop(p)
                continue
            if is_secret_name(k) or is_personal_name(k) or k in ("headers", "extra_headers"):
                self.drop(p)
                continue
            if not _param_type_ok(k, v):
                self.drop(p)
                continue
            cleaned = self.tree(v, p, 1)
            if cleaned is not None or v is None:
                out[k] = cleaned
        return out

    def messages(self, value: Any) -> list[dict[str, str]]:
        if not isinstance(value, list):
            if value is not None:
                self.drop("messages")
            return []
        out = []
        for i, m in enumerate(value):
            if (not isinstance(m, Mapping) or m.get("role") not in ROLES
                    or not isinstance(m.get("content"), str)):
                self.drop(f"messages[{i}]")
                continue
            content = self.text(m["content"], f"messages[{i}].content")
            out.append({"role": str(m["role"]), "content": content or ""})
        return out


def _param_type_ok(name: str, v: Any) -> bool:
    if v is None:
        return True
    if name in _NUMBER_PARAMS:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    if name in _INT_PARAMS:
        return isinstance(v, int) and not isinstance(v, bool)
    if name in _BOOL_PARAMS:
        return isinstance(v, bool)
    if name == "stop":
        return isinstance(v, str) or (isinstance(v, list) and all(isinstance(s, str) for s in v))
    return True


def _clean(raw: Mapping[str, Any], cleaner: _Cleaner) -> ShareState | None:
    page = raw.get("page")
    if page not in PAGES:
        if page is not None:
            cleaner.drop("page")
        return None
    model = raw.get("model")
    if model is not None and not (isinstance(model, str) and _MODEL_RE.match(model)):
        cleaner.drop("model")
        model = None
    trees: dict[str, dict[str, Any] | None] = {}
    for name in ("scenario", "compare", "evaluate"):
        value = raw.get(name)
        trees[name] = None
        if isinstance(value, Mapping):
            trees[name] = cleaner.tree(value, name)
        elif value is not None:
            cleaner.drop(name)
    known = {"v", "page", "model", "params", "prompt", "messages", "grammar", "scenario",
             "compare", "evaluate"}
    for k in raw:
        if k not in known:
            cleaner.drop(str(k))
    return ShareState(
        page=page, model=model, params=cleaner.params(raw.get("params")),
        prompt=cleaner.text(raw.get("prompt"), "prompt"),
        messages=cleaner.messages(raw.get("messages")),
        grammar=cleaner.text(raw.get("grammar"), "grammar"), scenario=trees["scenario"],
        compare=trees["compare"], evaluate=trees["evaluate"],
    )


def _as_dict(state: ShareState) -> dict[str, Any]:
    d: dict[str, Any] = {"v": VERSION, "page": state.page}
    if state.model:
        d["model"] = state.model
    if state.params:
        d["params"] = state.params
    if state.prompt:
        d["prompt"] = state.prompt
    if state.messages:
        d["messages"] = state.messages
    if state.grammar:
        d["grammar"] = state.grammar
    if state.scenario:
        d["scenario"] = state.scenario
    if state.compare:
        d["compare"] = state.compare
    if state.evaluate:
        d["evaluate"] = state.evaluate
    return d


# --------------------------------------------------------------------------- encode / decode


def _pack(obj: Any) -> str:
    raw = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                     allow_nan=False).encode()
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).rstrip(b"=").decode("ascii")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _unpack(blob: str) -> Any:
    if len(blob) > MAX_BLOB_CHARS:
        raise ValueError("the link's data is too long")
    try:
        packed = base64.urlsafe_b64decode(blob + "=" * (-len(blob) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("the link's data is not valid base64") from exc
    d = zlib.decompressobj()
    try:
        raw = d.decompress(packed, MAX_INFLATED_BYTES)
    except zlib.error as exc:
        raise ValueError("the link's data is corrupted") from exc
    if d.unconsumed_tail:
        raise ValueError("the link's data expands to more than 512 KB")
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValueError("the link's data is not valid JSON") from exc


def encode(state: ShareState | Mapping[str, Any], *, base_url: str = "",
           max_chars: int = MAX_URL_CHARS) -> EncodeResult:
    """State -> query params. Strips keys/personal data; ok=False when too long for a link."""
    raw = _as_dict(state) if isinstance(state, ShareState) else dict(state)
    cleaner = _Cleaner()
    clean = _clean(raw, cleaner)
    removed = tuple(cleaner.dropped)
    if clean is None:
        return EncodeResult(False, {}, 0, removed, "Nothing to share: unknown page.")
    plain = {"page": clean.page, **({"model": clean.model} if clean.model else {})}
    body = {k: v for k, v in _as_dict(clean).items() if k not in ("page", "model", "v")}
    query = dict(plain)
    if body:
        query["s"] = _pack({"v": VERSION, **body})
    qs = urlencode(query)
    length = len(base_url) + 1 + len(qs) if base_url else len(qs)
    notice = None
    if removed:
        notice = ("Left out of the link (keys and personal data are never shared): "
                  + ", ".join(removed))
    if length > max_chars:
        big = (f"This setup is too large for a link ({length / 1000:.1f} K characters; the "
               f"limit is {max_chars / 1000:.0f} K). Download it as a file and share that.")
        return EncodeResult(False, plain, length, removed,
                            big if notice is None else f"{big} {notice}")
    return EncodeResult(True, query, length, removed, notice)


def decode(query: Mapping[str, Any]) -> DecodeResult:
    """Query params (st.query_params or a parsed dict) -> validated state; never raises."""

    def first(name: str) -> Any:
        v = query.get(name)
        if isinstance(v, list | tuple):
            v = v[0] if v else None
        return v

    raw: dict[str, Any] = {}
    notice = None
    blob = first("s")
    if isinstance(blob, str) and blob:
        try:
            inner = _unpack(blob)
        except ValueError as exc:
            inner, notice = None, f"The shared settings could not be read: {exc}."
        if isinstance(inner, dict):
            v = inner.get("v")
            if isinstance(v, int) and v > VERSION:
                notice = "This link was made by a newer version; some settings may be missing."
            raw.update(inner)
        elif inner is not None:
            notice = "The shared settings could not be read: not an object."
    for name in ("page", "model"):
        v = first(name)
        if isinstance(v, str) and v:
            raw[name] = v
    if not raw:
        return DecodeResult(None, (), notice)
    cleaner = _Cleaner()
    state = _clean(raw, cleaner)
    return DecodeResult(state, tuple(cleaner.dropped), notice)


# --------------------------------------------------------------------------- file fallback


def state_to_file(state: ShareState) -> bytes:
    """The oversize fallback: the same cleaned state as a small JSON file."""
    cleaner = _Cleaner()
    clean = _clean(_as_dict(state), cleaner)
    if clean is None:
        raise ValueError(f"unknown page {state.page!r}")
    doc = {"format": FILE_FORMAT, **_as_dict(clean)}
    return (json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def state_from_file(data: bytes | str) -> DecodeResult:
    try:
        doc = json.loads(data, parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError):
        return DecodeResult(None, (), "The file is not valid JSON.")
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT:
        return DecodeResult(None, (), "The file is not a Wafer Playground settings file.")
    doc.pop("format")
    cleaner = _Cleaner()
    state = _clean(doc, cleaner)
    return DecodeResult(state, tuple(cleaner.dropped),
                        None if state else "The file names no known page.")
