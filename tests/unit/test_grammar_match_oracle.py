"""match() against XGrammar's own GrammarMatcher: same verdict and the same break position on
preset examples, schema-derived grammars and a few hundred mutated outputs."""

from __future__ import annotations

import json
import random

import pytest

from tests.unit import xgr_oracle
from wafer_playground import grammar as grammar_mod
from wafer_playground.grammar import match
from wafer_playground.grammar_presets import PRESETS, json_schema_to_ebnf

try:
    xgr_oracle.load()
except Exception as exc:  # pragma: no cover - depends on the environment
    pytest.skip(f"xgrammar 0.2.8 oracle not importable: {exc}", allow_module_level=True)

EXTRA = [
    ('root ::= [0-9]+ ("," [0-9]+)*', "12,345,6"),
    ('root ::= line ("\\n" line){0,3}\nline ::= [a-z ]{1,10}', "ab c\nde\nf"),
    ('root ::= Regex("[a-z]+@[a-z]+\\\\.(com|org)")', "bob@example.org"),
    ('root ::= "é" [α-ω]+ [^a-z]', "éαβ!"),
    ('root ::= ("" | "x") "y"?', "xy"),
    ('root ::= item+\nitem ::= "<" [a-z]* ">"', "<a><bc><>"),
    # XGrammar's matcher does not enforce lookahead assertions; match() agrees ("ac" passes).
    ('root ::= x "b" | x "c"\nx ::= "a" (="b")', "ac"),
    (
        json_schema_to_ebnf(
            {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "n": {"type": "number"},
                        "s": {"type": "string", "maxLength": 5},
                    },
                    "required": ["n"],
                },
                "maxItems": 3,
            }  # fmt: skip
        ),
        json.dumps([{"n": 1.5}, {"n": -2, "s": "ab\\"}, {"n": 0e1, "s": ""}]),
    ),
]
CASES = [(p.ebnf, p.example) for p in PRESETS] + EXTRA
NOISE = list('",[]{}: 0123456789-aAé\n\\.') + ["\x00", "😀"]


def mutated_texts(n_per_case: int = 40, seed: int = 7) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for ebnf, example in CASES:
        out.append((ebnf, example))
        for _ in range(n_per_case):
            t = example
            i = rng.randrange(len(t) + 1)
            kind = rng.randrange(4)
            if kind == 0 and t:
                t = t[: min(i, len(t) - 1)] + t[min(i, len(t) - 1) + 1 :]
            elif kind == 1:
                t = t[:i] + rng.choice(NOISE) + t[i:]
            elif kind == 2 and t:
                j = min(i, len(t) - 1)
                t = t[:j] + rng.choice(NOISE) + t[j + 1 :]
            else:
                t = t[:i]  # truncated output (max_tokens reached)
            out.append((ebnf, t))
    return out


def test_examples_accepted_by_xgrammar() -> None:
    for ebnf, example in CASES:
        assert xgr_oracle.break_position(ebnf, example) is None, example


def test_match_positions_agree_with_xgrammar_matcher(capsys: pytest.CaptureFixture[str]) -> None:
    cases = mutated_texts()
    disagreements = []
    for ebnf, text in cases:
        want = xgr_oracle.break_position(ebnf, text)
        got = match(ebnf, text)
        if got.position != want or got.ok is not (want is None):
            disagreements.append(
                f"{text!r}: xgrammar={want} match()={got.position} ({got.message})"
            )
    with capsys.disabled():
        print(
            f"\n[match oracle] {len(cases)} outputs over {len(CASES)} grammars: verdict and break "
            f"position agree on {len(cases) - len(disagreements)}/{len(cases)}"
        )
    assert disagreements == [], "\n".join(disagreements[:15])


def _sample(g: grammar_mod.Grammar, rng: random.Random) -> str | None:
    """A random string of the grammar's language (None when sampling runs too deep)."""
    budget = [400]

    def alts(options: tuple[tuple[object, ...], ...], depth: int) -> str:
        # deeper down, prefer the shortest alternative so recursion ends
        seq = rng.choice(options) if depth < 12 else min(options, key=len)
        return "".join(expr(e, depth) for e in seq)

    def expr(e: object, depth: int) -> str:
        budget[0] -= 1
        if budget[0] < 0 or depth > 40:
            raise RecursionError
        if isinstance(e, grammar_mod.Lit):
            return "".join(chr(c) for c in e.codepoints)
        if isinstance(e, grammar_mod.CharClass):
            if e.negated:
                banned = e.ranges
                for _ in range(50):
                    c = rng.choice([rng.randrange(32, 127), rng.randrange(0x80, 0x800)])
                    if not any(lo <= c <= hi for lo, hi in banned):
                        return chr(c)
                raise RecursionError
            if not e.ranges:
                raise RecursionError  # [] matches nothing
            lo, hi = rng.choice(e.ranges)
            return chr(rng.randint(lo, min(hi, lo + 300)))
        if isinstance(e, grammar_mod.Ref):
            return alts(g.rule(e.name).alts, depth + 1)
        if isinstance(e, grammar_mod.Group):
            return alts(e.alts, depth + 1)
        if isinstance(e, grammar_mod.Repeat):
            top = e.lo + 3 if e.hi is None else min(e.hi, e.lo + 3)
            return "".join(expr(e.expr, depth + 1) for _ in range(rng.randint(e.lo, top)))
        if isinstance(e, grammar_mod.Macro) and e.name == "Regex":
            return expr(grammar_mod.regex_ast(e), depth)
        raise RecursionError  # token-level macros have no text form

    try:
        return alts(g.rule("root").alts, 0)
    except (RecursionError, ValueError):
        return None


def test_match_agrees_on_strings_sampled_from_arbitrary_grammars(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tests.unit.grammar_corpus import ALL_CASES
    from tests.unit.test_grammar_oracle import fuzz_cases

    rng = random.Random(11)
    pool = [c.ebnf for c in ALL_CASES] + fuzz_cases()
    grammars = [g for g in dict.fromkeys(pool) if grammar_mod.check(g).ok]
    compared = 0
    disagreements = []
    for ebnf in grammars:
        parsed = grammar_mod.parse(ebnf)
        for _ in range(4):
            text = _sample(parsed, rng)
            if text is None or any(ord(c) > 0x10FFFF or 0xD800 <= ord(c) <= 0xDFFF for c in text):
                continue
            for variant in (text, text[:-1], text + "x", text[: len(text) // 2] + "\x01"):
                want = xgr_oracle.break_position(ebnf, variant)
                got = grammar_mod.match(ebnf, variant)
                compared += 1
                if got.position != want:
                    disagreements.append(f"{ebnf!r} {variant!r}: xgrammar={want} match()={got}")
    with capsys.disabled():
        print(
            f"\n[match oracle] {compared} sampled outputs over {len(grammars)} grammars: "
            f"{compared - len(disagreements)} agree"
        )
    assert compared > 300
    assert disagreements == [], "\n".join(disagreements[:10])
