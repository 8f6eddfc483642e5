"""Parameter specs, validation against a card, request building (only changed fields)."""

from __future__ import annotations

import json

import pytest

from wafer_playground.catalog import Model
from wafer_playground.params import (
    SPECS,
    build_chat_body,
    build_messages_body,
    changed,
    context_check,
    defaults,
    estimate_prompt_tokens,
    messages_dropped_fields,
    to_anthropic_messages,
    tool_names,
    unsupported_reason,
    validate,
)

TOOLS = [{"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                   "required": ["city"]}}}]
MSGS = [{"role": "user", "content": "hi"}]
FULL = Model(id="GLM-5.1", display_name="GLM 5.1", context_length=1000, max_output_tokens=500,
             tools=True, reasoning=True)
PLAIN = Model(id="tiny", display_name="Tiny", context_length=2048, tools=False, reasoning=False)


def test_defaults_send_nothing_but_model_and_messages() -> None:
    assert build_chat_body(FULL, MSGS, defaults()) == {"model": "GLM-5.1", "messages": MSGS}
    assert changed(defaults()) == {}


def test_every_documented_chat_field_has_a_spec() -> None:
    names = {s.name for s in SPECS}
    for field in ("max_tokens", "temperature", "top_p", "top_k", "min_p", "frequency_penalty",
                  "presence_penalty", "repetition_penalty", "stop", "seed", "logprobs",
                  "top_logprobs", "response_format", "tools", "tool_choice",
                  "reasoning_effort", "thinking"):
        assert field in names, field


def test_changed_fields_are_sent_exactly() -> None:
    values = {**defaults(), "system": "Be brief.", "temperature": 0.2, "top_k": 40,
              "max_tokens": 64, "stop": ["END", ""], "seed": 7, "logprobs": True,
              "top_logprobs": 3, "reasoning_effort": "low", "thinking": "enabled",
              "repetition_penalty": 1.1, "tools": json.dumps(TOOLS),
              "tool_choice": "get_weather", "response_format": "json_object"}
    assert validate(values, FULL) == []
    body = build_chat_body(FULL, MSGS, values)
    assert body == {
        "model": "GLM-5.1",
        "messages": [{"role": "system", "content": "Be brief."}, *MSGS],
        "max_tokens": 64, "temperature": 0.2, "top_k": 40, "repetition_penalty": 1.1,
        "seed": 7, "logprobs": True, "reasoning_effort": "low",
        "thinking": {"type": "enabled"}, "stop": ["END"], "top_logprobs": 3,
        "response_format": {"type": "json_object"}, "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }


def test_float_back_at_default_is_not_sent() -> None:
    body = build_chat_body(FULL, MSGS, {**defaults(), "temperature": 1.0000000001})
    assert "temperature" not in body


def test_unsupported_capabilities_disabled_with_reason_and_not_sent() -> None:
    from wafer_playground.params import BY_NAME

    reason = unsupported_reason(BY_NAME["tools"], PLAIN)
    assert reason and "tool calling" in reason
    assert unsupported_reason(BY_NAME["tools"], FULL) is None
    unknown = Model(id="u", display_name="U")  # card silent: tools allowed, reasoning not
    assert unsupported_reason(BY_NAME["tools"], unknown) is None
    assert "does not list" in str(unsupported_reason(BY_NAME["reasoning_effort"], unknown))
    values = {**defaults(), "reasoning_effort": "high", "tools": json.dumps(TOOLS)}
    issues = validate(values, PLAIN)
    assert {i.param for i in issues} == {"reasoning_effort", "tools"}
    assert not any(i.blocking for i in issues)  # left out of the body, not an error
    body = build_chat_body(PLAIN, MSGS, values)
    assert "reasoning_effort" not in body and "tools" not in body


@pytest.mark.parametrize("patch,param,fragment", [
    ({"temperature": 2.5}, "temperature", "above the maximum 2"),
    ({"top_p": -0.1}, "top_p", "below the minimum 0"),
    ({"max_tokens": 0}, "max_tokens", "below the minimum 1"),
    ({"max_tokens": 600}, "max_tokens", "exceeds the model's max output of 500"),
    ({"top_logprobs": 5}, "top_logprobs", "needs log-probabilities"),
    ({"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
    ({"response_format": "json_schema", "json_schema": ""}, "json_schema", "needs a schema"),
    ({"response_format": "json_schema", "json_schema": "{nope"}, "json_schema", "not valid JSON"),
    ({"response_format": "json_schema", "json_schema": '{"type": 5}'}, "json_schema",
     "invalid JSON Schema"),
    ({"tools": "[{]"}, "tools", "not valid JSON"),
    ({"tools": "{}"}, "tools", "non-empty JSON array"),
    ({"tools": json.dumps([{"type": "function", "function": {"name": "f", "parameters": {
        "type": "string"}}}])}, "tools[0].function.parameters", "JSON Schema object"),
    ({"tools": json.dumps([{"type": "function", "function": {"name": "bad name!"}}])},
     "tools[0].function.name", "letters, digits"),
    ({"tools": json.dumps([{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "nonsense"}}}}}])},
     "tools[0].function.parameters", "invalid JSON Schema"),
    ({"tools": json.dumps(TOOLS), "tool_choice": "missing_tool"}, "tool_choice",
     "no tool named"),
    ({"tool_choice": "required"}, "tool_choice", "needs at least one tool"),
])
def test_validation_names_param_and_reason(patch: dict, param: str, fragment: str) -> None:
    issues = validate({**defaults(), **patch}, FULL)
    assert any(i.param.startswith(param) and fragment in i.message for i in issues), issues


def test_json_schema_response_format() -> None:
    schema = {"title": "Person card", "type": "object",
              "properties": {"name": {"type": "string"}}}
    values = {**defaults(), "response_format": "json_schema", "json_schema": json.dumps(schema)}
    assert validate(values, FULL) == []
    body = build_chat_body(FULL, MSGS, values)
    assert body["response_format"] == {"type": "json_schema", "json_schema": {
        "name": "Person_card", "schema": schema, "strict": True}}


def test_tool_names() -> None:
    assert tool_names(json.dumps(TOOLS)) == ["get_weather"]
    assert tool_names("[oops") == [] and tool_names("") == []


def test_context_check_levels() -> None:
    small = Model(id="s", display_name="S", context_length=100)
    body = build_chat_body(small, [{"role": "user", "content": "x" * 200}], defaults())
    prompt = estimate_prompt_tokens(body)
    assert prompt == 3 + 4 + 50
    assert context_check(body, small).level == "ok"
    assert context_check({**body, "max_tokens": 30}, small).level == "warn"
    over = context_check({**body, "max_tokens": 60}, small)
    assert over.level == "over" and "context_length_exceeded" in over.message
    assert context_check(body, Model(id="n", display_name="N")).level == "unknown"


def test_anthropic_conversion_with_tools_round_trip() -> None:
    history = [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "18C sunny"},
    ]
    system, msgs = to_anthropic_messages([{"role": "system", "content": "S"}, *history])
    assert system == "S"
    assert msgs == [
        {"role": "user", "content": "weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1",
                                           "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1",
                                      "content": "18C sunny"}]},
    ]
    values = {**defaults(), "system": "S", "temperature": 0.5, "stop": ["X"],
              "tools": json.dumps(TOOLS), "tool_choice": "required", "thinking": "enabled",
              "seed": 3}
    body = build_messages_body(FULL, history, values)
    assert body["max_tokens"] == 1024 and body["system"] == "S"
    assert body["stop_sequences"] == ["X"] and body["temperature"] == 0.5
    assert body["tools"][0]["input_schema"] == TOOLS[0]["function"]["parameters"]
    assert body["tool_choice"] == {"type": "any"}
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 512}
    assert messages_dropped_fields(values) == ["seed"]


def test_half_typed_json_never_crashes_building() -> None:
    values = {**defaults(), "tools": "[{not json", "response_format": "json_schema",
              "json_schema": "{", "tool_choice": "x"}
    assert {i.param for i in validate(values, FULL) if i.blocking} >= {"tools", "json_schema"}
    body = build_chat_body(FULL, MSGS, values)
    assert "tools" not in body and "response_format" not in body
    assert "tools" not in build_messages_body(FULL, MSGS, values)
