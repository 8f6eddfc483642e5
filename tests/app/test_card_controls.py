"""Chat under AppTest: the card's reasoning_effort block and chat_completions flags drive the
controls (docs/spec/addendum-2026-12.md §2.1), and max_output_tokens bounds the max-tokens field."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from pytest_httpx import HTTPXMock
from streamlit.testing.v1 import AppTest

from tests.app.conftest import FAKE_BASE, make_app, open_params_tab
from tests.fake_wafer import VISION_CARD

GLM = copy.deepcopy(VISION_CARD)
GLM["id"] = "glm-sys"
GLM["wafer"].update(display_name="GLM sys", reasoning_effort={
    "control": "system_prompt", "efforts": ["none", "low", "high", "max"], "default": "low"},
    chat_completions={"tools": True, "tool_streaming": True, "json_schema": True,
                      "json_object": True, "tools_with_response_format": True})


@pytest.fixture
def env(app_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
        httpx_mock: HTTPXMock) -> HTTPXMock:
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(tmp_path / "cards.db"))
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", json={"object": "list",
                                                             "data": [VISION_CARD, GLM]},
                            is_reusable=True, is_optional=True)
    return httpx_mock


def page(model: str) -> AppTest:
    at = make_app("pages/chat.py")
    at.query_params["model"] = model
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def text(at: AppTest) -> str:
    return " ".join(str(e.value) for e in (*at.caption, *at.markdown, *at.error))


def test_reasoning_efforts_follow_the_card(env: HTTPXMock) -> None:
    kimi = open_params_tab(page(VISION_CARD["id"]), "Tools · reasoning")
    box = kimi.selectbox(key="chat_p_reasoning_effort")
    assert [o for o in box.options if o != "model default"] == ["none", "high", "max"]
    assert "natively by the model" in text(kimi)
    glm = open_params_tab(page("glm-sys"), "Tools · reasoning")
    box = glm.selectbox(key="chat_p_reasoning_effort")
    assert [o for o in box.options if o != "model default"] == ["none", "low", "high", "max"]
    assert "system-prompt conditioning" in text(glm) and "default low" in text(glm)


def test_chat_completions_flags_disable_controls_and_say_why(env: HTTPXMock) -> None:
    at = open_params_tab(page(VISION_CARD["id"]), "Tools · reasoning")
    tools = at.text_area(key="chat_p_tools")
    assert tools.disabled
    assert "tool_streaming is false" in text(at)
    open_params_tab(at, "Length · output")
    assert "json_schema is false" in text(at)
    # max_output_tokens (8,192) bounds the max-tokens field
    assert at.number_input(key="chat_p_max_tokens").max == 8192
    # json_schema picked anyway: a blocking issue naming the card flag
    at.radio(key="chat_p_response_format").set_value("json_schema").run()
    assert any("json_schema is false" in e.value for e in at.error)
    glm = open_params_tab(page("glm-sys"), "Tools · reasoning")
    assert not glm.text_area(key="chat_p_tools").disabled


def test_compare_max_tokens_is_bounded_by_the_panes_cards(env: HTTPXMock) -> None:
    small = copy.deepcopy(GLM)
    small["id"], small["wafer"]["max_output_tokens"] = "small-out", 1024
    small["wafer"]["display_name"] = "Small out"
    env.reset()
    env.add_response(url=f"{FAKE_BASE}/models", json={"object": "list", "data": [
        VISION_CARD, GLM, small]}, is_reusable=True, is_optional=True)
    at = make_app("pages/compare.py")
    at.session_state["cmp_max"] = 20_000
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    at.selectbox(key="cmp_model_0").set_value(VISION_CARD["id"])
    at.selectbox(key="cmp_model_1").set_value("glm-sys").run()
    assert at.number_input(key="cmp_max").max == 8192
    assert at.number_input(key="cmp_max").value == 8192  # clamped, not refused later
    at.selectbox(key="cmp_model_1").set_value("small-out").run()
    assert at.number_input(key="cmp_max").max == 1024
    assert at.number_input(key="cmp_max").value == 1024
    at.toggle(key="cmp_perpane").set_value(True).run()
    assert at.number_input(key="cmp_max_0").max == 8192
    assert at.number_input(key="cmp_max_1").max == 1024
