"""The route a chat request takes from the page to the wire (issue 15), traced, not assumed.

A profiler hook records every call that crosses from one of our modules into another while
`components.chat.generate` runs a real send (AppTest, pytest-httpx upstream). The route is
the sequence of rooms `components.chat` calls into, and the test proves the layering:
nothing in the core calls up into `components`, and no other component calls back into
`components.chat`. `-s` prints the route.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
from pytest_httpx import HTTPXMock

from tests.app.test_chat_page import chat_app, env, stream_reply  # noqa: F401 - fixture

OURS = ("components", "wafer_playground")


def _module(frame: FrameType | None) -> str:
    return str(frame.f_globals.get("__name__", "")) if frame is not None else ""


class Tracer:
    def __init__(self) -> None:
        self.active = False
        self.depth = 0
        self.crossings: list[tuple[str, str, str]] = []  # (caller, callee, function)

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event not in ("call", "return"):
            return
        callee = _module(frame)
        name = frame.f_code.co_name
        if callee == "components.chat.transcript" and name == "generate":
            if event == "call":
                self.active, self.depth = True, self.depth + 1
            else:
                self.depth -= 1
                self.active = self.depth > 0
            return
        if event != "call" or not self.active:
            return
        caller = _module(frame.f_back)
        if caller != callee and caller.startswith(OURS) and callee.startswith(OURS):
            self.crossings.append((caller, callee, name))


@pytest.fixture
def tracer() -> Iterator[Tracer]:
    t = Tracer()
    threading.setprofile(t)  # AppTest runs the script on its own thread
    sys.setprofile(t)
    try:
        yield t
    finally:
        sys.setprofile(None)
        threading.setprofile(None)


def route(crossings: list[tuple[str, str, str]]) -> list[str]:
    """The rooms components.chat calls into, in order, consecutive repeats collapsed."""
    out: list[str] = []
    for caller, callee, _ in crossings:
        if caller == "components.chat.transcript" and (not out or out[-1] != callee):
            out.append(callee)
    return out


def test_a_chat_request_goes_down_and_never_climbs_back(env: HTTPXMock,  # noqa: F811
                                                        tracer: Tracer) -> None:
    stream_reply(env)
    at = chat_app().run()
    at.chat_input[0].set_value("hello").run()
    assert not at.exception, at.exception
    assert tracer.crossings, "the send was not traced"
    climbs = [c for c in tracer.crossings
              if (c[0].startswith("wafer_playground") and c[1].startswith("components"))
              or (c[0].startswith("components.") and c[0] != "components.chat.transcript"
                  and c[1] == "components.chat.transcript")]
    path = route(tracer.crossings)
    print("\nroute from components.chat:", " → ".join(path))
    print("calls from components.chat into each room:", {
        m: sum(1 for c in tracer.crossings if c[0] == "components.chat.transcript" and c[1] == m)
        for m in dict.fromkeys(path)})
    assert climbs == []
    # the conversation is found once, and the request is sent, streamed, priced and
    # recorded by the run path alone: the chat component never touches the client, the
    # SSE decoder or the store itself (costs: only the session's running total)
    assert path.count("components.chat.store") == 1
    direct = {c[1] for c in tracer.crossings if c[0] == "components.chat.transcript"}
    assert not direct & {"wafer_playground.client", "wafer_playground.sse",
                         "wafer_playground.store.base", "wafer_playground.store.sqlite"}
    assert [c[2] for c in tracer.crossings if c[0] == "components.chat.transcript"
            and c[1] == "wafer_playground.costs"] == ["add"]
    assert "wafer_playground.runs" in direct
    turns = at.session_state["chat_turns"]
    assert turns[-1]["status"] == "done" and turns[-1]["content"] == "Hello there!"
