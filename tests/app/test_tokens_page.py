"""Token & grammar page under AppTest, with the Wafer API mocked at http://wafer.test/v1.

Over 600 lines: one test module per page keeps its fixtures (the mocked catalog, tokenizer
and completions) in one place; the tests are short and independent."""

from __future__ import annotations

import importlib
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from pytest_httpx import HTTPXMock
from streamlit.testing.v1 import AppTest

from components import page_menu
from tests.app.conftest import FAKE_BASE, make_app
from wafer_playground import share

PAGE = "pages/tokens.py"
LOCAL = "tiny-local"
QWEN = "Qwen3.6-35B-A3B"
GLM = "GLM-5.1"


def _card(mid: str, *, local: bool) -> dict[str, Any]:
    card: dict[str, Any] = {
        "id": mid, "object": "model", "owned_by": "wafer", "max_model_len": 4096,
        "wafer": {"display_name": mid, "context_length": 4096,
                  "pricing": {"input_cents_per_million": 100, "output_cents_per_million": 320,
                              "cache_read_cents_per_million": 10, "currency": "usd"}},
    }
    if local:
        card["local"] = {"chat_template": True, "n_vocab": 1000}
    return card


MODELS = {"object": "list", "data": [_card(LOCAL, local=True), _card(QWEN, local=False),
                                     _card(GLM, local=False)]}

# A toy vocabulary for the fake /tokenize: words, single spaces+words, and a hostile piece.
_PIECE_RE = re.compile(r"<script>|</script>| ?\w+|.", re.S)
_VOCAB: dict[str, int] = {}


def _id(piece: str) -> int:
    return _VOCAB.setdefault(piece, 10 + len(_VOCAB))


def _tokenize(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    pieces = [{"id": _id(p), "piece": p} for p in _PIECE_RE.findall(body["content"])]
    return httpx.Response(200, json={"tokens": pieces})


def _detokenize(request: httpx.Request) -> httpx.Response:
    inverse = {v: k for k, v in _VOCAB.items()}
    ids = json.loads(request.content)["tokens"]
    return httpx.Response(200, json={"content": "".join(inverse.get(i, "") for i in ids)})


def _sse(events: list[dict[str, Any]]) -> bytes:
    return b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"


def _chunk(text: str, tid: int, lp: float, alts: list[tuple[int, str, float]],
           finish: str | None = None) -> dict[str, Any]:
    return {"object": "text_completion", "choices": [{
        "index": 0, "text": text, "token_ids": [tid], "finish_reason": finish,
        "logprobs": {"tokens": [text], "token_logprobs": [lp], "text_offset": [-1],
                     "top_logprobs": [{t: v for _, t, v in alts}], "token_ids": [tid],
                     "top_logprobs_by_id": [[{"id": i, "token": t, "logprob": v}
                                             for i, t, v in alts]]}}]}


def _completions(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    n = len(body["prompt"])
    if body.get("ebnf"):
        events = [_chunk("B", 66, -0.7, [(65, "A", -0.9), (66, "B", -0.7)], "stop")]
        out = 1
    else:
        events = [_chunk(" Paris", 501, -0.2, [(501, " Paris", -0.2), (502, " Lyon", -2.0)]),
                  _chunk(".", 503, -1.2, [(504, "!", -0.5), (503, ".", -1.2)], "length")]
        out = 2
    usage = {"prompt_tokens": n, "completion_tokens": out, "total_tokens": n + out}
    if not body.get("stream"):  # one JSON body: the first token's choice is enough here
        return httpx.Response(200, headers={"x-request-id": "req_0123456789ab"},
                              json={"object": "text_completion", "usage": usage,
                                    "choices": events[0]["choices"]})
    events.append({"object": "text_completion", "choices": [], "usage": usage})
    return httpx.Response(200, headers={"content-type": "text/event-stream",
                                        "x-request-id": "req_0123456789ab"},
                          content=_sse(events))


def _models_and_tokenizer(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(method="GET", url=f"{FAKE_BASE}/models", json=MODELS,
                            is_reusable=True)
    httpx_mock.add_callback(_tokenize, url=f"{FAKE_BASE}/tokenize", is_reusable=True,
                            is_optional=True)
    httpx_mock.add_callback(_detokenize, url=f"{FAKE_BASE}/detokenize", is_reusable=True,
                            is_optional=True)


@pytest.fixture
def api(app_env: str, httpx_mock: HTTPXMock) -> HTTPXMock:
    _models_and_tokenizer(httpx_mock)
    httpx_mock.add_callback(_completions, url=f"{FAKE_BASE}/completions", is_reusable=True,
                            is_optional=True)
    return httpx_mock


def _app() -> AppTest:
    at = make_app(PAGE)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _sent(mock: HTTPXMock) -> list[dict[str, Any]]:
    return [json.loads(r.content) for r in mock.get_requests(url=f"{FAKE_BASE}/completions")]


def _texts(at: AppTest, kind: str) -> list[str]:
    return [str(e.value) for e in getattr(at, kind)]


def _use_text(at: AppTest, text: str) -> AppTest:
    at.text_area(key="tok_text").set_value(text).run()
    at.button(key="tok_use_text").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


# ---- text <-> ids -------------------------------------------------------------------------------


def test_text_to_ids_chips_are_escaped_and_round_trip(api: HTTPXMock) -> None:
    at = _use_text(_app(), "Hi <script>alert(1)</script>")
    ids = [int(x) for x in at.session_state["tok_ids"].split(", ")]
    assert ids == [_VOCAB["Hi"], _VOCAB[" "], _VOCAB["<script>"], _VOCAB["alert"], _VOCAB["("],
                   _VOCAB["1"], _VOCAB[")"], _VOCAB["</script>"]]
    # the page's own HTML, not the sidebar menu's constant script (components/page_menu.py)
    html = "\n".join(h.value for h in at.html if h.value != page_menu.CLOSE_ON_PHONE)
    assert "&lt;script&gt;" in html and "&lt;/script&gt;" in html
    assert "<script>" not in html and "</script>" not in html
    assert f"id {_VOCAB['<script>']}" in html  # hover text links the chip to its id
    assert '<span class="ws">·</span>' in html  # the space is visible
    captions = _texts(at, "caption")
    assert any("Round trip exact" in c for c in captions)
    assert any("produced by local engine /v1/tokenize (tiny-local)" in c for c in captions)
    assert any("Hi <script>alert(1)</script>" in c.value for c in at.code)


def test_pasted_ids_decode(api: HTTPXMock) -> None:
    at = _app()
    hello, world = _id("hello"), _id(" world")
    at.text_area(key="tok_ids").set_value(f"[{hello}, {world}]").run()
    assert any(c.value == "hello world" for c in at.code)
    assert any("typed or pasted" in c for c in _texts(at, "caption"))


def test_tokenizer_mismatch_is_flagged(api: HTTPXMock) -> None:
    at = _use_text(_app(), "hello world")
    at.selectbox(key="tok_model").set_value(QWEN).run()
    warnings = _texts(at, "warning")
    assert any("Tokenizer mismatch" in w and "qwen-tokenizer" in w for w in warnings), warnings
    # the Qwen tokenizer works offline: tokenizing again clears the warning
    at.button(key="tok_use_text").click().run()
    assert not any("Tokenizer mismatch" in w for w in _texts(at, "warning"))
    from wafer_playground.tokenizers import qwen_tokenizer

    expected = ", ".join(str(p.id) for p in qwen_tokenizer().encode("hello world"))
    assert at.session_state["tok_ids"] == expected
    infos = _texts(at, "info")
    assert any("qwen-tokenizer 0.3.0" in i and "client-side replica" in i for i in infos)


def test_hf_tokenizer_offline_degrades(api: HTTPXMock, monkeypatch: pytest.MonkeyPatch,
                                       tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import huggingface_hub.constants as constants

    importlib.reload(constants)
    try:
        at = _app()
        at.selectbox(key="tok_model").set_value(GLM).run()
        assert any("zai-org/GLM-5.1" in i for i in _texts(at, "info"))
        at.button(key="tok_hf_download").click().run()
        assert not at.exception
        warnings = _texts(at, "warning")
        assert any("No tokenizer for GLM-5.1" in w and "(offline)" in w for w in warnings), \
            warnings
        assert at.button(key="tok_hf_download").label == "Retry download"
        at.run()  # an ordinary rerun keeps the reason and does not retry by itself
        assert any("(offline)" in w for w in _texts(at, "warning"))
        # ids can still be pasted and sent
        at.text_area(key="tok_ids").set_value("9703").run()
        at.button(key="tok_send").click().run()
        assert _sent(api)[-1]["prompt"] == [9703]
        assert _sent(api)[-1]["model"] == GLM
    finally:
        monkeypatch.delenv("HF_HUB_OFFLINE")
        importlib.reload(constants)


# ---- bad input never sends ----------------------------------------------------------------------


def _send_error(at: AppTest) -> str:
    at.button(key="tok_send").click().run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e for e in _texts(at, "error") if e.startswith("Not sent")]
    assert errors, _texts(at, "error")
    return errors[0]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"tok_ids": "12, x7"}, "prompt id #2 is not an integer: 'x7'"),
        ({"tok_ids": "12, -4"}, "prompt id #2 is negative (-4)"),
        ({"tok_ids": "12, 5000"}, "prompt id #2 (5000) is outside tiny-local's vocabulary "
                                  "(0..999)"),
        ({"tok_ids": ""}, "the prompt is empty"),
        ({"tok_grammar": 'root ::= "A" |\n'},
         "the grammar does not parse: line 2, column 1: Expect element"),
        ({"tok_grammar": 'root ::= "A"', "tok_regex": "[AB]"},
         "send either a grammar (ebnf) or a regex, not both"),
        ({"tok_max_tokens": 0}, "max_tokens must be a positive integer (got 0)"),
        ({"tok_max_tokens": -5}, "max_tokens must be a positive integer (got -5)"),
        ({"tok_stop_ids": "2, 9999"}, "stop_token_ids id #2 (9999) is outside"),
    ],
)
def test_bad_input_rejected_before_sending(api: HTTPXMock, setup: dict[str, Any],
                                           expected: str) -> None:
    at = _app()
    at.text_area(key="tok_ids").set_value("12, 13").run()
    for key, value in setup.items():
        if key == "tok_max_tokens":
            at.number_input(key=key).set_value(value)
        elif key in ("tok_regex", "tok_stop_ids"):
            at.text_input(key=key).set_value(value)
        else:
            at.text_area(key=key).set_value(value)
    at.run()
    assert expected in _send_error(at)
    assert _sent(api) == []


def test_invalid_grammar_shows_line_and_column_while_editing(api: HTTPXMock) -> None:
    at = _app()
    at.text_area(key="tok_grammar").set_value('root ::= "A"\nfoo ::= bar').run()
    errors = _texts(at, "error")
    assert any(e.startswith("**Line 2, column ") and "bar" in e for e in errors), errors


# ---- send, compare, verify, fork ----------------------------------------------------------------


def _send_both(at: AppTest) -> AppTest:
    at.text_area(key="tok_ids").set_value("12, 13, 14").run()
    at.selectbox(key="tok_preset").set_value("choice").run()
    assert at.session_state["tok_grammar"] == 'root ::= "A" | "B"'
    at.button(key="tok_send").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_constrained_vs_unconstrained_side_by_side(api: HTTPXMock) -> None:
    at = _send_both(_app())
    first, second = _sent(api)
    assert first["prompt"] == second["prompt"] == [12, 13, 14]
    assert first["ebnf"] == 'root ::= "A" | "B"' and "ebnf" not in second
    for body in (first, second):
        assert body["stream"] is True and body["return_token_ids"] is True
        assert body["logprobs"] == 5 and body["max_tokens"] == 48
    runs = at.session_state["tokens_runs"]
    assert runs["constrained"]["text"] == "B" and runs["constrained"]["token_ids"] == [66]
    assert runs["unconstrained"]["text"] == " Paris."
    successes = _texts(at, "success")
    assert any(s.startswith("✓ Output matches the grammar") for s in successes), successes
    errors = _texts(at, "error")
    assert any("✗ Output does not match the grammar: breaks at character 0 (line 1, column 1)"
               ": found ' ', expected \"A\" or \"B\"" in e for e in errors), errors
    # ids and text together, cost per run (3 in x $1/M + out x $3.20/M)
    codes = [c.value for c in at.code]
    assert "66" in codes and "501, 503" in codes
    from decimal import Decimal

    from wafer_playground.costs import format_usd

    costs = [m.value for m in at.metric if m.label == "Cost (actual)"]
    # 3 prompt ids at $1.00/M, then 1 (constrained) or 2 (unconstrained) tokens at $3.20/M
    assert costs == [format_usd(Decimal("0.0000062")), format_usd(Decimal("0.0000094"))]
    assert costs[0].startswith("$0.0000062")
    assert any("request id `req_0123456789ab`" in c for c in _texts(at, "caption"))


def test_fork_builds_exact_prompt_and_continues(api: HTTPXMock) -> None:
    at = _send_both(_app())
    # default fork point: the least likely token of the unconstrained run (#1 "." p=0.30)
    assert at.selectbox(key="tok_fork_pos_unconstrained").value == 1
    assert at.radio(key="tok_fork_alt_unconstrained").value == 504
    at.button(key="tok_fork_go_unconstrained").click().run()
    assert not at.exception, [e.value for e in at.exception]
    fork = _sent(api)[-1]
    assert fork["prompt"] == [12, 13, 14, 501, 504]  # prompt + generated[:1] + chosen
    assert "ebnf" not in fork
    assert at.session_state["tok_ids"] == "12, 13, 14, 501, 504"
    assert "fork" in at.session_state["tokens_runs"]
    assert any(c.value.startswith(" Paris!") for c in at.code)


def test_server_error_shows_code_and_request_id(app_env: str, httpx_mock: HTTPXMock) -> None:
    _models_and_tokenizer(httpx_mock)
    httpx_mock.add_response(
        method="POST", url=f"{FAKE_BASE}/completions", status_code=400,
        headers={"x-request-id": "req_aaaaaaaaaaaa"},
        json={"error": {"type": "invalid_request_error", "code": "invalid_token_id",
                        "message": "Token ID 12 is not allowed", "param": "prompt[0]",
                        "request_id": "req_aaaaaaaaaaaa"}})
    at = _app()
    at.text_area(key="tok_ids").set_value("12").run()
    at.button(key="tok_send").click().run()
    errors = _texts(at, "error")
    assert any("invalid_token_id" in e and "req_aaaaaaaaaaaa" in e for e in errors), errors


def test_view_code_has_exact_body_and_no_key(api: HTTPXMock, monkeypatch: pytest.MonkeyPatch
                                             ) -> None:
    at = _app()
    at.session_state["conn_key"] = "wfr_secret_canary_123"
    at.text_area(key="tok_ids").set_value("12, 13").run()
    at.text_area(key="tok_grammar").set_value('root ::= "A" | "B"').run()
    code = "\n".join(c.value for c in at.code)
    assert "wfr_secret_canary_123" not in code
    assert "WAFER_API_KEY" in code
    assert '"prompt": [\n    12,\n    13\n  ]' in code or '"prompt": [12, 13]' in code
    assert "ebnf" in code


# ---- history ------------------------------------------------------------------------------------


def test_reopen_run_from_history(api: HTTPXMock) -> None:
    from components.history import get_store

    body = {"model": LOCAL, "prompt": [12, 13], "max_tokens": 4, "ebnf": 'root ::= "A" | "B"'}
    store = get_store()
    rid = store.log_request(model=LOCAL, base_url=FAKE_BASE, surface="completions",
                            params=body, status="streaming")
    store.update_request(rid, status="done", response={"label": "constrained", "text": "A",
                                                       "token_ids": [65]})
    at = make_app(PAGE)
    at.session_state["tokens_run_id"] = rid
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["tok_ids"] == "12, 13"
    assert at.session_state["tok_grammar"] == 'root ::= "A" | "B"'
    assert at.session_state["tokens_runs"]["constrained"]["text"] == "A"
    assert any("Reopened" in s for s in _texts(at, "success"))
    assert any(s.startswith("✓ Output matches the grammar") for s in _texts(at, "success"))


def test_reopen_missing_run_says_so(api: HTTPXMock) -> None:
    at = make_app(PAGE)
    at.session_state["tokens_run_id"] = "no-such-run"
    at.run()
    assert any("no longer in the history" in e for e in _texts(at, "error"))


def test_chat_template_preview_to_ids(api: HTTPXMock) -> None:
    rendered = "<|im_start|>user\nName a primary colour.<|im_end|>\n<|im_start|>assistant\n"
    api.add_response(method="POST", url=f"{FAKE_BASE}/apply-template",
                     json={"prompt": rendered})
    at = _app()
    at.button(key="tok_render").click().run()
    sent = json.loads(api.get_requests(url=f"{FAKE_BASE}/apply-template")[0].content)
    assert sent["model"] == LOCAL
    assert [m["role"] for m in sent["messages"]] == ["system", "user"]
    # st.code drops a trailing newline on display; the chips (and ids) keep it
    assert any(c.value.rstrip("\n") == rendered.rstrip("\n") for c in at.code)
    at.button(key="tok_use_chat").click().run()
    ids = [int(x) for x in at.session_state["tok_ids"].split(", ")]
    inverse = {v: k for k, v in _VOCAB.items()}
    assert "".join(inverse[i] for i in ids) == rendered
    assert any("(chat template)" in c for c in _texts(at, "caption"))


def test_qwen_chatml_preview_offline(api: HTTPXMock) -> None:
    at = _app()
    at.selectbox(key="tok_model").set_value(QWEN).run()
    at.button(key="tok_render").click().run()
    assert any(c.value.startswith("<|im_start|>system\n") and
               c.value.rstrip("\n").endswith("<|im_start|>assistant\n<think>\n\n</think>")
               for c in at.code)
    at.button(key="tok_use_chat").click().run()
    assert at.session_state["tok_ids"].startswith("248045, ")  # <|im_start|> is one id


def test_save_and_load_grammar_library(api: HTTPXMock) -> None:
    from components.history import get_store

    name = "e2e A or B"
    if get_store().get_grammar(name):  # the AppTest DB persists between runs
        get_store().delete_grammar(name)
    at = _app()
    at.text_area(key="tok_grammar").set_value('root ::= "A" | "B"').run()
    at.text_input(key="tok_save_name").set_value(name).run()
    at.button(key="tok_saved_save").click().run()
    assert get_store().get_grammar(name).ebnf == 'root ::= "A" | "B"'  # type: ignore[union-attr]
    at.text_area(key="tok_grammar").set_value("").run()
    at.selectbox(key="tok_saved_pick").set_value(name).run()
    at.button(key="tok_saved_load").click().run()
    assert at.session_state["tok_grammar"] == 'root ::= "A" | "B"'
    # an invalid grammar cannot be saved
    at.text_area(key="tok_grammar").set_value('root ::= "A" |').run()
    assert at.button(key="tok_saved_save").disabled


def test_fork_of_a_fork_keeps_the_whole_prefix(api: HTTPXMock) -> None:
    at = _send_both(_app())
    at.button(key="tok_fork_go_unconstrained").click().run()
    assert any(c.value == " Paris! Paris." for c in at.code)
    at.button(key="tok_fork_go_fork").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert _sent(api)[-1]["prompt"] == [12, 13, 14, 501, 504, 501, 504]
    assert any(c.value == " Paris! Paris! Paris." for c in at.code)
    assert any("(fork #2)" in m.value for m in at.markdown)


def test_peek_next_token_and_append(api: HTTPXMock) -> None:
    at = _app()
    at.text_area(key="tok_ids").set_value("12, 13").run()
    at.button(key="tok_peek").click().run()
    peek = _sent(api)[-1]
    assert peek == {"model": LOCAL, "prompt": [12, 13], "max_tokens": 1, "temperature": 0.0,
                    "logprobs": 20, "return_token_ids": True}
    tables = [d.value for d in at.dataframe if "id" in d.value.columns]
    assert list(tables[0]["id"]) == [501, 502]
    at.selectbox(key="tok_peek_pick").set_value(502).run()
    at.button(key="tok_peek_append").click().run()
    assert at.session_state["tok_ids"] == "12, 13, 502"


@pytest.mark.parametrize("flag", ["stopped", "in_flight"])
def test_stopped_run_is_kept_marked_and_recorded(api: HTTPXMock, flag: str) -> None:
    """What the Stop rerun finds: a partial run that was never recorded as finished (its
    frame set `stopped`, or was unwound with the run still marked in flight)."""
    from components.history import get_store

    body = {"model": LOCAL, "prompt": [12, 13], "max_tokens": 40, "stream": True}
    rid = get_store().log_request(model=LOCAL, base_url=FAKE_BASE, surface="completions",
                                  params=body, status="streaming")
    partial = {"label": "unconstrained", "body": body, "text": " Par", "token_ids": [501],
               flag: True, "store_id": rid}
    at = make_app(PAGE)
    at.session_state["tokens_runs"] = {"unconstrained": partial}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Stopped before the end" in w for w in _texts(at, "warning"))
    rec = get_store().get_request(rid)
    assert rec is not None and rec.status == "stopped" and rec.cost_kind == "estimate"
    saved = at.session_state["tokens_runs"]["unconstrained"]
    assert saved["logged"] is True and saved["stopped"] is True and saved["in_flight"] is False
    assert _sent(api) == []


def test_inputs_survive_a_page_switch(api: HTTPXMock) -> None:
    at = _app()
    at.text_area(key="tok_ids").set_value("12, 13").run()
    at.text_area(key="tok_grammar").set_value('root ::= "A"').run()
    at.number_input(key="tok_max_tokens").set_value(7).run()
    at.switch_page("pages/history.py").run()
    assert "tok_ids" not in at.session_state  # Streamlit dropped the widget values...
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["tok_ids"] == "12, 13"  # ...and the page put them back
    assert at.session_state["tok_grammar"] == 'root ::= "A"'
    assert at.session_state["tok_max_tokens"] == 7


def test_json_schema_helper(api: HTTPXMock) -> None:
    from wafer_playground.grammar_presets import json_schema_to_ebnf

    schema = {"type": "object", "properties": {"answer": {"enum": ["yes", "no"]}},
              "required": ["answer"]}
    at = _app()
    at.text_area(key="tok_schema").set_value(json.dumps(schema)).run()
    at.button(key="tok_schema_convert").click().run()
    assert at.session_state["tok_grammar"] == json_schema_to_ebnf(schema)
    assert any("Converted the schema" in s for s in _texts(at, "success"))
    assert any(s.startswith("Grammar OK") for s in _texts(at, "success"))
    at.text_area(key="tok_schema").set_value('{"type": "object",\n "properties": ').run()
    at.button(key="tok_schema_convert").click().run()
    assert any("not valid JSON: line 2, column" in e for e in _texts(at, "error"))
    at.text_area(key="tok_schema").set_value('{"type": "object", "patternProperties": {}}')
    at.run()
    at.button(key="tok_schema_convert").click().run()
    assert any("cannot be converted" in e for e in _texts(at, "error"))


# ---- share links --------------------------------------------------------------------------------

CANARY = "wfr_CANARY123"
GRAMMAR = 'root ::= "yes" | "no"'


def _open_link(query: dict[str, str]) -> AppTest:
    at = make_app(PAGE)
    for k, v in query.items():
        at.query_params[k] = v
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_share_link_reproduces_the_setup_once(api: HTTPXMock) -> None:
    link = share.encode(share.ShareState(
        page="tokens", model=GLM, prompt="12, 13, 14", grammar=GRAMMAR,
        params={"max_tokens": 7, "temperature": 0.2, "stream": False, "stop": "END",
                "mode": "constrained"}))
    assert link.ok
    at = _open_link(link.query)
    assert GRAMMAR in [c.value for c in at.code]  # the grammar, shown before it applies
    at.button(key="share_apply_tokens").click().run()
    assert at.selectbox(key="tok_model").value == GLM
    assert at.text_area(key="tok_grammar").value == GRAMMAR
    assert at.text_area(key="tok_ids").value == "12, 13, 14"
    assert at.number_input(key="tok_max_tokens").value == 7
    assert at.number_input(key="tok_temperature").value == 0.2
    assert at.toggle(key="tok_stream").value is False
    assert at.text_area(key="tok_stop").value == "END"
    assert at.radio(key="tok_mode").value == "constrained"
    at.button(key="tok_send").click().run()
    assert not at.exception, [e.value for e in at.exception]
    body = _sent(api)[0]
    assert body["model"] == GLM and body["prompt"] == [12, 13, 14]
    assert body["ebnf"] == GRAMMAR and body["max_tokens"] == 7
    assert body["temperature"] == 0.2 and body["stop"] == "END"
    # applied once: the user's later edits win over the link
    at.number_input(key="tok_max_tokens").set_value(9).run()
    at.text_area(key="tok_grammar").set_value('root ::= "A"').run()
    assert at.number_input(key="tok_max_tokens").value == 9
    assert at.text_area(key="tok_grammar").value == 'root ::= "A"'


def test_share_link_bad_values_are_dropped_not_fatal(api: HTTPXMock) -> None:
    link = share.encode(share.ShareState(
        page="tokens", model="no-such-model", prompt="5, 6",
        params={"max_tokens": 7.5, "top_k": 3.5, "min_tokens": 3.0, "mode": "bogus",
                "stream": "yes", "min_p": 0.05}))
    assert link.ok
    at = _open_link(link.query)
    assert at.text_area(key="tok_ids").value == "5, 6"
    assert at.selectbox(key="tok_model").value == LOCAL  # unknown model: the default stays
    assert at.number_input(key="tok_max_tokens").value == 48
    assert at.number_input(key="tok_top_k").value is None
    assert at.number_input(key="tok_min_tokens").value == 3  # an integral float fits an int box
    assert at.number_input(key="tok_min_p").value == 0.05
    assert at.radio(key="tok_mode").value == "both"
    notes = " ".join(_texts(at, "caption"))
    assert "not applied" in notes and "mode" in notes and "no-such-model" in notes
    # a corrupted blob is reported, never a crash
    at = _open_link({"page": "tokens", "s": "%%%not-base64"})
    assert any("could not be read" in w for w in _texts(at, "warning"))


def _tokens_link(at: AppTest) -> str:
    links = [str(c.value) for c in at.code if "page=tokens" in str(c.value)]
    assert links, "the Share popover shows a link"
    return links[-1]


def test_share_link_carries_setup_never_the_key(api: HTTPXMock) -> None:
    at = make_app(PAGE)
    at.session_state["conn_key"] = CANARY
    at.run()
    at.text_area(key="tok_ids").set_value("12, 13").run()
    at.text_area(key="tok_grammar").set_value(GRAMMAR).run()
    at.number_input(key="tok_max_tokens").set_value(11).run()
    assert not at.exception, [e.value for e in at.exception]
    url = _tokens_link(at)
    assert CANARY not in url and "CANARY" not in url
    decoded = share.decode(parse_qs(urlsplit(url).query))
    assert decoded.state is not None and decoded.state.page == "tokens"
    assert decoded.state.model == LOCAL
    assert decoded.state.prompt == "12, 13" and decoded.state.grammar == GRAMMAR
    # only the fields changed from their defaults travel
    assert decoded.state.params == {"max_tokens": 11}
    assert "CANARY" not in json.dumps(share._as_dict(decoded.state))


def test_tokenizing_sets_the_prompt_in_one_step(api: HTTPXMock) -> None:
    """Issue 16: the text's ids become the prompt without a second click."""
    at = _app()
    first = at.session_state["tok_ids"]
    assert first  # the example text is already the prompt
    at.text_area(key="tok_text").set_value("Hello there, tokens").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["tok_ids"] and at.session_state["tok_ids"] != first
