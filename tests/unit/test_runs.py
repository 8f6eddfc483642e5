"""The one run path: events, assembly, facts, cost and the request-log record's life."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from wafer_playground.catalog import Pricing
from wafer_playground.client import WaferClient
from wafer_playground.runs import (
    ChunkEvent,
    Done,
    ErrorEvent,
    ReasoningDelta,
    RequestLog,
    Run,
    TextDelta,
    ToolCallDelta,
    UsageEvent,
)
from wafer_playground.store import SQLiteStore

PRICED = Pricing(input_cpm=Decimal(120), output_cpm=Decimal(350))
SSE = {"content-type": "text/event-stream", "x-request-id": "req-1"}


def sse(events: list[dict], done: bool = True) -> bytes:
    out = b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events)
    return out + (b"data: [DONE]\n\n" if done else b"")


def chat_chunks(words: list[str], usage: dict | None = None) -> list[dict]:
    out = [{"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant"}}]}]
    out += [{"id": "c", "choices": [{"index": 0, "delta": {"content": w}}]} for w in words]
    out.append({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    if usage:
        out.append({"id": "c", "choices": [], "usage": usage})
    return out


def client_for(handler) -> WaferClient:  # type: ignore[no-untyped-def]
    return WaferClient("http://wafer.test/v1", transport=httpx.MockTransport(handler),
                       max_retries=0)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    s = SQLiteStore(tmp_path / "runs.db")
    yield s
    s.close()


BODY = {"model": "m", "messages": [{"role": "user", "content": "hello there"}]}


def test_chat_run_yields_typed_events_and_logs_streaming_then_done(store: SQLiteStore) -> None:
    seen_status: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        # the row exists, as "streaming", before the request reaches the server
        seen_status.extend(r.status for r in store.list_requests())
        return httpx.Response(200, headers=SSE, content=sse(chat_chunks(
            ["Hel", "lo"], {"prompt_tokens": 10, "completion_tokens": 2})))

    run = Run(client_for(handler), "chat", dict(BODY), pricing=PRICED,
              log=RequestLog(store, base_url="http://wafer.test/v1"))
    events = list(run.events())
    assert seen_status == ["streaming"]
    assert [type(e) for e in events] == [ChunkEvent, TextDelta, TextDelta, ChunkEvent,
                                         UsageEvent, Done]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "Hello"
    assert events[-1] == Done("done") and run.status == "done" and run.content == "Hello"
    facts = run.facts()
    assert facts is not None and facts.cost.kind == "actual"
    # 10 * 1.2e-6 + 2 * 3.5e-6
    assert facts.cost.total == Decimal("0.000019")
    rec = store.get_request(run.record_id or "")
    assert rec is not None and rec.status == "done" and rec.request_id == "req-1"
    assert rec.prompt_tokens == 10 and rec.completion_tokens == 2
    assert rec.cost_usd == Decimal("0.000019") and rec.cost_kind == "actual"
    assert rec.ttft_s is not None and rec.duration_s is not None


def test_reasoning_and_tool_calls_are_their_own_events() -> None:
    chunks = [
        {"choices": [{"index": 0, "delta": {"reasoning_content": "think"}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": ""}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"arguments": "{}"}}]}, "finish_reason": "tool_calls"}]},
    ]
    run = Run(client_for(lambda r: httpx.Response(200, headers=SSE, content=sse(chunks))),
              "chat", dict(BODY), pricing=PRICED)
    kinds = [type(e) for e in run.events()]
    assert kinds == [ReasoningDelta, ToolCallDelta, ToolCallDelta, Done]
    assert run.acc.reasoning == "think" and run.acc.tool_calls[0].to_openai()["id"] == "call_1"


def test_refused_request_is_an_error_event_priced_at_nothing(store: SQLiteStore) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, headers={"x-request-id": "req-404"}, json={"error": {
            "message": "no such model", "type": "not_found", "code": "model_not_found"}})

    run = Run(client_for(handler), "chat", dict(BODY), pricing=PRICED,
              log=RequestLog(store, base_url="http://wafer.test/v1"))
    events = list(run.events())
    assert isinstance(events[0], ErrorEvent) and events[-1] == Done("error")
    assert run.facts() is None  # nothing was generated or billed
    rec = store.get_request(run.record_id or "")
    assert rec is not None and rec.status == "error" and rec.http_status == 404
    assert rec.error_code == "model_not_found" and rec.cost_usd is None


def test_mid_stream_error_keeps_the_partial_answer_and_its_estimate(store: SQLiteStore) -> None:
    body = sse(chat_chunks(["part"])[:2], done=False) + \
        b'data: {"error": {"message": "overloaded", "code": "overloaded"}}\n\n'
    run = Run(client_for(lambda r: httpx.Response(200, headers=SSE, content=body)), "chat",
              dict(BODY), pricing=PRICED, log=RequestLog(store, base_url="http://x/v1"))
    run.run()
    assert run.status == "error" and run.content == "part"
    facts = run.facts()
    assert facts is not None and facts.cost.kind == "estimate"
    rec = store.get_request(run.record_id or "")
    assert rec is not None and rec.status == "error" and rec.cost_kind == "estimate"


def test_abandoned_iteration_finishes_as_stopped(store: SQLiteStore) -> None:
    """A Stop or rerun unwinds the consumer mid-stream: the record is still finalised."""
    run = Run(client_for(lambda r: httpx.Response(200, headers=SSE, content=sse(
        chat_chunks(["a", "b", "c"])))), "chat", dict(BODY), pricing=PRICED,
        log=RequestLog(store, base_url="http://x/v1"))
    gen = run.events()
    for ev in gen:
        if isinstance(ev, TextDelta):
            break
    assert run.status == "streaming"
    gen.close()  # what the interpreter does to an abandoned generator
    assert run.status == "stopped" and run.content == "a"
    rec = store.get_request(run.record_id or "")
    assert rec is not None and rec.status == "stopped" and rec.cost_kind == "estimate"
    run.finish("done")  # idempotent: the first ending stands
    assert run.status == "stopped"


def test_stop_from_another_thread_ends_at_the_next_chunk() -> None:
    gate = threading.Event()
    parts = [f"data: {json.dumps(c)}\n\n".encode() for c in chat_chunks(["x", "y"])]

    class Stall(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield from parts[:2]
            gate.wait(10)
            yield from parts[2:]

    run = Run(client_for(lambda r: httpx.Response(200, headers=SSE, stream=Stall())),
              "chat", dict(BODY), pricing=PRICED)
    worker = threading.Thread(target=run.run)
    worker.start()
    while run.content != "x":
        worker.join(0.01)
    run.stop()
    gate.set()
    worker.join(5)
    assert run.status == "stopped" and run.content == "x"


def test_completions_with_token_ids_are_priced_on_the_exact_prompt() -> None:
    chunks = [{"choices": [{"index": 0, "text": t}]} for t in ("1", "2")]
    chunks.append({"choices": [{"index": 0, "text": "", "finish_reason": "length"}]})
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, headers=SSE, content=sse(chunks))

    body = {"model": "m", "prompt": [1, 2, 3, 4], "max_tokens": 2, "ebnf": 'root ::= [0-9]+'}
    run = Run(client_for(handler), "completions", body, pricing=PRICED).run()
    assert seen[0]["prompt"] == [1, 2, 3, 4] and seen[0]["ebnf"] == "root ::= [0-9]+"
    assert run.content == "12" and run.acc.finish_reason == "length"
    facts = run.facts()
    assert facts is not None and facts.prompt_tokens == 4 and facts.cost.kind == "estimate"


def test_messages_surface_streams_anthropic_events() -> None:
    events = [
        {"type": "message_start", "message": {"id": "msg", "usage": {"input_tokens": 7}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text",
                                                                      "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta",
                                                              "text": "Hi"}},
        {"type": "content_block_stop", "index": 0},
        {"type": "message_delta", "delta": {"stop_reason": "end_turn"},
         "usage": {"output_tokens": 1}},
        {"type": "message_stop"},
    ]
    body = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
    run = Run(client_for(lambda r: httpx.Response(200, headers=SSE, content=body)), "messages",
              {"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]},
              pricing=PRICED).run()
    assert run.status == "done" and run.content == "Hi"
    facts = run.facts()
    assert facts is not None and facts.cost.kind == "actual" and facts.prompt_tokens == 7


def test_non_streamed_requests_take_the_same_path() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"x-request-id": "r2"}, json={
            "id": "c", "choices": [{"index": 0, "message": {"role": "assistant",
                                                             "content": "whole"},
                                    "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1}})

    run = Run(client_for(handler), "chat", dict(BODY), pricing=PRICED, stream=False).run()
    assert run.status == "done" and run.content == "whole" and run.request_id == "r2"
    facts = run.facts()
    assert facts is not None and facts.cost.kind == "actual"


def test_a_broken_store_never_breaks_the_run(store: SQLiteStore) -> None:
    log = RequestLog(store, base_url="http://x/v1")
    store.close()
    run = Run(client_for(lambda r: httpx.Response(200, headers=SSE, content=sse(
        chat_chunks(["ok"])))), "chat", dict(BODY), pricing=PRICED, log=log).run()
    assert run.status == "done" and run.content == "ok"
    assert log.problems and "request log" in log.problems[0]


def test_the_prompt_estimate_covers_every_surface() -> None:
    from wafer_playground.runs import estimate_prompt_tokens

    assert estimate_prompt_tokens({"prompt": [5, 6, 7]}) == 3  # exact
    assert estimate_prompt_tokens({"prompt": "abcdefgh"}) == 2
    chat = estimate_prompt_tokens({"messages": [{"role": "user", "content": "x" * 40}]})
    messages = estimate_prompt_tokens({"system": "y" * 40,
                                       "messages": [{"role": "user", "content": "x" * 40}]})
    assert messages > chat > 10


def test_turn_log_records_the_answer_from_send_to_end(store: SQLiteStore) -> None:
    from wafer_playground.runs import TurnLog

    conv = store.create_conversation("t", model="m")
    store.start_turn(conv, "user", "hello there")
    seen: list[tuple[str, str]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.extend((t.role, t.status) for t in store.list_turns(conv))
        return httpx.Response(200, headers=SSE, content=sse(chat_chunks(
            ["Hi", "!"], {"prompt_tokens": 4, "completion_tokens": 2})))

    turn = {"role": "assistant", "model": "m", "surface": "chat"}
    log = TurnLog(store, base_url="http://x/v1", conversation_id=conv, turn=turn)
    run = Run(client_for(handler), "chat", dict(BODY), pricing=PRICED, log=log,
              progress_every_s=0.0).run()
    assert seen == [("user", "done"), ("assistant", "streaming")]
    saved = store.list_turns(conv)[-1]
    assert (saved.content, saved.status) == ("Hi!", "done")
    assert saved.meta["facts"]["cost_kind"] == "actual" and saved.meta["model"] == "m"
    rec = store.get_request(run.record_id or "")
    assert rec is not None and rec.turn_id == saved.id and rec.conversation_id == conv
