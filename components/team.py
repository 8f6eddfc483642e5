"""Team-server plumbing: who the visitor is (trusted header or OIDC sign-in), the signed-out
view, and the per-person budget on every client. The rules are in wafer_playground/identity.py
and wafer_playground/budgets.py; with none of their settings on, nothing here changes
anything (`identity_owner()` is None, `make_client` returns a plain WaferClient)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import httpx
import streamlit as st

from wafer_playground import identity
from wafer_playground.budgets import (
    Budget,
    BudgetedClient,
    Limit,
    team_budget,
    team_of,
    teams_from_env,
)
from wafer_playground.catalog import Pricing
from wafer_playground.client import WaferClient
from wafer_playground.identity import MAX_IDENTITY
from wafer_playground.store import format_ts
from wafer_playground.untrusted import md_text

if TYPE_CHECKING:
    from components.connection import Connection


def _auth_section() -> Any:
    try:
        return st.secrets.get("auth")
    except (FileNotFoundError, KeyError):  # no secrets.toml at all
        return None


def oidc_providers() -> list[str | None] | None:
    return identity.oidc_providers(_auth_section())


def identity_owner() -> str | None:
    """This visitor's owner from the trusted header (when that setting is on: only it counts)
    or from their OIDC sign-in; None when neither is configured or they are signed out."""
    header = identity.trusted_header()
    if header:
        return identity.owner_from_headers(dict(st.context.headers), header)
    if oidc_providers():
        return identity.owner_from_user(st.user.to_dict())
    return None


def admins() -> set[str]:
    """WAFER_ADMINS: comma-separated identities (e-mails) who may see everyone's spend."""
    return {f"user:{a.strip().lower()}" for a in os.environ.get("WAFER_ADMINS", "").split(",")
            if a.strip()}


def is_admin() -> bool:
    """Only a signed-in person (trusted header or OIDC) named in WAFER_ADMINS; never a key."""
    owner = identity_owner()
    return owner is not None and owner in admins()


def gate() -> None:
    """Called by app.py before the page runs. When identity is configured, a visitor without
    one sees the signed-out view and nothing else; a signed-in one sees who they are."""
    try:
        Budget.from_env()
        team_budget()
        teams_from_env()
    except ValueError as exc:
        st.error(f"Budget setting: {exc}")
        st.stop()
    header, providers = identity.trusted_header(), oidc_providers()
    if not header and not providers:
        return
    owner = identity_owner()
    if owner:
        with st.sidebar:
            # from a header or an identity provider: shown as text, never as markup
            st.caption(f"Signed in as **{md_text(owner.split(':', 1)[1], MAX_IDENTITY)}**")
            if not header and st.button("Sign out", key="team_logout"):
                st.logout()
        return
    st.title("Wafer Playground")
    if header:
        st.error(f"Signed out: this server takes visitors only through its sign-in proxy, and "
                 f"this request has no valid `{header}` header.")
    else:
        st.info("Sign in to use this playground. Your history, saved prompts and budget "
                "are your own.")
        for provider in providers or []:
            label = f"Sign in with {provider}" if provider else "Sign in"
            if st.button(label, key=f"team_login_{provider or 'default'}", type="primary"):
                if provider:
                    st.login(provider)
                else:
                    st.login()
    st.stop()


def make_client(conn: Connection, timeout: httpx.Timeout) -> WaferClient:
    """The session's client: a BudgetedClient when a person's or a team's budget is set,
    else a plain one."""
    from components.history import get_store

    limits: list[Limit] = []
    budget = Budget.from_env()
    if budget is not None:
        limits.append(Limit("your", budget, lambda since: get_store().spend_since(
            format_ts(since))))
    team = team_budget()
    owner = identity_owner()
    teams = teams_from_env()
    name = team_of(owner, teams) if owner else None
    if team is not None and name is not None:
        members = sorted(teams[name])
        limits.append(Limit(f"your team {name}'s", team, lambda since: get_store()
                            .spend_of_owners(members, format_ts(since))))
    if not limits:
        return WaferClient(conn.base_url, conn.api_key, zdr=conn.zdr, timeout=timeout)

    def model_info(model_id: str) -> tuple[Pricing | None, int | None]:
        from components.connection import load_models

        for m in load_models(conn).catalog.models:
            if m.id == model_id:
                return m.pricing, m.max_output_tokens
        return None, None

    return BudgetedClient(conn.base_url, conn.api_key, zdr=conn.zdr, timeout=timeout,
                          limits=limits, model_info=model_info)
