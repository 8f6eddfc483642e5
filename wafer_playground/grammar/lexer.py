"""Tokens of XGrammar-dialect EBNF, with XGrammar's lexer errors (line, UTF-8 byte column,
wording)."""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters

from .ast import GrammarError

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
