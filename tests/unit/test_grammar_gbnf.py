"""to_gbnf() output obeys llama.cpp's GBNF parser (src/llama-grammar.cpp, b11434), checked by a
Lark grammar written from that parser's rules, over every grammar check() accepts in the
corpus, the presets, schema-derived grammars and the fuzzed oracle set.

The live check (llama-server accepting these strings) runs in tests/engine/test_grammar_corpus.py.
"""

from __future__ import annotations

import re

import pytest
from lark import Lark, Token

from tests.unit.grammar_corpus import ALL_CASES
from tests.unit.test_grammar_oracle import fuzz_cases
from tests.unit.test_grammar_presets import SCHEMAS
from wafer_playground.grammar import check, to_gbnf
from wafer_playground.grammar_presets import PRESETS, json_schema_to_ebnf

# parse_char accepts exactly these escapes; parse_name takes [a-zA-Z0-9-]; a top-level rule
# ends at a newline (newlines are only allowed inside parentheses, which to_gbnf never uses).
_ESC = r"\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8}|\\[trn\\\"\[\]\-]"
GBNF = Lark(
    rf"""
start: rule (_NL rule)* _NL?
rule: NAME "::=" alts
alts: seq ("|" seq)*
seq: item*
item: atom QUANT?
atom: NAME | STRING | CLASS | ANY | "(" alts ")"
ANY: "."
QUANT: "*" | "+" | "?" | /\{{[0-9]+(,[0-9]*)?\}}/
NAME: /[a-zA-Z0-9-]+/
STRING: /"(?:{_ESC}|[^"\\\n\r])*"/
CLASS: /\[\^?(?:{_ESC}|[^\]\\\n\r])*\]/
_NL: /\n/
%ignore /[ \t]+/
""",
    parser="lalr",
)


def gbnf_problems(text: str) -> list[str]:
    tree = GBNF.parse(text)  # raises on a syntax error
    defined = [str(r.children[0]) for r in tree.find_data("rule")]
    problems = []
    if "root" not in defined:
        problems.append("no root rule")
    if len(set(defined)) != len(defined):
        problems.append("a rule defined twice")
    for atom in tree.find_data("atom"):
        tok = atom.children[0]
        if isinstance(tok, Token) and tok.type == "NAME" and str(tok) not in defined:
            problems.append(f"undefined rule {tok}")
        if isinstance(tok, Token) and tok.type == "CLASS" and str(tok) in ("[]", "[^]"):
            problems.append(f"{tok} means the empty string to llama.cpp")
    for item in tree.find_data("item"):
        atom, *quant = item.children
        tok = atom.children[0]
        if quant and isinstance(tok, Token) and str(tok) == '""':
            problems.append('quantifier on "" (llama.cpp: expecting preceding item)')
        if quant:
            for n in re.findall(r"[0-9]+", str(quant[0])):
                if int(n) > 2000:
                    problems.append(f"repetition {n} above 2000")
    return problems


def accepted_grammars() -> list[str]:
    pool = [c.ebnf for c in ALL_CASES] + [p.ebnf for p in PRESETS]
    pool += [json_schema_to_ebnf(s[0]) for s in SCHEMAS] + fuzz_cases()
    return list(dict.fromkeys(g for g in pool if check(g).ok))


def test_every_translation_is_valid_gbnf(capsys: pytest.CaptureFixture[str]) -> None:
    translated = refused = 0
    for g in accepted_grammars():
        try:
            out = to_gbnf(g)
        except ValueError as e:
            refused += 1
            assert str(e), g  # a reason is always given
            continue
        translated += 1
        assert gbnf_problems(out) == [], (g, out)
    with capsys.disabled():
        print(f"\n[gbnf] {translated} translations valid, {refused} refused with a reason")
    assert translated > 100


@pytest.mark.parametrize(
    "bad",
    ['root ::= my_rule\nmy_rule ::= "a"', 'root ::= "a"\n  | "b"', 'root ::= "\\q"',
     "root ::= [^]", 'root ::= ""*', "root ::= x", 'x ::= "a"', 'root ::= "a"{2001}'],
)  # fmt: skip
def test_validator_rejects_what_llama_cpp_rejects(bad: str) -> None:
    # The validator itself must be able to fail (raw XGrammar-only syntax is not GBNF).
    try:
        problems = gbnf_problems(bad)
    except Exception:
        return
    assert problems
