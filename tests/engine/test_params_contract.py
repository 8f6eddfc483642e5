"""Every field `params.SPECS` can send is accepted by the local engine.

The cases come from the table itself, so a parameter added to wafer_playground/params.py gets a
case here without anyone writing one: a real request per field and value, built by the app's
own builders (`params.build_chat_body` for chat, `tokens.build_body` for completions). A schema
rejection (422) fails the test; so does a field the engine accepts but never hands to
llama-server (the in-process test at the end).

A value is derived from the field's row (kind, min, max, choices); only free-text and JSON
fields, and fields that need another one set, have one written below.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from tests.engine.conftest import SMOL
from wafer_playground import params, tokens
from wafer_playground.local import cards
from wafer_playground.local.server import Backend, EngineConfig, create_app

pytestmark = pytest.mark.engine

HI = [{"role": "user", "content": "Reply with one word."}]
MAX_TOKENS = 4  # every request but max_tokens' own stays short
TOOLS = json.dumps([{"type": "function", "function": {
    "name": "get_time", "description": "The current time.",
    "parameters": {"type": "object", "properties": {}}}}])
SCHEMA = json.dumps({"type": "object", "properties": {"a": {"type": "integer"}},
                     "required": ["a"]})
# text and JSON fields, and a choice without a fixed list: no value can be derived from the row
WRITTEN: dict[str, list[Any]] = {
    "system": ["Answer in one word."], "json_schema": [SCHEMA], "tools": [TOOLS],
    "tool_choice": [*(c for c in params.TOOL_CHOICES if c != "auto"), "get_time"]}
# fields that are only sent together with another one (params.build_chat_body)
WITH: dict[str, dict[str, Any]] = {"top_logprobs": {"logprobs": True},
                                   "json_schema": {"response_format": "json_schema"},
                                   "tool_choice": {"tools": TOOLS}}
# a capability the local models' cards say they lack is refused with one of these, never 422
CAPABILITY_CODES = {"model_capability_unsupported", "reasoning_not_supported"}


def values_for(spec: params.ParamSpec) -> list[Any]:
    """Valid values other than the default, from the spec's row."""
    if spec.name in WRITTEN:
        return WRITTEN[spec.name]
    lo = spec.min if spec.min is not None else 0
    if spec.kind == "float":
        hi = spec.max if spec.max is not None else lo + 1
        value = round(lo + (hi - lo) / 4, 4)
        return [value if value != spec.default else round(lo + (hi - lo) / 2, 4)]
    if spec.kind == "int":
        return [int(lo) + 1 if int(lo) + 1 != spec.default else int(lo) + 2]
    if spec.kind == "bool":
        return [not spec.default]
    if spec.kind == "choice" and spec.choices:
        return [c for c in spec.choices if c is not None and c != spec.default]
    if spec.kind == "list":
        return [("END",)]
    raise AssertionError(f"no value can be derived for {spec.name} ({spec.kind}): "
                         "write one in WRITTEN")


def chat_body(name: str, value: Any) -> dict[str, Any]:
    vals = {**params.defaults(), "max_tokens": MAX_TOKENS, **WITH.get(name, {}), name: value}
    return params.build_chat_body(SMOL, HI, vals)


def chat_cases() -> Iterator[Any]:
    baseline = chat_body("max_tokens", MAX_TOKENS)
    for spec in params.SPECS:
        for value in values_for(spec):
            body = chat_body(spec.name, value)
            if body != baseline:  # a field the builder never sends is not part of the contract
                yield pytest.param(spec, value, body, id=f"{spec.name}={value!r}"[:60])


CHAT_CASES = list(chat_cases())


def test_the_cases_cover_every_field_the_chat_builder_sends() -> None:
    sent = {spec.name for spec, _, _ in (c.values for c in CHAT_CASES)}
    assert sent == {s.name for s in params.SPECS}, "a SPECS field produced no request"


def _capability_lacking(spec: params.ParamSpec, card: dict[str, Any]) -> bool:
    return spec.needs is not None and card["wafer"]["capabilities"][spec.needs] is False


@pytest.mark.parametrize(("spec", "value", "body"), CHAT_CASES)
def test_local_engine_accepts_every_chat_field(api: httpx.Client, spec: params.ParamSpec,
                                               value: Any, body: dict[str, Any]) -> None:
    card = api.get(f"/models/{SMOL}").json()
    r = api.post("/chat/completions", json=body)
    if r.status_code == 200:
        assert r.json()["choices"][0]["message"]["role"] == "assistant"
        return
    # refused only for what the card says the model cannot do, by name, as a 400
    err = r.json()["error"]
    assert r.status_code == 400 and err["code"] in CAPABILITY_CODES, (body, r.text)
    assert _capability_lacking(spec, card), (body, r.text)
    assert err["param"] in (spec.name, spec.needs), err


COMPLETION_FIELDS = {f.name for f in dataclasses.fields(tokens.CompletionSettings)}
# on /v1/completions `logprobs` is the number of alternatives, not a switch
COMPLETION_VALUE: dict[str, Any] = {"logprobs": 2}


def completion_cases() -> Iterator[Any]:
    for spec in params.SPECS:
        if spec.name not in COMPLETION_FIELDS:
            continue  # chat-only (messages, tools, response_format, reasoning)
        for value in values_for(spec):
            value = COMPLETION_VALUE.get(spec.name, value)
            yield pytest.param(spec.name, list(value) if isinstance(value, tuple) else value,
                               id=f"{spec.name}={value!r}")


@pytest.mark.parametrize(("name", "value"), list(completion_cases()))
def test_local_engine_accepts_every_completion_field(api: httpx.Client, name: str,
                                                     value: Any) -> None:
    ids = api.post("/tokenize", json={"model": SMOL, "content": "Once upon a time"}).json()
    base = tokens.CompletionSettings(max_tokens=MAX_TOKENS, temperature=None, logprobs=None,
                                     stream=False, return_token_ids=False)
    settings = dataclasses.replace(base, **{name: value})
    body = tokens.build_body(SMOL, ids["tokens"], settings)
    assert name in body
    r = api.post("/completions", json=body)
    assert r.status_code == 200, (body, r.text)
    assert r.json()["choices"][0]["finish_reason"] in ("stop", "length")


def test_completion_cases_are_the_specs_the_token_page_sends() -> None:
    names = {c.values[0] for c in completion_cases()}
    assert names == {s.name for s in params.SPECS} & COMPLETION_FIELDS
    assert {"temperature", "top_p", "max_tokens", "seed", "stop"} <= names


# --- in process: an accepted field reaches llama-server ----------------------------------------

# where llama-server finds a SPECS field when not under its own name (routes_chat._chat_upstream)
RENAMED = {"repetition_penalty": "repeat_penalty"}
# values that mean "off" on a model without reasoning: accepted, nothing to hand on
OFF = {("reasoning_effort", "none"), ("thinking", "disabled")}


@pytest.fixture(scope="module")
def scripted() -> Iterator[tuple[TestClient, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    def upstream(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(200, json={
            "id": "x", "object": "chat.completion", "created": 0, "model": "m",
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})

    backend = Backend(spec=cards.SMOLLM2, url="http://upstream.invalid", n_ctx=4096,
                      n_vocab=49152)
    app = create_app([backend], EngineConfig(upstream_transport=httpx.MockTransport(upstream)))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c, seen


@pytest.mark.parametrize(("spec", "value", "body"), CHAT_CASES)
def test_every_accepted_chat_field_reaches_llama_server(
        scripted: tuple[TestClient, list[dict[str, Any]]], spec: params.ParamSpec, value: Any,
        body: dict[str, Any]) -> None:
    client, seen = scripted
    seen.clear()
    r = client.post("/v1/chat/completions", json=body)
    if r.status_code != 200:
        assert r.json()["error"]["code"] in CAPABILITY_CODES, r.text
        assert not seen  # refused before anything went upstream
        return
    (up,) = seen
    name = spec.name
    if (name, value) in OFF:
        assert name not in up
    elif name == "system":
        assert up["messages"][0] == {"role": "system", "content": value}
    elif name == "json_schema":
        assert up["response_format"]["json_schema"]["schema"] == json.loads(value)
    else:
        assert up.get(RENAMED.get(name, name)) == body[name], (body, up)
