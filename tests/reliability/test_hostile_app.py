"""Numbers and text from a hostile upstream, page by page in AppTest (issue 14).

The browser half (no request reaches a tracker, directives stay text, 1 MB card timing) is
`test_hostile_upstream.py`; this half pins the page logic: no crash, no lost answer, a visible
note, and markdown sources in which nothing could form an image or a directive.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from tests.fake_wafer import CARDS, MODEL, FakeWafer, Reply, chunk, serve
from tests.reliability.conftest import app_at, page_text

CHAT = "pages/chat.py"
CATALOG = "pages/catalog.py"
IMG = "![t](http://127.0.0.1:9/t.png)"
# an image opener or a directive colon that no backslash escapes
_LIVE = re.compile(r"(?<!\\)!\[|(?<![\\\u2060]):(?:red\[RED-X|blue-badge\[B-X)"
                   r"|(?<!\u2060)material/rocket_launch")


def _hostile(where: str) -> str:
    return f"{where} {IMG} :red[RED-X] :blue-badge[B-X] :material/rocket_launch: \u202eRTL"


CARDS_BAD = [
    {"id": "evil", "object": "model", "owned_by": _hostile("owned"), "max_model_len": 4096,
     "wafer": {"display_name": _hostile("name"), "provider": _hostile("provider"),
               "description": _hostile("desc"),
               "pricing": {"input_cents_per_million": "1e400", "output_cents_per_million": -3,
                           "currency": IMG}}},
    {"id": "ctx-bomb", "object": "model", "owned_by": "x", "max_model_len": 10**30,
     "created": 10**30, "wafer": {"max_output_tokens": 10**30}},
    *CARDS,
]


@pytest.fixture(scope="module")
def hostile_server() -> Iterator[FakeWafer]:
    yield from serve(CARDS_BAD)


@pytest.fixture
def hostile(hostile_server: FakeWafer) -> FakeWafer:
    hostile_server.reset()
    return hostile_server


def _markdown_sources(at: AppTest) -> list[str]:
    out = []
    for kind in ("markdown", "caption", "error", "warning", "info", "subheader", "title"):
        out += [str(getattr(el, "value", "")) for el in getattr(at, kind, [])]
    return out + [str(c.value) for c in at.sidebar.caption]


def _assert_inert(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    for src in _markdown_sources(at):
        prose = re.sub(r"(`+).*?\1", "", src)  # a code span shows its text literally
        assert not _LIVE.search(prose), src
        assert "\u202e" not in src, src


def test_catalog_survives_absurd_prices_and_draws_cards_inert(
        hostile: FakeWafer, rel_env: Path) -> None:
    at = app_at(CATALOG, hostile.url)
    at.query_params["model"] = "evil"
    at.run()
    _assert_inert(at)
    text = page_text(at)
    assert "'1e400' is too large to be a price" in text  # reported, not an OverflowError
    assert "'-3' is negative" in text and "is not a currency code" in text
    assert "max_model_len '1000000000000000000000000000000' is too large" in text
    assert "[U+202E]RTL" in text


def _usage_stream(usage: dict[str, Any]) -> Reply:
    return Reply(sse=[chunk(role=True), chunk("The answer so far"), chunk(finish="stop"),
                      {"id": "x", "object": "chat.completion.chunk", "choices": [],
                       "usage": usage}, "[DONE]"])


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": 12, "completion_tokens": -7, "total_tokens": 5},
    {"prompt_tokens": 10**30, "completion_tokens": 10**30, "total_tokens": 2 * 10**30},
    {"prompt_tokens": 12, "completion_tokens": "many"},
])
def test_bad_usage_keeps_the_answer_with_a_note(usage: dict[str, Any], fake: FakeWafer,
                                                rel_env: Path) -> None:
    fake.script("POST", "/chat/completions", _usage_stream(usage))
    at = app_at(CHAT, fake.url).run()
    at.chat_input[0].set_value("count this").run()
    _assert_inert(at)
    turn = at.session_state["chat_turns"][-1]
    assert turn["status"] == "done" and turn["content"] == "The answer so far"
    facts = turn["facts"]
    assert facts["cost_kind"] == "estimate" and "not used" in facts["usage_note"]
    assert float(facts["cost_total"]) < 0.01  # never a $3×10^23 "actual" cost
    assert "usage ignored" in page_text(at)
    with sqlite3.connect(rel_env) as db:
        stored = db.execute("SELECT status, content FROM turns WHERE role='assistant'").fetchall()
    assert stored == [("done", "The answer so far")]


def test_hostile_stream_and_tool_call_are_inert(fake: FakeWafer, rel_env: Path) -> None:
    delta = {"reasoning_content": _hostile("reasoning")}
    tool = {"tool_calls": [{"index": 0, "id": f"call {IMG}", "type": "function",
                            "function": {"name": _hostile("tool"), "arguments": "{}"}}]}
    fake.script("POST", "/chat/completions", Reply(sse=[
        chunk(role=True),
        {"id": "x", "object": "chat.completion.chunk", "model": MODEL,
         "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        chunk("Answer " + _hostile("content")),
        {"id": "x", "object": "chat.completion.chunk", "model": MODEL,
         "choices": [{"index": 0, "delta": tool, "finish_reason": None}]},
        chunk(finish=f":red[F] {IMG}"), "[DONE]"]))
    at = app_at(CHAT, fake.url).run()
    at.chat_input[0].set_value("go").run()
    _assert_inert(at)
    text = page_text(at)
    assert "not loaded" in text and "http://127.0.0.1:9/t.png" in text
    # the image is offered, per message, behind a click
    assert any(b.key and b.key.startswith("img_") for b in at.button)
