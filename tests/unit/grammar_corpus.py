"""Shared corpus of XGrammar-dialect EBNF cases (importable by engine and unit tests).

Each case: (name, ebnf, xgrammar_accepts, llama_server_accepts_raw, expected error text or None).
The first 22 rows are the dialect table measured against the local engine
(XGrammar 0.2.8 vs llama-server GBNF). Error texts are XGrammar's, checked against
xgrammar 0.2.8 by tests/unit/test_grammar_oracle.py.
"""

from __future__ import annotations

from typing import NamedTuple


class DialectCase(NamedTuple):
    name: str
    ebnf: str
    xgrammar_ok: bool
    llama_raw_ok: bool | None  # llama-server on the raw string (None = not measured)
    error: str | None  # XGrammar's message for rejected grammars

    @property
    def id(self) -> str:
        return self.name


DIALECT_TABLE: list[DialectCase] = [
    DialectCase(
        "empty_alternative",
        'root ::= "A" |',
        False,
        True,
        "EBNF parser error at line 1, column 15: Expect element, but got ",
    ),
    DialectCase(
        "undefined_rule",
        "root ::= foo",
        False,
        False,
        'EBNF parser error at line 1, column 10: Rule "foo" is not defined',
    ),
    DialectCase(
        "no_root",
        'start ::= "A"',
        False,
        False,
        'EBNF parser error at line 1, column 1: The root rule with name "root" is not found',
    ),
    DialectCase("underscore_name", 'root ::= my_rule\nmy_rule ::= "x"', True, False, None),
    DialectCase("dash_name", 'root ::= my-rule\nmy-rule ::= "x"', True, True, None),
    DialectCase("comments", '# a comment\nroot ::= "A" # trailing\n', True, True, None),
    DialectCase("range_2_4", 'root ::= "a"{2,4}', True, True, None),
    DialectCase("range_2_open", 'root ::= "a"{2,}', True, True, None),
    DialectCase("negated_class", 'root ::= "\\"" [^"\\n]* "\\""', True, True, None),
    DialectCase("hex_escape", 'root ::= "\\x41"', True, True, None),
    DialectCase("unicode_escape", 'root ::= "\\u00e9"', True, True, None),
    DialectCase("empty_string", 'root ::= "" | "a"', True, True, None),
    DialectCase("groups", 'root ::= ("a" | "b") ("c" "d")?', True, True, None),
    DialectCase("greek_class", "root ::= [α-ω]+", True, True, None),
    DialectCase("continuation_line", 'root ::= "A"\n    | "B"', True, False, None),
    DialectCase(
        "dot_any",
        "root ::= .",
        False,
        True,
        'EBNF parser error at line 1, column 10: Rule "." is not defined',
    ),
    DialectCase(
        "token_ref",
        "root ::= <[33]>",
        False,
        True,
        "EBNF lexer error at line 1, column 10: Unexpected character: <",
    ),
    DialectCase("regex_macro", 'root ::= Regex("[a-z]+")', True, False, None),
    DialectCase(
        "single_quotes",
        "root ::= 'A'",
        False,
        False,
        "EBNF lexer error at line 1, column 10: Unexpected character: '",
    ),
    DialectCase(
        "single_equals",
        'root = "A"',
        False,
        False,
        'EBNF parser error at line 1, column 1: The root rule with name "root" is not found',
    ),
    DialectCase(
        "semicolon",
        'root ::= "A";',
        False,
        False,
        "EBNF lexer error at line 1, column 13: Unexpected character: ;",
    ),
    DialectCase("doc_example", 'root ::= "A" | "B"', True, True, None),
]

# More dialect cases: escapes, classes, quantifiers, multi-line positions, macros.
EXTRA_CASES: list[DialectCase] = [
    DialectCase(
        "all_escapes", 'root ::= "\\" \\\\ \\n \\r \\t \\x4A \\u00e9 \\U0001F600"', True, None, None
    ),
    DialectCase(
        "bad_escape",
        'root ::= "\\q"',
        False,
        None,
        "EBNF lexer error at line 1, column 11: Invalid escape sequence",
    ),
    DialectCase(
        "raw_newline_in_literal",
        'root ::= "a\nb"',
        False,
        None,
        'EBNF lexer error at line 1, column 12: Expect " in string literal',
    ),
    DialectCase(
        "unterminated_literal",
        'root ::= "abc',
        False,
        None,
        'EBNF lexer error at line 1, column 14: Expect " in string literal',
    ),
    DialectCase("any_char_class", "root ::= [^]", True, None, None),
    DialectCase("empty_class", 'root ::= [] | "a"', True, None, None),
    DialectCase(
        "class_digit_escape",
        "root ::= [\\d]+",
        False,
        None,
        "EBNF parser error at line 1, column 11: "
        "Character class escape is not supported yet in EBNF",
    ),
    DialectCase(
        "class_reversed_range",
        "root ::= [z-a]",
        False,
        None,
        "EBNF parser error at line 1, column 11: "
        "Invalid character class: lower bound is larger than upper bound",
    ),
    DialectCase(
        "class_newline",
        "root ::= [a\n]",
        False,
        None,
        "EBNF lexer error at line 1, column 12: Character class should not contain newline",
    ),
    DialectCase(
        "unterminated_class",
        "root ::= [abc",
        False,
        None,
        "EBNF lexer error at line 1, column 14: Unterminated character class",
    ),
    DialectCase("class_escapes", "root ::= [\\]\\-\\^\\\\a-z]", True, None, None),
    DialectCase("exact_count", 'root ::= "a"{3}', True, None, None),
    DialectCase(
        "no_lower_bound",
        'root ::= "a"{,3}',
        False,
        None,
        "EBNF parser error at line 1, column 14: Expect integer, but got ,",
    ),
    DialectCase(
        "range_reversed",
        'root ::= "a"{3,2}',
        False,
        None,
        "EBNF parser error at line 1, column 16: Lower bound is larger than upper bound: 3 > 2",
    ),
    DialectCase(
        "double_quantifier",
        'root ::= "a"**',
        False,
        None,
        "EBNF parser error at line 1, column 14: Expect element, but got *",
    ),
    DialectCase(
        "leading_pipe",
        'root ::= | "a"',
        False,
        None,
        "EBNF parser error at line 1, column 10: Expect element, but got |",
    ),
    DialectCase(
        "empty_group_alternative",
        'root ::= ("a" | )',
        False,
        None,
        "EBNF parser error at line 1, column 17: Expect element, but got )",
    ),
    DialectCase(
        "unclosed_group",
        'root ::= ("a"',
        False,
        None,
        "EBNF parser error at line 1, column 14: Expect )",
    ),
    DialectCase("empty_group", "root ::= ()", True, None, None),
    DialectCase(
        "duplicate_rule",
        'root ::= x\nx ::= "a"\nx ::= "b"',
        False,
        None,
        'EBNF parser error at line 3, column 1: Rule "x" is defined multiple times',
    ),
    DialectCase(
        "rule_not_at_line_start",
        'root ::= "a" x ::= "b"',
        False,
        None,
        "EBNF lexer error at line 1, column 14: "
        "The rule name should be at the beginning of the line",
    ),
    DialectCase(
        "multiline_undefined",
        'root ::= item+\n\nitem ::= "a"\n   | missing_rule',
        False,
        None,
        'EBNF parser error at line 4, column 6: Rule "missing_rule" is not defined',
    ),
    DialectCase(
        "multiline_trailing_pipe",
        'root ::= "a"\n  | "b"\n  |\nother ::= "c"',
        False,
        None,
        "EBNF parser error at line 4, column 1: Expect element, but got other",
    ),
    DialectCase(
        "utf8_columns",
        'root ::= "ééé" |',
        False,
        None,
        "EBNF parser error at line 1, column 20: Expect element, but got ",
    ),
    DialectCase("dotted_name", 'root ::= a.b\na.b ::= "x"', True, None, None),
    DialectCase(
        "digit_first_name",
        '1rule ::= "a"\nroot ::= "b"',
        False,
        None,
        "EBNF lexer error at line 1, column 2: "
        "The rule name should be at the beginning of the line",
    ),
    DialectCase("crlf_lines", 'root ::= "a"\r\n  | "b"\r\n', True, None, None),
    DialectCase("left_recursion", 'root ::= root "a" | "a"', True, None, None),
    DialectCase("lookahead", 'root ::= x "b"\nx ::= "a" (="b")', True, None, None),
    DialectCase(
        "lookahead_choices",
        'root ::= "a" (=("b" | "c"))',
        False,
        None,
        "Choices in lookahead assertion are not supported yet",
    ),
    DialectCase("token_macro", "root ::= Token(1, 2)", True, None, None),
    DialectCase("tag_dispatch", 'root ::= TagDispatch(("<a>", x))\nx ::= "1"', True, None, None),
    DialectCase(
        "regex_bad_pattern",
        'root ::= Regex("[a-z")',
        False,
        None,
        "Failed to build the automaton for rule root with regex [a-z: "
        "Regex parsing error at position 1: Unclosed '['",
    ),
    DialectCase(
        "regex_named_arg",
        'root ::= Regex("a", foo=true)',
        False,
        None,
        "EBNF parser error at line 1, column 15: Regex does not support the named argument foo",
    ),
    DialectCase("max_tokens_attr", 'root[max_tokens=5] ::= "a"', True, None, None),
    DialectCase(
        "empty_input",
        "",
        False,
        None,
        'EBNF parser error at line 1, column 1: The root rule with name "root" is not found',
    ),
    DialectCase(
        "huge_integer",
        'root ::= "a"{10000000000000000}',
        False,
        None,
        "EBNF lexer error at line 1, column 31: "
        "Integer is too large: parsed 10000000000000000, max allowed is 1000000000000000",
    ),
    DialectCase(
        "true_is_not_a_rule",
        "root ::= true",
        False,
        None,
        "EBNF parser error at line 1, column 10: Expect element, but got true",
    ),
]

ALL_CASES = DIALECT_TABLE + EXTRA_CASES

# Grammars XGrammar accepts but llama.cpp GBNF cannot express; to_gbnf must raise ValueError.
GBNF_UNTRANSLATABLE = {
    "left_recursion",
    "lookahead",
    "token_macro",
    "tag_dispatch",
    "max_tokens_attr",
}
