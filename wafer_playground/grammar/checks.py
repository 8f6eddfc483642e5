"""The checks XGrammar runs after parsing, and the public check() / parse() built on the lexer,
the parser and those checks."""

from __future__ import annotations

import functools
import sys
from collections.abc import Iterator

from .ast import Expr, Grammar, GrammarError, GrammarIssue, GrammarReport, Group, Lit, Macro, Repeat
from .lexer import _MAX_NEST, _Positions, _Tok, _tokenize
from .parser import _Parser
from .regex import regex_problem

# ---------------------------------------------------------------------------------------------
# Post-parse checks XGrammar runs after parsing (normaliser) and when compiling (regex)


def _lookahead_problem(alts: tuple[tuple[Expr, ...], ...]) -> str | None:
    """XGrammar's normaliser accepts a lookahead that flattens to a sequence or a single
    non-empty element; see grammar_functor.cc VisitLookaheadAssertion."""
    while True:
        if len(alts) > 1:
            return "Choices in lookahead assertion are not supported yet"
        seq = alts[0]
        if len(seq) > 1:
            return None
        (only,) = seq
        if isinstance(only, Group):
            alts = only.alts
            continue
        if isinstance(only, Lit) and not only.codepoints:
            return "Empty string should not be in lookahead assertion"
        if isinstance(only, Macro) and only.name == "TagDispatch":
            return "TagDispatch should not be in lookahead assertion"
        if isinstance(only, Macro) and only.name == "Regex":
            return "Regex should not be in lookahead assertion"
        return None


def _walk(alts: tuple[tuple[Expr, ...], ...]) -> Iterator[Expr]:
    for seq in alts:
        for e in seq:
            yield e
            if isinstance(e, Group):
                yield from _walk(e.alts)
            elif isinstance(e, Repeat):
                yield from _walk(((e.expr,),))


def _semantic_checks(g: Grammar) -> None:
    for r in g.rules:
        if r.lookahead is not None:
            msg = _lookahead_problem(r.lookahead)
            if msg:
                raise GrammarError(r.line, r.column, msg)
    for r in g.rules:
        for e in _walk(r.alts):
            if isinstance(e, Macro) and e.name == "Regex":
                pattern = e.args[0].text
                msg = regex_problem(pattern)
                if msg:
                    raise GrammarError(
                        e.line,
                        e.column,
                        f"Failed to build the automaton for rule {r.name} with regex "
                        f"{pattern}: Regex parsing error at {msg}",
                    )


# ---------------------------------------------------------------------------------------------
# Public: check / parse


def _source(ebnf: str) -> str:
    # XGrammar reads a C string: everything after a NUL is invisible to it.
    nul = ebnf.find("\x00")
    return ebnf if nul < 0 else ebnf[:nul]


def _rule_names(toks: list[_Tok]) -> list[str]:
    return [t.value for t in toks if t.type == "RULE"]


@functools.lru_cache(maxsize=256)
def _analyse(ebnf: str) -> tuple[Grammar | None, GrammarReport]:
    src = _source(ebnf)
    toks: list[_Tok] = []
    try:
        try:
            src.encode("utf-8")
        except UnicodeEncodeError as e:
            line, col = _Positions(src).at(e.start)
            raise GrammarError(
                line, col, f"EBNF lexer error at line {line}, column {col}: Invalid UTF8 sequence"
            ) from None
        toks = _tokenize(src)
        parser = _Parser(toks)
        # The recursive descent uses ~5 frames per nested "("; XGrammar allows 1000 levels.
        depth = deepest = 0
        for t in toks:
            depth += t.type in ("LPAR", "LOOK")
            depth -= t.type == "RPAR"
            deepest = max(deepest, depth)
        old_limit = sys.getrecursionlimit()
        needed = min(deepest, _MAX_NEST + 1) * 6 + 300
        if needed > old_limit:
            sys.setrecursionlimit(needed)
        try:
            grammar = parser.parse()
        finally:
            if needed > old_limit:
                sys.setrecursionlimit(old_limit)
        _semantic_checks(grammar)
    except GrammarError as e:
        return None, GrammarReport(False, [e.issue], _rule_names(toks))
    except RecursionError:
        # Only reachable through thousands of nested macro-argument tuples, which XGrammar
        # does not bound either (it would overflow its stack); report it rather than crash.
        msg = "EBNF parser error at line 1, column 1: Nest layer exceeded the maximum limit"
        return None, GrammarReport(False, [GrammarIssue(1, 1, msg)], _rule_names(toks))
    return grammar, GrammarReport(True, [], [r.name for r in grammar.rules])


def check(ebnf: str) -> GrammarReport:
    """Validate an XGrammar-dialect EBNF grammar the way XGrammar 0.2.8 (Wafer) would."""
    report = _analyse(ebnf)[1]
    # The analysis is cached; hand out fresh lists so a caller cannot change the cache.
    return GrammarReport(report.ok, list(report.issues), list(report.rules))


def parse(ebnf: str) -> Grammar:
    """The parsed grammar; raises ValueError with XGrammar's message when check() fails."""
    grammar, report = _analyse(ebnf)
    if grammar is None:
        raise ValueError(report.issues[0].message)
    return grammar
