"""Evaluate core: test-set parsing, expectations, the judge's verdict, statistics, the
Bradley–Terry leaderboard and the exports (issue 18)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from wafer_playground import eval_stats as st
from wafer_playground.evals import (
    EvalSetup,
    Expectation,
    Judge,
    TestSetError,
    check,
    check_all,
    from_records,
    judge_verdict,
    parse_delimited,
    parse_jsonl,
    parse_upload,
)
from wafer_playground.store.evals import EvalCell
from wafer_playground.store.records import Vote

CSV = "a,b,expect_equals\n1,2,3\n2,2,4\n"


def test_csv_tsv_jsonl_and_table_give_the_same_set() -> None:
    csv_set = parse_delimited(CSV, variables=["a", "b"])
    tsv_set = parse_delimited(CSV.replace(",", "\t"))
    jsonl = parse_jsonl('{"a": 1, "b": 2, "expect_equals": 3}\n\n{"a": 2, "b": 2, '
                        '"expect_equals": "4"}\n')
    table = from_records([{"a": "1", "b": "2", "expect_equals": "3"},
                          {"a": "2", "b": "2", "expect_equals": "4"},
                          {"a": None, "b": "", "expect_equals": None}])  # editor's blank row
    for s in (csv_set, tsv_set, jsonl, table):
        assert s.variables == ("a", "b")
        assert [r.values for r in s.rows] == [{"a": "1", "b": "2"}, {"a": "2", "b": "2"}]
        assert [r.expects[0].value for r in s.rows] == ["3", "4"]
    assert parse_upload("x.CSV", CSV.encode("utf-8-sig")).rows[1].values["a"] == "2"


@pytest.mark.parametrize(("text", "where"), [
    ("a,b\n1,2,3\n", "row 1"),
    ("a,a\n1,2\n", "column “a”"),
    ("a,expect_magic\n1,2\n", "column “expect_magic”"),
    ("a,expect_regex\n1,(\n", "row 1, column “expect_regex”"),
    ("a,expect_schema\n1,{\"type\": 5}\n", "row 1, column “expect_schema”"),
    ("a,expect_grammar\n1,root ::= \n", "row 1, column “expect_grammar”"),
    ("a,expect_number,expect_tolerance\n1,x,\n", "row 1, column “expect_number”"),
    ("a,expect_number,expect_tolerance\n1,3,-1\n", "row 1, column “expect_tolerance”"),
])
def test_bad_sets_say_where(text: str, where: str) -> None:
    with pytest.raises(TestSetError) as info:
        parse_delimited(text)
    assert str(info.value).startswith(where)


def test_caps_and_missing_variables() -> None:
    with pytest.raises(TestSetError, match="no column of that name"):
        parse_delimited(CSV, variables=["a", "question"])
    with pytest.raises(TestSetError, match="more than the 2,000"):
        from_records([{"a": str(i)} for i in range(2001)])
    with pytest.raises(TestSetError, match="longer than 20,000"):
        from_records([{"a": "x" * 20_001}])
    with pytest.raises(TestSetError, match="row 2: not valid JSON"):
        parse_jsonl('{"a": 1}\n{oops\n')
    with pytest.raises(TestSetError, match="not UTF-8"):
        parse_upload("x.csv", b"a\n\xff\xfe\n")
    with pytest.raises(TestSetError, match=".csv, .tsv or .jsonl"):
        parse_upload("x.xlsx", b"")
    with pytest.raises(TestSetError, match="no rows"):
        parse_delimited("a,b\n")


@pytest.mark.parametrize(("exp", "out", "ok"), [
    (Expectation("equals", "42"), " 42\n", True),
    (Expectation("equals", "42"), "42.", False),
    (Expectation("contains", "Paris"), "It is Paris.", True),
    (Expectation("contains", "Paris"), "paris", False),
    (Expectation("regex", r"^\d{3}$"), "123", True),
    (Expectation("regex", r"^\d{3}$"), "1234", False),
    (Expectation("json", "yes"), '{"a": 1}', True),
    (Expectation("json", "yes"), "{a: 1}", False),
    (Expectation("schema", '{"type": "object", "required": ["a"]}'), '{"a": 1}', True),
    (Expectation("schema", '{"type": "object", "required": ["a"]}'), '{"b": 1}', False),
    (Expectation("grammar", 'root ::= [0-9]+'), "2024", True),
    (Expectation("grammar", 'root ::= [0-9]+'), "20x", False),
    (Expectation("number", "3.14", 0.01), "pi is about 3.141", True),
    (Expectation("number", "3.14", 0.0001), "pi is about 3.141", False),
    (Expectation("number", "1000"), "1,000", True),
    (Expectation("number", "5"), "five", False),
])
def test_expectations(exp: Expectation, out: str, ok: bool) -> None:
    assert check(exp, out).ok is ok


def test_a_catastrophic_regex_times_out_instead_of_hanging() -> None:
    v = check(Expectation("regex", r"^(a|aa)+$"), "a" * 40 + "!")
    assert not v.ok and "took over" in v.reason


def test_check_all_and_judge() -> None:
    assert check_all([], "x") == (None, [])
    ok, reasons = check_all([Expectation("contains", "a"), Expectation("contains", "z")], "abc")
    assert ok is False and reasons[1].startswith("contains: does not contain")
    assert judge_verdict("PASS\nIt names Paris.").ok
    assert not judge_verdict("fail: wrong city").ok
    assert not judge_verdict("I think it is fine").ok


def test_setup_round_trip_and_problems() -> None:
    tests = parse_delimited(CSV)
    setup = EvalSetup("{{a}} + {{b}} =", tests, ("m1", "m2"), repeats=2,
                      defaults=(Expectation("regex", r"\d+"),), judge=Judge("j", "be right"))
    again = EvalSetup.from_json(json.loads(json.dumps(setup.to_json())))
    assert again == setup
    assert setup.problems() == []
    assert len(setup.cells()) == 2 * 2 * 2
    assert "{{c}}" in EvalSetup("{{c}}", tests, ("m",)).problems()[0]
    assert "one to four" in EvalSetup("{{a}}", tests, ()).problems()[0]
    with pytest.raises(TestSetError):
        EvalSetup.from_json({"surface": "images"})


def cell(row: int, model: str, passed: bool | None, cost: str | None = "0.001", *,
         repeat: int = 0, status: str = "done", dur: float = 1.0) -> EvalCell:
    return EvalCell(id=f"{row}{model}{repeat}", run_id="r", row=row, model=model, repeat=repeat,
                    status=status, passed=passed,  # type: ignore[arg-type]
                    cost_usd=None if cost is None else Decimal(cost), duration_s=dur)


def test_wilson_interval() -> None:
    lo, hi = st.wilson(0, 10)
    assert lo == 0 and 0.27 < hi < 0.29  # the textbook 0/10 upper bound: 0.2775
    lo, hi = st.wilson(8, 10)
    assert 0.49 < lo < 0.50 and 0.94 < hi < 0.95
    assert st.wilson(0, 0) == (0.0, 1.0)


def test_summary_cost_per_passing_answer_and_percentiles() -> None:
    cells = [cell(i, "a", i < 3, dur=float(i + 1)) for i in range(4)]
    cells += [cell(i, "b", False, cost="0.002") for i in range(4)]
    cells.append(cell(4, "a", None, status="error", cost=None))  # error: a failed answer
    a, b = st.summarize(cells, ["a", "b"])
    assert (a.cells, a.passes, a.errors) == (5, 3, 1)
    assert a.cost == Decimal("0.004") and a.cost_per_pass == Decimal("0.004") / 3
    assert a.p50_s == 2.0 and a.p90_s == pytest.approx(3.6)  # 1, 1 (the error), 2, 3, 4
    assert b.passes == 0 and b.cost_per_pass is None
    rows = st.summary_rows([a, b])
    assert rows[0]["cost per passing answer"] == "$0.00133"
    assert rows[1]["cost per passing answer"] == "— (none passed)"
    assert st.pass_cost_figure([a, b]).layout.xaxis.type == "log"


def test_flakiness_and_diff() -> None:
    run_a = [cell(0, "m", True, repeat=0), cell(0, "m", False, repeat=1),
             cell(1, "m", True, repeat=0), cell(1, "m", True, repeat=1),
             cell(2, "m", False), cell(2, "x", True)]
    fl = {(f.row, f.model): f for f in st.flakiness(run_a)}
    assert fl[(0, "m")].flaky and not fl[(1, "m")].flaky
    run_b = [cell(0, "m", True), cell(1, "m", False), cell(2, "m", False), cell(3, "m", True)]
    flips = st.diff(run_a, run_b)
    assert [(f.row, f.before, f.after) for f in flips] == [(0, False, True), (1, True, False)]


def votes_of(spec: list[tuple[str, str, str | None]], ts: str = "2026-12-01T10:00:00Z",
             **meta: str) -> list[Vote]:
    return [Vote(id=str(i), ts=ts, prompt="p", candidates=[a, b], winner=w, blind=True,
                 meta=dict(meta)) for i, (a, b, w) in enumerate(spec)]


def test_bradley_terry_orders_and_bounds() -> None:
    votes = votes_of([("a", "b", "a")] * 8 + [("a", "b", "b")] * 2 + [("b", "c", "b")] * 7
                     + [("b", "c", "c")] * 3 + [("a", "c", "a")] * 9 + [("a", "c", None)])
    board = st.leaderboard(votes, bootstrap=100)
    assert [r.model for r in board] == ["a", "b", "c"]
    for r in board:
        assert r.lo <= r.rating <= r.hi
    a = board[0]
    assert a.appearances == 20 and a.wins == 17.5
    assert st.leaderboard(votes_of([("a", "a", "a")])) == []
    # an undefeated model stays finite (the prior)
    assert st.leaderboard(votes_of([("x", "y", "x")] * 5), bootstrap=0)[0].rating < 2000


def test_votes_filter_by_date_and_template() -> None:
    old = votes_of([("a", "b", "a")], ts="2026-11-01T00:00:00Z", template="t1")
    new = votes_of([("a", "b", "b")], ts="2026-12-02T00:00:00Z", template="t2")
    assert st.filter_votes(old + new, since="2026-12-01") == new
    assert st.filter_votes(old + new, until="2026-11-30") == old
    assert st.filter_votes(old + new, template="t1") == old


def test_exports_are_formula_safe_and_keyless() -> None:
    c = EvalCell(id="1", run_id="r", row=0, model="m", repeat=0, status="done",
                 output="=HYPERLINK(\"http://x\")", passed=True, cost_usd=Decimal("1E-7"))
    text = st.cells_csv([c], lambda _r: {"q": "+1"}, ["q"])
    assert "'=HYPERLINK" in text and ",'+1" in text and "0.0000001" in text
    doc = json.loads(st.run_json({"template": "{{q}}"}, [c], st.summarize([c], ["m"])))
    assert doc["cells"][0]["passed"] == "pass" and doc["summary"][0]["passes"] == 1
