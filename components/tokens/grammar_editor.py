"""Grammar editor: preset library, live validation (line, column, message), JSON Schema helper.

Validation and conversion come from `wafer_playground.grammar` / `grammar_presets`; this
module only draws them.
"""

from __future__ import annotations

import json

import streamlit as st

from wafer_playground import grammar
from wafer_playground.grammar_presets import PRESETS, GrammarPreset, json_schema_to_ebnf
from wafer_playground.store import StoreError

GRAMMAR_KEY = "tok_grammar"
PRESET_KEY = "tok_preset"
SCHEMA_KEY = "tok_schema"
SAVE_NAME = "tok_save_name"
_FLASH = "tok_grammar_flash"
NONE_PRESET = "— none (unconstrained) —"


def presets() -> list[GrammarPreset]:
    return list(PRESETS)


def _preset_by_name(name: str) -> GrammarPreset | None:
    return next((p for p in presets() if p.name == name), None)


def _apply_preset() -> None:
    chosen = _preset_by_name(st.session_state.get(PRESET_KEY) or "")
    st.session_state[GRAMMAR_KEY] = chosen.ebnf if chosen is not None else ""


def _convert_schema() -> None:
    text = st.session_state.get(SCHEMA_KEY) or ""
    try:
        schema = json.loads(text)
    except json.JSONDecodeError as exc:
        st.session_state[_FLASH] = ("error", f"The schema is not valid JSON: line {exc.lineno}, "
                                             f"column {exc.colno}: {exc.msg}")
        return
    try:
        st.session_state[GRAMMAR_KEY] = json_schema_to_ebnf(schema)
    except (ValueError, TypeError, KeyError) as exc:
        st.session_state[_FLASH] = ("error", f"This schema cannot be converted: {exc}")
        return
    st.session_state[PRESET_KEY] = NONE_PRESET
    st.session_state[_FLASH] = ("success", "Converted the schema into the grammar below.")


def set_grammar(ebnf: str) -> None:
    """Load a grammar into the editor (call before the editor is drawn, or from a callback)."""
    st.session_state[GRAMMAR_KEY] = ebnf
    st.session_state[PRESET_KEY] = next((p.name for p in presets() if p.ebnf == ebnf),
                                        NONE_PRESET)


def grammar_editor() -> tuple[str, grammar.GrammarReport | None]:
    """Draw the editor; return (ebnf, report) -- report None when the grammar is empty."""
    library = presets()
    names = [NONE_PRESET, *[p.name for p in library]]
    st.session_state.setdefault(PRESET_KEY, NONE_PRESET)
    if st.session_state[PRESET_KEY] not in names:
        st.session_state[PRESET_KEY] = NONE_PRESET
    titles = {p.name: p.title for p in library}
    st.selectbox("Preset", names, key=PRESET_KEY, on_change=_apply_preset,
                 format_func=lambda n: titles.get(n, n),
                 help="A starter grammar; edit it freely below.")
    chosen = _preset_by_name(st.session_state[PRESET_KEY])
    if chosen is not None:
        st.caption(f"{chosen.description} Matches e.g. `{chosen.example}`")

    flash = st.session_state.pop(_FLASH, None)
    if flash:
        (st.success if flash[0] == "success" else st.error)(flash[1])

    st.session_state.setdefault(GRAMMAR_KEY, "")
    ebnf = st.text_area(
        "EBNF grammar (XGrammar dialect, entry rule `root`)", key=GRAMMAR_KEY, height=170,
        placeholder='root ::= "A" | "B"',
        help="Validated by the same accept/reject rules as Wafer's XGrammar; errors show the "
             "line and column. Leave empty for an unconstrained run.",
    )
    report = _validation(ebnf)

    _library(ebnf, report)
    with st.expander("JSON Schema → EBNF"):
        st.text_area("JSON Schema", key=SCHEMA_KEY, height=140,
                     placeholder='{"type": "object", "properties": {"answer": '
                                 '{"enum": ["yes", "no"]}}, "required": ["answer"]}')
        st.button("Convert into the grammar", key="tok_schema_convert", on_click=_convert_schema)
    return ebnf, report


def _save(ebnf: str) -> None:
    from components.history import get_store

    name = (st.session_state.get(SAVE_NAME) or "").strip()
    if not name:
        st.session_state[_FLASH] = ("error", "Give the grammar a name to save it.")
        return
    try:
        get_store().save_grammar(name, ebnf)
    except StoreError as exc:
        st.session_state[_FLASH] = ("error", f"Not saved: {exc}")
        return
    st.session_state[_FLASH] = ("success", f"Saved “{name}” to the library (see History).")


def _load(name: str) -> None:
    from components.history import get_store

    found = get_store().get_grammar(name)
    if found is None:
        st.session_state[_FLASH] = ("error", f"“{name}” is no longer in the library.")
        return
    set_grammar(found.ebnf)


def _library(ebnf: str, report: grammar.GrammarReport | None) -> None:
    from components.history import get_store

    with st.expander("Saved grammars"):
        try:
            saved = get_store().list_grammars()
        except StoreError as exc:
            st.caption(f"Library unavailable: {exc}")
            return
        if saved:
            cols = st.columns([3, 1], vertical_alignment="bottom")
            names = [g.name for g in saved]
            if st.session_state.get("tok_saved_pick") not in names:
                st.session_state["tok_saved_pick"] = names[0]  # deleted in History meanwhile
            pick = cols[0].selectbox("Saved", names, key="tok_saved_pick")
            cols[1].button("Load", key="tok_saved_load", on_click=_load, args=(pick,),
                           width="stretch")
        else:
            st.caption("No saved grammars yet.")
        cols = st.columns([3, 1], vertical_alignment="bottom")
        cols[0].text_input("Name", key=SAVE_NAME, placeholder="e.g. ticket classifier")
        cols[1].button("Save", key="tok_saved_save", on_click=_save, args=(ebnf,),
                       disabled=report is None or not report.ok, width="stretch",
                       help="Only a grammar that validates can be saved.")


def _validation(ebnf: str) -> grammar.GrammarReport | None:
    if not ebnf.strip():
        st.caption("No grammar: runs are unconstrained.")
        return None
    report = grammar.check(ebnf)
    if report.ok:
        rules = ", ".join(f"`{r}`" for r in report.rules[:12])
        more = "…" if len(report.rules) > 12 else ""
        st.success(f"Grammar OK · {len(report.rules)} rule(s): {rules}{more}",
                   icon=":material/check_circle:")
        return report
    lines = ebnf.splitlines()
    for issue in report.issues[:5]:
        st.error(f"**Line {issue.line}, column {issue.column}:** {issue.detail}",
                 icon=":material/error:")
        if 1 <= issue.line <= len(lines):
            src = lines[issue.line - 1]
            caret = " " * max(0, issue.column - 1) + "^"
            st.code(f"{src}\n{caret}", language=None)
    return report
