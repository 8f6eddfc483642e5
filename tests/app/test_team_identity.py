"""The team server's sign-in gate (components/team.py) in AppTest: with a trusted header
configured, a request without it is signed out and sees no page; with OIDC configured, a
signed-out visitor sees only the sign-in button; with neither, nothing changes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.app.conftest import make_app

OIDC = {"redirect_uri": "http://127.0.0.1:8501/oauth2callback", "cookie_secret": "c" * 32,
        "client_id": "wafer-playground", "client_secret": "s3cr3t-value",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration"}


@pytest.fixture(autouse=True)
def _db(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(tmp_path / "h.db"))
    monkeypatch.delenv("WAFER_TRUSTED_HEADER", raising=False)


def _text(at) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(e.value) for e in [*at.markdown, *at.error, *at.info, *at.title])


def test_without_identity_settings_the_app_is_unchanged() -> None:
    at = make_app("pages/history.py").run()
    assert not at.exception
    assert "Signed out" not in _text(at)
    assert not [b for b in at.button if b.key and b.key.startswith("team_")]
    assert any("History" in str(t.value) for t in at.title)


def test_trusted_header_missing_means_signed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WAFER_TRUSTED_HEADER", "X-Forwarded-Email")
    at = make_app("pages/history.py").run()
    assert not at.exception
    assert "no valid `X-Forwarded-Email` header" in _text(at)
    assert not any(str(t.value) == "History" for t in at.title)  # the page never ran


def test_oidc_configured_shows_only_the_sign_in() -> None:
    at = make_app("pages/history.py")
    at.secrets["auth"] = OIDC
    at.run()
    assert not at.exception
    assert "Sign in to use this playground" in _text(at)
    assert at.button(key="team_login_default").label == "Sign in"
    assert not any(str(t.value) == "History" for t in at.title)
    assert "s3cr3t-value" not in _text(at)
