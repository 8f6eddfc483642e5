"""Translation of a checked grammar into llama.cpp GBNF (what the local engine hands to
llama-server)."""

from __future__ import annotations

import re

from .ast import CharClass, Expr, Grammar, Group, Lit, Macro, Ref, Repeat
from .checks import _walk, parse
from .regex import python_regex, regex_ast

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
