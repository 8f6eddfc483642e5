"""Core of the token workbench: ids, validation, request bodies, runs, logprobs, forks."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from wafer_playground.catalog import Pricing
from wafer_playground.tokens import (
    CompletionRun,
    CompletionSettings,
    IdParseError,
    build_body,
    estimate,
    fork_prompt,
    format_ids,
    format_prob,
    parse_ids,
    parse_stops,
    prob_shade,
    validate,
    vocab_problem,
    without_constraint,
)

# ---- ids ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["1, 2, 3", "[1,2,3]", "1 2\n3", " 1;2 ;3 ", "[ 1, 2, 3 ]"])
def test_parse_ids_accepts_common_list_shapes(text: str) -> None:
    assert parse_ids(text) == [1, 2, 3]


def test_parse_ids_empty_is_empty() -> None:
    assert parse_ids("") == []
    assert parse_ids("[]") == []


@pytest.mark.parametrize(
    ("text", "index", "needle"),
    [
        ("1, 2, abc", 2, "id #3 is not an integer: 'abc'"),
        ("1, -5", 1, "id #2 is negative (-5)"),
        ("7 1.5", 1, "id #2 is not a whole number ('1.5')"),
        ("0x10", 0, "id #1 is not an integer: '0x10'"),
        ("12a", 0, "'12a'"),
        ("１２", 0, "not an integer"),  # full-width digits are not ASCII ids
        ("1 " + "9" * 5000, 1, "id #2 is far too large (5000 digits)"),
    ],
)
def test_parse_ids_rejects_with_position(text: str, index: int, needle: str) -> None:
    with pytest.raises(IdParseError) as info:
        parse_ids(text)
    assert info.value.index == index
    assert needle in str(info.value)


def test_format_round_trips() -> None:
    ids = [504, 3575, 282]
    assert parse_ids(format_ids(ids)) == ids


def test_vocab_problem_names_first_bad_id() -> None:
    assert vocab_problem([1, 2, 3], 10) is None
    assert vocab_problem([1, 49152, 99999999], 49152, model="smollm2") == (
        "prompt id #2 (49152) is outside smollm2's vocabulary (0..49151)")
    assert vocab_problem([10**9], None) is None  # unknown vocabulary: the server decides


def test_parse_stops_decodes_escapes() -> None:
    assert parse_stops("\\n\n\nEND\n") == ["\n", "END"]
    assert parse_stops("a\\\\n") == ["a\\n"]


# ---- fork ---------------------------------------------------------------------------------------


def test_fork_prompt_is_prefix_plus_choice() -> None:
    assert fork_prompt([1, 2], [10, 11, 12], 1, 99) == [1, 2, 10, 99]
    assert fork_prompt([1, 2], [10, 11, 12], 0, 5) == [1, 2, 5]
    # forking after the last token continues the whole output with a chosen next token
    assert fork_prompt([1], [10], 1, 7) == [1, 10, 7]


def test_fork_prompt_rejects_bad_position() -> None:
    with pytest.raises(ValueError, match="outside"):
        fork_prompt([1], [10, 11], 5, 3)
    with pytest.raises(ValueError):
        fork_prompt([1], [10, 11], 0, -1)


# ---- validation ---------------------------------------------------------------------------------


def _fields(problems: list) -> dict[str, str]:
    return {p.field: p.message for p in problems}


def test_valid_request_has_no_problems() -> None:
    assert validate([1, 2], CompletionSettings(), ebnf='root ::= "A" | "B"', vocab_size=100,
                    model="m") == []


def test_empty_prompt_and_parse_error() -> None:
    f = _fields(validate([], CompletionSettings(), model="m"))
    assert "prompt is empty" in f["prompt"]
    f = _fields(validate(None, CompletionSettings(), model="m",
                         prompt_error="prompt id #2 is not an integer: 'x'"))
    assert f["prompt"] == "prompt id #2 is not an integer: 'x'"


def test_out_of_vocab_prompt() -> None:
    f = _fields(validate([1, 500], CompletionSettings(), vocab_size=100, model="m"))
    assert f["prompt"] == "prompt id #2 (500) is outside m's vocabulary (0..99)"


@pytest.mark.parametrize("value", [0, -3])
def test_max_tokens_must_be_positive(value: int) -> None:
    f = _fields(validate([1], CompletionSettings(max_tokens=value), model="m"))
    assert f["max_tokens"] == f"max_tokens must be a positive integer (got {value})"


def test_ranges_and_min_tokens() -> None:
    s = CompletionSettings(max_tokens=4, min_tokens=9, temperature=3.0, top_p=0.0, top_k=-2,
                           min_p=1.5, frequency_penalty=-3, presence_penalty=2.5,
                           repetition_penalty=0, logprobs=21, stop=[""])
    f = _fields(validate([1], s, model="m"))
    assert f["min_tokens"] == "min_tokens (9) is more than max_tokens (4)"
    assert f["temperature"] == "temperature must be in [0, 2] (got 3.0)"
    assert f["top_p"] == "top_p must be in (0, 1] (got 0.0)"
    assert "top_k" in f and "min_p" in f and "frequency_penalty" in f
    assert "presence_penalty" in f and "repetition_penalty" in f and "logprobs" in f
    assert f["stop"] == "a stop string cannot be empty"


def test_stop_token_ids_checked_against_vocab() -> None:
    f = _fields(validate([1], CompletionSettings(stop_token_ids=[2, 1000]), vocab_size=50,
                         model="m"))
    assert f["stop_token_ids"].startswith("stop_token_ids id #2 (1000)")


def test_grammar_with_regex_rejected() -> None:
    f = _fields(validate([1], CompletionSettings(regex="[AB]"), ebnf='root ::= "A"', model="m"))
    assert "either a grammar (ebnf) or a regex, not both" in f["ebnf"]


def test_bad_grammar_has_line_and_column() -> None:
    f = _fields(validate([1], CompletionSettings(), ebnf='root ::= "A" |\n', model="m"))
    assert f["ebnf"].startswith("the grammar does not parse: line ")
    assert ", column " in f["ebnf"]
    f = _fields(validate([1], CompletionSettings(), ebnf='root ::= foo', model="m"))
    assert "foo" in f["ebnf"]
    f = _fields(validate([1], CompletionSettings(), ebnf='start ::= "A"', model="m"))
    assert "root" in f["ebnf"]


def test_bad_regex() -> None:
    f = _fields(validate([1], CompletionSettings(regex="(ab"), model="m"))
    assert f["regex"].startswith("the regex does not compile")


# ---- request body -------------------------------------------------------------------------------


def test_build_body_sends_every_set_field() -> None:
    s = CompletionSettings(max_tokens=8, min_tokens=2, temperature=0.0, top_p=0.9, top_k=40,
                           min_p=0.05, frequency_penalty=0.1, presence_penalty=0.2,
                           repetition_penalty=1.1, stop=["\n", "END"], stop_token_ids=[2],
                           seed=7, stream=True, logprobs=3, return_token_ids=True)
    body = build_body("GLM-5.1", [9703], s, ebnf='root ::= "A" | "B"')
    assert body == {
        "model": "GLM-5.1", "prompt": [9703], "max_tokens": 8, "min_tokens": 2,
        "temperature": 0.0, "top_p": 0.9, "top_k": 40, "min_p": 0.05,
        "frequency_penalty": 0.1, "presence_penalty": 0.2, "repetition_penalty": 1.1,
        "seed": 7, "stop": ["\n", "END"], "stop_token_ids": [2], "logprobs": 3,
        "return_token_ids": True, "ebnf": 'root ::= "A" | "B"', "stream": True,
        "stream_options": {"include_usage": True},
    }
    assert "ebnf" not in without_constraint(body)
    assert without_constraint(body)["prompt"] == [9703]


def test_build_body_omits_unset_and_single_stop_is_string() -> None:
    s = CompletionSettings(max_tokens=2, temperature=None, stream=False, logprobs=None,
                           return_token_ids=False, stop=["X"], regex="[AB]")
    assert build_body("m", [1], s) == {"model": "m", "prompt": [1], "max_tokens": 2,
                                       "stop": "X", "regex": "[AB]"}


# ---- runs and logprobs --------------------------------------------------------------------------


def _legacy_chunk(text: str, tid: int, lp: float, alts: list[tuple[int, str, float]],
                  finish: str | None = None) -> dict:
    return {"object": "text_completion", "choices": [{
        "index": 0, "text": text, "token_ids": [tid], "finish_reason": finish,
        "logprobs": {"tokens": [text], "token_logprobs": [lp], "text_offset": [-1],
                     "top_logprobs": [{t: v for _, t, v in alts}],
                     "token_ids": [tid],
                     "top_logprobs_by_id": [[{"id": i, "token": t, "bytes": list(t.encode()),
                                              "logprob": v} for i, t, v in alts]]}}]}


def test_stream_accumulates_text_ids_logprobs_and_usage() -> None:
    run = CompletionRun("constrained", {"prompt": [1, 2]})
    run.feed({"choices": [{"index": 0, "text": "", "prompt_token_ids": [1, 2]}]})
    run.feed(_legacy_chunk("A", 32, -0.1, [(32, "A", -0.1), (33, "B", -2.4)]))
    run.feed(_legacy_chunk("!", 17, -1.5, [(17, "!", -1.5), (30, ".", -0.4)], finish="stop"))
    run.feed({"choices": [], "usage": {"prompt_tokens": 2, "completion_tokens": 2,
                                       "total_tokens": 4}})
    assert run.text == "A!"
    assert run.generated_ids == [32, 17]
    assert run.prompt_token_ids == [1, 2]
    assert run.finish_reason == "stop"
    toks = run.tokens()
    assert [t.id for t in toks] == [32, 17]
    assert toks[0].prob == pytest.approx(math.exp(-0.1))
    # alternatives sorted by probability, with exact ids
    assert [a.id for a in toks[1].alternatives] == [30, 17]
    assert toks[0].alternatives[1].text == "B"
    assert run.completion_tokens() == 2


def test_ids_from_logprobs_when_no_token_ids_and_text_only_alternatives() -> None:
    run = CompletionRun("u", {"prompt": [1]})
    run.feed({"choices": [{"index": 0, "text": "Hi", "logprobs": {
        "tokens": ["Hi"], "token_logprobs": [-0.5], "top_logprobs": [{"Hi": -0.5, "Yo": -1.0}],
        "token_ids": [99]}}]})
    t = run.tokens()[0]
    assert t.id == 99
    assert {a.text for a in t.alternatives} == {"Hi", "Yo"}
    assert all(a.id is None for a in t.alternatives)  # not forkable exactly: UI says so


def test_chat_style_logprobs_are_converted() -> None:
    run = CompletionRun("u", {"prompt": [1]})
    run.feed({"choices": [{"index": 0, "text": "é", "logprobs": {"content": [
        {"id": 5, "token": "é", "bytes": [195, 169], "logprob": -0.2,
         "top_logprobs": [{"id": 5, "token": "é", "bytes": [195, 169], "logprob": -0.2},
                          {"id": 6, "token": "e", "bytes": [101], "logprob": -1.8}]}]}}]})
    t = run.tokens()[0]
    assert (t.id, t.text) == (5, "é")
    assert [a.id for a in t.alternatives] == [5, 6]


def test_partial_utf8_bytes_shown_as_escapes() -> None:
    run = CompletionRun("u", {"prompt": [1]})
    run.feed({"choices": [{"index": 0, "text": "", "logprobs": {"content": [
        {"id": 7, "token": "?", "bytes": [240, 159], "logprob": -0.1, "top_logprobs": []}]}}]})
    assert run.tokens()[0].text == "\\xf0\\x9f"


def test_run_round_trips_through_dict() -> None:
    run = CompletionRun("c", {"prompt": [1]}, text="A", token_ids=[3])
    from wafer_playground.tokens import RunError

    run.error = RunError("Bad request", "nope", code="invalid_prompt", status=400,
                         request_id="req_1")
    back = CompletionRun.from_dict(run.to_dict())
    assert back == run


def test_costs_actual_and_estimate() -> None:
    pricing = Pricing(Decimal(100), Decimal(320), Decimal(10))
    run = CompletionRun("c", {"prompt": [1] * 1000}, token_ids=[1] * 10)
    est = run.cost(pricing)
    assert est is not None and est.kind == "estimate"
    run.usage = {"prompt_tokens": 1000, "completion_tokens": 10, "total_tokens": 1010}
    act = run.cost(pricing)
    assert act is not None and act.kind == "actual"
    # 1000 * $1.00/M + 10 * $3.20/M
    assert act.total == Decimal("0.001") + Decimal("0.000032")
    worst = estimate(1000, 100, pricing)
    assert worst.total == Decimal("0.001") + Decimal("0.00032")
    assert worst.kind == "estimate"


def test_prob_shading_and_format() -> None:
    assert prob_shade(None).startswith("rgba(")
    assert prob_shade(1.0).startswith("hsla(130,")
    assert prob_shade(0.0).startswith("hsla(0,")
    assert format_prob(0.999) == "≈100%"
    assert format_prob(0.5) == "50%"
    assert format_prob(0.0123) == "1.2%"
    assert format_prob(None) == "n/a"


# ---- chip HTML (components/tokens/view.py is pure string building) ------------------------------


def test_chips_escape_every_piece_and_show_bytes_and_whitespace() -> None:
    from components.tokens.view import chips_html
    from wafer_playground.client import TokenPiece

    html = chips_html([TokenPiece(1, "<script>alert('x')</script>"), TokenPiece(2, " \n\t"),
                       TokenPiece(3, b"\xf0\x9f"), TokenPiece(4, '" onmouseover="x')],
                      specials=[4])
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert 'onmouseover="x' not in html  # quotes in pieces cannot break out of attributes
    assert "&quot; onmouseover=&quot;x" in html
    assert '<span class="ws">·</span><span class="ws">↵</span><span class="ws">⇥</span>' in html
    assert "\\xf0\\x9f" in html and "bytes f0 9f (not UTF-8 on its own)" in html
    assert 'title="#0 · id 1 · ' in html and '<span class="i">3</span>' in html
    assert 'class="c sp"' in html  # special tokens are marked


def test_generated_html_shades_and_lists_alternatives() -> None:
    from components.tokens.view import generated_html
    from wafer_playground.tokens import Alternative, GenToken

    toks = [GenToken(0, 7, "<b>", math.log(0.25),
                     (Alternative(8, "x&y", math.log(0.5)), Alternative(7, "<b>", math.log(0.25))))]
    html = generated_html(toks, marked=0)
    assert "<b>" not in html.split("</style>", 1)[1]  # the piece never becomes markup
    assert "&lt;b&gt;" in html and "x&amp;y" in html
    assert "top alternatives:" in html and "(id 8) 50%" in html
    assert prob_shade(0.25) in html
    assert 'class="c fork"' in html
    from wafer_playground.client import TokenPiece

    forked = generated_html(toks, prefix=[TokenPiece(1, "a")], chosen=TokenPiece(9, "<i>"))
    assert 'class="c pre"' in forked and 'title="chosen · id 9"' in forked
    assert "&lt;i&gt;" in forked and "<i>" not in forked.split("</style>", 1)[1]


# ---- output checker and presets as the page uses them --------------------------------------------


def test_verify_output_ok_break_and_context() -> None:
    from wafer_playground.tokens import verify_output

    assert verify_output('root ::= "A" | "B"', "B").ok
    v = verify_output('root ::= "A" | "B"', " Paris")
    assert not v.ok and v.checkable and v.position == 0
    assert v.summary.startswith("breaks at character 0") and '"A" or "B"' in v.summary
    assert (v.before, v.after) == ("", " Paris")
    v = verify_output('root ::= "{" [a-z]+ "}"', "{abc")
    assert not v.ok and v.position == 4 and v.before == "{abc" and v.after == ""
    assert "ends too early" in v.summary


def test_verify_output_with_invalid_grammar_is_not_a_verdict() -> None:
    from wafer_playground.tokens import verify_output

    v = verify_output('root ::= "A" |', "A")
    assert not v.ok and not v.checkable
    assert v.summary.startswith("invalid grammar: EBNF parser error at line 1")


def test_every_preset_is_sendable_and_its_example_verifies() -> None:
    from wafer_playground.grammar_presets import PRESETS
    from wafer_playground.tokens import verify_output

    assert len(PRESETS) >= 5
    for p in PRESETS:
        assert validate([1, 2], CompletionSettings(), ebnf=p.ebnf, model="m") == [], p.name
        assert build_body("m", [1, 2], CompletionSettings(), ebnf=p.ebnf)["ebnf"] == p.ebnf
        assert verify_output(p.ebnf, p.example).ok, p.name
        assert not verify_output(p.ebnf, p.example + "\x00junk").ok, p.name


def test_chat_logprobs_become_shaded_tokens() -> None:
    """Issue 16: Chat draws logprobs like the Token page, from the same GenToken shape."""
    import math

    from components.tokens.view import generated_html
    from wafer_playground.tokens import chat_logprob_tokens

    items = [{"token": "Par", "logprob": math.log(0.9),
              "top_logprobs": [{"token": "Par", "logprob": math.log(0.9)},
                               {"token": "Lyon", "logprob": math.log(0.05)}]},
             {"token": "<b>", "logprob": None}, "junk"]
    toks = chat_logprob_tokens(items)  # type: ignore[arg-type]
    assert [(t.index, t.text) for t in toks] == [(0, "Par"), (1, "<b>")]
    assert toks[0].prob is not None and abs(toks[0].prob - 0.9) < 1e-9
    assert [a.text for a in toks[0].alternatives] == ["Par", "Lyon"]
    html = generated_html(toks)
    assert "&lt;b&gt;" in html and "<b>" not in html.split("</style>")[-1]
