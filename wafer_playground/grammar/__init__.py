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

The package follows those steps: ``ast`` (result types and the tree), ``lexer``, ``parser``,
``regex`` (XGrammar's Regex(...) dialect), ``checks`` (post-parse checks, ``check``/``parse``),
``gbnf`` (``to_gbnf``) and ``matcher`` (``match``). Every name is importable from here as before.
"""

from .ast import (
    CharClass,
    Expr,
    Grammar,
    GrammarError,
    GrammarIssue,
    GrammarReport,
    Group,
    Lit,
    Macro,
    MatchResult,
    Ref,
    Repeat,
    Rule,
)
from .checks import _analyse as _analyse  # benchmarks/grammar.py clears this cache
from .checks import check, parse
from .gbnf import gbnf_names, left_recursion, reachable_rules, to_gbnf
from .matcher import _matcher as _matcher  # and this one
from .matcher import match
from .regex import python_regex, regex_ast, regex_problem

__all__ = [
    "CharClass",
    "Expr",
    "Grammar",
    "GrammarError",
    "GrammarIssue",
    "GrammarReport",
    "Group",
    "Lit",
    "Macro",
    "MatchResult",
    "Ref",
    "Repeat",
    "Rule",
    "check",
    "gbnf_names",
    "left_recursion",
    "match",
    "parse",
    "python_regex",
    "reachable_rules",
    "regex_ast",
    "regex_problem",
    "to_gbnf",
]
