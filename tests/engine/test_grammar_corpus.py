"""Grammar corpus through /v1/completions: the dialect table, more dialect cases, and seeded
garbage. Every verdict must agree with our XGrammar-dialect checker, an invalid grammar must
never reach llama-server (400 naming line and column), accepted grammars must constrain the
output, and llama-server must still be alive afterwards."""

from __future__ import annotations

import os
import random

import httpx
import pytest

from tests.engine.conftest import SMOL, assert_error
from tests.unit.grammar_corpus import ALL_CASES, GBNF_UNTRANSLATABLE, DialectCase
from wafer_playground import grammar

pytestmark = pytest.mark.engine

REJECT_CODES = {"invalid_grammar", "unsupported_grammar", "grammar_too_large"}


def _send(api: httpx.Client, ebnf: str) -> httpx.Response:
    return api.post("/completions", json={"model": SMOL, "prompt": [504, 3575, 282],
                                          "max_tokens": 6, "temperature": 0, "ebnf": ebnf})


def _check_answer(api: httpx.Client, ebnf: str, r: httpx.Response) -> None:
    report = grammar.check(ebnf)
    if not report.ok:
        err = assert_error(r, 400, "invalid_grammar", param="ebnf")
        issue = report.issues[0]
        assert f"line {issue.line}, column {issue.column}" in err["message"], err
        return
    if r.status_code == 400:
        # valid Wafer EBNF that llama.cpp GBNF cannot express: explicit, never a silent pass
        err = assert_error(r, 400, r.json()["error"]["code"], param="ebnf")
        assert err["code"] in REJECT_CODES - {"invalid_grammar"}, err
        return
    assert r.status_code == 200, r.text
    ch = r.json()["choices"][0]
    if ch["finish_reason"] == "stop":  # complete output: it must match the grammar exactly
        assert grammar.match(ebnf, ch["text"]).ok, (ebnf, ch["text"])


@pytest.mark.parametrize("case", ALL_CASES, ids=lambda c: c.name)
def test_dialect_case(api: httpx.Client, case: DialectCase) -> None:
    r = _send(api, case.ebnf)
    if not case.xgrammar_ok:
        err = assert_error(r, 400, "invalid_grammar", param="ebnf")
        assert "line" in err["message"] and "column" in err["message"]
        if case.error:
            assert case.error in err["message"]
    elif case.name in GBNF_UNTRANSLATABLE:
        assert_error(r, 400, "unsupported_grammar", param="ebnf")
    else:
        assert r.status_code == 200, (case.name, r.text)
    _check_answer(api, case.ebnf, r)


ALPHABET = list('root::=|"()[]*+?{},-_^\\\nABab09 #.<>;\'') + ["::=", "root ::= ", '"A"']


def _garbage(rng: random.Random) -> str:
    return "".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 40)))


def _mutate(rng: random.Random, src: str) -> str:
    chars = list(src)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        pos = rng.randrange(len(chars) + 1)
        if op < 0.4 and chars:
            del chars[min(pos, len(chars) - 1)]
        elif op < 0.8:
            chars.insert(pos, rng.choice(ALPHABET))
        elif chars:
            chars[min(pos, len(chars) - 1)] = rng.choice(ALPHABET)
    return "".join(chars)


def test_fuzzed_grammars_then_engine_alive(api: httpx.Client) -> None:
    rng = random.Random(20261126)
    valid = [c.ebnf for c in ALL_CASES if c.xgrammar_ok]
    corpus = [_garbage(rng) for _ in range(60)] + [_mutate(rng, rng.choice(valid))
                                                   for _ in range(60)]
    corpus += ["", " ", "root ::=", "root ::= root", 'root ::= "a"{0,100000}', "\x00",
               'root ::= "\\x00"', "root ::= [", 'root ::= "A"' * 200]
    for ebnf in corpus:
        r = _send(api, ebnf)
        assert r.status_code in (200, 400), (ebnf, r.status_code, r.text)
        _check_answer(api, ebnf, r)
    # llama-server survived all of it: its processes are alive and it still generates
    root = str(api.base_url).rstrip("/").removesuffix("/v1")
    for info in httpx.get(root + "/health", timeout=10).json()["models"].values():
        os.kill(int(info["pid"]), 0)
    r = _send(api, 'root ::= "A" | "B"')
    assert r.status_code == 200 and r.json()["choices"][0]["text"] in ("A", "B")
