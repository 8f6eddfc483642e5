"""The Evaluate page under AppTest: the real app.py against a mocked Wafer endpoint; the run
goes on in the background and the page draws it from the store (issue 18)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pandas as pd
import pytest
from pytest_httpx import HTTPXMock
from streamlit.testing.v1 import AppTest

from components.evaluate import RUN
from tests.app.conftest import FAKE_BASE, make_app
from wafer_playground.eval_runner import job_of
from wafer_playground.store import ANONYMOUS, SQLiteStore
from wafer_playground.store.evals import EvalStore

FIXTURE = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "models_3.json")
                     .read_text())
pytestmark = pytest.mark.httpx_mock(assert_all_responses_were_requested=False)
PAGE = "pages/evaluate.py"
MODELS = ["GLM-5.1", "Kimi-K3"]


def sse(*chunks: dict) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def answer(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    nums = [int(x) for x in re.findall(r"\d+", body["messages"][-1]["content"])[:2]]
    a, b = nums if len(nums) == 2 else (0, 0)
    text = str(a + b if body["model"] == "GLM-5.1" else a * b)
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=sse(
        {"choices": [{"index": 0, "delta": {"content": text}}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 20, "completion_tokens": 2}}))


@pytest.fixture
def db(app_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "evaluate.db"
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(path))
    return path


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _frame(at: AppTest, column: str) -> pd.DataFrame:
    """The first table on the page with this column (AppTest does not keep their keys)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _page(httpx_mock: HTTPXMock) -> AppTest:
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", json=FIXTURE, is_reusable=True)
    httpx_mock.add_callback(answer, url=f"{FAKE_BASE}/chat/completions", is_reusable=True)
    at = make_app(PAGE)
    at.session_state["ev_models"] = MODELS
    return _run(at)


def test_a_run_on_two_models_draws_summary_and_grid(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    assert at.title[0].value == "Evaluate"
    at.text_area(key="ev_tpl_text").set_value("What is {{a}} + {{b}}?")
    at.button(key="ev_start").click()
    _run(at)
    rid = at.session_state[RUN]
    job = job_of(rid)
    if job is not None:
        assert job.wait(30)
    _run(at)
    store = SQLiteStore(db)
    cells = EvalStore(store.for_owner(ANONYMOUS)).cells(rid)
    store.close()
    assert len(cells) == 4 and {c.status for c in cells} == {"done"}
    summary = _frame(at, "cost per passing answer")
    assert list(summary["model"]) == MODELS
    assert list(summary["passed"]) == ["2/2", "0/2"]
    assert summary.loc[0, "cost per passing answer"].startswith("$")
    assert summary.loc[1, "cost per passing answer"] == "— (none passed)"
    grid = _frame(at, "GLM-5.1 ✓")
    assert list(grid["GLM-5.1 ✓"]) == ["✓ pass"] * 2 and list(grid["Kimi-K3 ✓"]) == ["✗ fail"] * 2
    assert list(grid["GLM-5.1 answer"]) == ["5", "17"]
    # the template was saved as version 1 and the run is tied to it
    assert "Version 1 of 1" in "\n".join(c.value for c in at.caption)


def test_guard_refuses_before_anything_is_sent(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    at.text_input(key="ev_cap").set_value("0.0000001")
    at.button(key="ev_start").click()
    _run(at)
    assert any("Refused before starting" in e.value for e in at.error)
    assert not [r for r in httpx_mock.get_requests() if r.url.path.endswith("/completions")]


def test_a_bad_test_set_says_where(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    at.text_area(key="ev_paste").set_value("a,b,expect_regex\n1,2,(\n")
    _run(at)
    at.button(key="ev_use_paste").click()
    _run(at)
    assert any("row 1, column “expect_regex”" in e.value for e in at.error)


def test_a_saved_template_fills_compare_and_chat(db: Path, httpx_mock: HTTPXMock) -> None:
    store = SQLiteStore(db)
    EvalStore(store.for_owner(ANONYMOUS)).save_template("capital", "Capital of {{country}}?")
    store.close()
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", json=FIXTURE, is_reusable=True)
    httpx_mock.add_callback(answer, url=f"{FAKE_BASE}/chat/completions", is_reusable=True)
    at = _run(make_app("pages/compare.py"))
    assert at.button(key="cmp_tpl_use").disabled  # {{country}} not filled yet
    at.text_area(key="cmp_tpl_var_capital_country").set_value("France")
    _run(at)
    at.button(key="cmp_tpl_use").click()
    _run(at)
    assert at.text_area(key="cmp_prompt").value == "Capital of France?"
    at = _run(make_app("pages/chat.py"))
    at.text_area(key="chat_tpl_var_capital_country").set_value("Peru")
    _run(at)
    at.button(key="chat_tpl_use").click()
    _run(at)
    sent = [json.loads(r.content) for r in httpx_mock.get_requests()
            if r.url.path.endswith("/chat/completions")]
    assert sent and sent[-1]["messages"][-1] == {"role": "user", "content": "Capital of Peru?"}
