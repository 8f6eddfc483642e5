"""The naive baseline: Streamlit's chat tutorial, streaming with `st.write_stream`.

`?mode=write_stream` (default) passes the raw token generator to `st.write_stream`;
`?mode=once` reads the whole stream and draws it once at the end (a render-once control).
The upstream is `BENCH_BASE_URL` (the fake SSE server). Same `submit_mode="stop"` input as
the product, so Stop can be compared too.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import httpx
import streamlit as st

BASE_URL = os.environ.get("BENCH_BASE_URL", "http://127.0.0.1:8765/v1")


def tokens(messages: list[dict[str, str]]) -> Iterator[str]:
    # The `with` blocks live inside the generator so a Stop (generator finalised) closes
    # the upstream connection, as in the tutorial's OpenAI-client version.
    with httpx.Client(timeout=httpx.Timeout(10, read=60)) as client, client.stream(
            "POST", f"{BASE_URL}/chat/completions",
            json={"model": "bench-model", "messages": messages, "stream": True}) as resp:
        for line in resp.iter_lines():
            if line == "data: [DONE]":
                break
            if not line.startswith("data: "):
                continue
            for choice in json.loads(line[6:]).get("choices", []):
                piece = choice.get("delta", {}).get("content")
                if piece:
                    yield piece


mode = st.query_params.get("mode", "write_stream")
st.session_state.setdefault("messages", [])
messages: list[dict[str, str]] = st.session_state.messages

for m in messages:
    with st.chat_message(m["role"]):
        st.markdown(m["content"])

if prompt := st.chat_input("Say something", submit_mode="stop"):
    messages.append({"role": "user", "content": prompt})
    with st.chat_message("user"):
        st.markdown(prompt)
    with st.chat_message("assistant"):
        if mode == "once":
            text = "".join(tokens(messages))
            st.markdown(text)
        else:
            text = str(st.write_stream(tokens(messages)))
    messages.append({"role": "assistant", "content": text})
