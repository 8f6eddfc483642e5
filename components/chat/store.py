"""Chat persistence glue: session-state turns <-> store turns and the request log.

Turn i in `chat_turns` is store turn seq i of the conversation (edits and deletes resync from
the first changed index). Storage problems never break the chat: they are collected and shown
as one warning. `Saver` is created before a stream starts because after a Stop no `st.*` call
(session state included) may run; it only calls the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import streamlit as st

from wafer_playground.runs import TURN_META, turn_meta
from wafer_playground.titles import conversation_title

if TYPE_CHECKING:
    from wafer_playground.store import Store, Surface

TURNS = "chat_turns"  # the transcript in session state (components/chat/transcript.py draws it)
CONVERSATION = "chat_conversation_id"  # also set by the History page to reopen a chat
LOADED = "chat_loaded_conversation"
PROBLEMS = "chat_store_problems"


def _get_store() -> Store | None:
    try:
        from components.history import get_store
    except ImportError:
        return None
    try:
        return get_store()
    except Exception as exc:  # noqa: BLE001 - a broken DB must not take the chat down
        _problem(f"history is not being saved: {exc}")
        return None


def _problem(text: str) -> None:
    problems: list[str] = st.session_state.setdefault(PROBLEMS, [])
    if text not in problems:
        problems.append(text)


def problems() -> list[str]:
    return list(st.session_state.get(PROBLEMS, []))


def _status(turn: dict[str, Any]) -> Any:
    return turn.get("status") or "done"


def _save_turn(store: Store, conv: str, turn: dict[str, Any]) -> None:
    turn["store_id"] = store.start_turn(conv, turn["role"], turn.get("content") or "",
                                        turn_meta(turn), status=_status(turn))


def append(turn: dict[str, Any]) -> None:
    """Save a just-added turn if the conversation already exists in the store."""
    conv = st.session_state.get(CONVERSATION)
    store = _get_store() if conv else None
    if store is None or conv is None:
        return
    try:
        _save_turn(store, conv, turn)
    except Exception as exc:  # noqa: BLE001
        _problem(f"could not save a turn: {exc}")


def resync(turns: list[dict[str, Any]], index: int) -> None:
    """Turns from `index` on changed (edit/delete/regenerate): rewrite them in the store."""
    conv = st.session_state.get(CONVERSATION)
    store = _get_store() if conv else None
    if store is None or conv is None:
        return
    try:
        store.delete_turns_from(conv, index)
        for turn in turns[index:]:
            _save_turn(store, conv, turn)
    except Exception as exc:  # noqa: BLE001
        _problem(f"could not update the saved conversation: {exc}")


def forget() -> None:
    """Start a new conversation next time (the old one stays in History)."""
    st.session_state[CONVERSATION] = None
    st.session_state[LOADED] = None


def load_if_requested() -> None:
    """Reopen the conversation History asked for (`chat_conversation_id`), once."""
    conv = st.session_state.get(CONVERSATION)
    if not conv or st.session_state.get(LOADED) == conv:
        return
    store = _get_store()
    if store is None:
        return
    try:
        stored = store.list_turns(conv)
        record = store.get_conversation(conv)
    except Exception as exc:  # noqa: BLE001
        _problem(f"could not open the conversation: {exc}")
        st.session_state[LOADED] = conv
        return
    if record is None:
        # gone, or another key's: never show it, and never write into it
        _problem("that conversation is not in this key's history")
        st.session_state[CONVERSATION] = None
        return
    turns: list[dict[str, Any]] = []
    for t in stored:
        meta = dict(t.meta or {})
        status = "stopped" if t.status in ("interrupted", "streaming") else t.status
        turns.append({"id": t.id[:12], "role": t.role, "content": t.content,
                      "status": status, "store_id": t.id,
                      **{k: meta[k] for k in TURN_META if k in meta}})
    st.session_state[TURNS] = [t for t in turns if t["role"] != "system"]
    st.session_state[LOADED] = conv
    if record and record.model:
        from components import state

        state.select_model(record.model)  # reopen with the model it was held with


@dataclass
class Saver:
    """Where one generation is recorded: the store and the conversation, found (or created,
    with the turns so far) before streaming. The answer itself is recorded by the run path
    (wafer_playground/runs.py TurnLog); this holds plain references only (Stop-safe)."""

    store: Store | None
    conversation_id: str | None
    problems: list[str] = field(default_factory=list)

    @classmethod
    def begin(cls, turns: list[dict[str, Any]], model: str, surface: Surface) -> Saver:
        problems_list: list[str] = st.session_state.setdefault(PROBLEMS, [])
        store = _get_store()
        conv = st.session_state.get(CONVERSATION)
        saver = cls(store, conv, problems_list)
        if store is None:
            return saver
        try:
            if conv and store.get_conversation(conv) is None:
                # Deleted, or made under another key (the key changed mid-chat): this key's
                # history gets the turns so far as a new conversation.
                conv = None
                for turn in turns:
                    turn.pop("store_id", None)
            if not conv:
                first = next((t["content"] for t in turns if t["role"] == "user"), "")
                title = conversation_title(str(first))  # the gist, not the message again
                conv = store.create_conversation(title, model=model, surface=surface)
                st.session_state[CONVERSATION] = conv
                st.session_state[LOADED] = conv
                saver.conversation_id = conv
            for turn in turns:
                if not turn.get("store_id"):
                    _save_turn(store, conv, turn)
        except Exception as exc:  # noqa: BLE001
            text = f"history is not being saved: {exc}"
            if text not in problems_list:
                problems_list.append(text)
            saver.store = None
        return saver


__all__ = ["CONVERSATION", "TURNS", "Saver", "append", "forget", "load_if_requested", "problems",
           "resync"]
