"""The grammar's data: the public result types (GrammarIssue, GrammarReport, MatchResult),
the AST the parser builds, and GrammarError."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

# ---------------------------------------------------------------------------------------------
# Public result types (contract in docs/ARCHITECTURE.md)


@dataclass(frozen=True)
class GrammarIssue:
    """One problem. ``message`` is the full XGrammar-style text, e.g.
    ``EBNF parser error at line 1, column 15: Expect element, but got ``."""

    line: int
    column: int
    message: str

    @property
    def detail(self) -> str:
        """The message without the "EBNF ... error at line L, column C: " prefix."""
        m = _PREFIX_RE.match(self.message)
        return self.message[m.end() :] if m else self.message


@dataclass(frozen=True)
class GrammarReport:
    ok: bool
    issues: list[GrammarIssue]
    rules: list[str]


@dataclass(frozen=True)
class MatchResult:
    ok: bool
    position: int | None  # character offset in the text where the match breaks (None when ok)
    # what would have been accepted at ``position`` (human-readable); a tuple: results are
    # memoised and shared
    expected: tuple[str, ...]
    message: str


_PREFIX_RE = re.compile(r"EBNF (?:lexer|parser) error at line \d+, column \d+: ")

# ---------------------------------------------------------------------------------------------
# AST

Expr = Any  # Lit | CharClass | Ref | Group | Repeat | Macro


@dataclass(frozen=True)
class Lit:
    codepoints: tuple[int, ...]  # () is the empty string; ints because XGrammar allows > U+10FFFF


@dataclass(frozen=True)
class CharClass:
    ranges: tuple[tuple[int, int], ...]
    negated: bool


@dataclass(frozen=True)
class Ref:
    name: str


@dataclass(frozen=True)
class Group:
    alts: tuple[tuple[Expr, ...], ...]


@dataclass(frozen=True)
class Repeat:
    expr: Expr
    lo: int
    hi: int | None  # None = unbounded
    op: str  # "*", "+", "?" or "{}" -- kept so translations can use the short forms


@dataclass(frozen=True)
class Macro:
    name: str  # Regex, Token, ExcludeToken, TagDispatch, TokenTagDispatch
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    line: int
    column: int


@dataclass(frozen=True)
class Rule:
    name: str
    alts: tuple[tuple[Expr, ...], ...]
    lookahead: tuple[tuple[Expr, ...], ...] | None
    max_tokens: int | None
    capture: str | None
    line: int
    column: int


@dataclass(frozen=True)
class Grammar:
    rules: tuple[Rule, ...]

    def rule(self, name: str) -> Rule:
        for r in self.rules:
            if r.name == name:
                return r
        raise KeyError(name)


class GrammarError(ValueError):
    """Raised internally for the first XGrammar-style error; carries position and text."""

    def __init__(self, line: int, column: int, message: str) -> None:
        super().__init__(message)
        self.issue = GrammarIssue(line, column, message)
