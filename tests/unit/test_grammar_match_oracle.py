"""match() against XGrammar's own GrammarMatcher: same verdict and the same break position on
preset examples, schema-derived grammars and a few hundred mutated outputs."""

from __future__ import annotations

import json
import random

import pytest

from tests.unit import xgr_oracle
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
