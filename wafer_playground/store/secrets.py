"""Key detection: what the store (and share links, and transcript import) refuse to keep.

Nothing key-like is ever written: a params/meta dict with a field named like a credential
(api_key, authorization, ...) or a value that looks like a key is refused (`SecretRefused`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .records import SecretRefused

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
