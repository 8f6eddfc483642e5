"""The Compare page under AppTest: the real app.py against a mocked Wafer endpoint."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock
from streamlit.testing.v1 import AppTest

from components.compare import SESSION_KEY, CompareSession
from components.presentation import PRESENT_KEY
from tests.app.conftest import FAKE_BASE, make_app
from wafer_playground.compare import summarize, to_csv, with_labels
from wafer_playground.store import SQLiteStore

FIXTURE = json.loads((Path(__file__).resolve().parent.parent / "fixtures" / "models_3.json")
                     .read_text())
pytestmark = pytest.mark.httpx_mock(assert_all_responses_were_requested=False)
PAGE = "pages/compare.py"
ANSWERS = {"GLM-5.1": ["Paris", "."], "Kimi-K3": ["It", " is", " Paris"],
           "Qwen3.5-397B-A17B": ["Lyon"]}


def sse(*chunks: dict) -> bytes:
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


def chat_stream(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    words = ANSWERS[body["model"]]
    chunks = [{"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}]
    chunks += [{"choices": [{"index": 0, "delta": {"content": w}}]} for w in words]
    chunks.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": 20,
                                            "completion_tokens": len(words)}})
    return httpx.Response(200, content=sse(*chunks),
                          headers={"content-type": "text/event-stream",
                                   "x-request-id": f"req-{body['model']}"})


@pytest.fixture
def db(app_env: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "compare.db"
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(path))
    return path


def _serve(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", json=FIXTURE, is_reusable=True)
    httpx_mock.add_callback(chat_stream, url=f"{FAKE_BASE}/chat/completions", is_reusable=True)


def _run(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _click(at: AppTest, key: str) -> AppTest:
    at.button(key=key).click()
    return _run(at)


def _page(httpx_mock: HTTPXMock, **state: object) -> AppTest:
    _serve(httpx_mock)
    at = make_app(PAGE)
    for k, v in state.items():
        at.session_state[k] = v
    return _run(at)


def _bodies(httpx_mock: HTTPXMock) -> list[dict]:
    return [json.loads(r.content) for r in httpx_mock.get_requests()
            if r.url.path.endswith("/chat/completions")]


def _markdown(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


def test_two_models_compared_with_summary(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    assert at.title[0].value == "Compare models"
    at.selectbox(key="cmp_model_0").set_value("GLM-5.1")
    at.selectbox(key="cmp_model_1").set_value("Kimi-K3")
    at.text_area(key="cmp_prompt").set_value("What is the capital of France?")
    at.number_input(key="cmp_max").set_value(64)
    _click(at, "cmp_run")

    bodies = _bodies(httpx_mock)
    assert sorted(b["model"] for b in bodies) == ["GLM-5.1", "Kimi-K3"]
    for b in bodies:
        assert b["messages"] == [{"role": "user", "content": "What is the capital of France?"}]
        assert b["max_tokens"] == 64 and b["stream"] is True
        assert b["stream_options"] == {"include_usage": True}

    sess: CompareSession = at.session_state[SESSION_KEY]
    assert [s.status for s in sess.snaps] == ["done", "done"]
    assert sess.snaps[0].content == "Paris."
    glm = sess.results[0]
    # actual cost: 20 in * $1.00/M + 2 out * $3.20/M
    assert glm.cost_usd == Decimal("0.0000264") and glm.cost_kind == "actual"
    # Kimi's price comes from the dated snapshot: dearer, so GLM is the cheapest
    assert sess.results[1].cost_usd is not None and sess.results[1].cost_usd > glm.cost_usd
    text = _markdown(at)
    assert "#### GLM-5.1" in text and "#### Kimi-K3" in text
    assert "TTFT" in text and "tok/s" in text and "finish: stop" in text
    assert "$0.0000264" in text
    # summary table with the cheapest marked; both exports offered
    table = at.table[0].value
    assert list(table["Pane"]) == ["GLM-5.1", "Kimi-K3"]
    assert str(table.loc[0, "Cost"]).startswith("★")
    assert not str(table.loc[1, "Cost"]).startswith("★")
    # the exact request bodies, for developers (never a header or key)
    raw = [json.loads(j.proto.body) for j in at.json]
    assert [b["model"] for b in raw] == ["GLM-5.1", "Kimi-K3"]
    assert all("Authorization" not in j.proto.body for j in at.json)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Summary as CSV", "Summary as Markdown"]
    # each pane is in the request log (History and Costs read it)
    store = SQLiteStore(db)
    assert sorted(r.model for r in store.list_requests()) == ["GLM-5.1", "Kimi-K3"]
    store.close()


def test_empty_prompt_sends_nothing(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    _click(at, "cmp_run")
    assert _bodies(httpx_mock) == []
    assert any("Enter a prompt" in e.value for e in at.error)


def test_spend_guard_blocks_before_sending(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    at.selectbox(key="cmp_model_0").set_value("GLM-5.1")
    at.selectbox(key="cmp_model_1").set_value("GLM-5.1")
    at.text_area(key="cmp_prompt").set_value("hello")
    at.number_input(key="cmp_max").set_value(32_000)
    at.number_input(key="cmp_cap").set_value(0.01)
    _click(at, "cmp_run")
    assert _bodies(httpx_mock) == []
    err = " ".join(e.value for e in at.error)
    assert "Blocked before sending" in err and "above your cap of $0.01" in err
    assert "Lower max_tokens to" in err
    # an unpublished price with a cap: blocked too, with the reason
    at.selectbox(key="cmp_model_1").set_value("Qwen3.5-397B-A17B")
    at.number_input(key="cmp_max").set_value(16)
    _click(at, "cmp_run")
    assert _bodies(httpx_mock) == []
    assert any("not published" in e.value for e in at.error)


def test_blind_mode_hides_names_until_vote(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    at.selectbox(key="cmp_model_0").set_value("GLM-5.1")
    at.selectbox(key="cmp_model_1").set_value("Qwen3.5-397B-A17B")
    at.toggle(key="cmp_blind").set_value(True)
    at.text_area(key="cmp_prompt").set_value("Capital of France?")
    _click(at, "cmp_run")
    sess: CompareSession = at.session_state[SESSION_KEY]
    text = _markdown(at) + " ".join(c.value for c in at.caption)
    assert "GLM-5.1" not in text and "Qwen3.5" not in text
    assert list(at.table[0].value["Pane"]) == ["Model A", "Model B"]
    assert len(at.json) == 0  # request bodies name the model: not before the vote
    csv_text = to_csv(summarize(with_labels(sess.results, sess.labels(), hide_models=True)))
    assert "GLM" not in csv_text and "Qwen" not in csv_text
    # vote for the pane that holds GLM-5.1, wherever the shuffle put it
    glm_label = next(s.label for s in sess.specs if s.model == "GLM-5.1")
    _click(at, f"cmp_vote_{glm_label}")
    assert any("GLM-5.1" in s.value and "Vote saved" in s.value for s in at.success)
    assert "GLM-5.1" in " ".join(at.table[0].value["Pane"])
    store = SQLiteStore(db)
    votes = store.list_votes()
    store.close()
    assert len(votes) == 1 and votes[0].winner == "GLM-5.1" and votes[0].blind
    assert sorted(votes[0].candidates) == ["GLM-5.1", "Qwen3.5-397B-A17B"]
    assert votes[0].meta["winner_label"] == glm_label


def test_presentation_scenario_runs_with_one_click(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock, **{PRESENT_KEY: True})
    assert at.title[0].value == "Which model?"
    _click(at, "scn_run_cheapest")
    bodies = _bodies(httpx_mock)
    # the two cheapest chat models; the scenario's limits are inside the presentation caps
    assert len(bodies) >= 2 and all(b["max_tokens"] == 24 for b in bodies)
    assert bodies[0]["messages"][0] == {"role": "system",
                                        "content": "Answer with the city name only."}
    sess: CompareSession = at.session_state[SESSION_KEY]
    passed = dict(zip([s.model for s in sess.specs], sess.passed, strict=True))
    assert passed["GLM-5.1"] is True and passed.get("Qwen3.5-397B-A17B") in (False, None)
    assert any("Cheapest model that answered correctly: **GLM-5.1**" in s.value
               for s in at.success)
    # no request ids or raw bodies while presenting
    assert not any("request id" in c.value for c in at.caption)
    assert len(at.json) == 0
    # chart text is sized for a room (SVG text ignores the page's larger root font)
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    assert len(figs) == 2
    assert all(f["layout"]["font"]["size"] == 18 for f in figs)


def test_presentation_caps_block_large_requests(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock, **{PRESENT_KEY: True})
    at.text_area(key="cmp_prompt").set_value("hi")
    at.number_input(key="cmp_max").set_value(1000)
    _click(at, "cmp_run")
    assert _bodies(httpx_mock) == []
    assert any("presentation limit of 256" in e.value for e in at.error)


def test_csv_export_matches_results(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    at.selectbox(key="cmp_model_0").set_value("GLM-5.1")
    at.selectbox(key="cmp_model_1").set_value("Qwen3.5-397B-A17B")
    at.text_area(key="cmp_prompt").set_value("Capital?")
    _click(at, "cmp_run")
    sess: CompareSession = at.session_state[SESSION_KEY]
    rows = list(csv.DictReader(io.StringIO(to_csv(summarize(sess.results)))))
    assert [r["model"] for r in rows] == ["GLM-5.1", "Qwen3.5-397B-A17B"]
    assert rows[0]["completion_tokens"] == "2" and rows[1]["completion_tokens"] == "1"
    assert rows[0]["finish_reason"] == "stop"


def test_query_param_turns_presentation_on_and_exit_turns_it_off(db: Path,
                                                                  httpx_mock: HTTPXMock) -> None:
    _serve(httpx_mock)
    at = make_app(PAGE)
    at.query_params["present"] = "1"
    _run(at)
    assert at.session_state[PRESENT_KEY] is True
    assert at.title[0].value == "Which model?"
    assert [b.label for b in at.button if b.key and b.key.startswith("scn_run_")] == [
        "Run", "Run", "Run"]
    assert any("Presentation mode · caps: 256 tokens" in c.value for c in at.caption)
    _click(at, "presentation_exit")
    assert at.session_state[PRESENT_KEY] is False
    assert at.title[0].value == "Compare models"
    assert "present" not in at.query_params
    # and the sidebar toggle turns it back on, putting ?present=1 in the URL
    at.toggle(key="presentation_toggle").set_value(True)
    _run(at)
    assert at.session_state[PRESENT_KEY] is True
    assert at.query_params["present"] in ("1", ["1"])


def completion_stream(request: httpx.Request) -> httpx.Response:
    body = json.loads(request.content)
    text = {"GLM-5.1": ["y", "es"], "Kimi-K3": ["may", "be"]}[body["model"]]
    chunks = [{"choices": [{"index": 0, "text": t, "finish_reason": None}]} for t in text]
    chunks.append({"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})
    chunks.append({"choices": [], "usage": {"prompt_tokens": len(body["prompt"]),
                                            "completion_tokens": len(text)}})
    return httpx.Response(200, content=sse(*chunks),
                          headers={"content-type": "text/event-stream"})


def test_token_id_completion_with_grammar_verdicts(db: Path, httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_callback(completion_stream, url=f"{FAKE_BASE}/completions", is_reusable=True)
    at = _page(httpx_mock)
    at.segmented_control(key="cmp_mode").set_value("completions")
    _run(at)
    at.segmented_control(key="cmp_prompt_kind").set_value("ids")
    _run(at)
    at.selectbox(key="cmp_model_0").set_value("GLM-5.1")
    at.selectbox(key="cmp_model_1").set_value("Kimi-K3")
    at.text_area(key="cmp_ids").set_value("[9703, 25, 7]")
    at.text_area(key="cmp_grammar").set_value('root ::= "yes" | "no"')
    _click(at, "cmp_run")
    bodies = [json.loads(r.content) for r in httpx_mock.get_requests()
              if r.url.path.endswith("/completions")]
    assert len(bodies) == 2
    assert all(b["prompt"] == [9703, 25, 7] and b["ebnf"] == 'root ::= "yes" | "no"'
               for b in bodies)
    sess: CompareSession = at.session_state[SESSION_KEY]
    assert [s.content for s in sess.snaps] == ["yes", "maybe"]
    assert [r.grammar_ok for r in sess.results] == [True, False]
    assert [r.prompt_tokens for r in sess.results] == [3, 3]
    table = at.table[0].value
    assert list(table["Grammar"]) == ["✓ matches", "✗ no match"]
    assert any("grammar: breaks" in c.value for c in at.caption)


def test_invalid_grammar_or_ids_block_the_run(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    at.segmented_control(key="cmp_mode").set_value("completions")
    _run(at)
    at.segmented_control(key="cmp_prompt_kind").set_value("ids")
    _run(at)
    at.text_area(key="cmp_ids").set_value("1, two, 3")
    _click(at, "cmp_run")
    assert any("not an integer" in e.value for e in at.error)
    at.text_area(key="cmp_ids").set_value("1 2 3")
    at.text_area(key="cmp_grammar").set_value('root ::= "a" |')
    _click(at, "cmp_run")
    assert any("not valid EBNF" in e.value for e in at.error)
    assert not [r for r in httpx_mock.get_requests() if r.url.path.endswith("/completions")]


# ---- share links --------------------------------------------------------------------------------

CANARY = "wfr_CANARY" + "7" * 20


def _compare_link(at: AppTest) -> str:
    links = [str(c.value) for c in at.code if "page=compare" in str(c.value)]
    assert links, "the Share popover shows a link"
    return links[-1]


def _open_link(httpx_mock: HTTPXMock, url: str) -> AppTest:
    from urllib.parse import parse_qs, urlsplit

    at = make_app(PAGE)
    for k, v in parse_qs(urlsplit(url).query).items():
        at.query_params[k] = v[0]
    return _run(at)


def test_share_link_reproduces_the_comparison(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock, conn_key=CANARY)
    at.segmented_control(key="cmp_n").set_value(3).run()
    for i, m in enumerate(["Kimi-K3", "GLM-5.1", "Qwen3.5-397B-A17B"]):
        at.selectbox(key=f"cmp_model_{i}").set_value(m)
    at.toggle(key="cmp_perpane").set_value(True).run()
    at.slider(key="cmp_temp_1").set_value(0.3)
    at.number_input(key="cmp_max_2").set_value(48)
    at.slider(key="cmp_top_p").set_value(0.9)
    at.text_input(key="cmp_system").set_value("Be terse.")
    at.text_area(key="cmp_prompt").set_value("What is the capital of France?")
    _run(at)
    url = _compare_link(at)
    assert "CANARY" not in url

    fresh = _open_link(httpx_mock, url)
    assert "Be terse." in [c.value for c in fresh.code]  # the system prompt, shown first
    fresh.button(key="share_apply_compare").click().run()
    assert fresh.segmented_control(key="cmp_n").value == 3
    assert [fresh.selectbox(key=f"cmp_model_{i}").value for i in range(3)] == [
        "Kimi-K3", "GLM-5.1", "Qwen3.5-397B-A17B"]
    assert fresh.toggle(key="cmp_perpane").value is True
    assert fresh.slider(key="cmp_temp_1").value == 0.3
    assert fresh.number_input(key="cmp_max_2").value == 48
    assert fresh.text_area(key="cmp_prompt").value == "What is the capital of France?"
    _click(fresh, "cmp_run")
    bodies = {b["model"]: b for b in _bodies(httpx_mock)[-3:]}
    assert sorted(bodies) == ["GLM-5.1", "Kimi-K3", "Qwen3.5-397B-A17B"]
    assert bodies["GLM-5.1"]["temperature"] == 0.3
    assert bodies["Qwen3.5-397B-A17B"]["max_tokens"] == 48
    assert all(b["top_p"] == 0.9 for b in bodies.values())
    assert all(b["messages"][0] == {"role": "system", "content": "Be terse."}
               for b in bodies.values())
    # applied once: the user's later edits win over the link
    fresh.text_area(key="cmp_prompt").set_value("Another question").run()
    assert fresh.text_area(key="cmp_prompt").value == "Another question"


def test_share_link_with_unknown_models_and_bad_values(db: Path, httpx_mock: HTTPXMock) -> None:
    from wafer_playground import share

    _serve(httpx_mock)
    link = share.encode(share.ShareState(
        page="compare", params={"temperature": 9.0, "top_p": 0.5},
        prompt="hi", compare={"mode": "chat", "models": ["GLM-5.1", "no-such-model"]}),
        base_url="http://x/compare")
    at = _open_link(httpx_mock, link.url("http://x/compare"))
    assert at.selectbox(key="cmp_model_0").value == "GLM-5.1"
    assert at.slider(key="cmp_top_p").value == 0.5
    assert at.slider(key="cmp_temp").value == 0.7  # out of range: the default stays
    notes = " ".join(c.value for c in at.caption)
    assert "not applied" in notes and "no-such-model" in notes and "temperature" in notes


def test_a_card_never_rewrites_the_custom_form(db: Path, httpx_mock: HTTPXMock) -> None:
    """Issue 16: a card used to leave max_tokens 24 and per-pane temperatures behind."""
    at = _page(httpx_mock, **{PRESENT_KEY: True})
    before = {k: at.session_state[k] for k in ("cmp_max", "cmp_temp", "cmp_n")}
    # token-ID cards need a tokenizer without a download: not offered here, and say why
    cards = " ".join(c.value for c in at.caption)
    assert "Not ready here" in cards
    assert at.button(key="scn_run_xray").disabled and at.button(key="scn_run_json").disabled
    assert not at.button(key="scn_run_cheapest").disabled
    _click(at, "scn_run_cheapest")
    assert all(b["max_tokens"] == 24 for b in _bodies(httpx_mock))
    after = {k: at.session_state[k] for k in ("cmp_max", "cmp_temp", "cmp_n")}
    assert after == before and not at.session_state["cmp_perpane"]
    # the next custom run uses the form's own max_tokens, not the card's 24
    at.text_area(key="cmp_prompt").set_value("Capital?")
    n = len(_bodies(httpx_mock))
    _click(at, "cmp_run")
    assert {b["max_tokens"] for b in _bodies(httpx_mock)[n:]} == {before["cmp_max"]}


def test_pane_pickers_show_names_and_prices(db: Path, httpx_mock: HTTPXMock) -> None:
    at = _page(httpx_mock)
    labels = list(at.selectbox(key="cmp_model_0").options)
    assert any(lbl.startswith("GLM-5.1 · $1.00 in / $3.20 out per 1M") for lbl in labels)
