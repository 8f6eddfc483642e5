"""Preset EBNF grammars (XGrammar dialect) and a JSON Schema -> EBNF converter.

Presets are deliberately tight: fixed spacing, bounded repetition, no free whitespace. A small
model (SmolLM2-135M on the local engine) follows a narrow grammar well and wanders inside a
loose one, e.g. filling a `ws*` with spaces until max_tokens runs out.

Every preset is checked against XGrammar 0.2.8 and llama.cpp GBNF translation in
tests/unit/test_grammar_presets.py, and its example output must match it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

__all__ = [
    "PRESETS",
    "GrammarPreset",
    "json_schema_to_ebnf",
    "preset",
]


@dataclass(frozen=True)
class GrammarPreset:
    name: str  # stable id
    title: str  # short label for a picker
    description: str
    ebnf: str
    example: str  # an output that matches
    schema: dict[str, Any] | None = None  # the JSON Schema a preset was derived from


def _lit(text: str) -> str:
    """An EBNF string literal for `text` (JSON escaping is a subset of the dialect's)."""
    return json.dumps(text, ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# JSON Schema -> EBNF

# Annotation keywords that do not constrain the output.
_ANNOTATIONS = frozenset(
    {"title", "description", "$schema", "$id", "$comment", "default", "examples", "deprecated",
     "readOnly", "writeOnly"}
)  # fmt: skip
_SUPPORTED = {
    "object": {"type", "properties", "required", "additionalProperties"},
    "string": {"type", "enum", "const", "maxLength", "minLength"},
    "integer": {"type", "enum", "const"},
    "number": {"type", "enum", "const"},
    "boolean": {"type", "enum", "const"},
    "null": {"type", "enum", "const"},
    "array": {"type", "items", "minItems", "maxItems"},
}
_GBNF_REPEAT_LIMIT = 2000  # llama.cpp refuses larger counted repetitions

# Shared helper rules; names use `-` so that they are also legal GBNF names.
_HELPERS = {
    "json-char": (
        'json-char ::= [^"\\\\\\x00-\\x1f] | "\\\\" (["\\\\/bfnrt] | "u" [0-9a-fA-F]{4})'
    ),
    "json-int": 'json-int ::= "-"? ("0" | [1-9] [0-9]{0,18})',
    "json-number": (
        'json-number ::= "-"? ("0" | [1-9] [0-9]{0,18}) ("." [0-9]{1,17})? ([eE] [-+]? [0-9]{1,3})?'
    ),
}


class _SchemaConverter:
    def __init__(self) -> None:
        self.rules: dict[str, str] = {}  # name -> body, in definition order
        self.helpers: list[str] = []

    def helper(self, name: str) -> str:
        if name not in self.helpers:
            self.helpers.append(name)
        return name

    def value(self, schema: Any, path: str, name: str) -> str:
        """An EBNF expression for `schema`; may add rules named after `name`."""
        if schema is True or schema == {}:
            raise ValueError(f"{path}: an unconstrained value (true or {{}}) is not supported")
        if not isinstance(schema, dict):
            raise ValueError(f"{path}: a schema must be an object, got {type(schema).__name__}")
        for key in ("enum", "const"):
            if key in schema:
                extra = set(schema) - _ANNOTATIONS - {key, "type"}
                if extra:
                    raise ValueError(
                        f"{path}: unsupported keyword(s) next to {key}: {sorted(extra)}"
                    )
                values = schema[key] if key == "enum" else [schema[key]]
                if key == "enum" and (not isinstance(values, list) or not values):
                    raise ValueError(f"{path}: enum must be a non-empty array")
                return (
                    "(" + " | ".join(_lit(json.dumps(v, ensure_ascii=False)) for v in values) + ")"
                )
        kind = schema.get("type")
        if kind is None:
            if "properties" in schema:
                kind = "object"
            else:
                raise ValueError(f"{path}: schema without type, enum or const is not supported")
        if isinstance(kind, list):
            if not kind:
                raise ValueError(f"{path}: empty type list")
            options = [
                self.value({**schema, "type": k}, f"{path}(type {k})", f"{name}-{k}") for k in kind
            ]
            return "(" + " | ".join(options) + ")"
        if kind not in _SUPPORTED:
            raise ValueError(f"{path}: unsupported type {kind!r}")
        unsupported = set(schema) - _ANNOTATIONS - _SUPPORTED[kind]
        if unsupported:
            raise ValueError(
                f"{path}: unsupported keyword(s) for type {kind}: {sorted(unsupported)} "
                f"(supported: {sorted(_SUPPORTED[kind])})"
            )
        return getattr(self, f"_{kind}")(schema, path, name)

    def _string(self, schema: dict[str, Any], path: str, name: str) -> str:
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength")
        for key, v in (("minLength", lo), ("maxLength", hi)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError(f"{path}: {key} must be a non-negative integer")
        if hi is not None and hi < lo:
            raise ValueError(f"{path}: maxLength is smaller than minLength")
        if max(lo, hi or 0) > _GBNF_REPEAT_LIMIT:
            raise ValueError(f"{path}: string lengths above {_GBNF_REPEAT_LIMIT} are not supported")
        char = self.helper("json-char")
        if hi is None:
            count = "*" if lo == 0 else "+" if lo == 1 else f"{{{lo},}}"
        else:
            count = f"{{{lo}}}" if lo == hi else f"{{{lo},{hi}}}"
        return f'"\\"" {char}{count} "\\""'

    def _integer(self, schema: dict[str, Any], path: str, name: str) -> str:
        return self.helper("json-int")

    def _number(self, schema: dict[str, Any], path: str, name: str) -> str:
        return self.helper("json-number")

    def _boolean(self, schema: dict[str, Any], path: str, name: str) -> str:
        return '("true" | "false")'

    def _null(self, schema: dict[str, Any], path: str, name: str) -> str:
        return '"null"'

    def _array(self, schema: dict[str, Any], path: str, name: str) -> str:
        if "items" not in schema or not isinstance(schema["items"], dict):
            raise ValueError(f"{path}: arrays need an `items` schema (an object)")
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems")
        for key, v in (("minItems", lo), ("maxItems", hi)):
            if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0):
                raise ValueError(f"{path}: {key} must be a non-negative integer")
        if hi is not None and hi < lo:
            raise ValueError(f"{path}: maxItems is smaller than minItems")
        if max(lo, hi or 0) > _GBNF_REPEAT_LIMIT:
            raise ValueError(f"{path}: item counts above {_GBNF_REPEAT_LIMIT} are not supported")
        item = self.fresh(f"{name}-item")
        self.rules[item] = self.value(schema["items"], f"{path}.items", item)
        if hi == 0:
            return '"[]"'
        # n items = first item + (n-1) more, each preceded by ", " (json.dumps spacing)
        more_lo = max(lo - 1, 0)
        if hi is None:
            more = f'(", " {item})' + ("*" if more_lo == 0 else f"{{{more_lo},}}")
        else:
            more = f'(", " {item})' + (
                f"{{{more_lo}}}" if more_lo == hi - 1 else f"{{{more_lo},{hi - 1}}}"
            )
        if hi is not None and hi == 1:
            more = ""
        body = f"{item} {more}".strip()
        return f'"[" {body} "]"' if lo > 0 else f'"[" ({body})? "]"'

    def _object(self, schema: dict[str, Any], path: str, name: str) -> str:
        props = schema.get("properties")
        if not isinstance(props, dict) or not props:
            raise ValueError(f"{path}: objects need a non-empty `properties` map")
        extra = schema.get("additionalProperties", False)
        # Extra keys are never generated: exact for `false`, a valid subset for `true`/absent.
        if extra is not False and extra is not True and extra != {}:
            raise ValueError(f"{path}: additionalProperties schemas are not supported")
        required = schema.get("required", [])
        if not isinstance(required, list) or any(r not in props for r in required):
            raise ValueError(f"{path}: `required` must list names from `properties`")
        keys = list(props)
        values = {}
        for key in keys:
            vname = self.fresh(f"{name}-{_slug(key)}")
            self.rules[vname] = self.value(props[key], f"{path}.{key}", vname)
            values[key] = vname
        # Properties come in schema order. tail(i, first) = the members from index i on, where
        # `first` says no member has been written yet (so no leading ", "). An optional member
        # may be skipped. At most two small rules per property keep this linear in size.
        n = len(keys)
        made: dict[tuple[int, bool], str] = {}

        def tail(i: int, first: bool) -> str | None:
            if i == n:
                return None
            if (i, first) in made:
                return made[(i, first)]
            rname = self.fresh(f"{name}-m{i}{'f' if first else ''}")
            made[(i, first)] = rname
            key = keys[i]
            take = ([] if first else ['", "']) + [
                _lit(json.dumps(key, ensure_ascii=False) + ": "),
                values[key],
            ]
            rest = tail(i + 1, False)
            if rest:
                take.append(rest)
            alts = [" ".join(take)]
            if key not in required:
                alts.append(tail(i + 1, first) or '""')
            self.rules[rname] = " | ".join(alts)
            return rname

        return f'"{{" {tail(0, True)} "}}"'

    def fresh(self, name: str) -> str:
        """Reserve a rule name (rule order = reservation order)."""
        cand, k = name, 2
        while cand in self.rules or cand in _HELPERS or cand == "root":
            cand, k = f"{name}-{k}", k + 1
        self.rules[cand] = ""
        return cand

    def render(self, root_expr: str) -> str:
        lines = [f"root ::= {root_expr}"]
        for rname, body in self.rules.items():
            if body:
                lines.append(f"{rname} ::= {body}")
        lines += [_HELPERS[h] for h in self.helpers]
        return "\n".join(lines) + "\n"


def _slug(key: str) -> str:
    """A rule-name fragment for a property name (letters, digits, `-`; GBNF-legal too)."""
    safe = "".join(c if c.isascii() and c.isalnum() else "-" for c in key).strip("-")
    return safe[:24] or "p"


def json_schema_to_ebnf(schema: dict[str, Any]) -> str:
    """An XGrammar-dialect EBNF grammar for JSON documents valid under `schema`.

    The JSON is written like ``json.dumps(value)``: ``{"a": 1, "b": [1, 2]}`` with properties
    in schema order and no other whitespace -- tight on purpose, for small models. Supported:
    object (properties, required; additionalProperties false or absent: extra keys are never
    generated), string (enum, const, minLength, maxLength), integer, number, boolean, null,
    array (items, minItems, maxItems), enum and const of any JSON values, nested objects and a
    list of types. Anything else raises ValueError naming the keyword and its path.
    Integers have at most 19 digits; numbers at most 17 fraction digits.
    """
    if not isinstance(schema, dict):
        raise ValueError("the schema must be a JSON object")
    conv = _SchemaConverter()
    root = conv.value(schema, "$", "root")
    return conv.render(root)


# ---------------------------------------------------------------------------------------------
# Presets

_PERSON_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 40},
        "age": {"type": "integer"},
        "role": {"enum": ["admin", "editor", "viewer"]},
        "tags": {
            "type": "array",
            "items": {"type": "string", "maxLength": 16},
            "maxItems": 4,
        },
        "active": {"type": "boolean"},
    },
    "required": ["name", "age", "role"],
    "additionalProperties": False,
}

PRESETS: list[GrammarPreset] = [
    GrammarPreset(
        name="choice",
        title="Choice A | B",
        description="Exactly one of two letters (the Wafer docs' own example).",
        ebnf='root ::= "A" | "B"',
        example="B",
    ),
    GrammarPreset(
        name="yes_no_json",
        title="Yes/no JSON",
        description='A one-key JSON object: {"answer": "yes"} or {"answer": "no"}.',
        ebnf='root ::= "{\\"answer\\": " answer "}"\nanswer ::= "\\"yes\\"" | "\\"no\\""',
        example='{"answer": "yes"}',
    ),
    GrammarPreset(
        name="iso_date",
        title="ISO date",
        description="A calendar date YYYY-MM-DD (months 01-12, days 01-31).",
        ebnf=(
            'root ::= year "-" month "-" day\n'
            "year ::= [12] [0-9]{3}\n"
            'month ::= "0" [1-9] | "1" [0-2]\n'
            'day ::= "0" [1-9] | [12] [0-9] | "3" [01]'
        ),
        example="2026-11-26",
    ),
    GrammarPreset(
        name="integer_list",
        title="Integer list",
        description="A JSON array of up to 16 integers, e.g. [1, -2, 30].",
        ebnf=('root ::= "[" (int (", " int){0,15})? "]"\nint ::= "-"? ("0" | [1-9] [0-9]{0,8})'),
        example="[1, -2, 30]",
    ),
    GrammarPreset(
        name="csv_row",
        title="CSV row",
        description=(
            "One CSV line of 1-10 fields; a field is plain text without commas or quotes, "
            'or a quoted field where "" stands for a quote.'
        ),
        ebnf=(
            'root ::= field ("," field){0,9}\n'
            "field ::= plain | quoted\n"
            'plain ::= [^,"\\r\\n]{0,40}\n'
            'quoted ::= "\\"" ([^"\\r\\n] | "\\"\\""){0,40} "\\""'
        ),
        example='Alice,30,"New York, NY"',
    ),
    GrammarPreset(
        name="sql_select",
        title="SQL SELECT",
        description=(
            "A small SQL subset: SELECT columns FROM table, optionally WHERE column = value "
            "(a number or a quoted string)."
        ),
        ebnf=(
            'root ::= "SELECT " columns " FROM " ident where?\n'
            'columns ::= "*" | ident (", " ident){0,7}\n'
            'where ::= " WHERE " ident " = " value\n'
            "ident ::= [a-z_] [a-z0-9_]{0,29}\n"
            'value ::= [0-9]{1,10} | "\'" [^\'\\r\\n]{0,40} "\'"'
        ),
        example="SELECT name, email FROM users WHERE id = 42",
    ),
    GrammarPreset(
        name="json_schema_person",
        title="JSON Schema: person",
        description=(
            "Derived from a JSON Schema (name, age, role enum, optional tags and active flag) "
            "with json_schema_to_ebnf."
        ),
        ebnf=json_schema_to_ebnf(_PERSON_SCHEMA),
        example='{"name": "Ada", "age": 36, "role": "admin", "tags": ["math"]}',
        schema=_PERSON_SCHEMA,
    ),
]


def preset(name: str) -> GrammarPreset:
    for p in PRESETS:
        if p.name == name:
            return p
    raise KeyError(name)
