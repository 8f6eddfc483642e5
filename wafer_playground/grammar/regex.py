"""XGrammar's Regex(...) dialect: what XGrammar 0.2.8 rejects, the rewrite into Python `re`
syntax, and the pattern as grammar AST (used by the GBNF translation and the matcher)."""

from __future__ import annotations

import re
from typing import Any

from .ast import CharClass, Expr, Group, Lit, Macro, Repeat

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
