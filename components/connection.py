"""The connection: which endpoint, which key, ZDR — drawn once in the sidebar for every page.

The key comes from one helper (`resolve_api_key`): the sidebar field (this session only),
else `st.secrets`, else the environment. It is never echoed, never put in the URL, and the
model-list cache is per session and keyed by the key's fingerprint.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import httpx
import streamlit as st

from wafer_playground.catalog import (
    Catalog,
    PriceSource,
    fill_from_snapshot,
    load_snapshot,
    parse_models,
)
from wafer_playground.client import (
    DEFAULT_BASE_URL,
    DEFAULT_TIMEOUT,
    WaferClient,
    key_fingerprint,
)
from wafer_playground.errors import WaferError

EndpointKind = Literal["wafer", "local", "custom"]
KINDS: dict[EndpointKind, str] = {
    "wafer": "Wafer",
    "local": "Local engine",
    "custom": "Custom URL",
}
MODELS_TTL_S = 600
ERROR_TTL_S = 30  # a failed fetch is retried sooner: the endpoint may just be starting


@dataclass(frozen=True)
class Connection:
    kind: EndpointKind
    base_url: str
    api_key: str | None = field(repr=False)
    zdr: bool
    key_source: str  # "sidebar" | "secrets" | "environment" | "none"

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.api_key)

    @property
    def label(self) -> str:
        return f"{KINDS[self.kind]} · {self.base_url}"


def _secret(name: str) -> str | None:
    # With no secrets.toml, even `name in st.secrets` raises: one guarded place for it.
    try:
        value = st.secrets.get(name)
    except Exception:  # noqa: BLE001 - StreamlitSecretNotFoundError and parse errors alike
        return None
    return str(value) if value else None


def resolve_api_key() -> tuple[str | None, str]:
    """(key, source) from sidebar > secrets > environment."""
    typed = st.session_state.get("conn_key")
    if typed:
        return str(typed).strip(), "sidebar"
    secret = _secret("WAFER_API_KEY")
    if secret:
        return secret, "secrets"
    env = os.environ.get("WAFER_API_KEY")
    if env:
        return env, "environment"
    return None, "none"


def history_owner() -> str:
    """Whose history this session sees: the fingerprint of the key it holds (sidebar,
    secrets or environment), whichever endpoint is selected, so a user's history does not
    vanish when they try the local engine, and two keys never see each other's."""
    return key_fingerprint(resolve_api_key()[0])


def configured_base_url() -> str:
    return (_secret("WAFER_BASE_URL") or os.environ.get("WAFER_BASE_URL")
            or DEFAULT_BASE_URL).rstrip("/")


def default_kind() -> EndpointKind:
    forced = os.environ.get("WAFER_ENDPOINT")
    if forced in KINDS:
        return forced  # type: ignore[return-value]
    key, _ = resolve_api_key()
    return "wafer" if key else "local"


_local_url: str | None = None  # the process-wide engine's URL once it is up


def _local_base_url() -> str:
    """An already-running engine (WAFER_LOCAL_URL) or the app's own shared one."""
    global _local_url
    preset = os.environ.get("WAFER_LOCAL_URL")
    if preset:
        return preset.rstrip("/")
    if _local_url is not None:
        return _local_url
    from wafer_playground.local.engine import shared_engine

    with st.status("Starting the local engine…", expanded=False) as status:
        def progress(message: str, step: int, total: int) -> None:
            steps = f" ({step}/{total})" if total else ""
            status.update(label=f"Local engine: {message}{steps}")

        handle = shared_engine(progress=progress)
        status.update(label="Local engine ready", state="complete")
    _local_url = handle.base_url.rstrip("/")
    return _local_url


def current() -> Connection:
    """The connection for this run (call after `sidebar()` has drawn its widgets)."""
    kind: EndpointKind = st.session_state.get("conn_kind") or default_kind()
    api_key, source = resolve_api_key()
    if kind == "wafer":
        base_url = configured_base_url()
    elif kind == "local":
        base_url = _local_base_url()
        # The local engine runs without auth unless started with --api-key; a Wafer key
        # is not sent to it.
        api_key, source = (api_key, source) if source == "sidebar" else (None, "none")
    else:
        base_url = str(st.session_state.get("conn_custom_url") or "").strip().rstrip("/")
    return Connection(kind, base_url, api_key, bool(st.session_state.get("conn_zdr")), source)


def _timeout() -> httpx.Timeout:
    """DEFAULT_TIMEOUT, with the read timeout overridable by WAFER_READ_TIMEOUT_S (seconds).

    A stalled stream is abandoned after the read timeout; tests (and slow self-hosted
    endpoints) need to move it without touching code.
    """
    raw = os.environ.get("WAFER_READ_TIMEOUT_S")
    try:
        read = float(raw) if raw else None
    except ValueError:
        read = None
    if read is None or read <= 0:
        return DEFAULT_TIMEOUT
    return httpx.Timeout(connect=DEFAULT_TIMEOUT.connect, read=read,
                         write=DEFAULT_TIMEOUT.write, pool=DEFAULT_TIMEOUT.pool)


def get_client(conn: Connection | None = None) -> WaferClient:
    """A client per session and connection; the old one is closed when the connection changes."""
    conn = conn or current()
    ident = (conn.base_url, conn.fingerprint, conn.zdr)
    held = st.session_state.get("_client")
    if held is not None and held[0] == ident:
        return held[1]  # type: ignore[no-any-return]
    if held is not None:
        held[1].close()
    client = WaferClient(conn.base_url, conn.api_key, zdr=conn.zdr, timeout=_timeout())
    st.session_state["_client"] = (ident, client)
    return client


@dataclass
class ModelList:
    catalog: Catalog
    fetched_at: float
    latency_ms: float
    error: WaferError | None = None
    live: bool = True

    @property
    def stamp(self) -> str:
        return datetime.fromtimestamp(self.fetched_at).strftime("%H:%M:%S")


def _host_label(base_url: str) -> str:
    """host[:port] for display: never the `user:password@` part a typed URL may carry."""
    from urllib.parse import urlsplit

    parts = urlsplit(base_url)
    if not parts.hostname:
        return "" if "@" in base_url else base_url
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    try:
        port = parts.port
    except ValueError:  # a typed URL with a bad port
        port = None
    return f"{host}:{port}" if port else host


def load_models(conn: Connection | None = None, *, refresh: bool = False) -> ModelList:
    """`/v1/models` for this connection, cached per session for MODELS_TTL_S.

    The cache lives in session state (never shared across sessions) and its key carries the
    key fingerprint, so switching endpoint or key never shows another endpoint's models or
    stale live prices. On failure the snapshot catalog is returned with the error attached.
    """
    conn = conn or current()
    cache: dict[tuple[str, str], ModelList] = st.session_state.setdefault("_models_cache", {})
    ident = (conn.base_url, conn.fingerprint)
    hit = cache.get(ident)
    ttl = MODELS_TTL_S if hit is None or hit.error is None else ERROR_TTL_S
    if hit is not None and not refresh and time.time() - hit.fetched_at < ttl:
        return hit
    if not conn.base_url:
        result = ModelList(load_snapshot(), time.time(), 0.0,
                           WaferError("enter a base URL for the custom endpoint"), live=False)
        return result
    started = time.perf_counter()
    try:
        res = get_client(conn).list_models()
    except WaferError as err:
        result = ModelList(load_snapshot(), time.time(), (time.perf_counter() - started) * 1000,
                           err, live=False)
    else:
        source = PriceSource("live", _host_label(conn.base_url),
                             datetime.now().strftime("%Y-%m-%d %H:%M:%S"))
        catalog = parse_models(res.data, source=source)
        catalog.models = fill_from_snapshot(catalog.models)
        result = ModelList(catalog, time.time(), res.elapsed_s * 1000)
    cache[ident] = result
    return result


def sidebar() -> Connection:
    """Draw the connection controls; return the resulting connection."""
    with st.sidebar:
        st.markdown("#### Connection")
        st.session_state.setdefault("conn_kind", default_kind())
        st.radio(
            "Endpoint", list(KINDS), key="conn_kind", format_func=lambda k: KINDS[k],
            horizontal=True,
            help="Wafer's API, the offline local engine (llama.cpp), or any "
                 "OpenAI-compatible URL.",
        )
        kind = st.session_state["conn_kind"]
        if kind == "custom":
            st.text_input("Base URL", key="conn_custom_url",
                          placeholder="http://127.0.0.1:8765/v1")
        _, source = resolve_api_key()
        hint = {"secrets": "using the key from secrets.toml",
                "environment": "using WAFER_API_KEY from the environment",
                "sidebar": "using the key typed here (this session only)",
                "none": "no key set"}[source]
        st.text_input("API key", key="conn_key", type="password", placeholder="wfr_…",
                      help="Kept in this browser session's memory only: never stored, "
                           "logged, shared or put in code snippets.")
        st.caption(f":material/key: {hint}")
        st.toggle("Require ZDR (Wafer-ZDR: required)", key="conn_zdr",
                  help="Route only to zero-data-retention infrastructure; models without "
                       "ZDR reject the request (HTTP 422).")
        conn = current()
        _connection_check(conn)
    return conn


def _connection_check(conn: Connection) -> None:
    cols = st.columns([3, 1])
    refresh = cols[1].button("↻", key="conn_refresh", help="Check again and refetch models")
    models = load_models(conn, refresh=refresh)
    host = _host_label(conn.base_url) or "no URL"
    with cols[0]:
        if models.error is None:
            st.caption(f":material/check_circle: {host} · {models.latency_ms:.0f} ms · "
                       f"{len(models.catalog.models)} models · {models.stamp}")
        else:
            st.caption(f":material/warning: {host}: {models.error.human()}")
