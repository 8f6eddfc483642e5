"""Short titles for History: a conversation's gist instead of its first message verbatim."""

from __future__ import annotations

import re

_FILLER = re.compile(
    r"^(?:(?:hi|hello|hey|ok|okay|so|please|pls|kindly)[,!.\s]+)*"
    r"(?:(?:(?:can|could|would|will) you(?: please)?|please|i want you to|i'd like you to|"
    r"help me(?: to)?)\s+)?", re.IGNORECASE)
MAX_WORDS = 8


def conversation_title(first_message: str, *, fallback: str = "Chat") -> str:
    """'Can you please explain server-sent events in two sentences?' ->
    'Explain server-sent events in two sentences'. First sentence only, filler dropped,
    at most MAX_WORDS words (then '…'), first letter capitalised."""
    text = " ".join(str(first_message or "").split())
    if not text:
        return fallback
    text = _FILLER.sub("", text)
    sentence = re.split(r"(?<=[.?!])\s|\n", text, maxsplit=1)[0].strip().rstrip(".?!:;,")
    words = sentence.split()
    if not words:
        return fallback
    title = " ".join(words[:MAX_WORDS]) + ("…" if len(words) > MAX_WORDS else "")
    return title[:1].upper() + title[1:80]


__all__ = ["MAX_WORDS", "conversation_title"]
