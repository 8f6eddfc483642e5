"""The real app (AppTest) against the fault-injecting fake server over loopback HTTP.

For every fault: a readable message (status or kind, Wafer code, request id when sent), no
exception on the page, the user turn and any partial answer kept (in session and in SQLite),
retries only where safe (asserted with the fake server's hit counts) and honouring
Retry-After, and the chat answering normally on the very next message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from tests.fake_wafer import (
    MODEL,
    FakeWafer,
    Reply,
    chunk,
    error_json,
)
from tests.reliability.conftest import app_at, dead_url, page_text
from wafer_playground.store import SQLiteStore

CHAT = "pages/chat.py"
HEALTHY = "Hello from the fake server."
OK = Reply(default=True)


@dataclass
class Fault:
    replies: list[Reply]
    expect: list[str]  # substrings of the visible error
    hits: int  # POST /chat/completions requests the app must make (retries included)
    partial: str = ""  # the partial answer that must survive
    done: bool = False  # the retry succeeded: the turn ends normally
    min_elapsed_s: float = 0.0  # Retry-After honoured
    env: dict[str, str] = field(default_factory=dict)


def _partial(*words: str) -> list[dict | str | bytes]:
    return [chunk(role=True), *[chunk(w) for w in words]]


FAULTS: dict[str, Fault] = {
    "401": Fault([error_json(401, "invalid_api_key", "Invalid API key", "req_f401",
                             type="authentication_error")],
                 ["HTTP 401", "invalid_api_key", "req_f401", "Check the API key"], 1),
    "403": Fault([error_json(403, "permission_denied", "Key lacks serverless access",
                             "req_f403", type="permission_error")],
                 ["HTTP 403", "permission_denied", "req_f403"], 1),
    "404": Fault([error_json(404, "model_not_found", "Model 'fake-glm' not found",
                             "req_f404")],
                 ["HTTP 404", "model_not_found", "req_f404", "refresh the model list"], 1),
    "422-schema": Fault([error_json(422, "schema_validation_failed", "field required",
                                    "req_f422", param="messages[0].content")],
                        ["HTTP 422", "schema_validation_failed", "messages[0].content",
                         "req_f422"], 1),
    "422-zdr": Fault([error_json(422, "model_zdr_not_supported", "no ZDR for this model",
                                 "req_fzdr")],
                     ["model_zdr_not_supported", "req_fzdr", "turn off ZDR"], 1),
    # Retry-After: 1 is honoured, then the second attempt streams normally.
    "429-retry-after": Fault([error_json(429, "rate_limit_exceeded", "slow down", "req_f429",
                                         headers={"Retry-After": "1"}), OK],
                             [], 2, done=True, min_elapsed_s=1.0),
    # A Retry-After longer than the client will wait: no retry, the wait is shown.
    "429-long-wait": Fault([error_json(429, "rate_limit_exceeded", "slow down", "req_f429b",
                                      headers={"Retry-After": "30"})],
                           ["HTTP 429", "rate_limit_exceeded", "Retry after 30 s",
                            "req_f429b"], 1),
    # 429 forever: two retries (max_retries=2), then the error.
    "429-exhausted": Fault([error_json(429, "rate_limit_exceeded", "slow down", "req_f429c",
                                       headers={"Retry-After": "0"})],
                           ["HTTP 429", "req_f429c"], 3),
    "503-then-ok": Fault([error_json(503, "upstream_unavailable", "warming up", "req_f503",
                                     type="api_error", headers={"Retry-After": "0"}), OK],
                         [], 2, done=True),
    # A POST answered 500/502 may have started work: never retried.
    "500": Fault([error_json(500, "internal_error", "boom", "req_f500", type="api_error")],
                 ["HTTP 500", "internal_error", "req_f500"], 1),
    "502-html": Fault([Reply(status=502, content_type="text/html",
                             body=b"<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1>"
                                  b"<script>alert(1)</script></body></html>",
                             headers={"x-request-id": "req_f502"})],
                      ["HTTP 502", "HTML page", "req_f502"], 1),
    "200-html-not-sse": Fault([Reply(content_type="text/html",
                                     body=b"<html><body>Sign in to continue</body></html>")],
                              ["expected an event stream", "text/html"], 1),
    "reset-mid-stream": Fault([Reply(sse=_partial("Partial", " answer"), reset=True)],
                              ["connection broke mid-stream"], 1, partial="Partial answer"),
    "closed-without-done": Fault([Reply(sse=_partial("Cut", " short"))],
                                 ["ended before it was complete"], 1, partial="Cut short"),
    "stall-past-read-timeout": Fault(
        [Reply(sse=[*_partial("Slow", " start"), chunk(" never")], stall_after=3, stall_s=6)],
        ["read timeout"], 1, partial="Slow start", env={"WAFER_READ_TIMEOUT_S": "1"}),
    "malformed-sse-json": Fault([Reply(sse=[*_partial("Good", " bit"), '{"choices": [',
                                            chunk(" lost")])],
                                ["malformed JSON", "req_fake"], 1, partial="Good bit"),
    "error-event-mid-stream": Fault(
        [Reply(sse=[*_partial("Half"), {"error": {"message": "upstream died",
                                                  "code": "upstream_error", "type": "api_error",
                                                  "request_id": "req_fmid"}}])],
        ["upstream_error", "upstream died", "req_fmid"], 1, partial="Half"),
}


def _turn_statuses(at: AppTest) -> list[tuple[str, str]]:
    return [(t["role"], t["status"]) for t in at.session_state["chat_turns"]]


def _assert_clean(at: AppTest) -> None:
    assert not at.exception, [(e.value, e.stack_trace) for e in at.exception]
    assert "Traceback" not in page_text(at)


def _stored_turns(db: Path) -> list[tuple[str, str, str]]:
    store = SQLiteStore(db)
    try:
        convs = store.list_conversations()
        assert len(convs) == 1, convs
        return [(t.role, t.status, t.content) for t in store.list_turns(convs[0].id)]
    finally:
        store.close()


@pytest.mark.parametrize("name", list(FAULTS))
def test_chat_fault(name: str, fake: FakeWafer, rel_env: Path,
                    monkeypatch: pytest.MonkeyPatch) -> None:
    fault = FAULTS[name]
    for k, v in fault.env.items():
        monkeypatch.setenv(k, v)
    fake.script("POST", "/chat/completions", *fault.replies)
    at = app_at(CHAT, fake.url).run()
    _assert_clean(at)
    t0 = time.monotonic()
    at.chat_input[0].set_value(f"question for {name}").run()
    elapsed = time.monotonic() - t0
    _assert_clean(at)
    assert fake.count("POST", "/chat/completions") == fault.hits, name
    turns = at.session_state["chat_turns"]
    assert turns[0]["role"] == "user" and turns[0]["content"] == f"question for {name}"
    if fault.done:
        assert _turn_statuses(at) == [("user", "done"), ("assistant", "done")]
        assert turns[1]["content"] == HEALTHY
        assert elapsed >= fault.min_elapsed_s
        assert not at.error
    else:
        assert _turn_statuses(at) == [("user", "done"), ("assistant", "error")]
        assert turns[1]["content"] == fault.partial
        shown = " ".join(e.value for e in at.error)
        for needle in fault.expect:
            assert needle in shown, (needle, shown)
        if fault.partial:
            assert fault.partial in [m.value for m in at.markdown]
    # the conversation is durable: the user turn and the partial answer are in SQLite
    stored = _stored_turns(rel_env)
    assert stored[0] == ("user", "done", f"question for {name}")
    assert stored[1][1] == ("done" if fault.done else "error")
    assert stored[1][2] == (HEALTHY if fault.done else fault.partial)

    # still usable: the next message streams a normal answer
    fake.script("POST", "/chat/completions", OK)
    at.chat_input[0].set_value("and now?").run()
    _assert_clean(at)
    turns = at.session_state["chat_turns"]
    assert turns[-1]["status"] == "done", (turns[-1].get("error"), turns)
    assert turns[-1]["content"] == HEALTHY
    assert turns[1]["content"] == (HEALTHY if fault.done else fault.partial)
    assert len(turns) == 4


def test_long_retry_after_is_shown(fake: FakeWafer, rel_env: Path) -> None:
    fake.script("POST", "/chat/completions",
                error_json(429, "rate_limit_exceeded", "slow down", "req_f429d",
                           headers={"Retry-After": "30"}))
    at = app_at(CHAT, fake.url).run()
    at.chat_input[0].set_value("hi").run()
    _assert_clean(at)
    assert fake.count("POST", "/chat/completions") == 1  # 30 s is too long to wait silently
    assert "Retry after 30 s" in " ".join(e.value for e in at.error)


def test_connection_refused_then_recovers(fake: FakeWafer, rel_env: Path) -> None:
    at = app_at(CHAT, dead_url()).run()
    _assert_clean(at)
    status = " ".join(c.value for c in at.sidebar.caption)
    assert "connection refused" in status
    # the chat still works off the snapshot catalog: sending explains the refusal
    at.session_state["selected_model"] = "fake-glm"
    if at.chat_input:
        at.chat_input[0].set_value("anyone there?").run()
        _assert_clean(at)
        assert "connection refused" in " ".join(e.value for e in at.error)
    # point at a live server: models and chat come back
    at.session_state["conn_custom_url"] = fake.url
    at.run()
    _assert_clean(at)
    assert "2 models" in " ".join(c.value for c in at.sidebar.caption)
    at.chat_input[0].set_value("hello again").run()
    _assert_clean(at)
    assert at.session_state["chat_turns"][-1]["content"] == HEALTHY


# ---- GET /v1/models: retried when safe, broken bodies explained --------------------------

def _sidebar_status(at: AppTest) -> str:
    return " ".join(c.value for c in at.sidebar.caption)


def test_models_500_is_retried_twice_then_snapshot(fake: FakeWafer, rel_env: Path) -> None:
    fake.script("GET", "/models", error_json(500, "internal_error", "db down", "req_m500",
                                             type="api_error"))
    at = app_at("pages/catalog.py", fake.url).run()
    _assert_clean(at)
    assert fake.count("GET", "/models") == 3  # GET is idempotent: 1 + max_retries
    status = _sidebar_status(at)
    assert "HTTP 500" in status and "req_m500" in status


def test_models_503_then_ok_is_live(fake: FakeWafer, rel_env: Path) -> None:
    fake.script("GET", "/models", error_json(503, "warming", "wait", "req_m503",
                                             headers={"Retry-After": "0"}), Reply(json={
                                                 "object": "list", "data": [
                                                     {"id": MODEL, "object": "model"}]}))
    at = app_at("pages/catalog.py", fake.url).run()
    _assert_clean(at)
    assert fake.count("GET", "/models") == 2
    assert "1 models" in _sidebar_status(at) or "1 model" in _sidebar_status(at)


def test_models_truncated_json(fake: FakeWafer, rel_env: Path) -> None:
    fake.script("GET", "/models", Reply(body=b'{"object": "list", "data": [{"id": "fake-',
                                        content_type="application/json",
                                        headers={"x-request-id": "req_trunc"}))
    at = app_at("pages/catalog.py", fake.url).run()
    _assert_clean(at)
    assert fake.count("GET", "/models") == 1  # a 200 is not retried, even if broken
    status = _sidebar_status(at)
    assert "not valid JSON" in status and "req_trunc" in status


def test_models_html_error_page(fake: FakeWafer, rel_env: Path) -> None:
    fake.script("GET", "/models", Reply(status=502, content_type="text/html",
                                        body=b"<html><h1>Bad gateway</h1></html>"))
    at = app_at("pages/catalog.py", fake.url).run()
    _assert_clean(at)
    assert "HTML page" in _sidebar_status(at)
    assert "<h1>" not in page_text(at)


BROKEN_CARDS = {"object": "list", "data": [
    {"id": MODEL, "object": "model", "wafer": {"display_name": "Fake GLM", "pricing": {
        "input_cents_per_million": 100, "output_cents_per_million": 200}}},
    {"object": "model"},  # no id
    "just a string",
    {"id": "bad-price", "wafer": {"pricing": {"input_cents_per_million": "lots",
                                              "output_cents_per_million": -5}}},
    {"id": "bad-caps", "wafer": {"capabilities": "yes", "context_length": "huge",
                                 "max_output_tokens": [1]}},
    {"id": "nulls", "wafer": None, "max_model_len": None},
    {"id": 42},
]}


@pytest.mark.parametrize("page", ["pages/catalog.py", CHAT, "pages/costs.py",
                                  "pages/compare.py", "pages/tokens.py"])
def test_models_with_broken_cards(page: str, fake: FakeWafer, rel_env: Path) -> None:
    fake.script("GET", "/models", Reply(json=BROKEN_CARDS))
    at = app_at(page, fake.url).run()
    _assert_clean(at)
    status = _sidebar_status(at)
    # the list loaded: bad cards are skipped, not fatal
    assert "check_circle" in status and "warning" not in status, status


def test_broken_cards_keep_the_good_one_chat_works(fake: FakeWafer, rel_env: Path) -> None:
    fake.script("GET", "/models", Reply(json=BROKEN_CARDS))
    at = app_at(CHAT, fake.url).run()
    _assert_clean(at)
    at.chat_input[0].set_value("hi").run()
    _assert_clean(at)
    assert at.session_state["chat_turns"][-1]["content"] == HEALTHY
    assert fake.requests_to("POST", "/chat/completions")[0].json()["model"] in (
        MODEL, "bad-price", "bad-caps", "nulls")


def test_streamlit_hides_error_details() -> None:
    """The last line of defence: an uncaught exception shows its type only, no traceback."""
    import tomllib

    from tests.conftest import ROOT

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["client"]["showErrorDetails"] == "type"
