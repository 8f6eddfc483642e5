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


def _seed_spend(db: Path) -> None:
    from decimal import Decimal

    from wafer_playground.store import SQLiteStore

    s = SQLiteStore(db)
    s.for_owner("user:alice@team.example").log_request(
        model="fake-glm", base_url="https://x/v1", surface="chat", params={}, status="done",
        cost=Decimal("0.5"))
    s.for_owner("user:bob@team.example").log_request(
        model="fake-glm", base_url="https://x/v1", surface="chat", params={}, status="done",
        cost=Decimal("2"))
    s.close()


def test_admin_page_only_for_admins(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from components import team

    _seed_spend(tmp_path / "h.db")
    monkeypatch.setenv("WAFER_ADMINS", "Alice@Team.example")
    monkeypatch.setenv("WAFER_TEAMS", "eng=alice@team.example,bob@team.example")
    monkeypatch.setattr(team, "identity_owner", lambda: "user:alice@team.example")
    at = make_app()
    at.run()
    at.switch_page("pages/admin.py").run()
    assert not at.exception
    table = at.dataframe[0].value
    assert table.values.tolist() == [["bob@team.example", 1, 0, "$2.00"],
                                     ["alice@team.example", 1, 0, "$0.50"]]
    assert at.metric[0].value == "$2.50"
    at.multiselect(key="admin_by").set_value(["team", "model"]).run()
    assert at.dataframe[0].value.values.tolist() == [["eng", "fake-glm", 2, 0, "$2.50"]]

    # a signed-in person who is not an admin: the page is not even in the app's navigation
    monkeypatch.setattr(team, "identity_owner", lambda: "user:bob@team.example")
    at2 = make_app()
    at2.run()
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at2.switch_page("pages/admin.py")
    # and the page itself refuses anyone but an admin (defence in depth)
    from components import admin

    monkeypatch.setattr(admin, "is_admin", lambda: False)
    monkeypatch.setattr(team, "identity_owner", lambda: "user:alice@team.example")
    at3 = make_app()
    at3.run()
    at3.switch_page("pages/admin.py").run()
    assert "Only the server's admins" in _text(at3) and not at3.dataframe
