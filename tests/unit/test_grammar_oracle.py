"""check() against the real XGrammar 0.2.8 (what Wafer/SGLang run on `ebnf`).

The oracle compiles each grammar with GrammarCompiler.compile_grammar, as SGLang does, on a
small byte-level vocabulary. Decisions (accept/reject) must agree on every case; the message
agreement figure (same "EBNF ... error at line L, column C: ..." text) is printed.
"""

from __future__ import annotations

import random

import pytest

from tests.unit import xgr_oracle
from tests.unit.grammar_corpus import ALL_CASES
from wafer_playground.grammar import check
from wafer_playground.grammar_presets import PRESETS

try:
    xgr_oracle.load()
except Exception as exc:  # pragma: no cover - depends on the environment
    pytest.skip(
        f"xgrammar 0.2.8 oracle not importable ({type(exc).__name__}: {exc}); "
        "install the dev group: uv sync --group dev",
        allow_module_level=True,
    )

SEEDS = (
    [c.ebnf for c in ALL_CASES if c.xgrammar_ok]
    + [p.ebnf for p in PRESETS]
    + [
        'root ::= "{" ws "\\"answer\\"" ws ":" ws ("\\"yes\\"" | "\\"no\\"") ws "}"\nws ::= [ ]?',
        'root ::= date\ndate ::= [0-9]{4} "-" [0-9]{2} "-" [0-9]{2}',
        'root ::= "[" (int ("," int)*)? "]"\nint ::= "-"? [0-9]+',
        "root ::= select_stmt\n"
        'select_stmt ::= "SELECT " cols " FROM " name (" WHERE " name " = " val)?\n'
        'cols ::= name (", " name)*\nname ::= [a-z_]+\nval ::= [0-9]+ | "\'" [^\'\\n]* "\'"',
        'root ::= Regex("[a-z]+(\\\\.[a-z]+)*") " " [0-9]{1,3}',
        'root ::= x (="b")\nx ::= "a"+',
        'root ::= TagDispatch(("<t>", body), loop_after_dispatch=false)\nbody ::= "x" "</t>"',
    ]
)

# Characters that matter to the lexer/parser, plus arbitrary ones.
NOISE = list("\"|()[]*+?{},\\:=#\n \t\r^-._aZ09é'<>;.!/") + ["::=", "\\x", "\\u", "(=", "\\d"]


def _mutate(rng: random.Random, text: str) -> str:
    kind = rng.randrange(7)
    i = rng.randrange(len(text) + 1)
    if kind == 0 and text:  # delete a char (dropped quotes, brackets, ...)
        i = min(i, len(text) - 1)
        return text[:i] + text[i + 1 :]
    if kind == 1:  # insert a structural char
        return text[:i] + rng.choice(NOISE) + text[i:]
    if kind == 2 and text:  # replace a char
        i = min(i, len(text) - 1)
        return text[:i] + rng.choice(NOISE) + text[i + 1 :]
    if kind == 3:  # random bytes (decoded leniently, as a client would send them)
        junk = bytes(rng.randrange(1, 256) for _ in range(rng.randrange(1, 4)))
        return text[:i] + junk.decode("latin-1") + text[i:]
    if kind == 4 and len(text) > 2:  # duplicate a span
        j = rng.randrange(i, len(text) + 1) if i < len(text) else i
        return text[:j] + text[i:j] + text[j:]
    if kind == 5:  # drop every occurrence of one delimiter
        return text.replace(rng.choice(['"', "(", ")", "[", "]", "|", "\n"]), "", 1)
    # swap two adjacent chars
    if len(text) > 1:
        i = min(i, len(text) - 2)
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    return text


def fuzz_cases(n: int = 600, seed: int = 20261126) -> list[str]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        g = rng.choice(SEEDS)
        for _ in range(rng.choice([1, 1, 1, 2, 3])):
            g = _mutate(rng, g)
        out.append(g)
    return out


def _compare(grammars: list[str]) -> tuple[list[str], int, int]:
    decision_mismatches = []
    same_message = rejected = 0
    for g in grammars:
        expected = xgr_oracle.verdict(g)
        report = check(g)
        if (expected is None) != report.ok:
            decision_mismatches.append(f"{g!r}: xgrammar={expected!r} check={report.issues[:1]!r}")
            continue
        if expected is not None:
            rejected += 1
            same_message += xgr_oracle.comparable(
                report.issues[0].message
            ) == xgr_oracle.comparable(expected)
    return decision_mismatches, same_message, rejected


def test_dialect_corpus_agrees_with_xgrammar() -> None:
    bad, same, rejected = _compare([c.ebnf for c in ALL_CASES])
    assert bad == []
    assert same == rejected  # every message in the corpus is word-for-word XGrammar's


@pytest.mark.parametrize("ebnf", [p.ebnf for p in PRESETS], ids=[p.name for p in PRESETS])
def test_presets_compile_in_xgrammar(ebnf: str) -> None:
    assert xgr_oracle.verdict(ebnf) is None
    assert check(ebnf).ok


def test_fuzzed_grammars_agree_with_xgrammar(capsys: pytest.CaptureFixture[str]) -> None:
    cases = fuzz_cases()
    bad, same, rejected = _compare(cases)
    accepted = len(cases) - rejected - len(bad)
    with capsys.disabled():
        print(
            f"\n[grammar oracle] {len(cases)} fuzzed grammars: decisions agree on "
            f"{len(cases) - len(bad)}/{len(cases)} ({accepted} accepted, {rejected} rejected); "
            f"identical error text on {same}/{rejected} rejections"
        )
    assert bad == [], "\n".join(bad[:20])
    # Messages (incl. line/column) should match nearly always; regex errors differ in wording.
    assert same >= 0.95 * rejected


@pytest.mark.parametrize(
    "pattern",
    [
        "[a-z]+", "\\d{3}-\\d{4}", "a|b", "(ab)*", "(?:ab)+", "(?P<n>a)", "(?<n>a)", "a(?=b)",
        "(?<=a)b", "\\bfoo\\b", "(a)\\1", "^abc$", "a.b", "[^a]", "\\w+\\s\\S\\W\\D", "a{2,}",
        "a{,3}", "a*?", "a++", "(?i)abc", "\\p{L}", "\\u00e9", "[\\d\\s]", "a{3,2}", "*a", "a)",
        "(a", "\\", "[]", "[^]", "a{2}{3}", "(?#c)a", "\\Z", "a|", "()", "[[:alpha:]]", "\\cA",
        "\\k<n>", "\\e", "[\\b]", "\\B", "(?s).", "a^b", "[a-]", "[z-a]", "x{1000}",
    ],
)  # fmt: skip
def test_regex_macro_decisions(pattern: str) -> None:
    g = 'root ::= Regex("' + pattern.replace("\\", "\\\\").replace('"', '\\"') + '")'
    expected = xgr_oracle.verdict(g)
    assert check(g).ok is (expected is None), expected
