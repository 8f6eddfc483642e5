"""Who a visitor is, on a team server: a trusted header from an auth proxy, or an OIDC sign-in.

The identity (not a key fingerprint) then owns the visitor's history, library and budget:
the store's `owner` becomes `user:<email or name>` (OIDC without an email: `oidc:<iss>|<sub>`).
Without either setting nothing changes: history stays partitioned by key fingerprint.

- `WAFER_TRUSTED_HEADER=X-Forwarded-Email` (oauth2-proxy style): only that header counts, and
  only when the setting is on. The proxy in front must set it and strip it from visitors'
  requests; a request without it is signed out.
- OIDC: an `[auth]` section in `.streamlit/secrets.toml` that Streamlit's `st.login` accepts
  (redirect_uri, cookie_secret, and client_id/client_secret/server_metadata_url, flat or
  per provider).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

ENV_HEADER = "WAFER_TRUSTED_HEADER"
MAX_IDENTITY = 320  # the longest e-mail address

_OIDC_KEYS = ("client_id", "client_secret", "server_metadata_url")


def trusted_header(env: Mapping[str, str] = os.environ) -> str | None:
    """The header named by WAFER_TRUSTED_HEADER, or None when the setting is off."""
    name = env.get(ENV_HEADER, "").strip()
    return name or None


def _owner(value: str, prefix: str = "user:") -> str | None:
    value = value.strip()
    if not value or len(value) > MAX_IDENTITY or any(ord(c) < 32 or ord(c) == 127
                                                     for c in value):
        return None
    return prefix + value.lower()


def owner_from_headers(headers: Mapping[str, str], header: str) -> str | None:
    """The owner named by `header` (case-insensitive name), or None when absent or malformed.
    No other header is ever read."""
    wanted = header.strip().lower()
    for name, value in headers.items():
        if name.lower() == wanted:
            return _owner(str(value))
    return None


def owner_from_user(user: Mapping[str, Any]) -> str | None:
    """The owner for a signed-in OIDC user (`st.user` as a dict), or None when signed out."""
    if not user.get("is_logged_in"):
        return None
    email = user.get("email")
    if isinstance(email, str) and email.strip() and user.get("email_verified") is not False:
        return _owner(email)
    sub = user.get("sub")
    if isinstance(sub, str) and sub.strip():
        return _owner(f"{user.get('iss') or ''}|{sub}", prefix="oidc:")
    return None


def oidc_providers(auth: Mapping[str, Any] | None) -> list[str | None] | None:
    """None when `[auth]` is not a complete OIDC configuration; else the providers to offer
    (`[None]` for the flat form, which `st.login()` takes without a name)."""
    if not auth or not all(auth.get(k) for k in ("redirect_uri", "cookie_secret")):
        return None
    if all(auth.get(k) for k in _OIDC_KEYS):
        return [None]
    named = [name for name, section in auth.items() if isinstance(section, Mapping)
             and all(section.get(k) for k in _OIDC_KEYS)]
    return sorted(named) or None
