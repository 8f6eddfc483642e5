"""Auth, the bounded per-model queue, and cancellation on client disconnect."""

from __future__ import annotations

import json
import socket
import time

import httpx
import pytest

from tests.engine.conftest import SMOL, assert_error

pytestmark = pytest.mark.engine

KEY = "sk-local-test"
LONG = {"model": SMOL, "prompt": [504, 3575, 282, 4649, 314], "max_tokens": 600,
        "ignore_eos": True, "temperature": 0, "stream": True}


def test_api_key_is_required(auth_engine: str) -> None:
    with httpx.Client(base_url=auth_engine, timeout=60) as c:
        body = {"model": SMOL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 2}
        assert_error(c.post("/chat/completions", json=body), 401, "invalid_api_key")
        r = c.post("/chat/completions", json=body, headers={"Authorization": "Bearer wrong"})
        err = assert_error(r, 401, "invalid_api_key")
        assert KEY not in r.text and "wrong" not in err["message"]
        assert c.post("/chat/completions", json=body,
                      headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        m = {"model": SMOL, "max_tokens": 2, "messages": body["messages"]}
        assert_error(c.post("/messages", json=m), 401, "invalid_api_key", anthropic=True)
        assert c.post("/messages", json=m, headers={"x-api-key": KEY}).status_code == 200
        assert_error(c.get("/usage/me"), 401, "invalid_api_key")
        assert_error(c.post("/tokenize", json={"content": "x"}), 401, "invalid_api_key")
        assert c.get("/models").status_code == 200  # like Wafer, the list answers without a key


def _raw_post(base_url: str, path: str, body: dict[str, object]) -> socket.socket:
    """Send a request on a bare socket and leave it open: closing the socket later is
    exactly what a browser tab (or the UI's Stop) does to a running request."""
    url = httpx.URL(base_url)
    data = json.dumps(body).encode()
    sock = socket.create_connection((url.host, url.port), timeout=30)
    head = (f"POST {url.path}{path} HTTP/1.1\r\nHost: {url.host}\r\n"
            f"Authorization: Bearer {KEY}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode()
    sock.sendall(head + data)
    return sock


def _admitted(base_url: str) -> int:
    root = base_url.removesuffix("/v1")
    return int(httpx.get(root + "/health", timeout=10).json()["models"][SMOL]["admitted"])


def _wait_admitted(base_url: str, n: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while _admitted(base_url) != n:
        assert time.monotonic() < deadline, f"admitted never reached {n}"
        time.sleep(0.05)


def test_queue_full_is_429_and_disconnects_free_the_slot(auth_engine: str) -> None:
    """Queue size 2: one running + two waiting; the 4th gets 429. Closing the connections
    must cancel the upstream work (running and queued) so the model answers again at once."""
    headers = {"Authorization": f"Bearer {KEY}"}
    socks = []
    try:
        for k in range(1, 4):
            # the middle one is non-streaming: its cancellation path is different
            body = {**LONG, "stream": False} if k == 2 else LONG
            socks.append(_raw_post(auth_engine, "/completions", body))
            _wait_admitted(auth_engine, k)
        with httpx.Client(base_url=auth_engine, timeout=60, headers=headers) as probe:
            r = probe.post("/completions", json={**LONG, "stream": False, "max_tokens": 1})
            err = assert_error(r, 429, "rate_limit_exceeded")
            assert int(r.headers["retry-after"]) >= 1
            assert "busy" in err["message"]
            # the running request really is streaming tokens
            got = b""
            while b"text_completion" not in got:
                chunk = socks[0].recv(4096)
                assert chunk, "stream ended early"
                got += chunk
    finally:
        for s in socks:
            s.close()
    # three requests of 600 tokens (~30 s of work) were cancelled: the queue empties fast
    _wait_admitted(auth_engine, 0, timeout=15)
    with httpx.Client(base_url=auth_engine, timeout=60, headers=headers) as probe:
        t0 = time.monotonic()
        r = probe.post("/completions", json={**LONG, "stream": False, "max_tokens": 2})
        assert r.status_code == 200, r.text
        assert time.monotonic() - t0 < 30  # vs minutes for the cancelled work
        m = probe.get("/endpoints/metrics", params={"endpoint": "local"}).json()
        assert m["summary"]["concurrent_requests"] == 0
        assert m["summary"]["count_4xx"] >= 1  # the 429 is in the log
