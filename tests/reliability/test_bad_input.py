"""Bad-input corpus: every case gets a precise error (naming the field, line or position) or
is handled; none raises anything but the documented error type.

The core validators are the product path (pages call exactly these before sending): chat
`params.validate`, token-id parsing and `tokens.validate`, `grammar.check`, usage-file
parsing and transcript import. Page-level reactions run the real app under AppTest against
the fake server; rendering rules are checked on the HTML builders and by a source scan.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.fake_wafer import CARDS, FakeWafer
from tests.reliability.conftest import app_at
from tests.unit.grammar_corpus import DIALECT_TABLE
from wafer_playground import grammar, params, tokens, transcript, usage
from wafer_playground.catalog import PriceSource, parse_models
from wafer_playground.client import TokenPiece

MODEL = parse_models({"object": "list", "data": CARDS},
                     source=PriceSource("live", "test", "now")).models[0]
assert MODEL.id == "fake-glm" and MODEL.max_output_tokens == 4096


# ---- chat parameters ---------------------------------------------------------------------

@dataclass(frozen=True)
class ChatCase:
    name: str
    changes: dict[str, Any]
    param: str  # the parameter the blocking issue must name
    words: str  # a phrase the message must contain


def _tools(obj: Any) -> str:
    return json.dumps(obj)


FN = {"type": "function", "function": {"name": "get_weather", "parameters": {
    "type": "object", "properties": {"city": {"type": "string"}}}}}
CHAT_CASES = [
    ChatCase("temperature-high", {"temperature": 2.5}, "temperature", "above the maximum 2"),
    ChatCase("temperature-negative", {"temperature": -0.1}, "temperature", "below the minimum"),
    ChatCase("top_p-high", {"top_p": 1.5}, "top_p", "above the maximum 1"),
    ChatCase("max_tokens-zero", {"max_tokens": 0}, "max_tokens", "below the minimum 1"),
    ChatCase("max_tokens-huge", {"max_tokens": 10**9}, "max_tokens", "above the maximum"),
    ChatCase("max_tokens-over-model", {"max_tokens": 5000}, "max_tokens",
             "exceeds the model's max output of 4096"),
    ChatCase("max_tokens-string", {"max_tokens": "12"}, "max_tokens", "whole number"),
    ChatCase("top_k-float", {"top_k": 3.5}, "top_k", "whole number"),
    ChatCase("seed-negative", {"seed": -1}, "seed", "below the minimum 0"),
    ChatCase("five-stops", {"stop": ["a", "b", "c", "d", "e"]}, "stop", "at most 4"),
    ChatCase("top_logprobs-alone", {"top_logprobs": 5}, "top_logprobs", "log-probabilities"),
    ChatCase("tools-not-json", {"tools": "[{not json"}, "tools", "not valid JSON"),
    ChatCase("tools-object", {"tools": _tools({"a": 1})}, "tools", "non-empty JSON array"),
    ChatCase("tools-empty", {"tools": "[]"}, "tools", "non-empty JSON array"),
    ChatCase("tools-bad-name", {"tools": _tools([{**FN, "function": {
        **FN["function"], "name": "get weather!"}}])}, "tools[0].function.name", "1-64"),
    ChatCase("tools-duplicate", {"tools": _tools([FN, FN])}, "tools[1].function.name",
             "duplicate"),
    ChatCase("tools-params-not-schema", {"tools": _tools([{**FN, "function": {
        "name": "f", "parameters": {"city": "string"}}}])}, "tools[0].function.parameters",
        '"type": "object"'),
    ChatCase("tools-invalid-schema", {"tools": _tools([{**FN, "function": {
        "name": "f", "parameters": {"type": "object", "properties": {
            "x": {"type": "nonsense"}}}}}])}, "tools[0].function.parameters",
        "invalid JSON Schema"),
    ChatCase("tools-wrong-type", {"tools": _tools([{"type": "retrieval"}])}, "tools[0]",
             "function"),
    ChatCase("tool_choice-unknown", {"tools": _tools([FN]), "tool_choice": "nope"},
             "tool_choice", "no tool named 'nope'"),
    ChatCase("schema-missing", {"response_format": "json_schema"}, "json_schema",
             "needs a schema"),
    ChatCase("schema-not-json", {"response_format": "json_schema", "json_schema": "{oops"},
             "json_schema", "not valid JSON"),
    ChatCase("schema-array", {"response_format": "json_schema", "json_schema": "[1]"},
             "json_schema", "JSON object"),
    ChatCase("schema-invalid", {"response_format": "json_schema",
                                "json_schema": '{"type": 12}'}, "json_schema",
             "invalid JSON Schema"),
    ChatCase("response_format-unknown", {"response_format": "yaml"}, "response_format",
             "must be one of"),
]


@pytest.mark.parametrize("case", CHAT_CASES, ids=[c.name for c in CHAT_CASES])
def test_chat_params_rejected_precisely(case: ChatCase) -> None:
    values = {**params.defaults(), **case.changes}
    issues = [i for i in params.validate(values, MODEL) if i.blocking]
    assert issues, f"{case.name} passed validation"
    hit = [i for i in issues if i.param.startswith(case.param)]
    assert hit, (case.param, issues)
    assert any(case.words in i.message for i in hit), hit


def test_unsupported_param_is_said_not_silently_dropped() -> None:
    values = {**params.defaults(), "reasoning_effort": "high"}  # fake-glm: no reasoning
    issues = params.validate(values, MODEL)
    assert [(i.param, i.blocking) for i in issues] == [("reasoning_effort", False)]
    assert "not sent" in issues[0].message
    body = params.build_chat_body(MODEL, [{"role": "user", "content": "x"}], values)
    assert "reasoning_effort" not in body


# ---- token ids, completion settings, grammars ---------------------------------------------

ID_CASES = [
    ("1, 2, x", "id #3 is not an integer"),
    ("5 -3", "id #2 is negative"),
    ("1.5", "id #1 is not a whole number"),
    ("[[1, 2]]", "id #1 is not an integer"),
    ("0x10", "not an integer"),
    ("١٢٣", "not an integer"),  # Arabic-Indic digits pass str.isdigit()
    ("9" * 5000, "far too large"),  # int() itself refuses > 4300 digits
    ("1e5", "not a whole number"),
    ("<script>alert(1)</script>", "not an integer"),
]


@pytest.mark.parametrize(("text", "words"), ID_CASES, ids=[c[1][:20] + str(i) for i, c in
                                                           enumerate(ID_CASES)])
def test_token_ids_rejected_with_position(text: str, words: str) -> None:
    with pytest.raises(tokens.IdParseError) as exc:
        tokens.parse_ids(text)
    assert words in str(exc.value)


def test_token_ids_beyond_vocab() -> None:
    msg = tokens.vocab_problem([1, 49_152, 3], 49_152, model="smollm2-135m-instruct")
    assert msg and "49152" in msg.replace(",", "")


SETTINGS_CASES: list[tuple[str, dict[str, Any], dict[str, Any], str, str]] = [
    ("empty-prompt", {}, {"prompt_ids": []}, "prompt", "prompt is empty"),
    ("no-model", {}, {"model": None}, "model", "pick a model"),
    ("max_tokens-0", {"max_tokens": 0}, {}, "max_tokens", "positive integer"),
    ("min>max", {"min_tokens": 10, "max_tokens": 5}, {}, "min_tokens", "more than max_tokens"),
    ("temperature-inf", {"temperature": float("inf")}, {}, "temperature", "finite"),
    ("temperature-nan", {"temperature": float("nan")}, {}, "temperature", "finite"),
    ("top_p-0", {"top_p": 0.0}, {}, "top_p", "must be in (0"),
    ("logprobs-50", {"logprobs": 50}, {}, "logprobs", "0..20"),
    ("empty-stop", {"stop": [""]}, {}, "stop", "cannot be empty"),
    ("stop-ids-vocab", {"stop_token_ids": [10**7]}, {}, "stop_token_ids", "10000000"),
    ("bad-regex", {"regex": "(unclosed"}, {}, "regex", "does not compile"),
    ("grammar-and-regex", {"regex": "a+"}, {"ebnf": 'root ::= "a"'}, "ebnf", "not both"),
]


@pytest.mark.parametrize(("name", "changes", "kw", "field", "words"), SETTINGS_CASES,
                         ids=[c[0] for c in SETTINGS_CASES])
def test_completion_settings_rejected(name: str, changes: dict[str, Any], kw: dict[str, Any],
                                      field: str, words: str) -> None:
    settings = tokens.CompletionSettings(**changes)
    args: dict[str, Any] = {"prompt_ids": [1, 2, 3], "model": "smollm2-135m-instruct",
                            "vocab_size": 49_152, **kw}
    prompt_ids = args.pop("prompt_ids")
    problems = tokens.validate(prompt_ids, settings, **args)
    hit = [p for p in problems if p.field == field]
    assert hit, (field, problems)
    assert any(words in p.message.replace(",", "") for p in hit), hit


REJECTED = [c for c in DIALECT_TABLE if not c.xgrammar_ok]


@pytest.mark.parametrize("case", REJECTED, ids=[c.name for c in REJECTED])
def test_dialect_table_grammar_blocks_the_request(case: Any) -> None:
    """Through the page's path (tokens.validate): line and column, nothing sent."""
    problems = tokens.validate([1], tokens.CompletionSettings(), ebnf=case.ebnf,
                               model="m", vocab_size=None)
    hit = [p for p in problems if p.field == "ebnf"]
    assert hit and re.search(r"line \d+, column \d+", hit[0].message), problems


def _mutate(rng: random.Random, text: str) -> str:
    chars = list(text)
    for _ in range(rng.randint(1, 4)):
        op = rng.random()
        pos = rng.randrange(len(chars) + 1)
        if op < 0.4 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.8:
            chars.insert(pos, rng.choice('()[]{}|*+?":=\\ \n#/-^abc0é🙂\x00'))
        else:
            chars[pos:pos] = list(rng.choice(["::=", '"', "[^", "{2,", "root", "(("]))
    return "".join(chars)


def test_fuzzed_grammars_never_crash_the_checker() -> None:
    rng = random.Random(20261126)
    seeds = [c.ebnf for c in DIALECT_TABLE] + [
        'root ::= "{" ws pair (ws "," ws pair)* ws "}"\npair ::= [a-z]+ ws ":" ws [0-9]+\n'
        'ws ::= [ \\t\\n]*']
    n_bad = 0
    for i in range(400):
        text = _mutate(rng, seeds[i % len(seeds)])
        report = grammar.check(text)  # must return, never raise
        if not report.ok:
            n_bad += 1
            issue = report.issues[0]
            assert issue.line >= 1 and issue.column >= 1, (text, issue)
            assert issue.line <= text.count("\n") + 2, (text, issue)
            assert issue.message
    assert n_bad > 100  # the fuzzer really produced broken grammars


def test_pathological_grammars_are_bounded() -> None:
    deep = grammar.check("root ::= " + "(" * 5000 + '"a"' + ")" * 5000)
    assert not deep.ok and "Nest" in deep.issues[0].message
    wide = grammar.check("root ::= " + " | ".join(f'"w{i}"' for i in range(20_000)))
    assert wide.ok


# ---- usage files (Costs page upload) -------------------------------------------------------

USAGE_CASES: list[tuple[str, bytes, str, int, str]] = [
    ("missing-columns", b"foo,bar\n1,2\n", "u.csv", 0, "no prompt_tokens"),
    ("bad-cells", b"model,prompt_tokens,completion_tokens\nGLM,10,5\nGLM,abc,5\nGLM,-4,2\n"
                  b"GLM,1e20,1\n", "u.csv", 1, "not a number"),
    ("binary-junk", bytes(range(256)) * 10, "u.csv", 0, "no prompt_tokens"),
    ("utf16-json", "[1]".encode("utf-16"), "u.json", 0, ""),
    ("empty", b"", "u.csv", 0, "empty"),
    ("jsonl-mixed", b'{"model":"a","usage":{"prompt_tokens":1,"completion_tokens":2}}\n[1,2]\n'
                    b"not json\n", "u.jsonl", 1, "not a JSON object"),
    ("html-disguised", b"<html><script>alert(1)</script></html>", "usage.csv", 0, "no prompt"),
]


@pytest.mark.parametrize(("name", "data", "filename", "rows", "words"), USAGE_CASES,
                         ids=[c[0] for c in USAGE_CASES])
def test_usage_files_bad_rows_listed(name: str, data: bytes, filename: str, rows: int,
                                     words: str) -> None:
    parsed = usage.parse_usage_file(data, filename)
    assert parsed.n_rows == rows
    assert parsed.n_bad >= 1 and parsed.bad
    assert all(b.line >= 1 for b in parsed.bad)
    assert any(words in b.reason for b in parsed.bad), parsed.bad


@pytest.mark.parametrize(("data", "filename"), [(b"[" * 100_000, "u.json"),
                                                (b'{"a":' * 100_000, "u.jsonl")])
def test_usage_deeply_nested_json(data: bytes, filename: str) -> None:
    """Costs upload: 100k nested brackets are a bad row, not a RecursionError."""
    parsed = usage.parse_usage_file(data, filename)
    assert parsed.n_rows == 0 and parsed.n_bad >= 1
    assert parsed.bad[0].line == 1


# ---- transcript import (History page) -------------------------------------------------------

IMPORT_CASES: list[tuple[str, bytes, str]] = [
    ("not-json", b"hello", "not valid JSON"),
    ("empty", b"", "not valid JSON"),
    ("array", b"[1, 2]", "expected a JSON object"),
    ("wrong-format", b'{"format": "x", "turns": []}', '"format" should be'),
    ("bad-utf8", b'{"title": "\xff\xfe"}', "not UTF-8"),
    ("too-big", b" " * (21 * 1024 * 1024), "the limit is"),
    ("deep-array", b"[" * 100_000, "nested too deeply"),
    ("deep-object", b'{"a":' * 50_000, "nested too deeply"),
]


@pytest.mark.parametrize(("name", "data", "words"), IMPORT_CASES,
                         ids=[c[0] for c in IMPORT_CASES])
def test_transcript_import_rejected(name: str, data: bytes, words: str) -> None:
    with pytest.raises(transcript.TranscriptError) as exc:
        transcript.parse_transcript(data)
    assert words in str(exc.value)


def _export_doc(tmp_path: Path) -> dict[str, Any]:
    from wafer_playground.store import SQLiteStore

    store = SQLiteStore(tmp_path / "export.db")
    try:
        cid = store.create_conversation("t", model="m")
        store.start_turn(cid, "user", "hi", status="done")
        return transcript.export_dict(store, cid)
    finally:
        store.close()


@pytest.mark.parametrize(("mutate", "words"), [
    (lambda d: d["turns"][0].update(role="wizard"), "role"),
    (lambda d: d["turns"][0].update(content=42), "content"),
    (lambda d: d.update(turns="none"), "turns"),
    (lambda d: d["turns"][0].update(status="exploded"), "status"),
])
def test_transcript_bad_fields_named(mutate: Callable[[dict[str, Any]], None],
                                     words: str, tmp_path: Path) -> None:
    doc = _export_doc(tmp_path)
    transcript.parse_transcript(json.dumps(doc))  # the base document is valid
    mutate(doc)
    with pytest.raises(transcript.TranscriptError) as exc:
        transcript.parse_transcript(json.dumps(doc))
    assert words in str(exc.value)


# ---- rendering: nothing a model or user wrote becomes HTML ----------------------------------

HOSTILE = ['<script>alert(1)</script>', '<img src=x onerror=alert(1)>', '"><b id="x">',
           "</span><iframe src=javascript:alert(1)>", "&lt;already&gt;", "\u202e\u05e9\u05dc"]


def test_token_chips_escape_pieces() -> None:
    from components.tokens.view import chips_html, generated_html
    from wafer_playground.tokens import GenToken

    pieces = [TokenPiece(i, p) for i, p in enumerate(HOSTILE)] + [TokenPiece(99, b"\xff<")]
    html = chips_html(pieces) + generated_html(
        [GenToken(index=i, id=i, text=p, logprob=-0.7) for i, p in
         enumerate(HOSTILE)], prefix=pieces)
    for bad in ("<script", "<img", "<iframe", '<b id="x">'):
        assert bad not in html, bad


# Every place that hands HTML to the browser, with why it is safe. A new call site fails
# this test until someone checks it escapes everything a model or user wrote.
HTML_SINKS = {
    "components/catalog/page.py": 1,  # _stats: constant labels, format_usd/compact numbers
    "components/chat/transcript.py": 1,  # a turn's logprob tokens: tokens.view escapes
    "components/compare/page.py": 1,  # prompt-token chips: html.escape per piece
    "components/page_menu.py": 1,  # CLOSE_ON_PHONE: a constant script, no text from anyone
    "components/presentation.py": 2,  # CSS and the ticker: numbers only
    "components/tokens/page.py": 5,  # chips_html / generated_html: tokens.view escapes
    "pages/chat.py": 1,  # PIN_CSS: a constant style block
}


def test_html_sinks_are_the_reviewed_ones() -> None:
    found: dict[str, int] = {}
    for path in sorted([*ROOT.glob("pages/*.py"), *ROOT.glob("components/**/*.py"),
                        ROOT / "app.py"]):
        text = path.read_text()
        n = len(re.findall(r"unsafe_allow_html\s*=\s*True|\.html\(|components\.v1", text))
        if n:
            found[str(path.relative_to(ROOT))] = n
    assert found == HTML_SINKS


# ---- page level: the real app reacts without crashing ---------------------------------------

HUGE = ("lorem ipsum dolor sit amet " * 40_000)[:1_000_000]
UNICODE = "Salut 👩🏽‍💻 — שלום עולם (RTL) مرحبا e\u0301 \u200d\u2066x\u2069 𝔘𝔫𝔦 \x07"


@pytest.mark.parametrize("prompt", [UNICODE, '<b id="x">bold?</b><script>alert(1)</script>',
                                    "```\nunclosed fence", "$$ \\frac{1}{0", "\x00null\x00"],
                         ids=["unicode-rtl-emoji", "html-script", "fence", "latex", "nul"])
def test_odd_prompts_round_trip_exactly(prompt: str, fake: FakeWafer, rel_env: Path) -> None:
    at = app_at("pages/chat.py", fake.url).run()
    at.chat_input[0].set_value(prompt).run()
    assert not at.exception
    sent = fake.requests_to("POST", "/chat/completions")[-1].json()
    assert sent["messages"][-1] == {"role": "user", "content": prompt}
    turns = at.session_state["chat_turns"]
    assert turns[0]["content"] == prompt and turns[1]["status"] == "done"


def test_one_megabyte_paste(fake: FakeWafer, rel_env: Path) -> None:
    at = app_at("pages/chat.py", fake.url).run()
    at.chat_input[0].set_value(HUGE).run()
    assert not at.exception
    # ~250k tokens against a 32k context: the page says so before anything else
    assert any("context" in w.value.lower() for w in at.warning), [w.value for w in at.warning]
    posts = fake.requests_to("POST", "/chat/completions")
    if posts:  # sent: byte-exact, never truncated behind the user's back
        assert posts[-1].json()["messages"][-1]["content"] == HUGE
    else:  # or refused before sending, and said why
        assert at.error or at.warning
    assert at.session_state["chat_turns"][0]["content"] == HUGE


def test_token_page_survives_bad_ids(fake: FakeWafer, rel_env: Path) -> None:
    at = app_at("pages/tokens.py", fake.url).run()
    assert not at.exception
    boxes = [t for t in at.text_area if "id" in (t.label or "").lower()]
    if not boxes:
        pytest.skip("no token-id box on the token page")
    for text in ("1, 2, x", "9" * 5000, "-1"):
        boxes[0].input(text).run()
        assert not at.exception, text
    assert fake.count("POST", "/completions") == 0
