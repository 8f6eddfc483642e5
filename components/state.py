"""Typed accessors for durable session state shared across pages.

Widget-owned keys vanish when their widget is not drawn (another page), so values that must
survive page switches live under plain keys here.
"""

from __future__ import annotations

import streamlit as st

from wafer_playground.catalog import Catalog, Model

SELECTED_MODEL = "selected_model"


def selected_model_id(catalog: Catalog) -> str | None:
    """The model the user picked (query param `model` wins on first load), else the first."""
    wanted = st.session_state.get(SELECTED_MODEL)
    if wanted is None:
        wanted = st.query_params.get("model")
    if wanted and catalog.get(str(wanted)) is not None:
        return str(wanted)
    return catalog.models[0].id if catalog.models else None


def selected_model(catalog: Catalog) -> Model | None:
    mid = selected_model_id(catalog)
    return catalog.get(mid) if mid else None


def select_model(model_id: str) -> None:
    st.session_state[SELECTED_MODEL] = model_id
