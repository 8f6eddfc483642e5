"""The shared fake Wafer (tests/fake_wafer.py): both faces answer the same scenario, and the
request log never keeps the key."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.fake_wafer import (
    CARDS,
    FakeWafer,
    Reply,
    chunk,
    error_event,
    error_json,
    rate_limited,
)
from wafer_playground.client import key_fingerprint

KEY = "wfr_fake_canary_0123456789"


@pytest.fixture(scope="module")
def live() -> Iterator[FakeWafer]:
    fake = FakeWafer().start()
    yield fake
    fake.stop()


@pytest.fixture(params=["mock", "real"])
def face(request: pytest.FixtureRequest, live: FakeWafer) -> Iterator[tuple[FakeWafer,
                                                                           httpx.Client]]:
    if request.param == "mock":
        fake = FakeWafer()
        client = httpx.Client(base_url=fake.url, transport=fake.transport())
    else:
        fake = live
        fake.reset()
        client = httpx.Client(base_url=fake.url)
    with client:
        yield fake, client


def _events(r: httpx.Response) -> list[str]:
    return [line[6:] for line in r.iter_lines() if line.startswith("data: ")]


def test_catalog_and_one_card(face: tuple[FakeWafer, httpx.Client]) -> None:
    fake, client = face
    assert [c["id"] for c in client.get("/models").json()["data"]] == [c["id"] for c in CARDS]
    assert client.get(f"/models/{CARDS[1]['id']}").json() == CARDS[1]
    missing = client.get("/models/nope")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "model_not_found"


def test_default_stream_and_log(face: tuple[FakeWafer, httpx.Client]) -> None:
    fake, client = face
    with client.stream("POST", "/chat/completions", json={"model": "m", "stream": True},
                       headers={"Authorization": f"Bearer {KEY}", "X-Trace": "t1"}) as r:
        events = _events(r)
    assert events[-1] == "[DONE]" and len(events) == 10
    [hit] = fake.requests_to("POST", "/chat/completions")
    assert hit.key_present and hit.key_fingerprint == key_fingerprint(KEY) and hit.sent_key(KEY)
    assert hit.header("authorization") is None and hit.header("x-trace") == "t1"
    assert all(KEY not in v for _, v in hit.headers)
    assert hit.json() == {"model": "m", "stream": True}
    assert hit.completed and hit.sent == 10 and hit.disconnect_at is None
    fake.clear()
    assert fake.requests == []


def test_messages_stream(face: tuple[FakeWafer, httpx.Client]) -> None:
    fake, client = face
    r = client.post("/messages", json={"model": "m", "stream": True})
    assert "event: message_stop" in r.text
    assert "".join(fake.default_words) == "".join(
        line.split('"text": "')[1].split('"')[0] for line in r.text.splitlines()
        if "text_delta" in line)


def test_scripted_faults(face: tuple[FakeWafer, httpx.Client]) -> None:
    fake, client = face
    fake.script("POST", "/chat/completions",
                rate_limited(7, "req_limit"),
                error_json(400, "bad_param", "no", "req_bad", param="top_k"),
                lambda hit: Reply(sse=[chunk(hit.json()["echo"]),
                                       error_event("overloaded", "later", "req_mid")]))
    r = client.post("/chat/completions", json={})
    assert r.status_code == 429 and r.headers["retry-after"] == "7"
    assert r.json()["error"]["request_id"] == "req_limit"
    r = client.post("/chat/completions", json={})
    assert r.json()["error"]["param"] == "top_k" and r.headers["x-request-id"] == "req_bad"
    r = client.post("/chat/completions", json={"echo": "hi"})
    assert '"content": "hi"' in r.text and '"code": "overloaded"' in r.text
    # the last reply stays in place
    assert "overloaded" in client.post("/chat/completions", json={"echo": "x"}).text


def test_cut_stream_is_an_error(face: tuple[FakeWafer, httpx.Client]) -> None:
    fake, client = face
    fake.script("POST", "/chat/completions", Reply(sse=[chunk("a"), chunk("b")], reset=True))
    with pytest.raises(httpx.HTTPError), \
            client.stream("POST", "/chat/completions", json={}) as r:
        r.read()
    [hit] = fake.requests
    assert hit.sent == 2 and not hit.completed


def test_malformed_authorization_is_not_kept(face: tuple[FakeWafer, httpx.Client]) -> None:
    fake, client = face
    client.get("/models", headers={"Authorization": f"Token {KEY}"})
    client.get("/models")
    first, second = fake.requests
    assert first.key_present and first.key_fingerprint == "malformed"
    assert not second.key_present and second.key_fingerprint is None


def test_paced_stream_is_complete_when_read_to_the_end(
        face: tuple[FakeWafer, httpx.Client]) -> None:
    fake, client = face
    fake.script("POST", "/chat/completions",
                Reply(sse=[chunk("a"), chunk("b"), "[DONE]"], tokens_per_s=200,
                      first_token_s=0.01))
    with client.stream("POST", "/chat/completions", json={}) as r:
        assert _events(r)[-1] == "[DONE]"
    [hit] = fake.requests
    assert hit.sent == 3 and hit.completed and hit.disconnect_at is None
