"""Recursive descent over the lexer's tokens into the AST, raising XGrammar's parser errors."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .ast import CharClass, Expr, Grammar, GrammarError, Group, Lit, Macro, Ref, Repeat, Rule
from .lexer import _MACROS, _MAX_NEST, _Tok

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
