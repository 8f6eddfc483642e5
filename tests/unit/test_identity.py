"""Team-server identity (wafer_playground/identity.py): the trusted header counts only when the
setting names it, the OIDC user maps to an owner, and `[auth]` is recognised."""

from __future__ import annotations

from wafer_playground.identity import (
    oidc_providers,
    owner_from_headers,
    owner_from_user,
    trusted_header,
)


def test_the_header_setting_is_off_unless_named() -> None:
    assert trusted_header({}) is None
    assert trusted_header({"WAFER_TRUSTED_HEADER": "  "}) is None
    assert trusted_header({"WAFER_TRUSTED_HEADER": "X-Forwarded-Email"}) == "X-Forwarded-Email"


def test_only_the_named_header_counts() -> None:
    headers = {"x-forwarded-email": "Alice@Example.com ", "X-Forwarded-User": "mallory",
               "Remote-User": "mallory"}
    assert owner_from_headers(headers, "X-Forwarded-Email") == "user:alice@example.com"
    assert owner_from_headers(headers, "X-Auth-Request-Email") is None  # absent: signed out
    assert owner_from_headers({"X-Forwarded-User": "bob"}, "X-Forwarded-Email") is None


def test_malformed_header_values_are_no_identity() -> None:
    for bad in ("", "   ", "a\nb", "x\x00y", "a" * 400, "del\x7f"):
        assert owner_from_headers({"X-Forwarded-Email": bad}, "X-Forwarded-Email") is None


def test_oidc_user_to_owner() -> None:
    assert owner_from_user({"is_logged_in": False, "email": "a@b.c"}) is None
    assert owner_from_user({"is_logged_in": True, "email": "Ann@Corp.example",
                            "email_verified": True}) == "user:ann@corp.example"
    # the same person through the proxy header and through OIDC is one owner
    assert owner_from_user({"is_logged_in": True, "email": "ann@corp.example"}) == \
        owner_from_headers({"X-Email": "ann@corp.example"}, "x-email")
    # an unverified e-mail is not trusted: the subject is
    assert owner_from_user({"is_logged_in": True, "email": "ceo@corp.example",
                            "email_verified": False, "sub": "123",
                            "iss": "https://idp.example"}) == "oidc:https://idp.example|123"
    assert owner_from_user({"is_logged_in": True}) is None


def test_oidc_configuration_is_recognised() -> None:
    base = {"redirect_uri": "https://play.example/oauth2callback", "cookie_secret": "s"}
    idp = {"client_id": "id", "client_secret": "sec",
           "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}
    assert oidc_providers(None) is None and oidc_providers({}) is None
    assert oidc_providers({**base}) is None  # no provider
    assert oidc_providers({**idp}) is None  # no redirect_uri / cookie_secret
    assert oidc_providers({**base, **idp}) == [None]
    assert oidc_providers({**base, "google": idp, "okta": idp}) == ["google", "okta"]
    assert oidc_providers({**base, "broken": {"client_id": "x"}}) is None
