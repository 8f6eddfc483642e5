"""The evaluation runner: test set × models × repeats in server-side threads (issue 18).

Not tied to a browser session: a job lives in this process's registry (`JOBS`) until it
ends, so a closed tab does not stop it, and the page only reads the store to draw progress.
Every cell is one `runs.Run` (the one run path: logged, priced, recoverable like a chat
turn) and is saved the moment it completes. A cell that is not `done` — pending, running
when the process died, or an error — is sent again on resume; a `done` cell never is.

Per endpoint (base URL) at most `ENDPOINT_CAP` requests are in flight, across all jobs; a 429
makes every worker on that endpoint wait its `Retry-After` before the cell is sent again.
Before a run starts, the spend guard bounds its worst case (guard.py) and refuses it whole.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from .catalog import Pricing
from .client import WaferClient
from .compare import Encoder, PaneConfig, PaneSpec, Params, build_specs, prompt_estimate
from .costs import format_usd, worst_case
from .errors import RateLimitError, WaferError
from .evals import EvalSetup, Verdict, check_all, judge_body, judge_verdict
from .guard import Caps, check_caps, high_estimate
from .runs import RequestLog, Run, Surface
from .store.evals import EvalCell, EvalStore

ENDPOINT_CAP = 8
MAX_OUTPUT_CHARS = 50_000  # what a cell keeps of an answer (the request log has the rest)
MAX_RATE_LIMIT_WAITS = 6
MAX_RETRY_AFTER_S = 60.0
DEFAULT_RETRY_AFTER_S = 2.0


class Gate:
    """One endpoint's concurrency cap and its 429 back-off, shared by every job."""

    def __init__(self, cap: int) -> None:
        self.slots = threading.BoundedSemaphore(cap)
        self.lock = threading.Lock()
        self.not_before = 0.0

    def hold(self, seconds: float) -> None:
        with self.lock:
            self.not_before = max(self.not_before, time.monotonic() + seconds)

    def wait(self, stopping: threading.Event) -> None:
        while True:
            with self.lock:
                left = self.not_before - time.monotonic()
            if left <= 0 or stopping.wait(min(left, 0.5)):
                return


_GATES: dict[str, Gate] = {}
_GATES_LOCK = threading.Lock()


def gate_for(base_url: str, cap: int = ENDPOINT_CAP) -> Gate:
    with _GATES_LOCK:
        gate = _GATES.get(base_url)
        if gate is None:
            gate = _GATES[base_url] = Gate(cap)
        return gate


# --------------------------------------------------------------------------- the plan


@dataclass(frozen=True)
class Plan:
    """Every request body a run would send (per row and model; repeats resend the same)."""

    setup: EvalSetup
    specs: dict[tuple[int, str], PaneSpec]
    prompts: dict[int, str]


def plan(setup: EvalSetup, *, encode: Callable[[str], Encoder] | None = None) -> Plan:
    """Fill the template for each row and build each model's body with Compare's builders
    (params.build_chat_body, tokens.build_body). Tokenizer errors propagate."""
    params = Params(**{k: v for k, v in setup.params.items()
                       if k in ("temperature", "top_p", "max_tokens", "seed")})
    configs = [PaneConfig(m, params) for m in setup.models]
    specs: dict[tuple[int, str], PaneSpec] = {}
    prompts: dict[int, str] = {}
    for row in setup.tests.rows:
        prompt = setup.prompt_for(row)
        prompts[row.index] = prompt
        text = f"{setup.system}\n\n{prompt}" if setup.surface == "completions" and \
            setup.system else prompt
        for spec in build_specs(configs, setup.surface, prompt=text,
                                system=setup.system if setup.surface == "chat" else "",
                                ebnf=setup.ebnf or None, encode=encode):
            specs[(row.index, spec.model)] = spec
    return Plan(setup, specs, prompts)


@dataclass(frozen=True)
class Estimate:
    requests: int
    worst_case: Decimal | None  # the answers'; None when a price is not published
    judge_requests: int
    judge_worst_case: Decimal | None
    unpriced: tuple[str, ...]

    @property
    def total(self) -> Decimal | None:
        if self.worst_case is None or (self.judge_requests and self.judge_worst_case is None):
            return None
        return self.worst_case + (self.judge_worst_case or Decimal(0))


def estimate(p: Plan, pricing_for: Callable[[str], Pricing]) -> Estimate:
    """The run's worst case: every request at its full max_tokens with no cache hits,
    prompt tokens counted high (guard.high_estimate), times the repeats; the judge's apart."""
    setup = p.setup
    total, unpriced = Decimal(0), set[str]()
    for spec in p.specs.values():
        bound = worst_case(prompt_estimate(spec), spec.max_tokens or 0, pricing_for(spec.model))
        if bound.total is None:
            unpriced.add(spec.model)
        else:
            total += bound.total * setup.repeats
    judge_total: Decimal | None = None
    judge_n = 0
    if setup.judge is not None:
        judge_total = Decimal(0)
        answer = "x" * (4 * int(setup.params.get("max_tokens") or 256))  # ~4 chars a token
        jp = pricing_for(setup.judge.model)
        for (row, _model) in p.specs:
            judge_n += setup.repeats
            bound = worst_case(high_estimate(judge_body(setup.judge, p.prompts[row], answer)),
                               setup.judge.max_tokens, jp)
            if bound.total is None:
                unpriced.add(setup.judge.model)
                judge_total = None
            elif judge_total is not None:
                judge_total += bound.total * setup.repeats
    answers_unpriced = unpriced - ({setup.judge.model} if setup.judge else set())
    return Estimate(len(p.specs) * setup.repeats, None if answers_unpriced else total,
                    judge_n, judge_total, tuple(sorted(unpriced)))


def refusal(est: Estimate, cap: Decimal | None, *, caps: Caps | None = None,
            max_tokens: int = 0) -> str | None:
    """Why the run must not start (spend guard), with the estimate; None when it may."""
    hard = check_caps(max_tokens, caps)
    if hard:
        return hard
    limits = [c for c in (cap, caps.max_cost_usd if caps else None) if c is not None]
    if not limits:
        return None
    limit = min(limits)
    if est.total is None:
        return (f"Refused before starting: no published price for {', '.join(est.unpriced)}, "
                f"so the worst case of these {est.requests:,} requests cannot be checked "
                f"against your {format_usd(limit)} cap.")
    if est.total <= limit:
        return None
    judge = (f" (answers {format_usd(est.worst_case)}, judge "
             f"{format_usd(est.judge_worst_case)})" if est.judge_requests else "")
    return (f"Refused before starting: the worst case of this run is {format_usd(est.total)}"
            f"{judge} for {est.requests:,} requests at their full max_tokens, above your cap "
            f"of {format_usd(limit)}. Lower max_tokens, rows, models or repeats, or raise the "
            "cap.")


# --------------------------------------------------------------------------- the job


@dataclass(frozen=True)
class Progress:
    total: int
    done: int  # finished cells (done or error)
    errors: int
    running: int
    spent: Decimal
    eta_s: float | None
    status: str
    rows: int = 0  # test-set rows (a row is done when all its models and repeats are)
    rows_done: int = 0


class EvalJob:
    """One run in the background: workers pull cells; each is saved as it completes."""

    def __init__(self, estore: EvalStore, run_id: str, p: Plan, *, client: WaferClient,
                 base_url: str, pricing_for: Callable[[str], Pricing],
                 concurrency: int = ENDPOINT_CAP, gate: Gate | None = None,
                 judge_client: WaferClient | None = None, owns_client: bool = False) -> None:
        self.estore = estore
        self.run_id = run_id
        self.plan = p
        self.client = client
        self.judge_client = judge_client or client
        self.base_url = base_url
        self.pricing_for = pricing_for
        self.concurrency = max(1, concurrency)
        self.gate = gate or gate_for(base_url)
        self.stopping = threading.Event()
        self.problems: list[str] = []
        self._runs: set[Run] = set()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._queue: queue.Queue[EvalCell] = queue.Queue()
        self.started_at = time.monotonic()
        self.finished_now = 0
        self.sent = 0  # requests this job sent (answers and judges)
        self.ended = threading.Event()
        self.owns_client = owns_client  # close the client when the job ends (the page's)

    # -- control

    def start(self) -> EvalJob:
        todo = [c for c in self.estore.cells(self.run_id) if c.status != "done"]
        for c in todo:
            self._queue.put(c)
        self.total_todo = len(todo)
        self.estore.set_run_status(self.run_id, "running", note="")
        n = min(self.concurrency, max(1, len(todo)))
        self._threads = [threading.Thread(target=self._worker, daemon=True,
                                          name=f"eval-{self.run_id[:8]}-{i}") for i in range(n)]
        for t in self._threads:
            t.start()
        threading.Thread(target=self._finish_when_done, daemon=True,
                         name=f"eval-{self.run_id[:8]}-end").start()
        return self

    def stop(self) -> None:
        """Stop sending; in-flight requests end "stopped"; their cells go back to pending."""
        self.stopping.set()
        with self._lock:
            runs = list(self._runs)
        for r in runs:
            r.stop()

    def wait(self, timeout: float | None = None) -> bool:
        return self.ended.wait(timeout)

    @property
    def alive(self) -> bool:
        return not self.ended.is_set()

    # -- work

    def _finish_when_done(self) -> None:
        for t in self._threads:
            t.join()
        try:
            self.estore.set_run_status(self.run_id, "stopped" if self.stopping.is_set()
                                       else "done", note="; ".join(self.problems[:3]))
        except Exception as exc:  # noqa: BLE001 - the job must still end
            self.problems.append(f"the run's status was not saved: {exc}")
        finally:
            if self.owns_client:
                self.client.close()
            self.ended.set()
            with _JOBS_LOCK:
                if JOBS.get(self.run_id) is self:
                    del JOBS[self.run_id]

    def _worker(self) -> None:
        while not self.stopping.is_set():
            try:
                cell = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                self._cell(cell)
            except Exception as exc:  # noqa: BLE001 - one bad cell must not end the run
                self.problems.append(f"row {cell.row + 1} on {cell.model}: {exc}")
                with contextlib.suppress(Exception):  # the store itself may be what failed
                    self.estore.update_cell(cell.id, status="error", error=str(exc)[:300])

    def _send(self, surface: Surface, body: dict[str, Any], pricing: Pricing,
              prompt_tokens: int | None, client: WaferClient) -> Run | None:
        """One request through the run path, waiting out 429s; None when stopped first."""
        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            self.gate.wait(self.stopping)
            if self.stopping.is_set():
                return None
            with self.gate.slots:
                if self.stopping.is_set():
                    return None
                run = Run(client, surface, body, pricing=pricing,
                          prompt_tokens=prompt_tokens,
                          log=RequestLog(self.estore.store, base_url=self.base_url,
                                         problems=self.problems))
                with self._lock:
                    self._runs.add(run)
                try:
                    self.sent += 1
                    run.run()
                finally:
                    with self._lock:
                        self._runs.discard(run)
            err = run.error
            if isinstance(err, RateLimitError) and not self.stopping.is_set():
                wait = err.retry_after if err.retry_after is not None else DEFAULT_RETRY_AFTER_S
                self.gate.hold(min(MAX_RETRY_AFTER_S, max(0.0, wait)))
                continue
            return run
        return run

    def _cell(self, cell: EvalCell) -> None:
        setup = self.plan.setup
        spec = self.plan.specs[(cell.row, cell.model)]
        self.estore.update_cell(cell.id, status="running")
        run = self._send(spec.surface, spec.body, self.pricing_for(cell.model),
                         spec.prompt_tokens, self.client)
        if run is None or run.status == "stopped":
            self.estore.update_cell(cell.id, status="pending")
            return
        facts = run.facts()
        fields: dict[str, Any] = {
            "output": run.content[:MAX_OUTPUT_CHARS], "request_row_id": run.record_id,
            "cost_usd": facts.cost.total if facts else None,
            "ttft_s": facts.ttft_s if facts else None,
            "tokens_per_s": facts.tokens_per_s if facts else None,
            "duration_s": (run.ended_at - run.started_at
                           if run.ended_at is not None and run.started_at is not None else None),
        }
        if run.status != "done":
            err = run.error
            fields.update(status="error", passed=False,
                          error=(err.human() if isinstance(err, WaferError) else
                                 f"ended {run.status}")[:500], reasons=["request failed"])
            self.estore.update_cell(cell.id, **fields)
            self._count()
            return
        row = setup.tests.rows[cell.row]
        passed, reasons = check_all(setup.expects_for(row), run.content)
        if setup.judge is not None:
            jrun = self._send("chat", judge_body(setup.judge, self.plan.prompts[cell.row],
                                                 run.content),
                              self.pricing_for(setup.judge.model), None, self.judge_client)
            if jrun is None or jrun.status == "stopped":
                self.estore.update_cell(cell.id, status="pending")
                return
            jf = jrun.facts()
            fields.update(judge_row_id=jrun.record_id,
                          judge_cost_usd=jf.cost.total if jf else None)
            if jrun.status == "done":
                v = judge_verdict(jrun.content)
            else:
                v = Verdict(False, "the judge failed: "
                            + (jrun.error.human() if jrun.error else jrun.status))
            reasons.append(v.reason)
            passed = v.ok if passed is None else (passed and v.ok)
        fields.update(status="done", passed=passed, reasons=reasons)
        self.estore.update_cell(cell.id, **fields)
        self._count()

    def _count(self) -> None:
        with self._lock:
            self.finished_now += 1

    def eta_s(self, remaining: int) -> float | None:
        with self._lock:
            n = self.finished_now
        if n == 0 or remaining <= 0:
            return None if remaining > 0 else 0.0
        return (time.monotonic() - self.started_at) / n * remaining


JOBS: dict[str, EvalJob] = {}
_JOBS_LOCK = threading.Lock()


def start_job(job: EvalJob) -> EvalJob:
    """Register and start `job`; a run already being driven here is not started twice."""
    with _JOBS_LOCK:
        current = JOBS.get(job.run_id)
        if current is not None and current.alive:
            return current
        JOBS[job.run_id] = job
    return job.start()


def job_of(run_id: str) -> EvalJob | None:
    with _JOBS_LOCK:
        return JOBS.get(run_id)


def progress(estore: EvalStore, run_id: str) -> Progress:
    """Progress from the store (any tab, any process), ETA from this process's job."""
    p = estore.progress(run_id)
    counts = p["counts"]
    finished = counts.get("done", 0) + counts.get("error", 0)
    run = estore.get_run(run_id)
    job = job_of(run_id)
    remaining = p["total"] - finished
    return Progress(total=p["total"], done=finished, errors=counts.get("error", 0),
                    running=counts.get("running", 0), spent=p["spent"],
                    eta_s=job.eta_s(remaining) if job is not None else None,
                    status=run.status if run else "missing", rows=p["rows"],
                    rows_done=p["rows_done"])


def todo(cells: Sequence[EvalCell]) -> list[EvalCell]:
    """The cells a (re)start sends: every one not `done`."""
    return [c for c in cells if c.status != "done"]


__all__ = ["ENDPOINT_CAP", "JOBS", "EvalJob", "Estimate", "Gate", "Plan", "Progress",
           "estimate", "gate_for", "job_of", "plan", "progress", "refusal", "start_job", "todo"]
