"""Throttled stream rendering: one `st.empty` slot per text, redrawn on a growing interval.

Never `st.write_stream` on raw token streams: its bytes and browser work grow with the square
of the answer (benchmarks/README.md).
The policy lives in `wafer_playground.throttle`; this module only draws.

Finished paragraphs are frozen (`wafer_playground.throttle.freeze_point`): drawn once into
their own markdown block, after which only the open tail is redrawn. A redraw then costs the
browser the tail, not the whole answer (benchmarks/stream_render.py: the last token of a
30 KB answer showed ~0.5 s late when every redraw re-rendered all of it).

Stop: a Streamlit Stop/rerun is raised at the next `st.*` call. A throttled render may be
~0.75 s away on long answers, so `yield_point()` (a session-state read: no websocket traffic)
is called for every chunk to keep cancellation within one chunk of the click.
"""

from __future__ import annotations

import json
import time
from typing import Any

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from wafer_playground.assembly import AnthropicAccumulator, ChatAccumulator
from wafer_playground.throttle import Throttle, freeze_point
from wafer_playground.untrusted import model_markdown

CURSOR = "▌"


def yield_point() -> None:
    """Let Streamlit deliver a pending Stop/rerun now (raises StopException/RerunException)."""
    st.session_state.get("_stream_tick")


class ThrottledText:
    """Markdown redrawn at most every max(50 ms, len/40k s); `final()` draws once more.

    Frozen blocks and the live slot are appended to `container` in order, so give each text
    its own container when other elements follow it. Code (`code_language`) is never split.
    """

    def __init__(self, container: DeltaGenerator | None = None, *, cursor: str = CURSOR,
                 code_language: str | None = None) -> None:
        self._parent = container or st
        self.slot = self._parent.empty()
        self.throttle = Throttle()
        self.cursor = cursor
        self.code_language = code_language
        self.text = ""
        self.frozen_text = ""  # drawn in the finished blocks above the slot
        self._blocks: list[DeltaGenerator] = []

    def _draw(self, text: str) -> None:
        if self.code_language is not None:
            self.slot.code(text, language=self.code_language)
        else:  # model output: formatting kept, nothing loads (wafer_playground/untrusted.py)
            self.slot.markdown(model_markdown(text))

    def _freeze(self, text: str) -> None:
        if self.code_language is not None:
            return
        start = len(self.frozen_text)
        cut = freeze_point(text, start)
        if cut > start:
            self.slot.markdown(model_markdown(text[start:cut]))
            self._blocks.append(self.slot)
            self.slot = self._parent.empty()
            self.frozen_text = text[:cut]

    def update(self, text: str, now: float | None = None) -> bool:
        """Maybe redraw; True when it did."""
        self.text = text
        now = time.perf_counter() if now is None else now
        if not text or not self.throttle.due(now, len(text)):
            return False
        self._freeze(text)
        tail = text[len(self.frozen_text):]
        self._draw(tail + (self.cursor if self.code_language is None else ""))
        self.throttle.mark(now)
        return True

    def final(self, text: str | None = None) -> None:
        self.text = self.text if text is None else text
        if not self.text.startswith(self.frozen_text):
            # not a continuation of what is drawn: clear the blocks, draw it whole
            for block in self._blocks:
                block.empty()
            self._blocks, self.frozen_text = [], ""
        tail = self.text[len(self.frozen_text):]
        if tail:
            self._draw(tail)
        else:
            self.slot.empty()


class LiveTurn:
    """The assistant message while it streams: thinking block, answer, tool calls."""

    def __init__(self) -> None:
        self.status = st.empty()
        self._thinking_holder = st.container()  # keeps thinking above the answer
        self.thinking: ThrottledText | None = None
        self.answer = ThrottledText(st.container())  # its blocks stay above tool calls
        self.tools: ThrottledText | None = None
        self.status.caption(":material/hourglass_top: waiting for the first token…")
        self._first = True
        self._token_seen = False

    def update(self, acc: ChatAccumulator | AnthropicAccumulator) -> None:
        now = time.perf_counter()
        if acc.reasoning:
            if self.thinking is None:
                box = self._thinking_holder.expander("Thinking…", expanded=True,
                                                    icon=":material/psychology:")
                self.thinking = ThrottledText(box)
            self.thinking.update(acc.reasoning, now)
        if acc.content:
            self.answer.update(acc.content, now)
        if acc.tool_calls:
            if self.tools is None:
                self.tools = ThrottledText(code_language="json")
            self.tools.update(_tool_text(acc), now)
        if acc.first_token_at is not None and self._first:
            # The status line changes with the next event after the first token, not with
            # it: drawn first it delayed the token's frame by 5-10 ms (the server sends each
            # draw separately), and drawn just after, it took the token's next browser frame.
            if self._token_seen:
                self._first = False
                self.status.caption(":material/stream: streaming… (Stop keeps the partial "
                                    "answer)")
            self._token_seen = True
        yield_point()

    def final(self, acc: ChatAccumulator | AnthropicAccumulator) -> None:
        self.status.empty()
        if self.thinking is not None:
            self.thinking.final(acc.reasoning)
        self.answer.final(acc.content)
        if self.tools is not None:
            self.tools.final(_tool_text(acc))


def _tool_text(acc: ChatAccumulator | AnthropicAccumulator) -> str:
    parts: list[dict[str, Any]] = []
    for t in acc.tool_calls:
        value, err = t.parsed_arguments()
        parts.append({"name": t.name, "arguments": value if err is None else t.arguments})
    return json.dumps(parts, indent=2, ensure_ascii=False)




def _this_session() -> tuple[Any, Any] | None:
    """(AppSession, ScriptRunContext) of the running script; None outside a runtime session
    (AppTest). Private Streamlit attributes: pyproject pins streamlit <1.70."""
    try:
        from streamlit.runtime import Runtime
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        ctx = get_script_run_ctx()
        info = Runtime.instance()._session_mgr.get_active_session_info(ctx.session_id)  # type: ignore[union-attr]
        return info.session, ctx  # type: ignore[union-attr]
    except Exception:  # noqa: BLE001 - no runtime session here
        return None


def wait_until_sent(timeout_s: float = 0.25, settle_s: float = 0.06) -> bool:
    """Block until this session's outgoing messages have left for the browser (at most
    `timeout_s`), then `settle_s` more; True when they did.

    Call it before `st.rerun` after a final draw. A new run drops the messages of the rerun
    scope still queued (`ForwardMsgQueue.clear` at script start), so the last tail of an
    answer was sometimes never sent: the browser waited for the rerun's redraw of the whole
    answer instead (benchmarks/stream_render.py end lag 0.14-0.16 s against ~0.03 s when the
    tail went out first). `settle_s` lets the browser paint the tail before the rerun's
    messages arrive; in the same React commit the whole answer's markdown (30 KB) delayed
    it to 0.13-0.22 s in 3 of 6 runs."""
    found = _this_session()
    if found is None:
        return False
    queue = getattr(found[0], "_browser_queue", None)
    if queue is None or not hasattr(queue, "is_empty"):
        return False
    deadline = time.perf_counter() + timeout_s
    while not queue.is_empty():
        if time.perf_counter() >= deadline:
            return False
        time.sleep(0.002)  # the event loop thread flushes every 5 ms (runtime_util.py)
    time.sleep(settle_s)
    return True


def rerun_after_stop() -> bool:
    """Ask this browser session for one full rerun once the stopped run has shut down.

    After a Stop the script may draw nothing more, so the stopped answer (its badge and
    estimated cost) would wait for the user's next click. A `run_every` poller used to fetch
    it, and its ticks were the bug: a tick that reaches the session between a run's end and
    the moment the event loop has forwarded that run's last messages starts a new
    ScriptRunner, and Streamlit drops every event of the old one still queued
    (`AppSession._handle_scriptrunner_event_on_event_loop` ignores a non-current sender).
    Under load that lost an answer's final redraw: the browser kept "streaming…" forever
    (tests/reliability/test_load.py, 3 in 22 runs on a loaded 2-core machine). Here the
    rerun is requested from the session's own event loop only after the old runner has
    shut down (`_scriptrunner is None`), so nothing of it is dropped, and no tab polls.

    Private Streamlit attributes (pyproject pins streamlit <1.70); returns False, and the
    answer shows on the next interaction, wherever they are missing (AppTest, a change).
    """
    found = _this_session()
    if found is None:
        return False
    session, ctx = found
    try:
        from streamlit.proto.WidgetStates_pb2 import WidgetStates
        from streamlit.runtime.app_session import AppSessionState
        from streamlit.runtime.scriptrunner import RerunData

        loop = session._event_loop
        stopping = session._scriptrunner  # the runner of this (stopped) run
        # what st.rerun(scope="app") would ask for: this page, its query string; and an
        # empty set of widget states, so the stopped run's triggers (the chat input's
        # message) are reset rather than submitted a second time
        rerun = RerunData(query_string=ctx.query_string,
                          page_script_hash=ctx.page_script_hash,
                          widget_states=WidgetStates())
    except Exception:  # noqa: BLE001 - a changed Streamlit: the next click redraws
        return False
    deadline = loop.time() + 30.0

    def when_idle() -> None:
        if session._state == AppSessionState.SHUTDOWN_REQUESTED:
            return
        if session._scriptrunner is stopping and loop.time() < deadline:
            loop.call_later(0.05, when_idle)  # its last events are not forwarded yet
            return
        if session._scriptrunner is not None:
            return  # the user started another run already: it redraws the answer
        session._create_scriptrunner(rerun)

    loop.call_soon_threadsafe(when_idle)
    return True


__all__ = ["CURSOR", "LiveTurn", "ThrottledText", "rerun_after_stop", "wait_until_sent",
           "yield_point"]
