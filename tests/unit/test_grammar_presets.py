"""Preset grammars and json_schema_to_ebnf: valid for XGrammar, translatable to GBNF, and their
examples match while near-misses fail at the right character."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from wafer_playground.grammar import check, match, to_gbnf
from wafer_playground.grammar_presets import PRESETS, GrammarPreset, json_schema_to_ebnf, preset

# (preset, a wrong output, where it breaks)
NEAR_MISSES = {
    "choice": ("C", 0),
    "yes_no_json": ('{"answer": "maybe"}', 12),
    "iso_date": ("2026-13-01", 6),
    "integer_list": ("[1, 02]", 5),
    "csv_row": ('a,"b"c', 5),
    "sql_select": ("SELECT name FROM users WHERE id = x", 34),
    "json_schema_person": ('{"name": "Ada", "age": 36, "role": "boss"}', 36),
}


def test_presets_cover_the_brief() -> None:
    names = {p.name for p in PRESETS}
    assert names == set(NEAR_MISSES)
    assert len(names) == len(PRESETS)


@pytest.mark.parametrize("p", PRESETS, ids=lambda p: p.name)
def test_preset_is_valid_and_example_matches(p: GrammarPreset) -> None:
    report = check(p.ebnf)
    assert report.ok, report.issues
    assert p.title and p.description
    r = match(p.ebnf, p.example)
    assert r.ok, r.message
    assert to_gbnf(p.ebnf).startswith("root ::= ")


@pytest.mark.parametrize("p", PRESETS, ids=lambda p: p.name)
def test_preset_near_miss_breaks_at_the_right_place(p: GrammarPreset) -> None:
    text, pos = NEAR_MISSES[p.name]
    r = match(p.ebnf, text)
    assert not r.ok
    assert r.position == pos, r.message
    assert r.expected


@pytest.mark.parametrize("p", PRESETS, ids=lambda p: p.name)
def test_preset_is_tight(p: GrammarPreset) -> None:
    # No free-form whitespace rule: a small model would fill it. Unbounded repetition only
    # over string characters (JSON strings without maxLength).
    assert not re.search(r"\[[ \\tn\\r]+\][*+]", p.ebnf)
    assert "ws" not in check(p.ebnf).rules


def test_preset_lookup() -> None:
    assert preset("iso_date").example == "2026-11-26"
    with pytest.raises(KeyError):
        preset("nope")


def test_person_preset_examples_are_schema_valid() -> None:
    p = preset("json_schema_person")
    assert p.schema is not None
    jsonschema.validate(json.loads(p.example), p.schema)


# --- json_schema_to_ebnf ---------------------------------------------------------------------

SCHEMAS: list[tuple[dict, list, list]] = [
    (  # nested objects, optional members in the middle and at the end, arrays, enums
        {
            "type": "object",
            "properties": {
                "id": {"type": "integer"},
                "label": {"type": "string", "maxLength": 8},
                "score": {"type": "number"},
                "ok": {"type": "boolean"},
                "owner": {
                    "type": "object",
                    "properties": {
                        "name": {"type": "string"},
                        "kind": {"enum": ["user", "bot", 3, None]},
                    },
                    "required": ["kind"],
                },
                "nums": {
                    "type": "array",
                    "items": {"type": "integer"},
                    "minItems": 1,
                    "maxItems": 3,
                },
                "nothing": {"type": "null"},
            },
            "required": ["id", "ok"],
        },  # fmt: skip
        [
            {"id": 1, "ok": True},
            {"id": -20, "label": "abc", "ok": False},
            {"id": 0, "score": -1.5e3, "ok": True, "owner": {"kind": "bot"}},
            {"id": 7, "ok": True, "owner": {"name": 'x\n"y"', "kind": None}, "nums": [1, 2, 3]},
            {"id": 7, "label": "", "score": 0.25, "ok": True, "nums": [5], "nothing": None},
        ],
        [
            {"ok": True},  # missing required
            {"id": 1, "ok": True, "label": "too long!"},  # maxLength 8
            {"id": 1, "ok": True, "nums": []},  # minItems 1
            {"id": 1, "ok": True, "nums": [1, 2, 3, 4]},  # maxItems 3
            {"id": 1.5, "ok": True},  # not an integer
            {"id": 1, "ok": True, "owner": {"kind": "cat"}},  # enum
        ],
    ),
    (  # everything optional: {} is valid
        {"type": "object", "properties": {"a": {"const": "x"}, "b": {"type": ["integer", "null"]}}},
        [{}, {"a": "x"}, {"b": None}, {"a": "x", "b": 3}],
        [{"a": "y"}, {"b": "3"}],
    ),
    (  # top-level array of strings with minLength
        {"type": "array", "items": {"type": "string", "minLength": 2}, "maxItems": 2},
        [[], ["ab"], ["ab", "cde"]],
        [["a"], ["ab", "cd", "ef"]],
    ),
]


@pytest.mark.parametrize("schema, good, bad", SCHEMAS)
def test_schema_grammar_matches_exactly_the_valid_json(schema: dict, good: list, bad: list) -> None:
    ebnf = json_schema_to_ebnf(schema)
    assert check(ebnf).ok, check(ebnf).issues
    to_gbnf(ebnf)  # translatable for the local engine
    for value in good:
        jsonschema.validate(value, schema)
        text = json.dumps(value)
        assert match(ebnf, text).ok, (text, match(ebnf, text).message)
    for value in bad:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(value, schema)
        assert not match(ebnf, json.dumps(value)).ok, value


def test_schema_output_is_compact_and_ordered() -> None:
    ebnf = json_schema_to_ebnf(
        {"type": "object", "properties": {"b": {"type": "integer"}, "a": {"type": "integer"}},
         "required": ["a", "b"]}
    )  # fmt: skip
    assert match(ebnf, '{"b": 1, "a": 2}').ok
    assert not match(ebnf, '{"a": 2, "b": 1}').ok  # schema order
    assert not match(ebnf, '{"b":1,"a":2}').ok  # json.dumps spacing only


def test_schema_property_names_needing_escapes() -> None:
    schema = {"type": "object", "properties": {'we"ird key\\': {"type": "boolean"}, "é": {
        "type": "null"}}, "required": ['we"ird key\\', "é"]}  # fmt: skip
    ebnf = json_schema_to_ebnf(schema)
    assert check(ebnf).ok
    assert match(ebnf, json.dumps({'we"ird key\\': True, "é": None}, ensure_ascii=False)).ok
    assert "_" not in "".join(line.split(" ::= ")[0] for line in to_gbnf(ebnf).splitlines())


@pytest.mark.parametrize(
    "schema, words",
    [
        ({"type": "string", "pattern": "^a"}, ["pattern", "$"]),
        ({"type": "object", "properties": {"x": {"type": "integer", "minimum": 0}}},
         ["minimum", "$.x"]),
        ({"anyOf": [{"type": "string"}]}, ["without type"]),
        ({"type": "array"}, ["items"]),
        ({"type": "object"}, ["properties"]),
        ({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["b"]},
         ["required"]),
        ({"type": "date"}, ["unsupported type"]),
        ({"type": "string", "maxLength": 5000}, ["2000"]),
        ({"enum": []}, ["enum"]),
        ({"type": "object", "properties": {"a": {"type": "integer"}},
          "additionalProperties": {"type": "string"}}, ["additionalProperties"]),
    ],
)  # fmt: skip
def test_schema_unsupported_keywords_raise_clear_errors(schema: dict, words: list[str]) -> None:
    with pytest.raises(ValueError) as exc:
        json_schema_to_ebnf(schema)
    for w in words:
        assert w in str(exc.value)
