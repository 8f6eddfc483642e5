"""Contract tests: the real `wafer-local` (adapter + llama-server) against the Wafer spec."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.engine.conftest import GEMMA, SERVER_ID, SMOL, assert_error, sse_data, sse_events

pytestmark = pytest.mark.engine

HI = [{"role": "user", "content": "Reply with the single word: ready."}]


def chat(api: httpx.Client, **kw: object) -> httpx.Response:
    body = {"model": SMOL, "messages": HI, "max_tokens": 8, "temperature": 0, **kw}
    return api.post("/chat/completions", json=body)


def tokenize(api: httpx.Client, text: str, model: str = SMOL, **kw: object) -> list[int]:
    r = api.post("/tokenize", json={"model": model, "content": text, **kw})
    assert r.status_code == 200, r.text
    return [int(t) for t in r.json()["tokens"]]


# --- models, ids, envelope ------------------------------------------------------------------


def test_models_are_wafer_cards(api: httpx.Client) -> None:
    r = api.get("/models")
    assert r.status_code == 200
    assert SERVER_ID.match(r.headers["x-request-id"])
    data = r.json()
    assert data["object"] == "list"
    cards = {m["id"]: m for m in data["data"]}
    assert set(cards) == {SMOL, GEMMA}
    for card in cards.values():
        assert card["object"] == "model" and card["owned_by"] == "wafer"
        assert card["max_model_len"] == card["wafer"]["context_length"] == 4096
        w = card["wafer"]
        assert w["tier"] in ("pass_included", "serverless_only")
        assert set(w["capabilities"]) == {"vision", "tools", "reasoning"}
        assert w["capabilities"]["reasoning"] is False
        assert w["pricing"] == {"input_cents_per_million": 0, "output_cents_per_million": 0,
                                "cache_read_cents_per_million": 0, "currency": "usd"}
        assert w["display_name"] and w["description"] and w["provider"]
        assert card["local"]["n_vocab"] > 1000
    assert cards[SMOL]["zdr_supported"] is True
    assert cards[GEMMA]["zdr_supported"] is False
    assert cards[SMOL]["local"]["licence"] == "Apache-2.0"
    assert "Gemma Terms of Use" in cards[GEMMA]["local"]["licence"]
    assert cards[GEMMA]["local"]["chat_template"] is False
    assert "chat template" in cards[GEMMA]["wafer"]["description"].lower()
    assert cards[SMOL]["local"]["n_vocab"] == 49152
    assert cards[GEMMA]["local"]["n_vocab"] == 262144


def test_client_request_id_is_echoed_with_prefix(api: httpx.Client) -> None:
    r = api.get("/models", headers={"x-request-id": "abc-123"})
    assert r.headers["x-request-id"] == "client_abc-123"
    r = api.post("/chat/completions", json={"model": SMOL}, headers={"x-request-id": "zz"})
    assert r.headers["x-request-id"] == "client_zz"
    assert r.json()["error"]["request_id"] == "client_zz"


def test_unknown_route_and_method_use_envelope(api: httpx.Client) -> None:
    assert_error(api.get("/nope"), 404, "not_found")
    assert_error(api.get("/chat/completions"), 405, "method_not_allowed")


def test_invalid_json_body(api: httpx.Client) -> None:
    r = api.post("/chat/completions", content=b"{not json",
                 headers={"content-type": "application/json"})
    assert_error(r, 400, "invalid_json_request")
    assert_error(api.post("/chat/completions", json=[1, 2]), 422, "schema_validation_failed")


def test_model_not_found(api: httpx.Client) -> None:
    r = api.post("/chat/completions", json={"model": "GLM-5.1", "messages": HI})
    assert_error(r, 404, "model_not_found", param="model")
    r = api.post("/completions", json={"model": "nope", "prompt": [1]})
    assert_error(r, 404, "model_not_found")


def test_zdr_required_on_non_zdr_model_is_422(api: httpx.Client) -> None:
    zdr = {"Wafer-ZDR": "required"}
    r = api.post("/completions", json={"model": GEMMA, "prompt": [2, 10979], "max_tokens": 1},
                 headers=zdr)
    assert_error(r, 422, "model_zdr_not_supported")
    r = api.post("/chat/completions", headers=zdr,
                 json={"model": SMOL, "messages": HI, "max_tokens": 2, "temperature": 0})
    assert r.status_code == 200, r.text


# --- chat --------------------------------------------------------------------------------------


def test_chat_non_stream_shape_and_usage(api: httpx.Client) -> None:
    r = chat(api)
    assert r.status_code == 200, r.text
    assert SERVER_ID.match(r.headers["x-request-id"])
    d = r.json()
    assert d["object"] == "chat.completion" and d["model"] == SMOL
    ch = d["choices"][0]
    assert ch["message"]["role"] == "assistant" and isinstance(ch["message"]["content"], str)
    assert ch["finish_reason"] in ("stop", "length")
    u = d["usage"]
    assert u["total_tokens"] == u["prompt_tokens"] + u["completion_tokens"]
    assert 1 <= u["completion_tokens"] <= 8
    assert isinstance(u["prompt_tokens_details"]["cached_tokens"], int)
    assert "timings" not in d
    # the adapter's own prompt count (template + tokenize) agrees with llama-server's usage
    prompt = api.post("/apply-template", json={"messages": HI}).json()["prompt"]
    assert len(tokenize(api, prompt, add_special=True)) == u["prompt_tokens"]
    # a repeat hits the prompt cache and says so
    again = chat(api).json()["usage"]["prompt_tokens_details"]["cached_tokens"]
    assert again > 0


def test_chat_stream_with_and_without_usage(api: httpx.Client) -> None:
    body = {"model": SMOL, "messages": HI, "max_tokens": 6, "temperature": 0, "stream": True,
            "stream_options": {"include_usage": True}}
    r = api.post("/chat/completions", json=body)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(x) for x in data[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    usage_chunk = chunks[-1]
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["completion_tokens"] >= 1
    assert "prompt_tokens_details" in usage_chunk["usage"]
    finals = [c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
    assert len(finals) == 1
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == chat(api, max_tokens=6).json()["choices"][0]["message"]["content"]
    # without include_usage there is no usage chunk
    body.pop("stream_options")
    chunks2 = [json.loads(x) for x in sse_data(api.post("/chat/completions", json=body).text)[:-1]]
    assert all(c["choices"] for c in chunks2)


def test_chat_validation_errors(api: httpx.Client) -> None:
    assert_error(chat(api, bogus=1), 422, "schema_validation_failed", param="bogus")
    assert_error(chat(api, temperature="hot"), 422, "schema_validation_failed",
                 param="temperature")
    assert_error(chat(api, max_tokens=0), 422, "schema_validation_failed", param="max_tokens")
    assert_error(chat(api, max_tokens=-5), 422, "schema_validation_failed", param="max_tokens")
    assert_error(chat(api, n=2), 422, "schema_validation_failed", param="n")
    r = api.post("/chat/completions", json={"model": SMOL})
    assert_error(r, 422, "schema_validation_failed", param="messages")
    r = api.post("/chat/completions", json={"model": SMOL, "messages": [{"role": "x",
                                                                          "content": "a"}]})
    assert_error(r, 422, "schema_validation_failed", param="messages[0].role")
    assert_error(chat(api, top_logprobs=2), 422, "schema_validation_failed",
                 param="top_logprobs")
    assert_error(chat(api, stream_options={"bogus": True}), 422, "schema_validation_failed",
                 param="stream_options.bogus")


def test_chat_tools_are_validated_like_wafer(api: httpx.Client) -> None:
    good = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}
    bad = {"type": "function", "function": {"name": "f", "parameters": {"type": "string"}}}
    assert_error(chat(api, tools=[good, bad]), 400, "tool_schema_invalid",
                 param="tools[1].function.parameters")
    r = chat(api, tools=[good], tool_choice={"type": "function", "function": {"name": "nope"}})
    assert_error(r, 400, "tool_choice_unknown_tool")
    # valid tools on a model whose card says tools:false -> a clear 400, never ignored
    card = {m["id"]: m for m in api.get("/models").json()["data"]}[SMOL]
    if not card["wafer"]["capabilities"]["tools"]:
        assert_error(chat(api, tools=[good]), 400, "model_capability_unsupported",
                     param="tools")


def test_reasoning_fields_on_non_reasoning_model(api: httpx.Client) -> None:
    err = assert_error(chat(api, reasoning_effort="high"), 400, "reasoning_not_supported",
                       param="reasoning_effort")
    assert "reasoning" in err["message"]
    assert_error(chat(api, thinking={"type": "enabled", "budget_tokens": 100}), 400,
                 "reasoning_not_supported")
    assert chat(api, reasoning_effort="none").status_code == 200


def test_gemma_has_no_chat(api: httpx.Client) -> None:
    r = api.post("/chat/completions", json={"model": GEMMA, "messages": HI})
    err = assert_error(r, 400, "chat_template_missing")
    assert "/v1/completions" in err["message"]


def test_context_length_exceeded(api: httpx.Client) -> None:
    long = [{"role": "user", "content": "hello " * 5000}]
    r = api.post("/chat/completions", json={"model": SMOL, "messages": long, "max_tokens": 4})
    err = assert_error(r, 400, "context_length_exceeded")
    assert "4096" in err["message"]
    # prompt fits, prompt + max_tokens does not
    mid = [{"role": "user", "content": "hello " * 3500}]
    r = api.post("/chat/completions", json={"model": SMOL, "messages": mid, "max_tokens": 1000})
    assert_error(r, 400, "context_length_exceeded", param="max_tokens")
    r = api.post("/completions", json={"model": SMOL, "prompt": [504] * 4100, "max_tokens": 1})
    assert_error(r, 400, "context_length_exceeded")


def test_chat_logprobs_and_response_format(api: httpx.Client) -> None:
    d = chat(api, logprobs=True, top_logprobs=2).json()
    content = d["choices"][0]["logprobs"]["content"]
    assert content and all(len(e["top_logprobs"]) <= 2 for e in content)
    assert all(isinstance(e["logprob"], float) for e in content)
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    r = chat(api, max_tokens=30, messages=[{"role": "user", "content": "Give a number"}],
             response_format={"type": "json_schema",
                              "json_schema": {"name": "x", "schema": schema}})
    assert r.status_code == 200, r.text
    out = r.json()["choices"][0]
    if out["finish_reason"] == "stop":
        assert isinstance(json.loads(out["message"]["content"])["n"], int)
    else:
        assert out["message"]["content"].lstrip().startswith("{")
    assert_error(chat(api, response_format={"type": "yaml"}), 422, "schema_validation_failed")


def test_max_tokens_is_capped_by_the_server(api: httpx.Client) -> None:
    card = {m["id"]: m for m in api.get("/models").json()["data"]}[SMOL]
    cap = card["wafer"]["max_output_tokens"]
    assert 0 < cap <= card["max_model_len"]


# --- completions -------------------------------------------------------------------------------


def complete(api: httpx.Client, **kw: object) -> httpx.Response:
    body = {"model": SMOL, "prompt": [504, 3575, 282, 4649, 314], "max_tokens": 4,
            "temperature": 0, **kw}
    return api.post("/completions", json=body)


def test_completions_with_token_ids(api: httpx.Client) -> None:
    r = complete(api, return_token_ids=True)
    assert r.status_code == 200, r.text
    d = r.json()
    assert d["object"] == "text_completion" and d["model"] == SMOL
    ch = d["choices"][0]
    assert ch["index"] == 0 and ch["text"] and ch["finish_reason"] in ("stop", "length")
    assert ch["prompt_token_ids"] == [504, 3575, 282, 4649, 314]
    assert len(ch["token_ids"]) == d["usage"]["completion_tokens"] <= 4
    detok = api.post("/detokenize", json={"tokens": ch["token_ids"]}).json()["content"]
    assert detok.startswith(ch["text"]) or ch["text"].startswith(detok.rstrip())
    assert d["usage"]["prompt_tokens"] == 5
    assert "token_ids" not in complete(api).json()["choices"][0]  # omitted unless asked


def test_completions_echo(api: httpx.Client) -> None:
    d = complete(api, echo=True, max_tokens=2).json()
    assert d["choices"][0]["text"].startswith("The capital of France is")
    assert_error(complete(api, echo=True, logprobs=1), 400, "unsupported_parameter_combination")


def test_completions_batch_prompt(api: httpx.Client) -> None:
    d = complete(api, prompt=[[504, 3575], [9703]], max_tokens=2).json()
    assert [c["index"] for c in d["choices"]] == [0, 1]
    assert d["usage"]["prompt_tokens"] == 3


def test_completions_prompt_errors(api: httpx.Client) -> None:
    assert_error(complete(api, prompt="The capital of France is"), 400, "invalid_prompt",
                 param="prompt")
    assert_error(complete(api, prompt=[]), 400, "invalid_prompt")
    err = assert_error(complete(api, prompt=[504, 99999999]), 400, "invalid_token_id",
                       param="prompt[1]")
    assert "99999999" in err["message"]
    assert_error(complete(api, prompt=[504, -1]), 400, "invalid_token_id")
    assert_error(complete(api, prompt=[[504], []]), 400, "invalid_prompt", param="prompt[1]")
    assert_error(complete(api, prompt=[504, 1.5]), 400, "invalid_prompt")
    assert_error(complete(api, max_tokens=0), 422, "schema_validation_failed",
                 param="max_tokens")
    assert_error(complete(api, bogus=True), 422, "schema_validation_failed", param="bogus")


def test_ebnf_a_or_b(api: httpx.Client) -> None:
    for seed in range(4):
        r = complete(api, prompt=[9703], max_tokens=2, temperature=1.0, seed=seed,
                     ebnf='root ::= "A" | "B"')
        assert r.status_code == 200, r.text
        assert r.json()["choices"][0]["text"] in ("A", "B")


def test_ebnf_xgrammar_dialect_is_translated(api: httpx.Client) -> None:
    g = 'root ::= digit_seq "!"\ndigit_seq ::= [0-9]\n  | [0-9] [0-9]'
    r = complete(api, max_tokens=6, ebnf=g)
    assert r.status_code == 200, r.text
    text = r.json()["choices"][0]["text"]
    assert text.endswith("!") and text[:-1].isdigit() and 1 <= len(text) - 1 <= 2


def test_invalid_grammar_is_400_with_line_and_column(api: httpx.Client) -> None:
    err = assert_error(complete(api, ebnf='root ::= "A" |'), 400, "invalid_grammar",
                       param="ebnf")
    assert "line 1, column" in err["message"]
    err = assert_error(complete(api, ebnf='root ::= "A"\nfoo ::= bar'), 400, "invalid_grammar")
    assert "line 2" in err["message"]
    assert_error(complete(api, ebnf='start ::= "A"'), 400, "invalid_grammar")


def test_constraints_are_mutually_exclusive(api: httpx.Client) -> None:
    r = complete(api, ebnf='root ::= "A"', regex="[AB]")
    assert_error(r, 400, "conflicting_constraints")
    r = complete(api, ebnf='root ::= "A"', json_schema='{"type":"object"}')
    assert_error(r, 400, "conflicting_constraints")
    assert_error(complete(api, regex="[AB]"), 400, "unsupported_parameter", param="regex")


def test_completions_json_schema(api: httpx.Client) -> None:
    schema = json.dumps({"type": "object", "properties": {"a": {"type": "integer"}},
                         "required": ["a"]})
    r = complete(api, max_tokens=30, json_schema=schema)
    assert r.status_code == 200, r.text
    ch = r.json()["choices"][0]
    if ch["finish_reason"] == "stop":
        assert isinstance(json.loads(ch["text"])["a"], int)
    assert_error(complete(api, json_schema="{nope"), 400, "invalid_json_schema")


def test_legacy_logprobs_with_token_ids(api: httpx.Client) -> None:
    d = complete(api, logprobs=3, max_tokens=3).json()
    lp = d["choices"][0]["logprobs"]
    n = len(lp["tokens"])
    assert n == len(lp["token_logprobs"]) == len(lp["top_logprobs"]) == len(lp["text_offset"])
    assert n == len(lp["token_ids"]) == len(lp["top_logprobs_by_id"]) >= 1
    assert all(isinstance(x, dict) and len(x) <= 3 for x in lp["top_logprobs"])
    for alts in lp["top_logprobs_by_id"]:
        assert 1 <= len(alts) <= 3
        assert all({"id", "token", "bytes", "logprob"} <= set(a) for a in alts)
    # greedy: the sampled token is the top alternative
    assert lp["token_ids"][0] == lp["top_logprobs_by_id"][0][0]["id"]
    assert "".join(lp["tokens"]) == d["choices"][0]["text"]


def test_stop_token_ids_stop_on_the_generated_id(api: httpx.Client) -> None:
    base = complete(api, max_tokens=8, return_token_ids=True, ignore_eos=True).json()
    ids = base["choices"][0]["token_ids"]
    assert len(ids) == 8
    stop_id = ids[2]
    first = ids.index(stop_id)
    d = complete(api, max_tokens=8, return_token_ids=True, ignore_eos=True,
                 stop_token_ids=[stop_id]).json()
    ch = d["choices"][0]
    assert ch["finish_reason"] == "stop" and ch["matched_stop"] == stop_id
    assert ch["token_ids"] == ids[: first + 1]
    assert_error(complete(api, stop_token_ids=[10**9]), 400, "invalid_token_id")


def test_min_tokens_is_emulated(api: httpx.Client) -> None:
    prompt = api.post("/apply-template", json={"messages": HI}).json()["prompt"]
    ids = tokenize(api, prompt)
    plain = complete(api, prompt=ids, max_tokens=30).json()
    n_plain = plain["usage"]["completion_tokens"]
    assert plain["choices"][0]["finish_reason"] == "stop" and n_plain < 12
    d = complete(api, prompt=ids, max_tokens=30, min_tokens=12, return_token_ids=True).json()
    assert d["usage"]["completion_tokens"] >= 12
    assert len(d["choices"][0]["token_ids"]) >= 12
    assert_error(complete(api, min_tokens=10, max_tokens=4), 422, "schema_validation_failed",
                 param="min_tokens")


def test_completions_stream(api: httpx.Client) -> None:
    r = complete(api, stream=True, stream_options={"include_usage": True},
                 return_token_ids=True, max_tokens=5, ignore_eos=True)
    assert r.status_code == 200
    data = sse_data(r.text)
    assert data[-1] == "[DONE]"
    chunks = [json.loads(x) for x in data[:-1]]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 5
    body = [c for c in chunks if c["choices"]]
    assert all(c["object"] == "text_completion" for c in body)
    assert body[0]["choices"][0]["prompt_token_ids"] == [504, 3575, 282, 4649, 314]
    assert body[-1]["choices"][0]["finish_reason"] == "length"
    text = "".join(c["choices"][0]["text"] for c in body)
    ids = [t for c in body for t in c["choices"][0].get("token_ids", [])]
    same = complete(api, return_token_ids=True, max_tokens=5, ignore_eos=True).json()
    assert text == same["choices"][0]["text"]
    assert ids == same["choices"][0]["token_ids"]


def test_gemma_completions_with_bos(api: httpx.Client) -> None:
    ids = tokenize(api, "The capital of France is", model=GEMMA, add_special=True)
    assert ids[0] == 2
    d = api.post("/completions", json={"model": GEMMA, "prompt": ids, "max_tokens": 3,
                                       "temperature": 0}).json()
    assert d["choices"][0]["text"].strip()
    assert_error(api.post("/completions", json={"model": GEMMA, "prompt": [262144]}), 400,
                 "invalid_token_id")


# --- messages ----------------------------------------------------------------------------------


def test_messages_non_stream(api: httpx.Client) -> None:
    r = api.post("/messages", json={"model": SMOL, "max_tokens": 8, "temperature": 0,
                                    "system": "You are terse.", "messages": HI})
    assert r.status_code == 200, r.text
    m = r.json()
    assert m["type"] == "message" and m["role"] == "assistant" and m["model"] == SMOL
    assert m["id"].startswith("msg_")
    assert m["content"][0]["type"] == "text"
    assert m["stop_reason"] in ("end_turn", "max_tokens")
    assert set(m["usage"]) >= {"input_tokens", "output_tokens", "cache_read_input_tokens"}


def test_messages_stop_sequence(api: httpx.Client) -> None:
    base = api.post("/messages", json={"model": SMOL, "max_tokens": 12, "temperature": 0,
                                       "messages": HI}).json()["content"][0]["text"]
    word = base.strip().split()[0][-2:]
    m = api.post("/messages", json={"model": SMOL, "max_tokens": 12, "temperature": 0,
                                    "messages": HI, "stop_sequences": [word]}).json()
    assert m["stop_reason"] == "stop_sequence" and m["stop_sequence"] == word


def test_messages_stream_event_order(api: httpx.Client) -> None:
    r = api.post("/messages", json={"model": SMOL, "max_tokens": 6, "temperature": 0,
                                    "stream": True, "messages": HI})
    assert r.status_code == 200
    events = sse_events(r.text)
    names = [n for n, _ in events if n != "ping"]
    assert names[0] == "message_start"
    assert names[1] == "content_block_start"
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[2:-3]) == {"content_block_delta"}
    for name, data in events:
        assert json.loads(data)["type"] == name
    delta = json.loads(events[-2][1])
    assert delta["delta"]["stop_reason"] in ("end_turn", "max_tokens")
    assert delta["usage"]["output_tokens"] >= 1


def test_messages_errors_are_wrapped(api: httpx.Client) -> None:
    r = api.post("/messages", json={"model": SMOL, "messages": HI})
    assert_error(r, 422, "schema_validation_failed", param="max_tokens", anthropic=True)
    r = api.post("/messages", json={"model": SMOL, "max_tokens": 5, "messages": HI,
                                    "thinking": {"type": "enabled", "budget_tokens": 1024}})
    assert_error(r, 400, "reasoning_not_supported", anthropic=True)
    r = api.post("/messages", json={"model": "nope", "max_tokens": 5, "messages": HI})
    assert_error(r, 404, "model_not_found", anthropic=True)
    r = api.post("/messages", json={"model": GEMMA, "max_tokens": 5, "messages": HI})
    assert_error(r, 400, "chat_template_missing", anthropic=True)
    tools = [{"name": "t", "input_schema": {"type": "string"}}]
    r = api.post("/messages", json={"model": SMOL, "max_tokens": 5, "messages": HI,
                                    "tools": tools})
    assert_error(r, 400, "tool_schema_invalid", param="tools[0].input_schema", anthropic=True)


# --- token extensions --------------------------------------------------------------------------


def test_tokenize_detokenize_round_trip(api: httpx.Client) -> None:
    text = "Hello wörld 你好 — tokens!"
    for path in ("/tokenize", "/v1/tokenize"):
        url = str(api.base_url).rstrip("/").removesuffix("/v1") + path
        r = httpx.post(url, json={"content": text, "with_pieces": True}, timeout=30)
        assert r.status_code == 200, r.text
        pieces = r.json()["tokens"]
        assert all({"id", "piece"} <= set(p) for p in pieces)
        raw = b"".join(bytes(p["piece"]) if isinstance(p["piece"], list)
                       else p["piece"].encode() for p in pieces)
        assert raw.decode() == text
        assert any(isinstance(p["piece"], list) for p in pieces)  # a split multibyte char
        ids = [p["id"] for p in pieces]
        back = api.post("/detokenize", json={"tokens": ids}).json()["content"]
        assert back == text
    assert_error(api.post("/detokenize", json={"tokens": [49152]}), 400, "invalid_token_id")
    assert_error(api.post("/tokenize", json={"content": 5}), 422, "schema_validation_failed")
    assert_error(api.post("/tokenize", json={"content": "x", "model": "nope"}), 404,
                 "model_not_found")


def test_apply_template(api: httpx.Client) -> None:
    p = api.post("/apply-template", json={"messages": HI}).json()["prompt"]
    assert "<|im_start|>user" in p and p.endswith("<|im_start|>assistant\n")
    r = api.post("/apply-template", json={"model": GEMMA, "messages": HI})
    assert_error(r, 400, "chat_template_missing")


# --- usage, metrics, robustness ----------------------------------------------------------------


def test_usage_and_metrics_reflect_requests(api: httpx.Client) -> None:
    before = api.get("/usage/me", params={"period": "1d"}).json()
    for _ in range(2):
        assert chat(api, max_tokens=3).status_code == 200
    chat(api, bogus=1)
    after = api.get("/usage/me", params={"period": "1d"}).json()
    assert after["total_requests"] == before["total_requests"] + 2
    assert after["total_input_tokens"] > before["total_input_tokens"]
    assert after["total_estimated_cost_cents"] == 0
    assert {"user_id", "period_start", "period_end", "days", "models"} <= set(after)
    smol = next(m for m in after["models"] if m["model"] == SMOL)
    assert smol["request_count"] >= 2 and smol["estimated_cost_cents"] == 0
    assert sum(d["input_tokens"] for d in after["days"]) == after["total_input_tokens"]
    m = api.get("/endpoints/metrics", params={"endpoint": "pass.wafer.ai",
                                              "range_minutes": 60}).json()
    s = m["summary"]
    assert m["range_minutes"] == 60 and m["endpoint"] == "pass.wafer.ai"
    assert s["count_2xx"] >= 2 and s["count_4xx"] >= 1
    assert s["total_requests"] == s["count_2xx"] + s["count_4xx"] + s["count_5xx"]
    assert s["ttft_p50_ms"] is not None and s["ttft_p50_ms"] > 0
    assert s["engine_queue_depth"] is None
    assert sum(b["requests"] for b in m["timeseries"]) == s["total_requests"]
    assert_error(api.get("/endpoints/metrics", params={"endpoint": "x", "range_minutes": 7}),
                 422, "schema_validation_failed", param="range_minutes")
    assert_error(api.get("/endpoints/metrics"), 422, "schema_validation_failed",
                 param="endpoint")
    assert_error(api.get("/usage/me", params={"period": "2d"}), 400, "invalid_window")


def test_hundred_bad_requests_then_still_answering(api: httpx.Client) -> None:
    bad = [
        lambda: api.post("/chat/completions", content=b"\x00\xff{"),
        lambda: api.post("/completions", json={"model": SMOL, "prompt": [10**12]}),
        lambda: api.post("/completions", json={"model": SMOL, "prompt": [1], "ebnf": "::="}),
        lambda: api.post("/detokenize", json={"tokens": [-5, "x"]}),
        lambda: api.post("/chat/completions", json={"model": SMOL, "messages": "hi"}),
    ]
    for i in range(100):
        r = bad[i % len(bad)]()
        assert 400 <= r.status_code < 500, r.text
        assert r.json()["error"]["request_id"] == r.headers["x-request-id"]
    assert chat(api, max_tokens=2).status_code == 200


def test_twenty_concurrent_requests(api: httpx.Client) -> None:
    def one(i: int) -> httpx.Response:
        if i % 2:
            return complete(api, max_tokens=3, prompt=[504, 3575 + i])
        return chat(api, max_tokens=3)

    t0 = time.monotonic()
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one, range(20)))
    codes = [r.status_code for r in results]
    assert set(codes) <= {200, 429}, codes
    assert codes.count(200) >= 9  # one running + 8 queued per model at least
    for r in results:
        if r.status_code == 429:
            assert_error(r, 429, "rate_limit_exceeded")
            assert int(r.headers["retry-after"]) >= 1
    assert time.monotonic() - t0 < 120
