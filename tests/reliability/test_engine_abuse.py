"""The local engine under abuse, beyond tests/engine (which already covers 100 bad requests,
20 concurrent requests and the 429 on a full queue): hostile bodies, a 1 MB prompt, 8
streams dropped mid-way, the app's own client against a full queue (Retry-After honoured,
hit count exact), and the canary key never in the engine's log.

One engine of its own (queue size 1, keyed with a canary) so the counts are exact.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.conftest import free_port
from tests.reliability.conftest import canary_key
from wafer_playground.client import WaferClient
from wafer_playground.errors import RateLimitError

pytestmark = pytest.mark.engine
SMOL = "smollm2-135m-instruct"
CANARY = canary_key()
LONG = {"model": SMOL, "prompt": [504, 3575, 282, 4649, 314], "max_tokens": 400,
        "ignore_eos": True, "temperature": 0, "stream": True}


@pytest.fixture(scope="module")
def engine() -> Iterator[object]:
    from wafer_playground.local.engine import start_engine

    handle = start_engine(port=free_port(), api_key=CANARY, models=[SMOL],
                          extra_args=["--queue-size", "1", "--parallel", "1"])
    try:
        yield handle
    finally:
        handle.stop()


@pytest.fixture(scope="module")
def api(engine: object) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=engine.base_url, timeout=120,  # type: ignore[attr-defined]
                      headers={"Authorization": f"Bearer {CANARY}"}) as c:
        yield c


def _admitted(base_url: str) -> int:
    root = base_url.removesuffix("/v1")
    return int(httpx.get(root + "/health", timeout=10).json()["models"][SMOL]["admitted"])


def _alive(api: httpx.Client) -> None:
    r = api.post("/chat/completions", json={"model": SMOL, "max_tokens": 2,
                                            "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["message"]["content"] is not None


def _raw(base_url: str, path: str, data: bytes, *, key: str = CANARY,
         ctype: str = "application/json") -> socket.socket:
    url = httpx.URL(base_url)
    sock = socket.create_connection((url.host, url.port), timeout=30)
    sock.sendall((f"POST {url.path}{path} HTTP/1.1\r\nHost: {url.host}\r\n"
                  f"Authorization: Bearer {key}\r\nContent-Type: {ctype}\r\n"
                  f"Content-Length: {len(data)}\r\n\r\n").encode() + data)
    return sock


HOSTILE = [
    pytest.param("lone-surrogate", json.dumps({"model": SMOL, "messages": [
        {"role": "user", "content": "\ud800"}]}).encode(), 400, id="lone-surrogate"),
    pytest.param("invalid-utf8", b'{"model": "' + SMOL.encode() + b'", "messages": [{"role": '
                 b'"user", "content": "\xff\xfe"}]}', 400, id="invalid-utf8"),
    pytest.param("deep-nesting", b'{"model": "x", "messages": ' + b"[" * 50_000
                 + b"]" * 50_000 + b"}", 400, id="deep-nesting"),
    pytest.param("nan-temperature", b'{"model": "' + SMOL.encode() + b'", "temperature": '
                 b'NaN, "messages": [{"role": "user", "content": "hi"}]}', 400,
                 id="nan-temperature"),
    pytest.param("id-out-of-vocab", json.dumps({"model": SMOL, "prompt": [10**9],
                 "max_tokens": 1}).encode(), 400, id="id-out-of-vocab"),
    pytest.param("emoji-rtl-prompt", json.dumps({"model": SMOL, "max_tokens": 2, "messages": [
        {"role": "user", "content": "👩🏽‍💻 שלום مرحبا \u202e"}]}).encode(), 200,
        id="emoji-rtl-prompt"),
]


@pytest.mark.parametrize(("name", "data", "status"), HOSTILE)
def test_hostile_body_gets_a_clean_answer(api: httpx.Client, name: str, data: bytes,
                                          status: int) -> None:
    path = "/completions" if b'"prompt"' in data else "/chat/completions"
    r = api.post(path, content=data, headers={"Content-Type": "application/json"})
    assert r.status_code == status or (status == 400 and 400 <= r.status_code < 500), r.text
    if r.status_code >= 400:
        err = r.json()["error"]
        assert err["code"] and err["message"] and err["request_id"] == r.headers["x-request-id"]
    _alive(api)


def test_one_megabyte_prompt_is_refused_cleanly(api: httpx.Client) -> None:
    text = "word " * 200_000
    t0 = time.monotonic()
    r = api.post("/chat/completions", json={"model": SMOL, "max_tokens": 4,
                                            "messages": [{"role": "user", "content": text}]})
    assert r.status_code == 400, r.text[:300]
    assert r.json()["error"]["code"] == "context_length_exceeded"
    assert time.monotonic() - t0 < 60
    _alive(api)


def test_dropped_streams_free_their_slots(engine: object, api: httpx.Client) -> None:
    base = engine.base_url  # type: ignore[attr-defined]
    for _ in range(8):
        sock = _raw(base, "/completions", json.dumps(LONG).encode())
        got = b""
        while b"text_completion" not in got:  # wait for the first token, then walk away
            chunk = sock.recv(4096)
            assert chunk, got
            got += chunk
        sock.close()
    deadline = time.monotonic() + 10
    while _admitted(base) != 0:
        assert time.monotonic() < deadline, "dropped streams kept their queue slots"
        time.sleep(0.05)
    _alive(api)


def test_app_client_honours_retry_after_on_a_full_queue(engine: object,
                                                        api: httpx.Client) -> None:
    """Queue size 1: two long streams fill it; the app's client gets 429 + Retry-After,
    waits it out (measured) and retries exactly max_retries times, then says so."""
    base = engine.base_url  # type: ignore[attr-defined]
    # The engine's output cap (1,024 tokens): the running stream must outlast both
    # Retry-After waits even on a quiet, fast machine (400 tokens did not).
    longest = json.dumps({**LONG, "max_tokens": 1024}).encode()
    socks = [_raw(base, "/completions", longest) for _ in range(2)]
    waits: list[float] = []
    try:
        deadline = time.monotonic() + 20
        while _admitted(base) != 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        before = api.get("/endpoints/metrics", params={"endpoint": "local"}).json()
        client = WaferClient(base, CANARY, max_retries=2,
                             sleep=lambda s: (waits.append(s), time.sleep(s)))
        with pytest.raises(RateLimitError) as exc:
            client.completions({"model": SMOL, "prompt": [1, 2], "max_tokens": 1})
        client.close()
        after = api.get("/endpoints/metrics", params={"endpoint": "local"}).json()
    finally:
        for s in socks:
            s.close()
    err = exc.value
    assert err.status == 429 and err.code == "rate_limit_exceeded"
    assert err.retry_after is not None and err.retry_after >= 1
    assert waits == [err.retry_after, err.retry_after]  # the server's wait, not a guess
    assert after["summary"]["count_4xx"] - before["summary"]["count_4xx"] == 3
    assert CANARY not in err.human() and CANARY not in repr(err)
    deadline = time.monotonic() + 10
    while _admitted(base) != 0:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    _alive(api)


def test_concurrent_mixed_abuse_then_alive(api: httpx.Client) -> None:
    def one(i: int) -> int:
        kind = i % 4
        if kind == 0:
            return api.post("/chat/completions", content=b"{broken").status_code
        if kind == 1:
            return api.post("/completions", json={"model": SMOL, "prompt": [1],
                                                  "ebnf": "root ::= (", "max_tokens": 2}
                            ).status_code
        if kind == 2:
            return httpx.post(str(api.base_url).rstrip("/") + "/chat/completions", timeout=60,
                              json={"model": SMOL, "messages": []},
                              headers={"Authorization": "Bearer wfr_wrong"}).status_code
        return api.post("/chat/completions", json={
            "model": SMOL, "max_tokens": 2,
            "messages": [{"role": "user", "content": "hi"}]}).status_code

    with ThreadPoolExecutor(20) as pool:
        codes = list(pool.map(one, range(40)))
    assert all(c in (200, 400, 401, 422, 429) for c in codes), codes
    assert codes.count(401) == 10
    _alive(api)


def test_canary_never_in_the_engine_log(engine: object, api: httpx.Client) -> None:
    # wrong keys too: a rejected key must not be echoed either
    httpx.post(str(api.base_url).rstrip("/") + "/chat/completions", timeout=30,
               headers={"Authorization": f"Bearer {CANARY}x"}, json={"model": SMOL})
    _alive(api)
    log = engine.log_tail(10_000)  # type: ignore[attr-defined]
    assert log, "no engine output captured"
    assert CANARY not in log
    # nor in the engine's own request log, served as usage and metrics
    usage = api.get("/usage/me", params={"period": "1d"})
    metrics = api.get("/endpoints/metrics", params={"endpoint": "local"})
    assert usage.status_code == 200 and metrics.status_code == 200
    assert CANARY not in usage.text and CANARY not in metrics.text
    print(f"engine log: {len(log.splitlines())} lines, canary absent")
