"""XGrammar-dialect EBNF: checker, llama.cpp GBNF translation, and output matcher.

Wafer (SGLang + XGrammar 0.2.8) accepts an ``ebnf`` string on completions. This module answers
three questions about such a string without XGrammar installed:

* :func:`check` -- would XGrammar 0.2.8 accept it? Same accept/reject decisions, and for a
  rejection the same line, column and wording as XGrammar's "EBNF lexer/parser error at line L,
  column C: ..." messages. The decisions are checked against the real XGrammar in
  ``tests/unit/test_grammar_oracle.py``.
* :func:`to_gbnf` -- the same language in llama.cpp's GBNF (what the local engine hands to
  llama-server), or a ``ValueError`` saying why it cannot be translated.
* :func:`match` -- does a model output match the grammar from ``root``, and if not, where does it
  break and what was expected there. Built on a Lark Earley parser compiled from the grammar.

Tokens come from a Lark lexer. The parser on top is a small recursive descent that follows
XGrammar's own control flow, because XGrammar's error positions and messages are a product of
that control flow (e.g. "Expect element, but got *" for ``"a"**``); an LALR table would report
the same inputs at the same tokens but could not say the same words.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

__all__ = [
    "GrammarIssue",
    "match",
    "GrammarReport",
    "MatchResult",
    "check",
    "parse",
    "to_gbnf",
]

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


# ---------------------------------------------------------------------------------------------
# Lexer (Lark). Terminals are deliberately tolerant (an unterminated string is still one
# STRING token) so that the exact XGrammar error can be produced by validating token contents.

_NAME = r"[A-Za-z_.\-][A-Za-z0-9_.\-]*"
_SP = r"[ \t]*"
# `name[max_tokens=N, capture="x"] ::=`: XGrammar treats the bracket as attributes only when
# it is well-formed (each attribute at most once) and followed by ::=; otherwise `[` starts a
# character class. A regex with a lookahead reproduces exactly that.
_MAXTOK = r"max_tokens" + _SP + r"=" + _SP + r"[0-9]{1,10}(?![0-9])"
_CAPTURE = r"capture(?:" + _SP + r"=" + _SP + r'"[^"\\\r\n\x00]*")?'
_ATTRS = (
    r"\[" + _SP + r"(?:" + _MAXTOK + r"(?:" + _SP + "," + _SP + _CAPTURE + r")?"
    r"|" + _CAPTURE + r"(?:" + _SP + "," + _SP + _MAXTOK + r")?)" + _SP + r"\]"
)

_LEXER_GRAMMAR = rf"""
start: _tok*
_tok: NAME_ATTRS | NAME | INT | STRING | CLASS | ASSIGN | LOOK | LPAR | RPAR | LBRACE | RBRACE
    | PIPE | COMMA | STAR | PLUS | QMARK | EQUAL

NAME_ATTRS.3: /(?!(?:true|false)\[){_NAME}{_ATTRS}(?={_SP}::=)/
NAME.2: /{_NAME}/
INT: /[0-9]+/
STRING: /"(?:\\[^\r\n]?|[^"\\\r\n])*"?/
CLASS: /\[\^?(?:\\[^\r\n]?|[^\]\\\r\n])*\]?/
ASSIGN: "::="
LOOK: "(="
LPAR: "("
RPAR: ")"
LBRACE: "{{"
RBRACE: "}}"
PIPE: "|"
COMMA: ","
STAR: "*"
PLUS: "+"
QMARK: "?"
EQUAL: "="
COMMENT: /#[^\r\n]*/
WS: /[ \t\r\n]+/
%ignore COMMENT
%ignore WS
"""


@functools.cache
def _lexer() -> Lark:
    return Lark(_LEXER_GRAMMAR, parser="lalr", lexer="basic")


_MACROS = frozenset({"TagDispatch", "Token", "ExcludeToken", "TokenTagDispatch", "Regex"})
_MAX_INT = 10**15
_MAX_NEST = 1000


@dataclass
class _Tok:
    type: str  # NAME RULE BOOL INT STRING LBRACKET CARET CH DASH ESC RBRACKET ... EOF
    lexeme: str
    value: Any
    line: int
    column: int
    max_tokens: int | None = None
    capture: str | None = None


class _Positions:
    """Map a character offset to XGrammar's (line, column): lines break at \\n, \\r\\n or a lone
    \\r, and columns count UTF-8 bytes (XGrammar walks a char*)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.starts = [0]
        for m in re.finditer(r"\r\n|\r|\n", text):
            self.starts.append(m.end())

    def at(self, offset: int) -> tuple[int, int]:
        i = bisect.bisect_right(self.starts, offset) - 1
        start = self.starts[i]
        return i + 1, len(self.text[start:offset].encode("utf-8", "surrogatepass")) + 1


_SIMPLE_ESCAPES = {
    "'": 0x27,
    '"': 0x22,
    "?": 0x3F,
    "\\": 0x5C,
    "a": 0x07,
    "b": 0x08,
    "f": 0x0C,
    "n": 0x0A,
    "r": 0x0D,
    "t": 0x09,
    "v": 0x0B,
    "0": 0x00,
    "e": 0x1B,
    "/": 0x2F,
}  # fmt: skip  (0.2.8 also takes \/ in strings; measured against the oracle)
_CLASS_ESCAPES = {c: ord(c) for c in "^$\\.*+?()[]{}|/-"}
_CLASS_SPECIAL = frozenset("dDsSwW")
_HEX = "0123456789abcdefABCDEF"


def _escape(text: str, i: int, in_class: bool) -> tuple[int, int] | None:
    """Decode the escape at text[i] == '\\' like XGrammar's ParseNextUTF8OrEscaped.
    Returns (codepoint, length) or None for an invalid escape."""
    nxt = text[i + 1] if i + 1 < len(text) else ""
    if in_class and nxt in _CLASS_ESCAPES:
        return _CLASS_ESCAPES[nxt], 2
    if nxt in _SIMPLE_ESCAPES and nxt:
        return _SIMPLE_ESCAPES[nxt], 2
    if nxt == "x":
        j = i + 2
        cp = 0
        while j < len(text) and text[j] in _HEX:
            # XGrammar accumulates into an int32 without a length limit; keep its wrap-around.
            cp = (cp * 16 + int(text[j], 16)) & 0xFFFFFFFF
            j += 1
        if j == i + 2:
            return None
        return cp, j - i
    if nxt in ("u", "U"):
        n = 4 if nxt == "u" else 8
        digits = text[i + 2 : i + 2 + n]
        if len(digits) != n or any(c not in _HEX for c in digits):
            return None
        return int(digits, 16), n + 2
    return None


def _tokenize(src: str) -> list[_Tok]:
    pos = _Positions(src)
    out: list[_Tok] = []

    def err(offset: int, msg: str) -> GrammarError:
        line, col = pos.at(offset)
        return GrammarError(line, col, f"EBNF lexer error at line {line}, column {col}: {msg}")

    def add(type_: str, lexeme: str, value: Any, offset: int) -> _Tok:
        line, col = pos.at(offset)
        tok = _Tok(type_, lexeme, value, line, col)
        out.append(tok)
        return tok

    try:
        stream: Iterator[Token] = _lexer().lex(src)
        for t in stream:
            start = t.start_pos
            assert start is not None
            text = str(t)
            kind = t.type
            if kind in ("NAME", "NAME_ATTRS"):
                name = re.match(_NAME, text)
                assert name is not None
                ident = name.group(0)
                if ident in ("true", "false"):
                    add("BOOL", ident, ident == "true", start)
                    continue
                tok = add("NAME", ident, ident, start)
                if kind == "NAME_ATTRS":
                    mt = re.search(r"max_tokens[ \t]*=[ \t]*([0-9]+)", text)
                    cap = re.search(r'capture(?:[ \t]*=[ \t]*"([^"]*)")?', text)
                    tok.max_tokens = int(mt.group(1)) if mt else None
                    if cap:
                        tok.capture = cap.group(1) if cap.group(1) is not None else ident
                        if tok.capture == "":
                            raise err(start, "The capture name must not be empty")
            elif kind == "INT":
                num = 0
                for k, ch in enumerate(text):
                    num = num * 10 + int(ch)
                    if num > _MAX_INT:
                        raise err(
                            start + k + 1,
                            f"Integer is too large: parsed {num}, max allowed is {_MAX_INT}",
                        )
                add("INT", text, num, start)
            elif kind == "STRING":
                cps: list[int] = []
                i = 1
                while i < len(text) and text[i] != '"':
                    if text[i] == "\\":
                        esc = _escape(text, i, in_class=False)
                        if esc is None:
                            raise err(start + i, "Invalid escape sequence")
                        cps.append(esc[0])
                        i += esc[1]
                    else:
                        cps.append(ord(text[i]))
                        i += 1
                if i >= len(text):
                    raise err(start + len(text), 'Expect " in string literal')
                add("STRING", text, tuple(cps), start)
            elif kind == "CLASS":
                _lex_class(src, text, start, add, err)
            else:
                add(kind, text, None, start)
    except UnexpectedCharacters as e:
        # lark declares pos_in_stream None on UnexpectedInput; UnexpectedCharacters always
        # sets it to the lexer's int position.
        bad = cast(int, e.pos_in_stream)
        ch = src[bad]
        if ch == ":":
            raise err(bad, "Unexpected character: ':'") from None
        raise err(bad, f"Unexpected character: {ch}") from None

    add("EOF", "", None, len(src))
    # XGrammar: after lexing, an identifier followed by ::= becomes a rule name, which must
    # start its line (the previous token must be on an earlier line).
    for i, tok in enumerate(out):
        if tok.type != "ASSIGN":
            continue
        if i == 0:
            raise GrammarError(
                tok.line, tok.column, _lex_msg(tok, "Assign should not be the first token")
            )
        prev = out[i - 1]
        if prev.type != "NAME":
            raise GrammarError(
                prev.line, prev.column, _lex_msg(prev, "Assign should be preceded by an identifier")
            )
        if i >= 2 and out[i - 2].line == prev.line:
            raise GrammarError(
                prev.line,
                prev.column,
                _lex_msg(prev, "The rule name should be at the beginning of the line"),
            )
        prev.type = "RULE"
    return out


def _lex_msg(tok: _Tok, msg: str) -> str:
    return f"EBNF lexer error at line {tok.line}, column {tok.column}: {msg}"


def _lex_class(src: str, text: str, start: int, add: Any, err: Any) -> None:
    """Split a CLASS token into XGrammar's char-class tokens ([, ^, chars, -, escapes, ])."""
    add("LBRACKET", "[", None, start)
    i = 1
    if i < len(text) and text[i] == "^":
        add("CARET", "^", None, start + i)
        i += 1
    while i < len(text) and text[i] != "]":
        ch = text[i]
        if ch == "-":
            add("DASH", "-", None, start + i)
            i += 1
        elif ch == "\\" and i + 1 < len(text) and text[i + 1] in _CLASS_SPECIAL:
            add("ESC", text[i : i + 2], text[i + 1], start + i)
            i += 2
        elif ch == "\\":
            esc = _escape(text, i, in_class=True)
            if esc is None:
                raise err(start + i, "Invalid escape sequence" + src[start + i : start + i + 2])
            add("CH", text[i : i + esc[1]], esc[0], start + i)
            i += esc[1]
        else:
            add("CH", ch, ord(ch), start + i)
            i += 1
    if i >= len(text):
        # The CLASS terminal stops only before a line break or at the end of the input.
        end = start + len(text)
        if end < len(src):
            raise err(end, "Character class should not contain newline")
        raise err(end, "Unterminated character class")
    add("RBRACKET", "]", None, start + i)


# ---------------------------------------------------------------------------------------------
# Parser (mirrors xgrammar/cpp/grammar_parser.cc EBNFParser, version 0.2.8)


class _Parser:
    def __init__(self, toks: list[_Tok]) -> None:
        self.toks = toks
        self.i = 0
        self.names: list[str] = []
        self.nest = 0
        self.cur_rule = ""

    # helpers
    def peek(self, delta: int = 0) -> _Tok:
        return self.toks[min(self.i + delta, len(self.toks) - 1)]

    def fail(self, msg: str, delta: int = 0) -> GrammarError:
        t = self.toks[self.i + delta]
        return GrammarError(
            t.line, t.column, f"EBNF parser error at line {t.line}, column {t.column}: {msg}"
        )

    def expect(self, type_: str, msg: str) -> _Tok:
        t = self.peek()
        if t.type != type_:
            raise self.fail(msg)
        self.i += 1
        return t

    # grammar
    def parse(self) -> Grammar:
        # XGrammar collects every rule name before parsing any body (forward references).
        seen: set[str] = set()
        for t in self.toks:
            if t.type == "RULE":
                if t.value in seen:
                    raise GrammarError(
                        t.line,
                        t.column,
                        f"EBNF parser error at line {t.line}, column {t.column}: "
                        f'Rule "{t.value}" is defined multiple times',
                    )
                seen.add(t.value)
                self.names.append(t.value)
        if "root" not in seen:
            raise self.fail('The root rule with name "root" is not found')
        rules = []
        while self.peek().type != "EOF":
            rules.append(self.rule())
        return Grammar(tuple(rules))

    def rule(self) -> Rule:
        t = self.peek()
        if t.type != "RULE":
            raise self.fail("Expect rule name")
        self.cur_rule = t.value
        self.i += 1
        self.expect("ASSIGN", "Expect ::=")
        alts = self.choices()
        look = None
        if self.peek().type == "LOOK":
            self.i += 1
            look = self.choices()
            self.expect("RPAR", "Expect )")
        return Rule(t.value, alts, look, t.max_tokens, t.capture, t.line, t.column)

    def choices(self) -> tuple[tuple[Expr, ...], ...]:
        alts = [self.sequence()]
        while self.peek().type == "PIPE":
            self.i += 1
            alts.append(self.sequence())
        return tuple(alts)

    def sequence(self) -> tuple[Expr, ...]:
        items = []
        while True:
            items.append(self.quantified())
            if self.peek().type in ("PIPE", "RPAR", "LOOK", "RULE", "EOF"):
                return tuple(items)

    def quantified(self) -> Expr:
        e = self.element()
        t = self.peek().type
        if t == "STAR":
            self.i += 1
            return Repeat(e, 0, None, "*")
        if t == "PLUS":
            self.i += 1
            return Repeat(e, 1, None, "+")
        if t == "QMARK":
            self.i += 1
            return Repeat(e, 0, 1, "?")
        if t == "LBRACE":
            lo, hi = self.repetition_range()
            return Repeat(e, lo, hi, "{}")
        return e

    def repetition_range(self) -> tuple[int, int | None]:
        self.expect("LBRACE", "Expect {")
        lo = self.integer()
        if self.peek().type == "COMMA":
            self.i += 1
            if self.peek().type == "RBRACE":
                self.i += 1
                return lo, None
            if self.peek().type == "NAME" and self.peek().lexeme == "-1":
                self.i += 1
                self.expect("RBRACE", "Expect }")
                return lo, None
            hi = self.integer()
            if hi < lo:
                raise self.fail(f"Lower bound is larger than upper bound: {lo} > {hi}", -1)
            self.expect("RBRACE", "Expect }")
            return lo, hi
        if self.peek().type == "RBRACE":
            self.i += 1
            return lo, lo
        raise self.fail("Expect ',' or '}' in repetition range")

    def integer(self) -> int:
        t = self.peek()
        if t.type != "INT":
            raise self.fail(f"Expect integer, but got {t.lexeme}")
        self.i += 1
        return int(t.value)

    def element(self) -> Expr:
        t = self.peek()
        if t.type == "LPAR":
            self.nest += 1
            if self.nest > _MAX_NEST:
                raise self.fail("Nest layer exceeded the maximum limit", -1)
            self.i += 1
            if self.peek().type == "RPAR":
                self.i += 1
                self.nest -= 1
                return Lit(())
            alts = self.choices()
            self.expect("RPAR", "Expect )")
            self.nest -= 1
            return Group(alts)
        if t.type == "LBRACKET":
            return self.char_class()
        if t.type == "STRING":
            self.i += 1
            return Lit(t.value)
        if t.type == "NAME":
            if t.value in _MACROS:
                return self.macro()
            self.i += 1
            if t.value not in self.names:
                raise self.fail(f'Rule "{t.value}" is not defined', -1)
            return Ref(t.value)
        raise self.fail(f"Expect element, but got {t.lexeme}")

    def char_class(self) -> CharClass:
        self.expect("LBRACKET", "Expect [ in character class")
        negated = False
        if self.peek().type == "CARET":
            negated = True
            self.i += 1
        ranges: list[tuple[int, int]] = []
        while self.peek().type not in ("RBRACKET", "EOF"):
            t = self.peek()
            if t.type == "ESC":
                raise self.fail("Character class escape is not supported yet in EBNF")
            if t.type == "CH":
                cp = int(t.value)
            elif t.type == "DASH":
                cp = ord("-")
            else:  # pragma: no cover - the lexer only emits the types above inside [...]
                raise self.fail(f"Unexpected character in character class: {t.lexeme}")
            self.i += 1
            nxt, after = self.peek(), self.peek(1)
            if nxt.type == "DASH" and after.type in ("CH", "DASH"):
                cp2 = int(after.value) if after.type == "CH" else ord("-")
                if cp > cp2:
                    raise self.fail(
                        "Invalid character class: lower bound is larger than upper bound", -1
                    )
                ranges.append((cp, cp2))
                self.i += 2
            else:
                ranges.append((cp, cp))
        self.expect("RBRACKET", "Expect ] in character class")
        return CharClass(tuple(ranges), negated)

    # macros --------------------------------------------------------------------------------
    def macro(self) -> Macro:
        name_tok = self.peek()
        self.i += 1
        start = self.i
        args, kwargs = self.macro_arguments()
        delta = start - self.i
        at = self.toks[start]

        def bad(msg: str) -> GrammarError:
            return self.fail(msg, delta)

        kw = dict(kwargs)
        name = name_tok.value
        if name == "Regex":
            if len(args) != 1:
                raise bad("Regex expects exactly one string argument")
            if not isinstance(args[0], _Str):
                raise bad("Regex pattern must be a string literal")
            for k in kw:
                if k != "json_string":
                    raise bad(f"Regex does not support the named argument {k}")
            if "json_string" in kw and not isinstance(kw["json_string"], bool):
                raise bad("json_string must be a boolean")
        elif name in ("Token", "ExcludeToken"):
            if kw:
                raise bad(f"{name}() does not accept named arguments")
            if not args:
                raise bad(f"{name}() requires at least one integer argument")
            for a in args:
                if not isinstance(a, int) or isinstance(a, bool) or a < 0:
                    raise bad(f"{name}() arguments must be non-negative integers")
        elif name == "TagDispatch":
            self._tag_dispatch(args, kw, bad)
        else:  # TokenTagDispatch
            self._token_tag_dispatch(args, kw, bad)
        return Macro(name, tuple(args), tuple(kwargs), at.line, at.column)

    def _tag_dispatch(self, args: list[Any], kw: dict[str, Any], bad: Any) -> None:
        for k in kw:
            if k not in ("loop_after_dispatch", "excludes"):
                raise bad(f"Unknown named argument for TagDispatch: {k}")
        triggers = []
        for a in args:
            if not isinstance(a, tuple):
                raise bad("Each tag dispatch element must be a tuple")
            if len(a) != 2:
                raise bad("Each tag dispatch element must be a pair (tag, rule)")
            if not isinstance(a[0], _Str) or a[0].text == "":
                raise bad("Tag must be a non-empty string literal")
            if not isinstance(a[1], _Ident):
                raise bad("Rule reference must be an identifier")
            if a[1].name not in self.names:
                raise bad(f'Rule "{a[1].name}" is not defined')
            triggers.append(a[0].text)
        if "loop_after_dispatch" in kw and not isinstance(kw["loop_after_dispatch"], bool):
            raise bad("loop_after_dispatch must be a boolean literal")
        excludes = []
        if "excludes" in kw:
            if not isinstance(kw["excludes"], tuple):
                raise bad("excludes must be a tuple")
            for e in kw["excludes"]:
                if not isinstance(e, _Str) or e.text == "":
                    raise bad("Exclude must be a non-empty string literal")
                excludes.append(e.text)
        for e in excludes:
            for trig in triggers:
                if trig.startswith(e):
                    raise bad(f"Exclude string must not be a prefix of trigger string: {e}")

    def _token_tag_dispatch(self, args: list[Any], kw: dict[str, Any], bad: Any) -> None:
        for k in kw:
            if k not in ("loop_after_dispatch", "excludes"):
                raise bad(f"Unknown named argument for TokenTagDispatch: {k}")
        ids = []
        for a in args:
            if not isinstance(a, tuple) or len(a) != 2:
                raise bad("Each TokenTagDispatch element must be a pair (token_id, rule)")
            if not isinstance(a[0], int) or isinstance(a[0], bool) or a[0] < 0:
                raise bad("Token trigger ID must be a non-negative integer")
            if not isinstance(a[1], _Ident):
                raise bad("Rule reference must be an identifier")
            if a[1].name not in self.names:
                raise bad(f'Rule "{a[1].name}" is not defined')
            ids.append(a[0])
        if "loop_after_dispatch" in kw and not isinstance(kw["loop_after_dispatch"], bool):
            raise bad("loop_after_dispatch must be a boolean")
        excludes = []
        if "excludes" in kw:
            if not isinstance(kw["excludes"], tuple):
                raise bad("excludes must be a tuple")
            for e in kw["excludes"]:
                if not isinstance(e, int) or isinstance(e, bool) or e < 0:
                    raise bad("Exclude token ID must be a non-negative integer")
                excludes.append(e)
        for e in excludes:
            if e in ids:
                raise bad(f"Token trigger ID {e} must not overlap with exclude token ID")

    def macro_arguments(self) -> tuple[list[Any], list[tuple[str, Any]]]:
        self.expect("LPAR", "Expect ( after macro function name")
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        if self.peek().type != "RPAR":
            while True:
                if self.peek().type == "NAME" and self.peek(1).type == "EQUAL":
                    key = self.peek().value
                    self.i += 2
                    kwargs[key] = self.macro_value()
                else:
                    args.append(self.macro_value())
                if self.peek().type == "COMMA":
                    self.i += 1
                elif self.peek().type == "RPAR":
                    break
                else:
                    raise self.fail("Expect , or ) in macro arguments")
        self.expect("RPAR", "Expect ) after macro arguments")
        return args, list(kwargs.items())

    def macro_value(self) -> Any:
        t = self.peek()
        if t.type == "STRING":
            self.i += 1
            return _Str(t.value)
        if t.type == "INT":
            self.i += 1
            return int(t.value)
        if t.type == "BOOL":
            self.i += 1
            return bool(t.value)
        if t.type == "NAME":
            self.i += 1
            return _Ident(t.value)
        if t.type == "LPAR":
            self.i += 1
            items: list[Any] = []
            if self.peek().type != "RPAR":
                while True:
                    items.append(self.macro_value())
                    if self.peek().type == "COMMA":
                        self.i += 1
                        if self.peek().type == "RPAR":
                            break
                    elif self.peek().type == "RPAR":
                        break
                    else:
                        raise self.fail("Expect , or ) in tuple")
            self.i += 1
            return tuple(items)
        raise self.fail("Expect string, integer, boolean, or tuple in macro argument")


@dataclass(frozen=True)
class _Str:
    codepoints: tuple[int, ...]

    @property
    def text(self) -> str:
        return "".join(chr(c) if c <= 0x10FFFF else "\ufffd" for c in self.codepoints)


@dataclass(frozen=True)
class _Ident:
    name: str


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


# XGrammar's regex dialect is close to ECMAScript; Python's `re` parses most of it. The list
# below holds the differences measured against XGrammar 0.2.8's compiler (test_grammar_oracle).
# Messages are XGrammar's; positions are 1-based like XGrammar's.
_REGEX_REJECT: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"\(\?<[=!]"), "Lookbehind assertion is not supported in regex"),
    (re.compile(r"\\([bB])"), "Word boundary assertion \\{0} is not supported in regex"),
    (re.compile(r"\\([1-9]|k)"), "Backreference \\{0} is not supported in regex"),
    (re.compile(r"\\[pP]"), "Unicode property escape \\p / \\P is not supported in regex"),
    (re.compile(r"\((\?[#a-hj-zA-OQ-Z])"), "Unsupported group modifier '({0}'"),
    (re.compile(r"\[\^?\]"), "Empty character class is not allowed in regex"),
    (re.compile(r"\{,"), "Invalid repetition count: expected a number after '{{'"),
    (re.compile(r"\]"), "Unmatched ']'"),
]

_PY_REGEX_ERRORS = [
    ("unterminated character set", "Unclosed '['", 1),
    ("nothing to repeat", "There is nothing to repeat before '{c}'", 1),
    ("unbalanced parenthesis", "Unmatched ')'", 1),
    ("missing ), unterminated subpattern", "The parenthesis is not closed", 1),
    ("min repeat greater than max repeat", "Invalid repetition count", -1),
]


def _outside_classes(pattern: str) -> str:
    """The pattern with character-class contents replaced by spaces (same length), so that
    e.g. `[\\b]` is not taken for a word boundary. `[]`/`[^]` are left visible."""
    out = list(pattern)
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            i += 2
            continue
        if c == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            if j < len(pattern) and pattern[j] == "]":  # empty class: keep for the check above
                i = j + 1
                continue
            while j < len(pattern) and pattern[j] != "]":
                j += 2 if pattern[j] == "\\" else 1
            for k in range(i, min(j + 1, len(pattern))):
                out[k] = " "
            i = j + 1
            continue
        i += 1
    return "".join(out)


def python_regex(pattern: str) -> str:
    """Rewrite an XGrammar regex into Python `re` syntax: `(?<name>`, `\\e`, `\\cX`, and
    escaped letters that XGrammar matches literally (with a warning)."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            n = pattern[i + 1]
            if n == "e":
                out.append(r"\x1b")
            elif n == "c" and i + 2 < len(pattern) and pattern[i + 2].isalpha():
                out.append(f"\\x{ord(pattern[i + 2]) % 32:02x}")
                i += 1
            elif n.isalpha() and n not in "dDsSwWnrtfvxuUbB0":
                out.append(re.escape(n))
            else:
                out.append(pattern[i : i + 2])
            i += 2
            continue
        if pattern.startswith("(?<", i) and not pattern.startswith(("(?<=", "(?<!"), i):
            out.append("(?P<")
            i += 3
            continue
        out.append(c)
        i += 1
    return "".join(out)


def regex_problem(pattern: str) -> str | None:
    """Why XGrammar 0.2.8 would fail to compile this Regex(...) pattern, or None."""
    visible = _outside_classes(pattern)
    for rx, msg in _REGEX_REJECT:
        m = rx.search(visible)
        if m:
            return f"position {m.start() + 1}: " + msg.format(*m.groups())
    if re.search(r"(?<!\\)(?:\\\\)*\\$", pattern):
        return f"position {len(pattern)}: Regex ends with a trailing backslash"
    py = python_regex(pattern)
    for _ in range(20):
        try:
            re.compile(py)
            return None
        except re.error as e:
            if e.msg == "multiple repeat" and e.pos is not None:
                # XGrammar allows stacked quantifiers (a{2}{3}); Python needs a group between.
                py = py[: e.pos] + "(?:)" + py[e.pos :]
                continue
            pos = (e.pos or 0) + 1
            for py_msg, msg, _shift in _PY_REGEX_ERRORS:
                if e.msg.startswith(py_msg):
                    c = pattern[pos - 1] if pos - 1 < len(pattern) else ""
                    return f"position {pos}: " + msg.format(c=c)
            return f"position {pos}: {e.msg}"
    return "Regex is too complex"


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


# ---------------------------------------------------------------------------------------------
# GBNF translation (llama.cpp b11434 grammar parser, src/llama-grammar.cpp)

_GBNF_MAX_REPETITION = 2000  # llama.cpp MAX_REPETITION_THRESHOLD
_GBNF_NAME_OK = re.compile(r"[A-Za-z0-9-]+")


def _gbnf_char(cp: int, in_class: bool) -> str:
    """One code point in GBNF syntax. llama.cpp's parse_char knows only \\x \\u \\U \\t \\r \\n
    and \\\\ \\" \\[ \\] \\- as escapes; everything else printable is taken literally as UTF-8."""
    if cp > 0x10FFFF:
        return f"\\U{cp:08x}"
    c = chr(cp)
    if c == "\\":
        return "\\\\"
    if c == "\n":
        return "\\n"
    if c == "\r":
        return "\\r"
    if c == "\t":
        return "\\t"
    if c == '"' and not in_class:
        return '\\"'
    if in_class and c in "[]-":
        return "\\" + c
    if in_class and c == "^":
        return "\\x5E"  # a leading ^ would negate the class
    if cp < 0x20 or cp == 0x7F:
        return f"\\x{cp:02X}"
    if 0xD800 <= cp <= 0xDFFF or not c.isprintable():
        return f"\\u{cp:04X}" if cp <= 0xFFFF else f"\\U{cp:08X}"
    return c


def _gbnf_class(cc: CharClass) -> str:
    if not cc.ranges:
        # XGrammar: [] matches nothing and [^] any char. llama.cpp reads an empty class as an
        # empty sequence (matches ""), so both need another spelling.
        return "." if cc.negated else "[^\\x00-\\U0010FFFF]"
    body = "".join(
        _gbnf_char(lo, True) if lo == hi else f"{_gbnf_char(lo, True)}-{_gbnf_char(hi, True)}"
        for lo, hi in cc.ranges
    )
    return f"[{'^' if cc.negated else ''}{body}]"


def _matches_empty(e: Expr, nullable: dict[str, bool]) -> bool:
    if isinstance(e, Lit):
        return not e.codepoints
    if isinstance(e, CharClass):
        return False
    if isinstance(e, Ref):
        return nullable.get(e.name, False)
    if isinstance(e, Group):
        return any(all(_matches_empty(x, nullable) for x in seq) for seq in e.alts)
    if isinstance(e, Repeat):
        return e.lo == 0 or _matches_empty(e.expr, nullable)
    if isinstance(e, Macro) and e.name == "Regex":
        try:
            return re.fullmatch(python_regex(e.args[0].text), "") is not None
        except re.error:
            return True
    return True  # token-level macros: be conservative


def _nullable_rules(g: Grammar) -> dict[str, bool]:
    nullable = {r.name: False for r in g.rules}
    changed = True
    while changed:
        changed = False
        for r in g.rules:
            if not nullable[r.name] and any(
                all(_matches_empty(x, nullable) for x in seq) for seq in r.alts
            ):
                nullable[r.name] = changed = True
    return nullable


def _left_refs(alts: tuple[tuple[Expr, ...], ...], nullable: dict[str, bool]) -> set[str]:
    """Rules reachable at the leftmost position (through nullable prefixes)."""
    out: set[str] = set()
    for seq in alts:
        for e in seq:
            if isinstance(e, Ref):
                out.add(e.name)
            elif isinstance(e, Group):
                out |= _left_refs(e.alts, nullable)
            elif isinstance(e, Repeat):
                out |= _left_refs(((e.expr,),), nullable)
            if not _matches_empty(e, nullable):
                break
    return out


def left_recursion(g: Grammar, names: list[str] | None = None) -> list[str] | None:
    """A left-recursive cycle (rule names) if there is one. llama.cpp rejects these
    ("left recursion detected"); XGrammar accepts them. Uses full nullability, so it finds
    every cycle llama.cpp's narrower check finds."""
    nullable = _nullable_rules(g)
    edges = {r.name: _left_refs(r.alts, nullable) for r in g.rules}
    wanted = names if names is not None else [r.name for r in g.rules]
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                return stack[stack.index(m) :] + [m]
            if m not in state:
                found = visit(m)
                if found:
                    return found
        stack.pop()
        state[n] = 2
        return None

    for n in wanted:
        if n not in state:
            found = visit(n)
            if found:
                return found
    return None


def reachable_rules(g: Grammar, start: str = "root") -> list[str]:
    seen = {start}
    todo = [start]
    while todo:
        r = g.rule(todo.pop())
        for e in list(_walk(r.alts)) + (list(_walk(r.lookahead)) if r.lookahead else []):
            refs = [e.name] if isinstance(e, Ref) else []
            if isinstance(e, Macro):
                refs = [a[1].name for a in e.args if isinstance(a, tuple) and len(a) == 2]
                refs = [x for x in refs if isinstance(x, str)]
            for name in refs:
                if name not in seen:
                    seen.add(name)
                    todo.append(name)
    return [r.name for r in g.rules if r.name in seen]


def gbnf_names(names: list[str]) -> dict[str, str]:
    """Map XGrammar rule names to GBNF-legal ones ([A-Za-z0-9-]+), without collisions.
    Legal names are kept; `_` and `.` become `-`, with a numeric suffix if that is taken."""
    used = {n for n in names if _GBNF_NAME_OK.fullmatch(n)}
    out = {n: n for n in names if n in used}
    for n in names:
        if n in out:
            continue
        base = re.sub(r"[^A-Za-z0-9-]", "-", n)
        cand, k = base, 2
        while cand in used:
            cand, k = f"{base}-{k}", k + 1
        used.add(cand)
        out[n] = cand
    return out


class _GbnfWriter:
    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    def alts(self, alts: tuple[tuple[Expr, ...], ...]) -> str:
        return " | ".join(self.seq(seq) for seq in alts)

    def seq(self, seq: tuple[Expr, ...]) -> str:
        return " ".join(self.expr(e) for e in seq)

    def expr(self, e: Expr) -> str:
        if isinstance(e, Lit):
            return '"' + "".join(_gbnf_char(c, False) for c in e.codepoints) + '"'
        if isinstance(e, CharClass):
            return _gbnf_class(e)
        if isinstance(e, Ref):
            return self.names[e.name]
        if isinstance(e, Group):
            return "(" + self.alts(e.alts) + ")"
        if isinstance(e, Repeat):
            return self.repeat(e)
        if isinstance(e, Macro):
            if e.name == "Regex":
                return self.expr(regex_ast(e))
            raise ValueError(
                f"{e.name}(...) at line {e.line} works on token ids, which GBNF on text cannot "
                "express; the local engine cannot apply this grammar"
            )
        raise TypeError(e)  # pragma: no cover

    def repeat(self, e: Repeat) -> str:
        inner = e.expr
        if isinstance(inner, Lit) and not inner.codepoints:
            return '""'  # llama.cpp rejects a quantifier on an empty literal
        if isinstance(inner, CharClass) and not inner.ranges and not inner.negated:
            return '""' if e.lo == 0 else self.expr(inner)
        for bound in (e.lo, e.hi or 0):
            if bound > _GBNF_MAX_REPETITION:
                raise ValueError(
                    f"repetition count {bound} is above llama.cpp's limit of {_GBNF_MAX_REPETITION}"
                )
        body = self.expr(inner)
        if e.op in ("*", "+", "?"):
            return body + e.op
        if e.hi is None:
            return f"{body}{{{e.lo},}}"
        if e.hi == e.lo:
            return f"{body}{{{e.lo}}}"
        return f"{body}{{{e.lo},{e.hi}}}"


def to_gbnf(ebnf: str) -> str:
    """Translate a grammar that check() accepts into llama.cpp GBNF.

    Raises ValueError (with XGrammar's message) when check() rejects the grammar, and with a
    reason when the grammar uses something GBNF cannot express: token-level macros, lookahead
    assertions, `[max_tokens=]`, Regex features outside a regular subset, left recursion
    (llama.cpp refuses it), or repetition counts above llama.cpp's limit of 2000.
    Only rules reachable from root are emitted, one per line.
    """
    g = parse(ebnf)
    names = reachable_rules(g)
    for n in names:
        r = g.rule(n)
        if r.lookahead is not None:
            raise ValueError(
                f'rule "{n}" (line {r.line}) has a lookahead assertion (=...), which GBNF lacks'
            )
        if r.max_tokens is not None:
            raise ValueError(f'rule "{n}" (line {r.line}) has [max_tokens=...], which GBNF lacks')
    cycle = left_recursion(g, names)
    if cycle:
        raise ValueError(
            "left recursion (" + " -> ".join(cycle) + ") is accepted by XGrammar but llama.cpp "
            'rejects it; rewrite it as repetition, e.g. `list ::= item ("," item)*`'
        )
    nullable = _nullable_rules(g)
    for n in names:
        for e in _walk(g.rule(n).alts):
            if (
                isinstance(e, Repeat)
                and e.hi is None
                and _matches_empty(e.expr, nullable)
                and not (isinstance(e.expr, Lit) and not e.expr.codepoints)  # ""* is just ""
            ):
                # llama.cpp expands X* to `S ::= X S |`; with X able to match "" that is left
                # recursion (rejected, or an endless loop when its narrower check misses it).
                raise ValueError(
                    f'rule "{n}": an unbounded repetition of something that can match "" '
                    "loops in llama.cpp; make the repeated part non-empty"
                )
    mapping = gbnf_names(names)
    writer = _GbnfWriter(mapping)
    lines = [f"{mapping[n]} ::= {writer.alts(g.rule(n).alts)}" for n in names]
    _check_gbnf_repetition_budget(g, names)
    return "\n".join(lines) + "\n"


def _symbols(e: Expr) -> int:
    """An upper bound on the symbols llama.cpp creates while parsing `e` (its n_prev_rules
    bookkeeping): one per group and optional copy, and one per rule name it may see first."""
    if isinstance(e, Ref):
        return 1
    if isinstance(e, Group):
        return 1 + sum(_symbols(x) for seq in e.alts for x in seq)
    if isinstance(e, Repeat):
        n_opt = 1 if e.hi is None else e.hi - e.lo
        return _symbols(e.expr) + max(n_opt, 0)
    return 0


def _check_gbnf_repetition_budget(g: Grammar, names: list[str]) -> None:
    """llama.cpp refuses `S{m,n}` when (rules inside S) x max(n or m) exceeds 2000."""
    for n in names:
        for e in _walk(g.rule(n).alts):
            if isinstance(e, Repeat) and e.op == "{}":
                total = e.hi if e.hi else (e.lo if e.lo > 0 else 1)
                inner = max(1, _symbols(e.expr)) if isinstance(e.expr, Group) else 1
                if inner * total > _GBNF_MAX_REPETITION:
                    raise ValueError(
                        f'rule "{n}": a repetition of {total} over {inner} sub-rules exceeds '
                        f"llama.cpp's limit of {_GBNF_MAX_REPETITION}"
                    )


# Regex(...) -> grammar AST through Python's own regex parser (re._parser, the stdlib sre
# parser), so GBNF output and match() treat a Regex like any other sub-grammar.
_WORD = ((0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A))
_SPACE = ((0x20, 0x20), (0x09, 0x0D))
_NEWLINES = ((0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029))  # ECMAScript `.` excludes these


def regex_ast(m: Macro) -> Group:
    """The Regex(...) macro as a Group of Lit/CharClass/Repeat nodes. Anchors and lookahead
    are dropped (XGrammar ignores them with a warning). Raises ValueError for features with no
    context-free equivalent."""
    kwargs = dict(m.kwargs)
    if kwargs.get("json_string"):
        raise ValueError(f"Regex(..., json_string=true) at line {m.line} is not supported here")
    pattern = m.args[0].text
    import re._constants as sc  # noqa: PLC0415 - stdlib internals, only needed here
    import re._parser as sp  # noqa: PLC0415

    try:
        tree = sp.parse(python_regex(pattern))
    except re.error as e:  # pragma: no cover - check() already validated it
        raise ValueError(f"Regex at line {m.line}: {e}") from None
    icase = bool(tree.state.flags & re.IGNORECASE)

    def fail(what: str) -> ValueError:
        return ValueError(f"Regex({pattern!r}) at line {m.line}: {what} is not supported")

    cats: dict[Any, tuple[tuple[tuple[int, int], ...], bool]] = {
        sc.CATEGORY_DIGIT: (((0x30, 0x39),), False),
        sc.CATEGORY_NOT_DIGIT: (((0x30, 0x39),), True),
        sc.CATEGORY_SPACE: (_SPACE, False),
        sc.CATEGORY_NOT_SPACE: (_SPACE, True),
        sc.CATEGORY_WORD: (_WORD, False),
        sc.CATEGORY_NOT_WORD: (_WORD, True),
    }

    def cased(cp: int) -> list[tuple[int, int]]:
        c = chr(cp)
        if icase and c.lower() != c.upper():
            return [(ord(c.lower()),) * 2, (ord(c.upper()),) * 2]
        return [(cp, cp)]

    def in_class(items: list[Any]) -> CharClass:
        negated = False
        ranges: list[tuple[int, int]] = []
        for op, av in items:
            if op is sc.NEGATE:
                negated = True
            elif op is sc.LITERAL:
                ranges += cased(av)
            elif op is sc.RANGE:
                ranges.append(av)
            elif op is sc.CATEGORY and av in cats and not cats[av][1]:
                ranges += cats[av][0]
            else:
                raise fail(f"{str(op).lower()} inside [...]")
        return CharClass(tuple(ranges), negated)

    def seq(items: Any) -> tuple[Expr, ...]:
        out: list[Expr] = []
        for op, av in items:
            e = node(op, av)
            if e is None:
                continue
            if out and isinstance(e, Lit) and isinstance(out[-1], Lit):
                out[-1] = Lit(out[-1].codepoints + e.codepoints)
            else:
                out.append(e)
        return tuple(out) or (Lit(()),)

    def node(op: Any, av: Any) -> Expr | None:
        if op is sc.LITERAL:
            rs = cased(av)
            return Lit((av,)) if len(rs) == 1 else CharClass(tuple(rs), False)
        if op is sc.NOT_LITERAL:
            return CharClass(tuple(cased(av)), True)
        if op is sc.ANY:
            return CharClass(_NEWLINES, True)
        if op is sc.IN:
            return in_class(av)
        if op is sc.CATEGORY:
            cat_ranges, neg = cats[av]
            return CharClass(cat_ranges, neg)
        if op is sc.SUBPATTERN:
            return Group((seq(av[-1]),))
        if op is sc.BRANCH:
            return Group(tuple(seq(b) for b in av[1]))
        if op in (sc.MAX_REPEAT, sc.MIN_REPEAT, sc.POSSESSIVE_REPEAT):
            lo, hi, sub = av
            body = Group((seq(sub),))
            if hi == sc.MAXREPEAT:
                return Repeat(body, lo, None, "*" if lo == 0 else "+" if lo == 1 else "{}")
            return Repeat(body, lo, hi, "?" if (lo, hi) == (0, 1) else "{}")
        if op in (sc.AT, sc.ASSERT, sc.ASSERT_NOT):
            return None  # XGrammar ignores anchors and lookahead in regex (with a warning)
        raise fail(str(op).lower())

    return Group((seq(tree),))


# ---------------------------------------------------------------------------------------------
# match(): compile the grammar to a Lark Earley grammar over single characters, so the parse
# dies exactly at the first character no continuation of the grammar accepts.

_NEVER = r"[^\x00-\U0010ffff]"  # a one-character terminal that matches nothing
_REPEAT_LIMIT = 10_000


def _re_char(cp: int) -> str:
    """A code point for a regex inside a Lark grammar. Lark turns \\xHH/\\uHHHH into the raw
    character before `re` sees it, so ASCII punctuation (which may be special inside [...])
    gets a backslash instead, which Lark passes through."""
    if cp > 0x10FFFF:
        return ""
    c = chr(cp)
    if cp < 0x80 and c.isalnum():
        return c
    if 0x20 <= cp < 0x7F:
        return "\\" + c
    return f"\\x{cp:02x}" if cp <= 0xFF else f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"


def _class_regex(cc: CharClass) -> str:
    if not cc.ranges:
        return r"[\x00-\U0010ffff]" if cc.negated else _NEVER
    parts = []
    for lo, hi in cc.ranges:
        if lo > 0x10FFFF:
            continue
        hi = min(hi, 0x10FFFF)
        parts.append(_re_char(lo) if lo == hi else f"{_re_char(lo)}-{_re_char(hi)}")
    if not parts:
        return r"[\x00-\U0010ffff]" if cc.negated else _NEVER
    return f"[{'^' if cc.negated else ''}{''.join(parts)}]"


def _show_char(cp: int) -> str:
    if cp > 0x10FFFF:
        return f"\\U{cp:08x}"
    c = chr(cp)
    named = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\", '"': '\\"', "]": "\\]",
             "-": "\\-", "^": "\\^"}  # fmt: skip
    if c in named:
        return named[c]
    return c if c.isprintable() else f"\\x{cp:02x}" if cp <= 0xFF else f"\\u{cp:04x}"


def _class_text(cc: CharClass) -> str:
    body = "".join(
        _show_char(lo) if lo == hi else f"{_show_char(lo)}-{_show_char(hi)}" for lo, hi in cc.ranges
    )
    return f"[{'^' if cc.negated else ''}{body}]"


class _LarkBuilder:
    """Writes the grammar for Lark with every multi-alternative group and every bounded
    repetition as its own rule. Lark expands inline `(a|b)`, `x?` and `x ~ n..m` into all
    combinations of a rule's alternatives, which is exponential for grammars like
    `(a | b b){0,40}`; separate rules keep the grammar linear in size."""

    def __init__(self, g: Grammar) -> None:
        self.g = g
        self.rule_names = {r.name: ("start" if r.name == "root" else f"r{i}") for i, r in
                           enumerate(g.rules)}  # fmt: skip
        self.terminals: dict[str, str] = {}  # regex -> terminal name
        self.describe: dict[str, str] = {}  # terminal name -> text shown to a person
        self.helpers: dict[str, str] = {}  # helper rule body -> name (dedups identical ones)
        self.lines: list[str] = []

    def terminal(self, regex: str, shown: str) -> str:
        name = self.terminals.get(regex)
        if name is None:
            name = f"T{len(self.terminals)}"
            self.terminals[regex] = name
            self.describe[name] = shown
        return name

    def helper(self, body: str) -> str:
        name = self.helpers.get(body)
        if name is None:
            name = f"h{len(self.helpers)}"
            self.helpers[body] = name
            self.lines.append(f"{name}: {body}")
        return name

    def build(self) -> str:
        for r in self.g.rules:
            self.lines.append(f"{self.rule_names[r.name]}: {self.alts(r.alts)}")
        self.lines.append("eps: ")
        for regex, name in self.terminals.items():
            self.lines.append(f"{name}: /{regex}/")
        return "\n".join(self.lines) + "\n"

    def alts(self, alts: tuple[tuple[Expr, ...], ...]) -> str:
        return " | ".join(self.seq(seq) for seq in alts)

    def seq(self, seq: tuple[Expr, ...]) -> str:
        parts = [p for p in (self.expr(e) for e in seq) if p]
        # Lark expands each `x?`/`x*` into two alternatives of the rule; past a few per
        # sequence, move the rest into their own rules to keep that from growing as 2^k.
        optional = 0
        for i, p in enumerate(parts):
            if p.endswith(("?", "*")):
                optional += 1
                if optional > 4:
                    parts[i] = self.helper(p)
        return " ".join(parts) or "eps"

    def symbol(self, e: Expr) -> str:
        """`e` as exactly one grammar symbol (a terminal or a rule name)."""
        text = self.expr(e)
        if not text:
            return "eps"
        return text if " " not in text else self.helper(text)

    def expr(self, e: Expr) -> str:
        if isinstance(e, Lit):
            syms = []
            for cp in e.codepoints:
                if cp > 0x10FFFF:
                    syms.append(self.terminal(_NEVER, f"\\U{cp:08x}"))
                else:
                    syms.append(self.terminal(_class_regex(CharClass(((cp, cp),), False)),
                                              '"' + _show_char(cp) + '"'))  # fmt: skip
            return " ".join(syms)
        if isinstance(e, CharClass):
            shown = "any character" if (not e.ranges and e.negated) else _class_text(e)
            return self.terminal(_class_regex(e), shown)
        if isinstance(e, Ref):
            return self.rule_names[e.name]
        if isinstance(e, Group):
            if len(e.alts) == 1:
                return self.seq(e.alts[0])
            return self.helper(self.alts(e.alts))
        if isinstance(e, Repeat):
            return self.repeat(e)
        if isinstance(e, Macro):
            if e.name == "Regex":
                return self.expr(regex_ast(e))
            raise ValueError(
                f"{e.name}(...) at line {e.line} constrains token ids, not text, so a text "
                "output cannot be checked against it"
            )
        raise TypeError(e)  # pragma: no cover

    def repeat(self, e: Repeat) -> str:
        lo, hi = e.lo, e.hi
        if max(lo, hi or 0) > _REPEAT_LIMIT:
            raise ValueError(f"repetition count above {_REPEAT_LIMIT} is too large to match")
        x = self.symbol(e.expr)
        if hi == 0:
            return "eps"
        if hi is None:
            if lo == 0:
                return f"{x}*"
            return " ".join([x] * (lo - 1) + [f"{x}+"])
        fixed = [x] * lo
        if hi > lo:
            # up to (hi - lo) more copies as a chain: c1 = x, c2 = x c1?, ..., then c?
            chain = x
            for _ in range(hi - lo - 1):
                chain = self.helper(f"{x} {chain}?")
            fixed.append(f"{chain}?")
        return " ".join(fixed)


@dataclass
class _Matcher:
    parser: Lark | None
    describe: dict[str, str]
    problem: str | None


@functools.lru_cache(maxsize=64)
def _matcher(ebnf: str) -> _Matcher:
    g = parse(ebnf)
    b = _LarkBuilder(g)
    try:
        text = b.build()
    except ValueError as e:
        return _Matcher(None, {}, str(e))
    # Earley over one-character terminals: exact for any context-free grammar; "forest" skips
    # building a tree we do not need.
    parser = Lark(text, parser="earley", lexer="dynamic", start="start", ambiguity="forest")
    return _Matcher(parser, b.describe, None)


def _where(text: str, pos: int) -> str:
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return f"character {pos} (line {line}, column {col})"


@functools.lru_cache(maxsize=256)
def match(ebnf: str, text: str) -> MatchResult:
    """Does ``text`` match the grammar from ``root`` in full?

    Memoised: a page redraws the verdict of the same output on every rerun, and a check of
    a few KB takes the Earley parser a good fraction of a second.

    On failure ``position`` is the offset of the first character that no continuation of the
    grammar accepts (``len(text)`` when the text stops too early) and ``expected`` lists what
    would have been accepted there ("end of text" included when the match could stop there).
    Lookahead assertions ``(=...)`` do not change the verdict: XGrammar 0.2.8's matcher uses
    them only to prune its search, and accepts the same strings with or without them.
    """
    report = check(ebnf)
    if not report.ok:
        return MatchResult(False, None, (), f"invalid grammar: {report.issues[0].message}")
    m = _matcher(ebnf)
    if m.parser is None:
        return MatchResult(False, None, (), f"cannot check: {m.problem}")
    try:
        m.parser.parse(text)
        return MatchResult(True, None, (), "matches the grammar")
    except UnexpectedCharacters as e:
        pos = cast(int, e.pos_in_stream)  # always set by the lexer (see _tokenize)
        names = set(e.allowed or ())
    except UnexpectedEOF as e:
        pos = len(text)
        names = set(e.expected or ())
    expected = sorted({m.describe.get(n, n) for n in names})
    if pos < len(text) and (not names or _parses(m.parser, text[:pos])):
        expected.append("end of text")
    wanted = " or ".join(expected) if expected else "nothing more"
    if pos >= len(text):
        msg = f"text ends too early at {_where(text, pos)}: expected {wanted}"
    else:
        found = text[pos]
        msg = f"breaks at {_where(text, pos)}: found {found!r}, expected {wanted}"
    return MatchResult(False, pos, tuple(expected), msg)


def _parses(parser: Lark, text: str) -> bool:
    try:
        parser.parse(text)
    except UnexpectedInput:
        return False
    return True
