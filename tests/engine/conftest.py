"""Helpers for the local-engine contract tests (the engine itself comes from tests/conftest.py)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import free_port

SMOL = "smollm2-135m-instruct"
GEMMA = "gemma-3-270m"
SERVER_ID = re.compile(r"^req_[0-9a-f]{12}$")


@pytest.fixture(scope="session")
def api(local_engine: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_engine, timeout=120) as c:
        yield c


@pytest.fixture(scope="session")
def auth_engine() -> Iterator[str]:
    """A second engine with an API key and a tiny queue (2 waiting) for 401/429 tests."""
    from wafer_playground.local.engine import start_engine

    handle = start_engine(port=free_port(), api_key="sk-local-test", models=[SMOL],
                          extra_args=["--queue-size", "2", "--parallel", "1"])
    try:
        yield handle.base_url
    finally:
        handle.stop()


def assert_error(r: httpx.Response, status: int, code: str, *, param: str | None = None,
                 anthropic: bool = False) -> dict[str, Any]:
    """Wafer's envelope, with the response's x-request-id inside it."""
    assert r.status_code == status, r.text
    body = r.json()
    if anthropic:
        assert body["type"] == "error"
    err = body["error"]
    assert set(err) == {"type", "code", "message", "param", "request_id", "docs_url"}, err
    assert err["code"] == code, err
    assert err["message"]
    assert err["request_id"] == r.headers["x-request-id"]
    assert err["docs_url"].endswith("#" + code)
    if param is not None:
        assert err["param"] == param, err
    return dict(err)


def sse_data(text: str) -> list[str]:
    return [line[6:] for line in text.splitlines() if line.startswith("data: ")]


def sse_events(text: str) -> list[tuple[str, str]]:
    """(event name, data) pairs of an Anthropic-style stream."""
    out: list[tuple[str, str]] = []
    name = ""
    for line in text.splitlines():
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            out.append((name, line[6:]))
    return out
