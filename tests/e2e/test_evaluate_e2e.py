"""Evaluate in headless Chromium against a real `streamlit run app.py` and the fake Wafer
server (tests/fake_wafer.py): a template with two variables and a 5-row CSV on two models,
the grid, the summary with cost per passing answer, the chart, a blind vote and the
leaderboard (screenshots at 1440×900). Then a run killed halfway (the app server stopped)
resumes on a restarted server, and the fake's request log proves that no finished cell was
sent twice (issue 18)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ROOT, StreamlitServer, wait_for_app
from tests.fake_wafer import FakeWafer, Hit, Reply, answer_stream
from wafer_playground.store import ANONYMOUS, SQLiteStore
from wafer_playground.store.evals import EvalStore

pytestmark = pytest.mark.e2e
SCREENS = ROOT / ".pytest_cache" / "screens"
TIMEOUT_MS = 90_000
TEMPLATE = "Add {{a}} and {{b}}. Answer with the number only."
CSV = "a,b,expect_number\n" + "".join(f"{i},{10 * i},{11 * i}\n" for i in range(1, 6))
STALL_FROM = 4  # in the resume test, rows with a >= 4 hang until the app server is killed


def _numbers(hit: Hit) -> tuple[int, int]:
    body = hit.json()
    a, b = (int(x) for x in re.findall(r"\d+", body["messages"][-1]["content"])[:2])
    return a, b


def answers(stall: bool):  # type: ignore[no-untyped-def]
    """fake-glm adds right, fake-tiny is off by one; with `stall`, late rows never answer."""
    def reply(hit: Hit) -> Reply:
        a, b = _numbers(hit)
        wrong = hit.json()["model"] == "fake-tiny"
        words = [str(a + b + (1 if wrong else 0))]
        return Reply(sse=list(answer_stream(words, prompt_tokens=20)),
                     first_token_s=120.0 if stall and a >= STALL_FROM else 0.2)
    return reply


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeWafer]:
    server = FakeWafer().start()
    try:
        yield server
    finally:
        server.stop()


def _server(fake: FakeWafer, db: Path) -> StreamlitServer:
    return StreamlitServer(env={"WAFER_ENDPOINT": "wafer", "WAFER_BASE_URL": fake.url,
                                "WAFER_API_KEY": "", "WAFER_PLAYGROUND_DB": str(db)})


def _open(page: Page, url: str) -> None:
    page.set_viewport_size({"width": 1440, "height": 900})
    page.goto(url + "/")  # the root first: a cold server started from a sub-path
    wait_for_app(page, TIMEOUT_MS)
    page.goto(url + "/evaluate")
    wait_for_app(page, TIMEOUT_MS)
    expect(page.get_by_role("heading", name="Evaluate")).to_be_visible(timeout=TIMEOUT_MS)


def _set_up(page: Page, tmp: Path) -> None:
    box = page.locator(".st-key-ev_tpl_text textarea")
    box.fill(TEMPLATE)
    box.press("Tab")
    wait_for_app(page, TIMEOUT_MS)
    page.get_by_text("Paste or upload rows").click()
    csv_path = tmp / "rows.csv"
    csv_path.write_text(CSV)
    page.locator(".st-key-ev_upload input[type=file]").set_input_files(str(csv_path))
    wait_for_app(page, TIMEOUT_MS)
    page.get_by_role("button", name="Use uploaded file").click()
    wait_for_app(page, TIMEOUT_MS)
    expect(page.get_by_text("5 row(s).")).to_be_visible(timeout=TIMEOUT_MS)


def _run(page: Page) -> None:
    page.get_by_role("button", name="Run evaluation").click()
    wait_for_app(page, TIMEOUT_MS)
    expect(page.get_by_text(re.compile(r"Started 10 requests"))).to_be_visible(
        timeout=TIMEOUT_MS)
    page.get_by_role("tab", name="Results").click()


def _shot(page: Page, name: str, locator: str | None = None) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    target = page.locator(locator).first if locator else page
    target.screenshot(path=str(SCREENS / name))


def _chat_prompts(fake: FakeWafer) -> list[tuple[str, tuple[int, int]]]:
    return [(h.json()["model"], _numbers(h)) for h in fake.requests_to("POST",
                                                                        "/chat/completions")]


def test_two_variables_five_rows_two_models(fake: FakeWafer, page: Page,
                                            tmp_path: Path) -> None:
    fake.script("POST", "/chat/completions", answers(stall=False))
    fake.clear()
    server = _server(fake, tmp_path / "e2e.db")
    try:
        _open(page, server.url)
        _set_up(page, tmp_path)
        _run(page)
        expect(page.get_by_text(re.compile(r"10/10 cells done"))).to_be_visible(
            timeout=TIMEOUT_MS)
        wait_for_app(page, TIMEOUT_MS)
        expect(page.get_by_text("Summary per model")).to_be_visible()
        expect(page.get_by_test_id("stPlotlyChart").first.locator(".main-svg").first
               ).to_be_visible(timeout=TIMEOUT_MS)
        page.get_by_text("Summary per model").scroll_into_view_if_needed()
        _shot(page, "evaluate_summary_chart.png")
        page.get_by_text("Results: rows × models").scroll_into_view_if_needed()
        _shot(page, "evaluate_grid.png")
        sent = _chat_prompts(fake)
        assert sorted(sent) == sorted((m, (i, 10 * i)) for i in range(1, 6)
                                      for m in ("fake-glm", "fake-tiny"))
        body = fake.requests_to("POST", "/chat/completions")[0].json()
        assert body["messages"][-1]["content"].startswith("Add ")
        # a blind vote from the evaluation's A/B view feeds the leaderboard
        page.get_by_text("Blind vote on answers").click()
        page.get_by_role("button", name="A is better").click()
        wait_for_app(page, TIMEOUT_MS)
        page.get_by_role("tab", name="Leaderboard").click()
        expect(page.locator(".st-key-lb_chart")).to_be_visible(timeout=TIMEOUT_MS)
        page.locator(".st-key-lb_chart").scroll_into_view_if_needed()
        _shot(page, "evaluate_leaderboard.png")
    finally:
        server.stop()
    store = SQLiteStore(tmp_path / "e2e.db")
    es = EvalStore(store.for_owner(ANONYMOUS))
    (run,) = es.list_runs()
    cells = es.cells(run.id)
    store.close()
    assert run.status == "done" and len(cells) == 10
    assert [c.passed for c in cells if c.model == "fake-glm"] == [True] * 5
    assert [c.passed for c in cells if c.model == "fake-tiny"] == [False] * 5
    assert run.template_version and json.loads(json.dumps(run.setup))["template"] == TEMPLATE


def test_a_killed_run_resumes_without_resending_finished_cells(fake: FakeWafer, page: Page,
                                                               tmp_path: Path) -> None:
    db = tmp_path / "resume.db"
    fake.script("POST", "/chat/completions", answers(stall=True))
    fake.clear()
    server = _server(fake, db)
    try:
        _open(page, server.url)
        _set_up(page, tmp_path)
        _run(page)
        # rows 1–3 answer, rows 4–5 hang: 6 of 10 done, then the app server is killed
        expect(page.get_by_text(re.compile(r"3/5 rows · 6/10 cells done"))).to_be_visible(
            timeout=TIMEOUT_MS)
    finally:
        server.stop()
    before = _chat_prompts(fake)
    assert len(before) == 10  # every cell was sent once; four never answered
    store = SQLiteStore(db)
    es = EvalStore(store.for_owner(ANONYMOUS))
    (run,) = es.list_runs()
    done_before = {(c.model, c.row) for c in es.cells(run.id) if c.status == "done"}
    assert len(done_before) == 6 and run.status == "running"
    store.close()

    fake.script("POST", "/chat/completions", answers(stall=False))
    fake.clear()
    server = _server(fake, db)  # a restarted server: opening the page resumes the run
    try:
        _open(page, server.url)
        expect(page.get_by_text(re.compile(r"Resumed"))).to_be_visible(timeout=TIMEOUT_MS)
        page.get_by_role("tab", name="Results").click()
        expect(page.get_by_text(re.compile(r"10/10 cells done"))).to_be_visible(
            timeout=TIMEOUT_MS)
        wait_for_app(page, TIMEOUT_MS)
        _shot(page, "evaluate_resumed.png")
    finally:
        server.stop()
    after = _chat_prompts(fake)
    # the fake's request log: only the four unfinished cells were sent again
    assert sorted(after) == sorted((m, (i, 10 * i)) for i in (4, 5)
                                   for m in ("fake-glm", "fake-tiny"))
    store = SQLiteStore(db)
    es = EvalStore(store.for_owner(ANONYMOUS))
    cells = es.cells(run.id)
    assert all(c.status == "done" for c in cells)
    assert es.get_run(run.id).status == "done"  # type: ignore[union-attr]
    store.close()


def test_local_engine_two_models_token_ids_with_a_digit_grammar(page: Page, local_engine: str,
                                                                tmp_path: Path) -> None:
    """Offline: the same template and 5-row CSV on both local models, as token-id
    completions constrained to digits (one of them is a base model without a chat
    template). Every cell finishes and every answer is digits; whether the sums are right
    is the models' business."""
    from tests.conftest import select_option

    server = StreamlitServer(env={"WAFER_ENDPOINT": "local", "WAFER_LOCAL_URL": local_engine,
                                  "WAFER_PLAYGROUND_DB": str(tmp_path / "local.db")})
    try:
        _open(page, server.url)
        _set_up(page, tmp_path)
        select_option(page, "ev_surface", "Token ids (/v1/completions, optional grammar)")
        wait_for_app(page, TIMEOUT_MS)
        grammar = page.locator(".st-key-ev_ebnf textarea")
        grammar.fill("root ::= [0-9]+")
        grammar.press("Tab")
        wait_for_app(page, TIMEOUT_MS)
        max_tokens = page.locator(".st-key-ev_max input")
        max_tokens.fill("4")  # a sum has at most 3 digits; keeps two CPU cores' run short
        max_tokens.press("Tab")
        wait_for_app(page, TIMEOUT_MS)
        _run(page)
        expect(page.get_by_text(re.compile(r"10/10 cells done"))).to_be_visible(
            timeout=300_000)
        wait_for_app(page, TIMEOUT_MS)
        page.get_by_text("Summary per model").scroll_into_view_if_needed()
        _shot(page, "evaluate_local_engine.png")
    finally:
        server.stop()
    store = SQLiteStore(tmp_path / "local.db")
    es = EvalStore(store.for_owner(ANONYMOUS))
    (run,) = es.list_runs()
    cells = es.cells(run.id)
    requests = store.for_owner(ANONYMOUS).list_requests(surface="completions")
    store.close()
    assert run.status == "done" and len(cells) == 10
    assert all(c.status == "done" and re.fullmatch(r"[0-9]+", c.output or "") for c in cells), \
        [(c.model, c.status, c.output) for c in cells]
    assert len({c.model for c in cells}) == 2
    assert len(requests) >= 10 and all(r.status == "done" for r in requests)
