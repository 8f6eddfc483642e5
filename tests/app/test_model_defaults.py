"""Chat starts from the selected model's recommended sampling (local cards carry it), says
so, and gives it back when the user moves to a model without any or changes it themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pytest_httpx import HTTPXMock

from tests.app.conftest import FAKE_BASE, make_app
from wafer_playground.local import cards

SMOL = cards.model_card(cards.SMOLLM2, n_ctx=4096, max_output_tokens=1024, n_vocab=49152)
PLAIN = {"id": "tiny", "object": "model", "owned_by": "wafer", "max_model_len": 2048,
         "wafer": {"display_name": "Tiny", "capabilities": {"tools": False}}}
HOSTILE = {**PLAIN, "id": "odd", "wafer": {"display_name": "Odd"},
           "local": {"recommended_sampling": {
    "temperature": 9e99, "top_p": "0.5", "seed": 3, "top_k": 40}}}


@pytest.fixture
def env(app_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        httpx_mock: HTTPXMock) -> HTTPXMock:
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(tmp_path / "defaults.db"))
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", is_reusable=True, is_optional=True,
                            json={"object": "list", "data": [SMOL, PLAIN, HOSTILE]})
    return httpx_mock


def _labels(at) -> str:  # type: ignore[no-untyped-def]
    return " ".join(str(c.value) for c in at.caption)


def test_starts_from_the_cards_sampling_and_gives_it_back(env: HTTPXMock) -> None:
    at = make_app("pages/chat.py")
    at.query_params["model"] = SMOL["id"]
    at.run()
    assert not at.exception
    assert at.slider(key="chat_p_temperature").value == pytest.approx(0.2)
    assert at.slider(key="chat_p_top_p").value == pytest.approx(0.9)
    assert "recommended sampling (temperature 0.2, top_p 0.9), from its card" in _labels(at)
    # the request carries them (they differ from the API defaults)
    env.add_response(url=f"{FAKE_BASE}/chat/completions", method="POST",
                     content=b'data: {"choices":[{"index":0,"delta":{"content":"hi"},'
                             b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n')
    at.chat_input[0].set_value("hello").run()
    body = json.loads(env.get_requests(method="POST")[-1].content)
    assert body["temperature"] == pytest.approx(0.2) and body["top_p"] == pytest.approx(0.9)
    # a model without recommendations: back to the API defaults, no label
    at.selectbox(key="chat_model_pick").select("tiny").run()
    assert at.slider(key="chat_p_temperature").value == pytest.approx(1.0)
    assert "recommended sampling" not in _labels(at)


def test_a_users_own_value_is_never_overwritten(env: HTTPXMock) -> None:
    at = make_app("pages/chat.py")
    at.query_params["model"] = "tiny"
    at.run()
    at.slider(key="chat_p_temperature").set_value(0.7).run()
    at.selectbox(key="chat_model_pick").select(SMOL["id"]).run()
    assert at.slider(key="chat_p_temperature").value == pytest.approx(0.7)
    assert at.slider(key="chat_p_top_p").value == pytest.approx(1.0)
    assert "recommended sampling" not in _labels(at)


def test_card_values_are_untrusted(env: HTTPXMock) -> None:
    from wafer_playground.catalog import PriceSource, parse_card
    from wafer_playground.params import model_defaults

    model = parse_card(HOSTILE, PriceSource("live", "t", "now"))
    assert model_defaults(model) == {"top_k": 40}  # out of range, strings and non-sampling go
