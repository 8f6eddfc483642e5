"""The card fields of docs/spec/addendum-2026-12.md §2.1: max_output_tokens, reasoning_effort,
chat_completions flags, microcent prices and supports_vision are read and used; unknown fields
stay raw."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

from tests.fake_wafer import VISION_CARD
from wafer_playground.catalog import parse_card, parse_models, to_frame
from wafer_playground.costs import Usage, cost_of, format_usd
from wafer_playground.params import (
    BY_NAME,
    REASONING_EFFORTS,
    build_chat_body,
    reasoning_choices,
    reasoning_note,
    unsupported_reason,
    validate,
)


def card(**wafer: Any) -> dict[str, Any]:
    c = copy.deepcopy(VISION_CARD)
    c["wafer"].update(wafer)
    return c


def test_new_fields_are_read() -> None:
    m = parse_card(VISION_CARD, None)
    assert m.vision is True and m.max_output_tokens == 8192
    assert m.reasoning_effort is not None
    assert m.reasoning_effort.efforts == ("none", "high", "max")
    assert (m.reasoning_effort.control, m.reasoning_effort.default) == ("native_effort", "none")
    assert m.chat_completions == {"supported": True, "streaming": True, "tools": True,
                                  "tool_streaming": False, "json_object": True,
                                  "json_schema": False, "tools_with_response_format": False}
    assert m.raw["wafer"]["future_field"] == {"note": "not read by the app"}


def test_microcents_keep_their_precision_in_every_cost() -> None:
    m = parse_card(VISION_CARD, None)
    assert m.pricing.cache_read_cpm == Decimal("23.59")  # not the rounded 24
    c = cost_of(Usage(prompt_tokens=1_000_000, completion_tokens=0,
                      cached_tokens=1_000_000), m.pricing)
    assert c.cached == Decimal("0.2359") and format_usd(c.cached) == "$0.236"
    one = cost_of(Usage(prompt_tokens=1, completion_tokens=0, cached_tokens=1), m.pricing)
    assert one.cached == Decimal("0.0000002359")
    frame = to_frame([m])
    assert frame["cache_read_usd_per_m"].iloc[0] == 0.2359
    # microcents for input/output too, where a card carries them
    m2 = parse_card(card(pricing={"input_cents_per_million": 4,
                                  "input_microcents_per_million": 3_500_001,
                                  "output_cents_per_million": 440}), None)
    assert m2.pricing.input_cpm == Decimal("3.500001")
    assert m2.pricing.output_cpm == Decimal("440")
    # a broken microcent value falls back to the cents field and is reported
    issues: list[str] = []
    m3 = parse_card(card(pricing={"input_cents_per_million": 4, "output_cents_per_million": 5,
                                  "input_microcents_per_million": "lots"}), None, issues)
    assert m3.pricing.input_cpm == Decimal(4) and any("microcents" in i for i in issues)


def test_supports_vision_and_nesting_guesses() -> None:
    top = {"id": "v", "supports_vision": True, "reasoning_effort": {
        "control": "system_prompt", "efforts": ["none", "low", "high", "max"],
        "default": "low"}, "chat_completions": {"json_schema": True}}
    m = parse_card(top, None)
    assert m.vision is True
    assert m.reasoning_effort is not None and m.reasoning_effort.default == "low"
    assert m.chat_completions == {"json_schema": True}
    assert parse_card({"id": "t"}, None).vision is None
    # hostile effort names are dropped; a default outside the list is ignored
    junk = parse_card({"id": "j", "wafer": {"reasoning_effort": {
        "efforts": ["high", "<img src=x>", 3, "high"], "default": "ultra"}}}, None)
    assert junk.reasoning_effort is not None
    assert junk.reasoning_effort.efforts == ("high",) and junk.reasoning_effort.default is None
    assert parse_card({"id": "e", "wafer": {"reasoning_effort": {"efforts": []}}},
                      None).reasoning_effort is None


def test_reasoning_control_follows_the_card() -> None:
    m = parse_card(VISION_CARD, None)
    assert reasoning_choices(m) == ("none", "high", "max")
    assert reasoning_choices(None) == REASONING_EFFORTS
    note = reasoning_note(m)
    assert note and "natively" in note and "default none" in note
    issues = validate({"reasoning_effort": "low"}, m)
    assert any(i.param == "reasoning_effort" and "high" in i.message and i.blocking
               for i in issues)
    assert not [i for i in validate({"reasoning_effort": "max"}, m) if i.blocking]


def test_chat_completions_flags_disable_what_the_model_lacks() -> None:
    m = parse_card(VISION_CARD, None)
    reason = unsupported_reason(BY_NAME["tools"], m)
    assert reason and "tool_streaming is false" in reason
    tools = '[{"type":"function","function":{"name":"f","parameters":{"type":"object",' \
            '"properties":{}}}}]'
    body = build_chat_body(m, [{"role": "user", "content": "hi"}], {"tools": tools})
    assert "tools" not in body  # disabled controls are never sent
    issues = validate({"response_format": "json_schema", "json_schema": '{"type":"object"}'},
                      m)
    assert any(i.param == "response_format" and "json_schema is false" in i.message
               and i.blocking for i in issues)
    assert not [i for i in validate({"response_format": "json_object"}, m) if i.blocking]
    # tools with a response format, on a card that streams tools but not with a format
    both = parse_card(card(chat_completions={"tools": True, "tool_streaming": True,
                                             "tools_with_response_format": False}), None)
    issues = validate({"response_format": "json_object", "tools": tools}, both)
    assert any(i.param == "tools" and "tools_with_response_format" in i.message
               for i in issues)
    assert not [i for i in validate({"tools": tools}, both) if i.blocking]


def test_unknown_fields_stay_in_the_raw_card() -> None:
    cat = parse_models({"data": [VISION_CARD]}, source=None)
    assert cat.problems == []
    assert cat.models[0].raw["supports_vision"] is True
    assert cat.models[0].raw["wafer"]["future_field"]
