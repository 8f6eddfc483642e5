"""Delta assembly: content, reasoning, tool calls by index, usage chunk, null vs absent."""

from __future__ import annotations

import pytest

from wafer_playground.assembly import (
    AnthropicAccumulator,
    ChatAccumulator,
    anthropic_usage_view,
    openai_usage_view,
)


def chunk(delta: dict | None = None, *, finish: str | None = None, usage: dict | None = None,
          choices: bool = True) -> dict:
    c: dict = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "m",
               "usage": usage}
    c["choices"] = ([{"index": 0, "delta": delta or {}, "logprobs": None,
                      "finish_reason": finish}] if choices else [])
    return c


def test_content_reasoning_usage_and_metrics() -> None:
    acc = ChatAccumulator(started_at=10.0)
    acc.feed(chunk({"role": "assistant", "content": ""}), 10.1)
    assert acc.first_token_at is None  # the empty role chunk is not a token
    acc.feed(chunk({"reasoning_content": "Let me ", "content": None}), 10.5)
    acc.feed(chunk({"reasoning_content": "think."}), 10.6)
    acc.feed(chunk({"content": "Hello", "reasoning_content": None, "tool_calls": None}), 10.7)
    acc.feed(chunk({"content": " world"}), 10.9)
    acc.feed(chunk({}, finish="stop"), 11.0)
    acc.feed(chunk(usage={"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17,
                          "prompt_tokens_details": {"cached_tokens": 4},
                          "completion_tokens_details": {"reasoning_tokens": 2}},
                   choices=False), 11.5)
    assert acc.role == "assistant"
    assert acc.content == "Hello world"
    assert acc.reasoning == "Let me think."
    assert acc.finish_reason == "stop"
    m = acc.metrics()
    assert m.ttft_s == pytest.approx(0.5)
    assert m.duration_s == pytest.approx(1.5)
    assert m.completion_tokens == 5 and m.completion_source == "usage"
    # 5 tokens, first at 10.5, last chunk at 11.5 -> 4 intervals over 1.0 s
    assert m.tokens_per_s == pytest.approx(4.0)
    assert openai_usage_view(acc.usage) == {"prompt": 12, "cached": 4, "completion": 5,
                                            "reasoning": 2}
    assert acc.assistant_message() == {"role": "assistant", "content": "Hello world"}


def test_tool_calls_assembled_by_index_interleaved() -> None:
    acc = ChatAccumulator(started_at=0.0)
    acc.feed(chunk({"tool_calls": [{"index": 0, "id": "call_a", "type": "function",
                                    "function": {"name": "get_weather", "arguments": ""}}]}), 1)
    acc.feed(chunk({"tool_calls": [{"index": 1, "id": "call_b", "type": "function",
                                    "function": {"name": "get_time", "arguments": ""}}]}), 2)
    acc.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city": '}}]}), 3)
    acc.feed(chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}), 4)
    acc.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}), 5)
    acc.feed(chunk({}, finish="tool_calls"), 6)
    assert [t.name for t in acc.tool_calls] == ["get_weather", "get_time"]
    assert acc.tool_calls[0].parsed_arguments() == ({"city": "Paris"}, None)
    assert acc.tool_calls[1].parsed_arguments() == ({}, None)
    assert acc.finish_reason == "tool_calls"
    msg = acc.assistant_message()
    assert msg["tool_calls"][0] == {"id": "call_a", "type": "function", "function": {
        "name": "get_weather", "arguments": '{"city": "Paris"}'}}


def test_broken_tool_arguments_reported_not_raised() -> None:
    acc = ChatAccumulator(started_at=0.0)
    acc.feed(chunk({"tool_calls": [{"index": 0, "id": "c", "function": {
        "name": "f", "arguments": '{"a": '}}]}), 1)
    value, err = acc.tool_calls[0].parsed_arguments()
    assert value is None and err is not None and "not valid JSON" in err


def test_stopped_stream_estimates_tokens_from_chunks() -> None:
    acc = ChatAccumulator(started_at=0.0)
    for i, piece in enumerate(["Once", " upon", " a", " time"]):
        acc.feed(chunk({"content": piece}), 1.0 + i * 0.25)
    m = acc.metrics()
    assert acc.usage is None and acc.finish_reason is None
    assert (m.completion_tokens, m.completion_source) == (4, "chunks")
    assert m.tokens_per_s == pytest.approx(4.0)


def test_coalesced_chunks_fall_back_to_chars() -> None:
    acc = ChatAccumulator(started_at=0.0)
    acc.feed(chunk({"content": "x" * 400}), 1.0)  # one big chunk: not one token
    assert acc.estimated_completion_tokens() == (100, "chars/4")


def test_other_choices_and_junk_ignored() -> None:
    acc = ChatAccumulator(started_at=0.0)
    acc.feed({"choices": [{"index": 1, "delta": {"content": "other"}}]}, 1)
    acc.feed({"choices": None, "usage": None}, 2)
    acc.feed({"choices": [{"index": 0, "delta": None, "finish_reason": None}]}, 3)
    assert acc.content == "" and acc.usage is None and acc.first_token_at is None


def test_logprobs_collected() -> None:
    acc = ChatAccumulator(started_at=0.0)
    c = chunk({"content": "Hi"})
    c["choices"][0]["logprobs"] = {"content": [{"token": "Hi", "logprob": -0.1,
                                                "top_logprobs": []}]}
    acc.feed(c, 1)
    assert acc.logprobs == [{"token": "Hi", "logprob": -0.1, "top_logprobs": []}]


def test_anthropic_stream() -> None:
    acc = AnthropicAccumulator(started_at=0.0)
    events = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "m", "usage": {
            "input_tokens": 20, "output_tokens": 1, "cache_read_input_tokens": 5}}},
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "thinking", "thinking": ""}},
        {"type": "content_block_delta", "index": 0,
         "delta": {"type": "thinking_delta", "thinking": "Hmm."}},
        {"type": "content_block_stop", "index": 0},
        {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "Hi"}},
        {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "!"}},
        {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_1", "name": "lookup", "input": {}}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": '{"q": "x'}},
        {"type": "content_block_delta", "index": 2,
         "delta": {"type": "input_json_delta", "partial_json": '"}'}},
        {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None},
         "usage": {"output_tokens": 9}},
        {"type": "message_stop"},
    ]
    for i, ev in enumerate(events):
        acc.feed(ev, 1.0 + i)
    assert acc.reasoning == "Hmm." and acc.content == "Hi!"
    assert acc.tool_calls[0].name == "lookup"
    assert acc.tool_calls[0].parsed_arguments() == ({"q": "x"}, None)
    assert acc.finish_reason == "tool_use"
    assert acc.usage == {"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 5}
    m = acc.metrics()
    assert m.completion_tokens == 9 and m.completion_source == "usage"
    assert m.ttft_s == pytest.approx(3.0)  # the first thinking delta (event 2 at t=3)
    view = anthropic_usage_view(acc.usage)
    assert view["completion"] == 9 and view["cached"] == 5


def test_anthropic_stopped_has_no_usage_tokens() -> None:
    acc = AnthropicAccumulator(started_at=0.0)
    acc.feed({"type": "message_start", "message": {"id": "m", "usage": {
        "input_tokens": 3, "output_tokens": 1}}}, 0.5)
    acc.feed({"type": "content_block_delta", "index": 0,
              "delta": {"type": "text_delta", "text": "abc"}}, 1.0)
    # no message_delta: output_tokens=1 from message_start must not be trusted
    assert acc.usage_completion_tokens() is None
    assert acc.metrics().completion_source in ("chunks", "chars/4")


# ---- turn facts and conversation helpers -------------------------------------------------

from decimal import Decimal  # noqa: E402

from wafer_playground.assembly import (  # noqa: E402
    conversation_messages,
    turn_facts,
    unanswered_tool_calls,
)
from wafer_playground.catalog import Pricing  # noqa: E402

PRICE = Pricing(input_cpm=Decimal(100), output_cpm=Decimal(400), cache_read_cpm=Decimal(10))


def test_turn_cost_actual_from_usage() -> None:
    acc = ChatAccumulator(started_at=0.0)
    acc.feed(chunk({"content": "hi"}), 0.2)
    acc.feed(chunk({}, finish="stop"), 0.3)
    acc.feed(chunk(usage={"prompt_tokens": 1000, "completion_tokens": 500,
                          "prompt_tokens_details": {"cached_tokens": 200},
                          "completion_tokens_details": {"reasoning_tokens": 100}},
                   choices=False), 0.4)
    f = turn_facts(acc, PRICE, prompt_estimate=9999, request_id="req_1")
    # 800 uncached x $1/M + 200 cached x $0.10/M + 500 out x $4/M
    assert f.cost.total == Decimal("0.0008") + Decimal("0.00002") + Decimal("0.002")
    assert f.cost.kind == "actual" and f.prompt_source == "usage"
    assert (f.prompt_tokens, f.cached_tokens, f.completion_tokens, f.reasoning_tokens) == (
        1000, 200, 500, 100)
    d = f.to_dict()
    assert d["cost_kind"] == "actual" and d["request_id"] == "req_1"
    assert d["finish_reason"] == "stop"


def test_turn_cost_estimated_after_stop() -> None:
    acc = ChatAccumulator(started_at=0.0)
    for i in range(10):
        acc.feed(chunk({"content": f" w{i}"}), 0.1 * (i + 1))
    f = turn_facts(acc, PRICE, prompt_estimate=50, request_id=None)
    assert f.cost.kind == "estimate" and f.prompt_source == "estimate"
    assert (f.prompt_tokens, f.completion_tokens, f.completion_source) == (50, 10, "chunks")
    assert f.cost.total == Decimal(50) * 100 / 10**8 + Decimal(10) * 400 / 10**8
    assert f.finish_reason is None


def test_unpublished_price_is_not_zero() -> None:
    acc = ChatAccumulator(started_at=0.0)
    acc.feed(chunk({"content": "x"}), 0.1)
    f = turn_facts(acc, Pricing(), prompt_estimate=5, request_id=None)
    assert f.cost.total is None and f.to_dict()["cost_label"] == "not published"


def test_conversation_messages_and_pending_tools() -> None:
    call = {"id": "call_1", "type": "function",
            "function": {"name": "f", "arguments": "{}"}}
    turns = [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [call], "status": "done"},
    ]
    assert unanswered_tool_calls(turns) == [call]
    turns.append({"role": "tool", "tool_call_id": "call_1", "content": "42"})
    assert unanswered_tool_calls(turns) == []
    turns.append({"role": "assistant", "content": "boom", "status": "error"})
    assert conversation_messages(turns) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": "", "tool_calls": [call]},
        {"role": "tool", "tool_call_id": "call_1", "content": "42"},
    ]


def test_logprob_rows() -> None:
    from wafer_playground.assembly import logprob_rows

    rows = logprob_rows([{"token": "Hi", "logprob": -0.105, "top_logprobs": [
        {"token": "Hi", "logprob": -0.105}, {"token": "Hello", "logprob": -2.3}]}])
    assert rows[0]["token"] == "Hi"
    assert rows[0]["probability"] == pytest.approx(0.9003, abs=1e-4)
    assert rows[0]["alternatives"] == "'Hi' 90.0%, 'Hello' 10.0%"
