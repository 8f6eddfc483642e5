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

import httpx
import streamlit as st

from components.errors import error_markdown
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
from wafer_playground.endpoints import EndpointKind, EndpointRefused, Policy, key_for
from wafer_playground.errors import NotSentError, WaferError
from wafer_playground.local.engine import SERVICE, EngineStatus

KINDS: dict[EndpointKind, str] = {
    "wafer": "Wafer",
    "local": "Local engine",
    "custom": "Custom URL",
}
MODELS_TTL_S = 600
ERROR_TTL_S = 30  # a failed fetch is retried sooner: the endpoint may just be starting
URL_CHECK_TTL_S = 60  # a typed URL's verdict (it resolves the host) is kept this long
# The first page's run (about 3 s, mostly importing pandas) finishes before a first-run
# compile takes both cores (benchmarks/first_run.py measures both).
BOOT_DELAY_S = 4.0


@dataclass(frozen=True)
class Connection:
    kind: EndpointKind
    base_url: str  # "" when the endpoint cannot be used yet (see `problem`)
    api_key: str | None = field(repr=False)
    zdr: bool
    key_source: str  # "sidebar" | "secrets" | "environment" | "none"
    problem: str | None = None  # why base_url is empty: a refused URL, an engine not ready
    engine: EngineStatus | None = None  # the local engine's state, for kind "local"

    @property
    def fingerprint(self) -> str:
        return key_fingerprint(self.api_key)

    @property
    def label(self) -> str:
        return f"{KINDS[self.kind]} · {self.base_url}"

    @property
    def ready(self) -> bool:
        return bool(self.base_url)


def policy() -> Policy:
    """This server's endpoint lock (WAFER_ALLOWED_ENDPOINTS and friends), read per run."""
    return Policy.from_env()


def allowed_kinds() -> list[EndpointKind]:
    return list(policy().kinds)


def _secret(name: str) -> str | None:
    # With no secrets.toml, even `name in st.secrets` raises: one guarded place for it.
    try:
        value = st.secrets.get(name)
    except Exception:  # noqa: BLE001 - StreamlitSecretNotFoundError and parse errors alike
        return None
    return str(value) if value else None


def _operator_key() -> tuple[str | None, str]:
    secret = _secret("WAFER_API_KEY")
    if secret:
        return secret, "secrets"
    env = os.environ.get("WAFER_API_KEY")
    if env:
        return env, "environment"
    return None, "none"


def resolve_api_key() -> tuple[str | None, str]:
    """(key, source) from sidebar > secrets > environment: whose session this is.

    Which key is *sent* depends on the endpoint: see `current()` and
    `wafer_playground.endpoints.key_for` (the operator's key only ever goes to Wafer).
    """
    typed = st.session_state.get("conn_key")
    if typed:
        return str(typed).strip(), "sidebar"
    return _operator_key()


def history_owner() -> str:
    """Whose history this session sees: the fingerprint of the key it holds (sidebar,
    secrets or environment), whichever endpoint is selected, so a user's history does not
    vanish when they try the local engine, and two keys never see each other's. On a team
    server with sign-in (components/team.py) the person's identity owns it instead."""
    from components.team import identity_owner

    return identity_owner() or key_fingerprint(resolve_api_key()[0])


def configured_base_url() -> str:
    return (_secret("WAFER_BASE_URL") or os.environ.get("WAFER_BASE_URL")
            or DEFAULT_BASE_URL).rstrip("/")


def default_kind() -> EndpointKind:
    allowed = allowed_kinds()
    forced = os.environ.get("WAFER_ENDPOINT")
    if forced in allowed:
        return forced
    key, _ = resolve_api_key()
    if key and "wafer" in allowed:
        return "wafer"
    if "local" in allowed:
        return "local"
    return allowed[0]


def local_preset_url() -> str | None:
    preset = os.environ.get("WAFER_LOCAL_URL")
    return preset.rstrip("/") if preset else None


def boot() -> None:
    """Start the local engine with the server when it is this server's starting endpoint.

    Streamlit runs no app code before the first session, so this runs on the first script
    run of the process (any page, any visitor); the engine then belongs to the process
    (`SERVICE`), and no reload or closed tab stops it.
    """
    if local_preset_url() is None and "local" in allowed_kinds() and default_kind() == "local":
        SERVICE.ensure_started(after_s=BOOT_DELAY_S)


def _local_base_url() -> tuple[str, EngineStatus | None]:
    """An already-running engine (WAFER_LOCAL_URL) or the app's own; "" while it provisions."""
    preset = local_preset_url()
    if preset:
        return preset, None
    status = SERVICE.ensure_started()
    return (status.base_url or "") if status.phase == "ready" else "", status


def _checked_custom_url(raw: str) -> tuple[str, str | None]:
    """(normalised URL, None) or ("", reason); the verdict is cached per session briefly."""
    cache: dict[str, tuple[float, str, str | None]] = st.session_state.setdefault(
        "_url_checks", {})
    hit = cache.get(raw)
    if hit is not None and time.time() - hit[0] < URL_CHECK_TTL_S:
        return hit[1], hit[2]
    try:
        verdict: tuple[str, str | None] = (policy().check_custom(raw), None)
    except EndpointRefused as exc:
        verdict = ("", str(exc))
    cache[raw] = (time.time(), *verdict)
    return verdict


def current() -> Connection:
    """The connection for this run (call after `sidebar()` has drawn its widgets)."""
    allowed = allowed_kinds()
    kind: EndpointKind = st.session_state.get("conn_kind") or default_kind()
    if kind not in allowed:
        kind = default_kind()
    typed = str(st.session_state.get("conn_key") or "").strip() or None
    operator, operator_source = _operator_key()
    api_key, source = key_for(kind, typed=typed, operator=operator,
                              operator_source=operator_source)
    zdr = bool(st.session_state.get("conn_zdr"))
    if kind == "wafer":
        return Connection(kind, configured_base_url(), api_key, zdr, source)
    if kind == "local":
        base_url, status = _local_base_url()
        problem = None if base_url else "the local engine is still starting"
        if status is not None and status.phase == "failed":
            problem = f"the local engine failed: {status.reason}"
        return Connection(kind, base_url, api_key, zdr, source, problem, status)
    raw = str(st.session_state.get("conn_custom_url") or "").strip()
    base_url, problem = _checked_custom_url(raw) if raw else ("", "enter a base URL for "
                                                                   "the custom endpoint")
    return Connection(kind, base_url, api_key, zdr, source, problem)


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
        return held[1]
    if held is not None:
        held[1].close()
    from components.team import make_client  # a per-person budget, when one is set

    client = make_client(conn, _timeout())
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
        return ModelList(load_snapshot(), time.time(), 0.0,
                         NotSentError(conn.problem or "no base URL"), live=False)
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
    allowed = allowed_kinds()
    with st.sidebar:
        st.markdown("#### Connection")
        if st.session_state.get("conn_kind") not in allowed:
            st.session_state["conn_kind"] = default_kind()
        if len(allowed) > 1:
            st.radio(
                "Endpoint", allowed, key="conn_kind", format_func=lambda k: KINDS[k],
                horizontal=True,
                help="Wafer's API, the offline local engine (llama.cpp), or any "
                     "OpenAI-compatible URL.",
            )
        else:
            st.caption(f"Endpoint: **{KINDS[allowed[0]]}** (set by this server)")
        kind = st.session_state["conn_kind"]
        if kind == "custom":
            st.text_input("Base URL", key="conn_custom_url",
                          placeholder="https://my-vllm.example.com/v1")
        st.text_input("API key", key="conn_key", type="password", placeholder="wfr_…",
                      help="Kept in this browser session's memory only: never stored, "
                           "logged, shared or put in code snippets.")
        conn = current()
        st.caption(f":material/key: {_key_hint(conn)}")
        st.toggle("Require ZDR (Wafer-ZDR: required)", key="conn_zdr",
                  help="Route only to zero-data-retention infrastructure; models without "
                       "ZDR reject the request (HTTP 422).")
        for problem in policy().problems:
            st.caption(f":material/warning: Server setting: {problem}")
        _connection_check(conn)
    return conn


def _key_hint(conn: Connection) -> str:
    if conn.key_source == "sidebar":
        return "using the key typed here (this session only)"
    if conn.key_source == "secrets":
        return "using the server's key (secrets.toml)"
    if conn.key_source == "environment":
        return "using the server's key (WAFER_API_KEY)"
    if conn.kind != "wafer" and _operator_key()[0]:
        return ("no key sent: the server's key only ever goes to its Wafer URL; type a key "
                "for this endpoint if it needs one")
    return "no key set"


def _connection_check(conn: Connection) -> None:
    if conn.kind == "local" and not conn.ready and conn.engine is not None:
        return  # components/engine_panel.sidebar_line draws the engine's state instead
    if not conn.ready:
        st.caption(f":material/block: {conn.problem}")
        return
    cols = st.columns([3, 1])
    refresh = cols[1].button("↻", key="conn_refresh", help="Check again and refetch models")
    models = load_models(conn, refresh=refresh)
    host = _host_label(conn.base_url) or "no URL"
    with cols[0]:
        if models.error is None:
            st.caption(f":material/check_circle: {host} · {models.latency_ms:.0f} ms · "
                       f"{len(models.catalog.models)} models · {models.stamp}")
        else:
            st.caption(f":material/warning: {host}: {error_markdown(models.error)}")
