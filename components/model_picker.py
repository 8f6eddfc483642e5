"""Model picker: price ($/1M in/out), context and capability badges inside the options.

The choice is durable (components.state, survives page switches) and mirrored in the
`model` query parameter so a copied URL opens the same model.
"""

from __future__ import annotations

import streamlit as st

from components import state
from wafer_playground.catalog import Catalog, Model, format_tokens
from wafer_playground.costs import format_per_million
from wafer_playground.untrusted import clean, md_text

_KEY = "chat_model_pick"


def price_text(model: Model) -> str:
    p = model.pricing
    if not p.published:
        return "price not published"
    inp, out = format_per_million(p, "input"), format_per_million(p, "output")
    snap = " (snapshot)" if p.is_snapshot else ""
    return f"{inp} in / {out} out per 1M{snap}"


def context_text(n: int | None) -> str:
    # the same words as the catalog and Costs (wafer_playground/catalog.format_tokens)
    return f"{format_tokens(n)} context" if n else "context ?"


def chat_block_reason(model: Model) -> str | None:
    """Why chat cannot work with this model (shown, and sending is refused)."""
    if model.disabled_reason:
        return model.disabled_reason
    if not model.chat_template:
        return ("this is a base model without a chat template: use the Token & grammar page "
                "(/v1/completions)")
    return None


def option_label(model: Model) -> str:
    badges = []
    if model.tools:
        badges.append("🛠 tools")
    if model.reasoning:
        badges.append("🧠 reasoning")
    if model.vision:
        badges.append("👁 vision")
    if model.zdr_supported:
        badges.append("🔒 ZDR")
    if chat_block_reason(model):
        badges.append("⛔ no chat")
    parts = [clean(model.display_name), price_text(model), context_text(model.context_length)]
    return " · ".join(parts + badges)


def badges_markdown(model: Model) -> str:
    """Coloured badges for the selected model (Streamlit markdown badge syntax)."""
    out = [f":gray-badge[{context_text(model.context_length)}]"]
    if model.max_output_tokens:
        out.append(f":gray-badge[max out {model.max_output_tokens:,}]")
    for flag, label, colour in ((model.tools, "tools", "blue"),
                                (model.reasoning, "reasoning", "violet"),
                                (model.vision, "vision", "orange")):
        if flag is True:
            out.append(f":{colour}-badge[{label}]")
        elif flag is None:
            out.append(f":gray-badge[{label}: card silent]")
    if model.zdr_supported:
        out.append(":green-badge[:material/lock: ZDR]")
    if model.tier:
        out.append(f":gray-badge[{md_text(model.tier.replace('_', ' '))}]")
    if model.local:
        out.append(":gray-badge[local engine]")
    return " ".join(out)


def _on_pick() -> None:
    picked = st.session_state.get(_KEY)
    if picked:
        state.select_model(str(picked))


def model_picker(catalog: Catalog, *, label: str = "Model") -> Model | None:
    """Draw the picker; return the selected model (None when the catalog is empty)."""
    if not catalog.models:
        st.warning("No models: check the connection in the sidebar.")
        return None
    ids = catalog.ids
    current = state.selected_model_id(catalog)
    index = ids.index(current) if current in ids else 0
    by_id = {m.id: m for m in catalog.models}
    picked = st.selectbox(label, ids, index=index, key=_KEY, on_change=_on_pick,
                          format_func=lambda mid: option_label(by_id[mid]),
                          help="Prices are per 1M tokens (input / output); badges come from "
                               "the model card.")
    model = by_id[str(picked)]
    if st.session_state.get(state.SELECTED_MODEL) != model.id:
        state.select_model(model.id)
    if st.query_params.get("model") != model.id:
        st.query_params["model"] = model.id  # the share link carries the model
    return model


__all__ = ["badges_markdown", "chat_block_reason", "context_text", "model_picker",
           "option_label", "price_text"]
