"""match(): does a model output match the grammar from root, and if not, where it breaks.

Named matcher, not match, so that the package attribute `grammar.match` stays the function."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import cast

from lark import Lark
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput

from .ast import CharClass, Expr, Grammar, Group, Lit, Macro, MatchResult, Ref, Repeat
from .checks import check, parse
from .regex import regex_ast

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
