"""Share links: round trip, compactness, key/personal-data stripping, oversize, hostile input."""

from __future__ import annotations

import base64
import json
import random
import string
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest

from wafer_playground import share
from wafer_playground.share import ShareState, decode, encode, state_from_file, state_to_file

KEY = "wfr_" + "Zq9" * 8


def _full_state() -> ShareState:
    return ShareState(
        page="chat", model="zai-org/GLM-5.2",
        params={"temperature": 0.7, "top_p": 0.9, "max_tokens": 512, "stop": ["\n\n"],
                "response_format": {"type": "json_object"}},
        messages=[{"role": "system", "content": "Be brief."},
                  {"role": "user", "content": "Explain WAL in SQLite ✓"}],
        grammar='root ::= "yes" | "no"',
        scenario={"requests_per_day": 1000, "cache_hit": 0.5, "models": ["a", "b"]},
    )


def test_round_trip_through_a_real_url() -> None:
    state = _full_state()
    res = encode(state, base_url="http://127.0.0.1:8501/chat")
    assert res.ok and res.notice is None and res.removed == ()
    url = res.url("http://127.0.0.1:8501/chat")
    assert len(url) == res.length
    qs = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert set(qs) == {"page", "model", "s"}
    assert qs["page"] == "chat" and qs["model"] == "zai-org/GLM-5.2"  # readable
    out = decode(qs)
    assert out.state == state and out.ignored == () and out.notice is None


def test_compact() -> None:
    state = ShareState(page="tokens", model="m", prompt="word " * 400)
    res = encode(state)
    raw_json = len(json.dumps({"prompt": state.prompt}))
    assert res.ok and len(res.query["s"]) < raw_json / 5


def test_page_and_model_only_have_no_blob() -> None:
    res = encode(ShareState(page="catalog", model="m-1"))
    assert res.query == {"page": "catalog", "model": "m-1"}
    assert decode(res.query).state == ShareState(page="catalog", model="m-1")


@pytest.mark.parametrize("field", ["api_key", "Authorization", "x-api-key", "apiKey",
                                   "client_secret", "user", "metadata", "email",
                                   "safety_identifier", "headers", "extra_headers"])
def test_key_and_personal_fields_are_stripped(field: str) -> None:
    state = ShareState(page="chat", model="m", params={"temperature": 1.0, field: KEY})
    res = encode(state)
    assert res.ok
    assert f"params.{field}" in res.removed and "never shared" in (res.notice or "")
    blob = zlib.decompress(base64.urlsafe_b64decode(res.query["s"] + "=="))
    assert KEY.encode() not in blob and field.encode() not in blob
    assert decode(res.query).state.params == {"temperature": 1.0}  # type: ignore[union-attr]


def test_key_like_text_is_redacted_everywhere() -> None:
    state = ShareState(
        page="chat", model="m", prompt=f"my key is {KEY}",
        messages=[{"role": "user", "content": f"Authorization: Bearer {KEY}"}],
        scenario={"notes": {"deep": [KEY]}, "password": "hunter2hunter2"},
        params={"logit_bias": {"1": 2}, "tools": [{"function": {"api_key": "x"}}]},
    )
    res = encode(state)
    url = res.url("http://h/")
    assert KEY not in url
    blob = zlib.decompress(base64.urlsafe_b64decode(res.query["s"] + "==")).decode()
    assert KEY not in blob and "hunter2" not in blob and "api_key" not in blob
    got = decode(res.query).state
    assert got is not None
    assert got.prompt == "my key is [redacted]"
    assert got.messages[0]["content"] == "Authorization: [redacted]"
    assert got.scenario == {"notes": {"deep": ["[redacted]"]}}
    assert got.params["tools"] == [{"function": {}}]


def test_decode_strips_keys_a_hostile_link_carries() -> None:
    """A hand-made link must not smuggle a key into the page's state."""
    payload = {"v": 1, "params": {"api_key": KEY, "temperature": 0.2},
               "prompt": f"use {KEY}", "unknown_field": 1}
    blob = base64.urlsafe_b64encode(zlib.compress(json.dumps(payload).encode())).decode()
    out = decode({"page": "chat", "s": blob.rstrip("=")})
    assert out.state is not None and out.state.params == {"temperature": 0.2}
    assert out.state.prompt == "use [redacted]"
    assert "params.api_key" in out.ignored and "unknown_field" in out.ignored


def test_oversize_degrades_to_file() -> None:
    rnd = random.Random(7)  # incompressible text
    big = "".join(rnd.choice(string.ascii_letters) for _ in range(9000))
    state = ShareState(page="tokens", model="m", grammar=f'root ::= "{big}"')
    res = encode(state)
    assert not res.ok and res.length > share.MAX_URL_CHARS
    assert "s" not in res.query and res.query == {"page": "tokens", "model": "m"}
    assert "too large for a link" in (res.notice or "") and "file" in (res.notice or "")
    data = state_to_file(state)
    back = state_from_file(data)
    assert back.state == state and back.notice is None
    # a state just under the limit still gets a link
    assert encode(ShareState(page="tokens", grammar=big[:3000])).ok


def test_state_file_is_cleaned_too() -> None:
    data = state_to_file(ShareState(page="chat", params={"api_key": KEY, "top_p": 0.5}))
    assert KEY.encode() not in data
    assert state_from_file(data).state.params == {"top_p": 0.5}  # type: ignore[union-attr]
    assert state_from_file(b"{").notice == "The file is not valid JSON."
    assert "not a Wafer Playground" in (state_from_file(b'{"page":"chat"}').notice or "")


@pytest.mark.parametrize("query", [
    {},
    {"s": ""},
    {"page": "admin"},
    {"model": "m"},  # no page: nothing to open
])
def test_decode_nothing_usable(query: dict) -> None:
    assert decode(query).state is None


@pytest.mark.parametrize(("blob", "why"), [
    ("!!!not-base64!!!", "not valid base64"),
    (base64.urlsafe_b64encode(b"plain bytes").decode(), "corrupted"),
    (base64.urlsafe_b64encode(zlib.compress(b"{nope")).decode(), "not valid JSON"),
    (base64.urlsafe_b64encode(zlib.compress(b'{"temperature": NaN}')).decode(), "not valid JSON"),
    (base64.urlsafe_b64encode(zlib.compress(b"0" * 2_000_000)).decode(), "more than 512 KB"),
    ("A" * 20_000, "too long"),
])
def test_decode_bad_blob_keeps_plain_params(blob: str, why: str) -> None:
    out = decode({"page": "chat", "model": "m", "s": blob})
    assert why in (out.notice or "")
    assert out.state == ShareState(page="chat", model="m")


def test_invalid_fields_are_ignored_not_fatal() -> None:
    raw = {"v": 1, "params": {"temperature": "hot", "max_tokens": 1.5, "stream": "yes",
                              "top_k": True, "stop": [1], "bad name!": 1, "seed": 4},
           "messages": [{"role": "robot", "content": "x"}, {"role": "user", "content": "ok"},
                        "junk"],
           "scenario": ["not", "a", "dict"], "grammar": 42}
    blob = base64.urlsafe_b64encode(zlib.compress(json.dumps(raw).encode())).decode()
    out = decode({"page": "chat", "model": "bad model with spaces", "s": blob})
    st = out.state
    assert st is not None
    assert st.params == {"seed": 4}
    assert st.messages == [{"role": "user", "content": "ok"}]
    assert st.model is None and st.scenario is None and st.grammar is None
    for f in ("model", "params.temperature", "params.max_tokens", "params.stream",
              "params.top_k", "params.stop", "params.bad name!", "messages[0]", "messages[2]",
              "scenario", "grammar"):
        assert f in out.ignored


def test_readable_params_win_over_the_blob() -> None:
    res = encode(ShareState(page="chat", model="a", params={"seed": 1}))
    q = dict(res.query, model="b")  # a reader edited the visible model
    assert decode(q).state == ShareState(page="chat", model="b", params={"seed": 1})


def test_list_valued_query_params() -> None:
    res = encode(ShareState(page="costs", scenario={"n": 1}))
    q = {k: [v] for k, v in res.query.items()}  # parse_qs shape
    assert decode(q).state == ShareState(page="costs", scenario={"n": 1})


def test_newer_link_version_notice() -> None:
    blob = base64.urlsafe_b64encode(zlib.compress(b'{"v": 9, "prompt": "x"}')).decode()
    out = decode({"page": "tokens", "s": blob})
    assert out.state is not None and out.state.prompt == "x"
    assert "newer version" in (out.notice or "")


def test_compare_setup_round_trips_and_is_cleaned() -> None:
    state = share.ShareState(
        page="compare", model="GLM-5.1", params={"top_p": 0.9}, prompt="Which is best?",
        compare={"mode": "chat", "models": ["GLM-5.1", "Kimi-K3"], "blind": True,
                 "panes": [{"temperature": 0.2, "max_tokens": 64}, {"temperature": 1.0,
                                                                    "max_tokens": 32}],
                 "api_key": "wfr_" + "x" * 30})
    res = share.encode(state, base_url="http://h/compare")
    assert res.ok and "compare.api_key" in res.removed
    back = share.decode(res.query)
    assert back.state is not None and back.state.compare is not None
    assert back.state.compare["models"] == ["GLM-5.1", "Kimi-K3"]
    assert back.state.compare["panes"][1] == {"temperature": 1.0, "max_tokens": 32}
    assert "api_key" not in back.state.compare
