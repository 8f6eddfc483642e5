"""check() and to_gbnf() on the XGrammar dialect (decisions and texts from xgrammar 0.2.8)."""

from __future__ import annotations

import contextlib
import re

import pytest

from tests.unit.grammar_corpus import ALL_CASES, DIALECT_TABLE, GBNF_UNTRANSLATABLE, DialectCase
from wafer_playground.grammar import check, gbnf_names, match, parse, to_gbnf


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_check_decision_and_message(case: DialectCase) -> None:
    report = check(case.ebnf)
    assert report.ok is case.xgrammar_ok, report.issues
    if case.xgrammar_ok:
        assert report.issues == []
        assert "root" in report.rules
    else:
        assert len(report.issues) == 1
        assert report.issues[0].message == case.error


def test_dialect_table_has_all_22_rows() -> None:
    assert len(DIALECT_TABLE) == 22


@pytest.mark.parametrize(
    "ebnf, line, column",
    [
        ('root ::= "a"\n  | "b"\n  | foo', 3, 5),
        ('# header\n\nroot ::= x\nx ::= "a" "b" |\n', 5, 1),
        ('root ::= x\nx ::=   "a" \t ** ', 2, 16),
        ('root ::= "a"\r\nx ::= [b\r\n]', 2, 9),
    ],
)
def test_line_and_column_in_multiline_grammars(ebnf: str, line: int, column: int) -> None:
    issue = check(ebnf).issues[0]
    assert (issue.line, issue.column) == (line, column)
    assert issue.message.startswith("EBNF ") and f"line {line}, column {column}:" in issue.message


def test_issue_detail_strips_prefix() -> None:
    issue = check("root ::= foo").issues[0]
    assert issue.detail == 'Rule "foo" is not defined'


def test_rules_listed_in_order() -> None:
    assert check('root ::= a b\na ::= "1"\nb ::= "2"').rules == ["root", "a", "b"]


def test_nul_ends_the_grammar_like_a_c_string() -> None:
    # XGrammar reads a char*: text after NUL is invisible to it.
    assert check('root ::= "a"\x00 garbage ::= ;').ok


def test_deep_nesting_limit() -> None:
    ok = "root ::= " + "(" * 300 + '"a"' + ")" * 300
    assert check(ok).ok
    too_deep = "root ::= " + "(" * 1001 + '"a"' + ")" * 1001
    issue = check(too_deep).issues[0]
    assert issue.detail == "Nest layer exceeded the maximum limit"


# --- to_gbnf -------------------------------------------------------------------------------

GBNF_RULE = re.compile(r"^[A-Za-z0-9-]+ ::= .+$")


@pytest.mark.parametrize("case", [c for c in ALL_CASES if c.xgrammar_ok], ids=lambda c: c.name)
def test_to_gbnf_for_every_accepted_case(case: DialectCase) -> None:
    if case.name in GBNF_UNTRANSLATABLE:
        with pytest.raises(ValueError):
            to_gbnf(case.ebnf)
        return
    out = to_gbnf(case.ebnf)
    lines = out.splitlines()
    assert out.endswith("\n")
    assert lines[0].startswith("root ::= ")
    for line in lines:
        # one rule per line (llama.cpp ends a top-level rule at the newline)
        assert GBNF_RULE.match(line), line
    assert "_" not in "".join(line.split(" ::= ")[0] for line in lines)


def test_to_gbnf_rejects_what_check_rejects() -> None:
    with pytest.raises(ValueError, match='Rule "foo" is not defined'):
        to_gbnf("root ::= foo")


def test_to_gbnf_exact_outputs() -> None:
    assert to_gbnf('root ::= "A"\n    | "B"') == 'root ::= "A" | "B"\n'
    assert to_gbnf('root ::= digits "!"\ndigits ::= [0-9]{1,3}') == (
        'root ::= digits "!"\ndigits ::= [0-9]{1,3}\n'
    )
    assert to_gbnf('root ::= my_rule\nmy_rule ::= "\\x41\\u00e9\\t\\"\\\\"') == (
        'root ::= my-rule\nmy-rule ::= "Aé\\t\\"\\\\"\n'
    )
    # XGrammar's [^] is any char and [] matches nothing; GBNF reads both as "" so they change.
    assert to_gbnf("root ::= [^] | []") == "root ::= . | [^\\x00-\\U0010FFFF]\n"
    assert to_gbnf("root ::= [\\^\\]\\-a-z]") == "root ::= [\\x5E\\]\\-a-z]\n"
    # A quantifier on "" is an error in llama.cpp.
    assert to_gbnf('root ::= ""* "a"') == 'root ::= "" "a"\n'
    assert to_gbnf("root ::= ()") == 'root ::= ""\n'


def test_to_gbnf_renames_without_collisions() -> None:
    g = 'root ::= a_b a-b a.b\na_b ::= "1"\na-b ::= "2"\na.b ::= "3"'
    out = to_gbnf(g)
    heads = [line.split(" ::= ")[0] for line in out.splitlines()]
    assert len(set(heads)) == 4
    assert heads[2] == "a-b"  # an already-legal name keeps its name
    assert gbnf_names(["x_1", "x-1", "x.1"]) == {"x-1": "x-1", "x_1": "x-1-2", "x.1": "x-1-3"}


def test_to_gbnf_emits_only_reachable_rules() -> None:
    out = to_gbnf('root ::= "a"\nunused ::= Token(5)')
    assert out == 'root ::= "a"\n'


def test_to_gbnf_regex_translation() -> None:
    assert to_gbnf('root ::= Regex("[a-z]+@x\\\\.com")') == 'root ::= (([a-z])+ "@x.com")\n'
    assert to_gbnf('root ::= Regex("\\\\d{3}-\\\\d{4}")') == (
        'root ::= (([0-9]){3} "-" ([0-9]){4})\n'
    )
    with pytest.raises(ValueError, match="json_string"):
        to_gbnf('root ::= Regex("a", json_string=true)')


def test_to_gbnf_left_recursion_through_nullable_prefix() -> None:
    with pytest.raises(ValueError, match="left recursion"):
        to_gbnf('root ::= opt root "a" | "b"\nopt ::= "x"?')
    # right recursion is fine for llama.cpp
    assert to_gbnf('root ::= "a" root | "a"') == 'root ::= "a" root | "a"\n'


def test_to_gbnf_repetition_limits() -> None:
    with pytest.raises(ValueError, match="2000"):
        to_gbnf('root ::= "a"{2001}')
    with pytest.raises(ValueError, match="2000"):
        to_gbnf('root ::= "a"{0,5000}')
    assert to_gbnf('root ::= "a"{2000}') == 'root ::= "a"{2000}\n'


def test_parse_gives_ast() -> None:
    g = parse('root ::= "a" x*\nx ::= [0-9]')
    assert [r.name for r in g.rules] == ["root", "x"]


# --- match ---------------------------------------------------------------------------------

YES_NO = 'root ::= "{" ws "\\"answer\\"" ws ":" ws ("\\"yes\\"" | "\\"no\\"") ws "}"\nws ::= [ ]?'


@pytest.mark.parametrize(
    "text, position, expected",
    [
        ('{"answer": "yes"}', None, []),
        ('{ "answer" : "no" }', None, []),
        ('{"answer": "yex"}', 14, ['"s"']),
        ('{"answer": "n', 13, ['"o"']),  # ran out of text
        ('{"answer":"no"} ', 15, ["end of text"]),  # trailing garbage after a full match
        ("", 0, ['"{"']),
        ('{"answer": maybe}', 11, ['"\\""']),
    ],
)
def test_match_positions(text: str, position: int | None, expected: list[str]) -> None:
    r = match(YES_NO, text)
    assert r.ok is (position is None), r.message
    assert r.position == position
    assert sorted(r.expected) == sorted(expected)


def test_match_expected_includes_end_when_the_match_could_stop() -> None:
    r = match('root ::= [0-9]+ ("," [0-9]+)*', "12,34x")
    assert (r.position, sorted(r.expected)) == (5, ['","', "[0-9]", "end of text"])
    r = match('root ::= [0-9]+ ("," [0-9]+)*', "12,34,")
    assert (r.position, r.expected) == (6, ("[0-9]",))
    assert "line 1, column 7" in r.message


def test_match_bounded_repetition_and_classes() -> None:
    g = 'root ::= "a"{2,3} [^a-c] [^]'
    assert match(g, "aad!").ok
    assert match(g, "aaaz\n").ok
    assert match(g, "ab!").position == 1
    assert match(g, "aaaab").position == 3
    assert match('root ::= [] | "x"', "x").ok
    assert not match("root ::= []", "x").ok


def test_match_multiline_text_reports_line_and_column() -> None:
    g = 'root ::= line ("\\n" line)*\nline ::= [a-z]+'
    r = match(g, "abc\nde\nf9")
    assert r.position == 8
    assert "line 3, column 2" in r.message


def test_match_regex_macro_and_special_characters() -> None:
    assert match('root ::= Regex("[a-z]+@x\\\\.com")', "bob@x.com").ok
    assert match('root ::= Regex("[a-z]+@x\\\\.com")', "bob@x.cm").position == 7
    special = 'root ::= "[]^-\\\\/\\"\'" [\\]\\[\\^\\-\\\\] "\\t\\n\\x00é😀"'
    assert match(special, "[]^-\\/\"'^\t\n\x00é😀").ok


def test_match_invalid_or_token_grammars() -> None:
    r = match("root ::= foo", "x")
    assert not r.ok and r.position is None and 'Rule "foo" is not defined' in r.message
    r = match("root ::= Token(5)", "x")
    assert not r.ok and r.position is None and "token ids" in r.message


def test_match_speed_on_a_few_kilobytes() -> None:
    import json
    import time

    g = (
        'root ::= "[" ws (obj ("," ws obj)*)? ws "]"\n'
        'obj ::= "{" ws "\\"name\\"" ws ":" ws str ws "," ws "\\"age\\"" ws ":" ws int ws "}"\n'
        'str ::= "\\"" ([^"\\\\\\x00-\\x1f] | "\\\\" ["\\\\/bfnrt])* "\\""\n'
        'int ::= "-"? ("0" | [1-9] [0-9]*)\n'
        "ws ::= [ \\n]*"
    )
    data = json.dumps([{"name": f"person {i}", "age": i} for i in range(100)], indent=1)
    assert len(data) > 3000
    match(g, "[]")  # compile once
    t = time.perf_counter()
    assert match(g, data).ok
    elapsed = time.perf_counter() - t
    bad = data.replace('"age": 57', '"age": 5x', 1)
    r = match(g, bad)
    assert r.position == bad.index("5x") + 1
    # ~0.5 s on an idle 2-core machine; the bound leaves room for a loaded CI box but still
    # catches a grammar blow-up (minutes).
    assert elapsed < 5.0


def test_match_no_combinatorial_blowup() -> None:
    # Lark would expand these inline into 2^30 / 41^10 alternatives; helper rules avoid it.
    assert match("root ::= " + " ".join('"a"?' for _ in range(30)) + ' "b"', "a" * 20 + "b").ok
    csv = r'root ::= ("," ([^,"]{0,40} | "\"" ([^"] | "\"\""){0,40} "\"")){0,9}'
    assert match(csv, ',x,"y""z"').ok


def test_never_crashes_on_junk() -> None:
    import random

    rng = random.Random(5)
    alphabet = 'root::=|()[]{}*+?"\\#\n\r\t -_.,=^aZ09éΩ😀\x00\ud800'
    junk = ["Regex(" * 3000 + '"a"' + ")" * 3000, "root ::= Regex(" + "(" * 5000 + '"a"']
    junk += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 60))) for _ in range(300)]
    junk += ["root ::= " + "".join(rng.choice(alphabet) for _ in range(30)) for _ in range(300)]
    for g in junk:
        report = check(g)
        assert report.ok or (report.issues and report.issues[0].line >= 1)
        with contextlib.suppress(ValueError):  # the only exception to_gbnf may raise
            to_gbnf(g)
        result = match(g, "abc")
        assert isinstance(result.ok, bool)


def test_match_is_memoised_and_its_result_cannot_be_changed() -> None:
    g, text = 'root ::= [0-9]+ ("," [0-9]+)*', "12,34,"
    first = match(g, text)
    assert match(g, text) is first  # a page rerun does not parse the output again
    assert isinstance(first.expected, tuple)
