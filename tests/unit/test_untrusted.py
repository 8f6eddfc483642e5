"""The untrusted-text rule (SECURITY.md, "Untrusted text") and the number bounds of issue 14."""

from __future__ import annotations

import csv
import io
import re
from decimal import Decimal

import pytest

from wafer_playground.assembly import ChatAccumulator, turn_facts
from wafer_playground.catalog import Pricing, parse_models
from wafer_playground.costs import Usage, UsageError
from wafer_playground.untrusted import (
    clean,
    csv_cell,
    csv_text,
    image_sources,
    md_code,
    md_text,
    model_markdown,
    truncated,
)

TRACK = "http://127.0.0.1:9/track.png"


def _images(md: str) -> list[str]:
    """Markdown image openers a CommonMark renderer would see (`![` not preceded by `\\`)."""
    return re.findall(r"(?<!\\)!\[", md)


# ---- plain text for markdown sinks --------------------------------------------------------


@pytest.mark.parametrize(("hostile", "inert"), [
    (f"![]({TRACK})", f"!\\[\\]({TRACK})"),
    (f"[click]({TRACK})", f"\\[click\\]({TRACK})"),
    (":red[alarm]", "\\:red\\[alarm\\]"),
    # Streamlit turns the source text ":material/" into an icon before parsing: broken by
    # an invisible word joiner, since no backslash stops it
    (":material/warning: hi", "\\:\u2060material/warning: hi"),
    (":violet-badge[Pass]", "\\:violet-badge\\[Pass\\]"),
    (":color[x]{foreground=red}", "\\:color\\[x\\]{foreground=red}"),
    (":small[tiny]", "\\:small\\[tiny\\]"),
    ("<img src=x onerror=alert(1)>", "\\<img src=x onerror=alert(1)>"),
    ("&#x202e;evil", "\\&#x202e;evil"),
    ("**bold** _it_ `code`", "\\*\\*bold\\*\\* \\_it\\_ \\`code\\`"),
    ("$x^2$", "\\$x^2\\$"),
    ("# heading", "\\# heading"),
    ("- item", "\\- item"),
    ("1. first", "1\\. first"),
    ("> quote", "\\> quote"),
    ("| a | b |", "\\| a \\| b \\|"),
    ("~~gone~~", "\\~\\~gone\\~\\~"),
    ("back\\slash", "back\\\\slash"),
    # ordinary ids and names read as they are
    ("Kimi-K2.5", "Kimi-K2.5"), ("req_fake_404", "req_fake_404"), ("a -> b: ok", "a -> b: ok"),
])
def test_md_text_escapes_what_could_form_markup(hostile: str, inert: str) -> None:
    assert md_text(hostile) == inert


def test_bidi_and_controls_are_made_visible() -> None:
    name = "safe\u202egnp.exe\u2066x\u2069\x00\x1b[31m"
    out = clean(name)
    for ch in "\u202e\u2066\u2069\x00\x1b":
        assert ch not in out
    assert "[U+202E]" in out and "[U+2066]" in out and "[U+001B]" in out
    assert clean("line\nnext\ttab") == "line\nnext\ttab"


def test_huge_strings_are_cut_for_display() -> None:
    big = "x" * 1_000_000
    assert len(clean(big)) <= 201
    assert len(md_text(big, 4000)) <= 4001
    shown, hidden = truncated(big, 1000)
    assert len(shown) == 1000 and hidden == 999_000
    assert truncated("short", 1000) == ("short", 0)


def test_md_text_multiline_keeps_breaks_and_one_line_drops_them() -> None:
    assert md_text("a\nb") == "a b"
    assert md_text("a\nb", multiline=True) == "a  \nb"


def test_md_code_cannot_be_broken_out_of() -> None:
    assert md_code("req_1") == "`req_1`"
    out = md_code("a`b ![x](y)")
    assert out.startswith("``") and out.endswith("``") and "a`b" in out
    assert md_code("`edge`").startswith("`` `")
    assert md_code("") == ""


# ---- model output -------------------------------------------------------------------------


def test_model_images_become_placeholders_naming_their_target() -> None:
    out = model_markdown(f"Here: ![chart]({TRACK}) done")
    assert _images(out) == []
    assert "image" in out and "not loaded" in out
    assert "track" in out and "chart" in out
    assert image_sources(f"![a]({TRACK}) ![b](http://h/2.png) ![a]({TRACK})") == [
        TRACK, "http://h/2.png"]


@pytest.mark.parametrize("text", [
    f"![a]({TRACK})", f"![a][r]\n\n[r]: {TRACK}", f"![r]\n\n[r]: {TRACK}",
    f"```\n![a]({TRACK})\n```", f"`![a]({TRACK})`", f"<div>\n```\n\n![a]({TRACK})",
    f"\\\\![a]({TRACK})", f"![a](<{TRACK}>)", f"![a]({TRACK} \"title\")",
    f"~~~\n![a]({TRACK})", f"```a`b\n![a]({TRACK})\n```", f"![a]({TRACK[:-4]}(1).png)",
])
def test_no_image_survives_whatever_the_reading(text: str) -> None:
    """Fences, code spans, reference images, escaped backslashes, HTML blocks: none loads."""
    out = model_markdown(text)
    assert "![" not in out  # not even inside code: the safety net covers a misread fence


def test_images_load_only_when_asked() -> None:
    assert _images(model_markdown(f"![a]({TRACK})", images=True)) == ["!["]


def test_code_is_left_alone_except_the_image_net() -> None:
    code = "```python\nx = {'a': [1]}  # :red[no]\nprint(f'{x}')\n```\n"
    assert model_markdown(code) == code
    assert model_markdown("use `:material/home:` here") == "use `:material/home:` here"


def test_links_show_their_real_target() -> None:
    out = model_markdown("see [the docs](http://evil.test/steal?x=1)")
    assert "[the docs](http://evil.test/steal?x=1)" in out
    assert out.endswith(" \\(`http://evil.test/steal?x=1`\\)")  # the target, after the link
    assert model_markdown("[http://a.test](http://a.test)") == "[http://a.test](http://a.test)"
    ref = model_markdown("[docs][r]\n\n[r]: http://evil.test/x")
    assert "\\[r\\]: http://evil.test/x" in ref  # the definition is text: its URL is visible


@pytest.mark.parametrize("directive", [":red[x]", ":material/warning:", ":blue-badge[y]",
                                       ":orange-background[z]", ":small[s]"])
def test_model_directives_are_escaped(directive: str) -> None:
    out = model_markdown(f"text {directive} text")
    assert out == f"text \\{directive} text".replace(":material", ":\u2060material")
    assert ":material/" not in out
    # an escaped backslash before the colon does not unescape it
    if "material" not in directive:
        assert model_markdown(f"\\\\{directive}") == f"\\\\\\{directive}"
        assert model_markdown(f"\\{directive}") == f"\\{directive}"  # already escaped


def test_model_markdown_keeps_formatting_and_urls() -> None:
    text = "# Title\n\n- **bold** and _it_\n- https://example.test/a:b\n\n| a | b |\n|---|---|\n"
    assert model_markdown(text) == text


def test_model_markdown_neutralises_bidi() -> None:
    assert "\u202e" not in model_markdown("abc\u202edef")


# ---- CSV ----------------------------------------------------------------------------------


@pytest.mark.parametrize("cell", ["=1+1", "+cmd", "-2+3", "@SUM(A1)", "\t=x", "\r=x",
                                  "=HYPERLINK(\"http://evil\")"])
def test_formula_cells_are_neutralised(cell: str) -> None:
    assert csv_cell(cell) == "'" + cell
    rows = list(csv.reader(io.StringIO(csv_text(["h"], [[cell]]), newline="")))
    assert rows[1][0] == "'" + cell


def test_numbers_and_plain_text_stay() -> None:
    assert csv_cell(-7) == -7 and csv_cell(1.5) == 1.5 and csv_cell("model-a") == "model-a"
    assert csv_text(["=h", "b"], [[1, "x"]]) == "'=h,b\r\n1,x\r\n"
    rows = list(csv.reader(io.StringIO(csv_text(["a"], [["x\ry"]]), newline="")))
    assert rows == [["a"], ["x\ry"]]  # an inner CR stays inside its cell


# ---- numbers from outside -------------------------------------------------------------------


@pytest.mark.parametrize("usage", [
    {"prompt_tokens": 5, "completion_tokens": -7},
    {"prompt_tokens": 10**30, "completion_tokens": 3},
    {"prompt_tokens": 5, "completion_tokens": 2.5},
    {"prompt_tokens": float("nan"), "completion_tokens": 1},
    {"prompt_tokens": float("inf"), "completion_tokens": 1},
    {"prompt_tokens": "12", "completion_tokens": 1},
])
def test_usage_from_a_server_is_bounded(usage: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        Usage.from_openai(usage)


def _acc(usage: dict[str, object]) -> ChatAccumulator:
    acc = ChatAccumulator(0.0)
    acc.feed({"choices": [{"index": 0, "delta": {"content": "partial answer"}}]}, 0.1)
    acc.feed({"choices": [], "usage": usage}, 0.2)
    return acc


@pytest.mark.parametrize("usage", [{"prompt_tokens": 5, "completion_tokens": -7},
                                   {"prompt_tokens": 10**30, "completion_tokens": 10**30}])
def test_a_bad_usage_object_is_an_estimate_with_a_note(usage: dict[str, object]) -> None:
    pricing = Pricing(Decimal(100), Decimal(200))
    facts = turn_facts(_acc(usage), pricing, prompt_estimate=10, request_id="r")
    assert facts.cost.kind == "estimate"
    assert facts.completion_tokens >= 0
    assert facts.cost.total is not None and facts.cost.total < Decimal("0.01")
    assert facts.usage_note and "not used" in facts.usage_note
    assert facts.to_dict()["usage_note"] == facts.usage_note


def test_a_good_usage_object_is_actual_without_a_note() -> None:
    facts = turn_facts(_acc({"prompt_tokens": 5, "completion_tokens": 3}),
                       Pricing(Decimal(100), Decimal(200)), prompt_estimate=10, request_id=None)
    assert facts.cost.kind == "actual" and facts.usage_note is None


@pytest.mark.parametrize(("price", "why"), [("1e400", "too large"), (-5, "negative"),
                                            ("NaN", "not a finite"), ("Infinity", "not a finite"),
                                            (10**12, "too large")])
def test_absurd_prices_are_not_published_and_reported(price: object, why: str) -> None:
    cat = parse_models({"data": [{"id": "m", "wafer": {"pricing": {
        "input_cents_per_million": price, "output_cents_per_million": 10}}}]}, source=None)
    assert cat.models[0].pricing.input_cpm is None
    assert len(cat.problems) == 1 and why in cat.problems[0] and "card 0 (m)" in cat.problems[0]


def test_real_prices_pass() -> None:
    cat = parse_models({"data": [{"id": "m", "wafer": {"pricing": {
        "input_cents_per_million": "0.5", "output_cents_per_million": 60000}}}]}, source=None)
    assert cat.models[0].pricing.output_cpm == Decimal(60000) and not cat.problems


# ---- share links say what they change ------------------------------------------------------


def test_share_instructions_name_prompt_tools_and_grammar() -> None:
    from wafer_playground.share import ShareState, decode, encode, instructions

    assert instructions(ShareState(page="chat", params={"temperature": 0.2})) == []
    tools = [{"type": "function", "function": {"name": "send", "parameters": {}}}]
    state = ShareState(page="chat", prompt="Be terse.", params={"tools": tools})
    got = dict(instructions(state))
    assert got["System prompt"] == "Be terse." and '"send"' in got["Tools"]
    compare = ShareState(page="compare", prompt="user prompt", grammar='root ::= "x"',
                         messages=[{"role": "system", "content": "Obey the link."}])
    assert instructions(compare) == [("System prompt", "Obey the link."),
                                     ("Grammar (EBNF)", 'root ::= "x"')]
    # what a link carries after the round trip is what is shown
    decoded = decode(encode(state).query).state
    assert decoded is not None and dict(instructions(decoded))["System prompt"] == "Be terse."


# ---- imports: numbers in a file are untrusted ----------------------------------------------


@pytest.mark.parametrize(("field", "value", "why"), [
    ("cost_usd", "-0.5", "non-negative decimal"),
    ("cost_usd", "1e400", "non-negative decimal"),
    ("completion_tokens", -7, "less than the minimum"),
    ("prompt_tokens", 10**30, "greater than the maximum"),
    ("ttft_s", -1.0, "less than the minimum"),
])
def test_import_refuses_negative_and_absurd_numbers(tmp_path: object, field: str,
                                                    value: object, why: str) -> None:
    import json
    from pathlib import Path

    from wafer_playground.store import SQLiteStore
    from wafer_playground.transcript import TranscriptError, export_json, parse_transcript

    store = SQLiteStore(Path(str(tmp_path)) / "x.db")
    try:
        cid = store.create_conversation("t", model="m")
        tid = store.start_turn(cid, "user", "hi")
        rid = store.log_request(model="m", base_url="http://x/v1", surface="chat", params={},
                                conversation_id=cid, turn_id=tid)
        store.update_request(rid, status="done", prompt_tokens=3, completion_tokens=4,
                             cost_usd=Decimal("0.01"), ttft_s=0.2)
        doc = json.loads(export_json(store, cid))
    finally:
        store.close()
    assert doc["requests"], "the export carries the request row"
    parse_transcript(json.dumps(doc))  # the honest file imports
    doc["requests"][0][field] = value
    with pytest.raises(TranscriptError, match=why):
        parse_transcript(json.dumps(doc))


def test_import_refuses_nan_literals() -> None:
    from wafer_playground.transcript import TranscriptError, parse_transcript

    with pytest.raises(TranscriptError, match="NaN"):
        parse_transcript('{"format": "wafer-playground/conversation", "x": NaN}')


def test_compare_pane_with_a_bad_usage_is_an_estimate_not_a_crash() -> None:
    from wafer_playground.compare import PaneSnapshot, PaneSpec, pane_result

    pricing = Pricing(Decimal(100), Decimal(200))
    spec = PaneSpec(model="m", surface="chat", body={}, label="Model A")
    for usage in ({"prompt_tokens": -5, "completion_tokens": -7},
                  {"prompt_tokens": 10**30, "completion_tokens": 10**30}):
        snap = PaneSnapshot(index=0, spec=spec, status="done", content="text", reasoning="",
                            finish_reason="stop", usage=usage, ttft_s=0.1, tokens_per_s=None,
                            completion_tokens=2, completion_source="chunks", started_s=0.0,
                            first_token_s=0.1, ended_s=1.0)
        result = pane_result(snap, pricing)
        assert result.prompt_tokens is None and result.cost_kind == "estimate"
        assert result.cost_usd is not None and result.cost_usd < Decimal("0.01")


def test_absurd_context_and_times_are_not_published_and_reported() -> None:
    from wafer_playground.catalog import to_frame

    cat = parse_models({"data": [{"id": "m", "max_model_len": 10**30, "created": 10**30,
                                  "wafer": {"max_output_tokens": 10**12}}]}, source=None)
    m = cat.models[0]
    assert (m.context_length, m.max_output_tokens, m.created) == (None, None, None)
    assert len(cat.problems) == 3 and all("too large" in p for p in cat.problems)
    assert to_frame(cat.models)["context_length"].isna().all()  # no OverflowError


def test_account_usage_refuses_negative_and_absurd_counts_with_a_note() -> None:
    from wafer_playground.usage import price_usage_me, usage_me_view

    view = usage_me_view({
        "total_requests": -3, "total_input_tokens": 10**30, "total_output_tokens": 5.5,
        "total_estimated_cost_cents": -100,
        "models": [{"model": "m", "input_tokens": -7, "output_tokens": float("nan"),
                    "request_count": 2, "estimated_cost_cents": 12}],
        "days": [{"date": "2026-12-01", "input_tokens": -1, "output_tokens": 3}]})
    assert (view.total_requests, view.total_input_tokens, view.total_output_tokens) == (0, 0, 0)
    assert view.reported_cost_usd is None
    assert int(view.models["input_tokens"][0]) == 0 and int(view.days["input_tokens"][0]) == 0
    assert len(view.notes) == 7 and all("counted as 0" in n or "not a cost" in n
                                        for n in view.notes)
    from wafer_playground.catalog import Model
    priced = price_usage_me(view, [Model("m", "m", pricing=Pricing(Decimal(100),
                                                                    Decimal(200)))])
    assert float(priced["our_usd"][0]) == 0.0  # priced, not a crash on a negative count


def test_catalog_chart_text_is_escaped_for_plotly() -> None:
    from components.catalog.chart import price_figure
    from components.catalog.frame import (
        Filters,
        WorkloadInput,
        apply_filters,
        display_frame,
        workload_costs,
    )

    cards = [{"id": "m", "max_model_len": 8192, "wafer": {
        "display_name": '<a href="http://127.0.0.1:9/x">click</a><span style="font-size:99px">',
        "provider": "<b>p</b>",
        "pricing": {"input_cents_per_million": 10, "output_cents_per_million": 20}}}]
    models = parse_models({"data": cards}, source=None).models
    req, month = workload_costs(models, WorkloadInput())
    view = apply_filters(display_frame(models).assign(per_request=req, per_month=month),
                         Filters())
    fig, _ = price_figure(view, view["per_request"].to_numpy(), view["per_month"].to_numpy())
    texts = [str(t) for trace in fig.data for t in (trace.text or ())]
    hovers = [str(t) for trace in fig.data for t in (trace.hovertext or ())]
    assert texts and all("<" not in t for t in texts + hovers), (texts, hovers)


@pytest.mark.parametrize("text", [
    "".join("`" * k + "a" for k in range(1, 800)),  # unmatched code-span runs of every size
    "[a](x" + " " * 200_000 + "y", "![" * 100_000, ":a[" * 100_000, "``a`" * 50_000,
])
def test_hostile_markdown_is_processed_in_linear_time(text: str) -> None:
    """Hostile text costs about what ordinary markdown of the same length costs (here up
    to 3x); a scan per run made the first case take 10 s, some 40x. Both are timed in this
    test, best of three, so a loaded machine slows both alike instead of failing an
    absolute limit."""
    import time

    def cost(t: str) -> float:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            model_markdown(t)
            image_sources(t)
            md_text(t, None, multiline=True)
            best = min(best, time.perf_counter() - started)
        return best

    ordinary = ("The quick brown fox *jumps* over `the` lazy dog. " * (len(text) // 49 + 1))
    hostile, baseline = cost(text), cost(ordinary[:len(text)])
    assert hostile < 10 * baseline + 0.1, (hostile, baseline)