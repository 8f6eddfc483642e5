"""The evaluation runner against a fake transport: every cell through the run path, saved as
it completes, 429 Retry-After honoured, the spend guard before the start, and resume that
never re-sends a finished cell (issue 18)."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from wafer_playground.catalog import Pricing
from wafer_playground.client import WaferClient
from wafer_playground.eval_runner import EvalJob, Gate, estimate, plan, refusal
from wafer_playground.evals import EvalSetup, Judge, parse_delimited
from wafer_playground.guard import PRESENTATION_CAPS
from wafer_playground.store import SQLiteStore
from wafer_playground.store.evals import EvalStore

PRICE = Pricing(input_cpm=Decimal(100), output_cpm=Decimal(200))
ROWS = "a,b,expect_number\n" + "".join(f"{i},{i + 1},{2 * i + 1}\n" for i in range(6))


def sse(text: str) -> bytes:
    chunks = [{"id": "c", "choices": [{"index": 0, "delta": {"content": text}}]},
              {"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
              {"id": "c", "choices": [], "usage": {"prompt_tokens": 10,
                                                   "completion_tokens": 2}}]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


class Fake:
    """Answers `a + b` (model "wrong" adds one); records every prompt it was sent."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []
        self.lock = threading.Lock()
        self.fail_after: int | None = None  # requests after this many drop the connection
        self.rate_limit_first = 0

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        prompt = body["messages"][-1]["content"]
        with self.lock:
            if self.rate_limit_first > 0:
                self.rate_limit_first -= 1
                return httpx.Response(429, headers={"retry-after": "0"}, json={
                    "error": {"message": "slow down", "type": "rate_limit", "code": "rate"}})
            if self.fail_after is not None and len(self.sent) >= self.fail_after:
                raise httpx.ConnectError("the server is gone")
            self.sent.append((body["model"], prompt))
        if body["model"] == "judge":
            verdict = "PASS" if "<answer>\n3" in prompt else "FAIL"
            return httpx.Response(200, headers={"content-type": "text/event-stream"},
                                  content=sse(f"{verdict}\nchecked"))
        a, b = map(int, re.findall(r"\d+", prompt)[:2])
        answer = a + b + (1 if body["model"] == "wrong" else 0)
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=sse(str(answer)))


@pytest.fixture
def estore(tmp_path: Path) -> Iterator[EvalStore]:
    s = SQLiteStore(tmp_path / "e.db")
    yield EvalStore(s.for_owner("key-1"))
    s.close()


def setup_of(**kw: object) -> EvalSetup:
    return EvalSetup("What is {{a}} + {{b}}?", parse_delimited(ROWS), ("right", "wrong"),
                     **kw)  # type: ignore[arg-type]


def job_for(estore: EvalStore, fake: Fake, setup: EvalSetup, run_id: str | None = None,
            concurrency: int = 4) -> EvalJob:
    p = plan(setup)
    rid = run_id or estore.create_run(setup.to_json(), setup.cells(), base_url="http://t/v1")
    client = WaferClient("http://t/v1", transport=httpx.MockTransport(fake), max_retries=0)
    return EvalJob(estore, rid, p, client=client, base_url="http://t/v1",
                   pricing_for=lambda _m: PRICE, concurrency=concurrency, gate=Gate(8))


def test_a_run_checks_prices_and_logs_every_cell(estore: EvalStore) -> None:
    fake = Fake()
    job = job_for(estore, fake, setup_of())
    job.start()
    assert job.wait(30)
    cells = estore.cells(job.run_id)
    assert len(cells) == 12 and {c.status for c in cells} == {"done"}
    assert all(c.passed for c in cells if c.model == "right")
    assert not any(c.passed for c in cells if c.model == "wrong")
    assert estore.get_run(job.run_id).status == "done"  # type: ignore[union-attr]
    # each cell is a request-log row of the run path, priced like a chat turn
    for c in cells:
        rec = estore.store.get_request(c.request_row_id)  # type: ignore[arg-type]
        assert rec is not None and rec.status == "done" and rec.model == c.model
        assert c.cost_usd == Decimal("0.000014")  # 10 in at $1/M + 2 out at $2/M
    assert estore.progress(job.run_id)["spent"] == Decimal("0.000168")


def test_resume_sends_only_cells_that_are_not_done(estore: EvalStore) -> None:
    fake = Fake()
    fake.fail_after = 5  # the server dies after five answers
    job = job_for(estore, fake, setup_of(), concurrency=1)
    job.start()
    assert job.wait(30)
    first = list(fake.sent)
    done = {c.key for c in estore.cells(job.run_id) if c.status == "done"}
    assert len(first) == 5 and len(done) == 5
    # a crash mid-cell leaves it "running": it is sent again too
    left = [c for c in estore.cells(job.run_id) if c.status != "done"]
    estore.update_cell(left[0].id, status="running")
    fake.fail_after = None
    again = job_for(estore, fake, setup_of(), run_id=job.run_id)
    again.start()
    assert again.wait(30)
    resent = fake.sent[5:]
    assert len(resent) == 12 - 5
    by_key = {(c.model, c.row): c for c in estore.cells(job.run_id)}
    prompts_done = {(m, f"What is {r} + {r + 1}?") for (r, m, _k) in done}
    assert not prompts_done & set(resent)  # no finished cell was paid for twice
    assert all(c.status == "done" for c in by_key.values())


def test_rate_limit_waits_and_retries_the_cell(estore: EvalStore) -> None:
    fake = Fake()
    fake.rate_limit_first = 2
    job = job_for(estore, fake, setup_of(), concurrency=1)
    job.start()
    assert job.wait(30)
    assert {c.status for c in estore.cells(job.run_id)} == {"done"}
    errors = [r for r in estore.store.list_requests() if r.status == "error"]
    assert len(errors) == 2 and {r.http_status for r in errors} == {429}


def test_judge_is_counted_apart(estore: EvalStore) -> None:
    fake = Fake()
    setup = EvalSetup("What is {{a}} + {{b}}?", parse_delimited("a,b\n1,2\n"), ("right",),
                      judge=Judge("judge", "The answer must be 3."))
    job = job_for(estore, fake, setup)
    job.start()
    assert job.wait(30)
    (c,) = estore.cells(job.run_id)
    assert c.passed is True and c.judge_cost_usd == Decimal("0.000014")
    assert c.judge_row_id and c.judge_row_id != c.request_row_id
    assert c.reasons[-1].startswith("judge")


def test_stop_returns_in_flight_cells_to_pending(estore: EvalStore) -> None:
    gate = threading.Event()
    fake = Fake()

    def slow(request: httpx.Request) -> httpx.Response:
        gate.wait(5)
        return fake(request)

    setup = setup_of()
    rid = estore.create_run(setup.to_json(), setup.cells(), base_url="http://t/v1")
    client = WaferClient("http://t/v1", transport=httpx.MockTransport(slow), max_retries=0)
    job = EvalJob(estore, rid, plan(setup), client=client, base_url="http://t/v1",
                  pricing_for=lambda _m: PRICE, concurrency=2, gate=Gate(8))
    job.start()
    job.stop()
    gate.set()
    assert job.wait(30)
    assert estore.get_run(rid).status == "stopped"  # type: ignore[union-attr]
    assert not [c for c in estore.cells(rid) if c.status == "running"]
    assert any(c.status == "pending" for c in estore.cells(rid))


def test_the_guard_refuses_a_run_before_it_starts() -> None:
    setup = setup_of(repeats=3, params={"max_tokens": 1000, "temperature": 0.0})
    est = estimate(plan(setup), lambda _m: PRICE)
    assert est.requests == 36 and est.worst_case is not None
    # 36 requests x 1000 output tokens at $2/M = $0.072, plus the prompts
    assert Decimal("0.072") < est.worst_case < Decimal("0.08")
    msg = refusal(est, Decimal("0.05"))
    assert msg and "Refused before starting" in msg and "$0.05" in msg
    assert refusal(est, Decimal("1")) is None and refusal(est, None) is None
    assert "presentation" in (refusal(est, None, caps=PRESENTATION_CAPS, max_tokens=1000) or "")
    unpriced: Callable[[str], Pricing] = lambda _m: Pricing(None, None)  # noqa: E731
    assert "no published price" in (refusal(estimate(plan(setup), unpriced), Decimal(1)) or "")
