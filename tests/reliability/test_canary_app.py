"""Canary key through the app's error paths (AppTest + fake server) and the share-link core.

A server that echoes the key back (in a 401 message, an HTML error page, a mid-stream error
event, a non-SSE body) must not make the app show it, store it or put it in the turn's error.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from components.chat.transcript import CODE_OPEN
from tests.fake_wafer import FakeWafer, Reply, chunk, error_json
from tests.reliability.conftest import app_at, canary_key, page_text
from wafer_playground import share

ECHOES = {
    "401-echo": lambda k: [error_json(401, "invalid_api_key", f"Invalid API key {k}",
                                      "req_c401", type="authentication_error")],
    "html-echo": lambda k: [Reply(status=502, content_type="text/html",
                                  body=f"<html>Bad gateway for Bearer {k}</html>".encode())],
    "text-echo": lambda k: [Reply(status=500, body=f"upstream said: key={k}".encode())],
    "stream-echo": lambda k: [Reply(sse=[chunk(role=True), chunk("partial"),
                                         {"error": {"message": f"bad key {k}",
                                                    "code": "auth"}}])],
    "not-sse-echo": lambda k: [Reply(content_type="text/plain",
                                     body=f"Authorization: Bearer {k}".encode())],
    "header-echo": lambda k: [Reply(sse=[chunk(role=True), chunk("partial")],
                                    headers={"x-debug-auth": f"Bearer {k}"})],
}


@pytest.mark.parametrize("name", list(ECHOES))
def test_echoed_key_is_redacted_everywhere(name: str, fake: FakeWafer, rel_env: Path) -> None:
    key = canary_key()
    fake.script("POST", "/chat/completions", *ECHOES[name](key))
    at = app_at("pages/chat.py", fake.url, key=key).run()
    at.chat_input[0].set_value("hello").run()
    assert not at.exception
    # open the answer's "Code & raw" (drawn only while open): its raw view has the headers
    answer = at.session_state["chat_turns"][-1]
    at.session_state[f"{CODE_OPEN}{answer['id']}"] = True
    at.run()
    assert not at.exception
    shown = page_text(at)
    assert key not in shown
    assert at.error, "no error shown"
    turn = at.session_state["chat_turns"][-1]
    assert turn["status"] == "error"
    assert key not in repr(turn)
    if name != "html-echo":  # the HTML page is summarised, not quoted
        assert "[redacted key]" in repr(turn["error"]) or "[redacted key]" in shown
    raw = b"".join(p.read_bytes() for p in rel_env.parent.glob(rel_env.name + "*"))
    assert raw and key.encode() not in raw
    # the key went out, once, as the bearer token only
    hit = fake.requests_to("POST", "/chat/completions")[-1]
    assert hit.sent_key(key)  # the fake logs Authorization as a fingerprint only
    assert key.encode() not in hit.body
    assert sum(key in v for _, v in hit.headers) == 0  # in no other header


def test_share_links_never_carry_a_key() -> None:
    key = canary_key()
    state = share.ShareState(
        page="chat", model="fake-glm",
        params={"temperature": 0.2, "api_key": key,
                "extra_headers": {"Authorization": f"Bearer {key}"}},
        prompt=f"use {key} please", messages=[{"role": "user", "content": key}])
    res = share.encode(state, base_url="http://127.0.0.1:8501/chat")
    blob = res.url("http://127.0.0.1:8501/chat") if res.ok else str(res.query)
    decoded = share.decode(res.query)
    assert key not in blob and key not in repr(decoded)
    assert res.removed  # and the user is told what was dropped
    assert key.encode() not in share.state_to_file(state)
