"""Compare: one prompt to 2-4 models at once, a per-pane result, a best-of summary, exports.

Over 600 lines: the pane specs, the runner, the results and the exports share the PaneSpec /
PaneSnapshot / PaneResult types and are read together; each part below is short.

Three parts, all free of Streamlit:

- `CompareRun` starts one worker thread per pane. Each thread runs its request through the one
  run path (`runs.Run`, over the shared, thread-safe `WaferClient`), which assembles, prices
  and logs it; the script thread only calls `snapshot()` and draws. That is what makes the panes
  stream *at the same time* while every Streamlit call stays on the script thread.
- `pane_result()` turns a finished snapshot into numbers (TTFT, tokens/s, cost, grammar).
- `summarize()` picks the best value per column (ties all win, missing values never do) and
  `to_csv()` / `to_markdown()` / `summary_figure()` / `timeline_figure()` export it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any, Literal

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from . import media
from .catalog import Model, Pricing
from .client import WaferClient
from .costs import MAX_REQUEST_TOKENS, Cost, Usage, UsageError, cost_of, format_usd
from .errors import WaferError
from .guard import Caps, check_request, high_estimate
from .params import build_chat_body
from .params import validate as validate_chat
from .runs import RequestLog, Run
from .store import RequestRecord
from .tokens import CompletionSettings, build_body
from .tokens import validate as validate_completion
from .untrusted import csv_text, md_text

Surface = Literal["chat", "completions"]
PaneStatus = Literal["pending", "streaming", "done", "stopped", "error"]
ALIASES = ("Model A", "Model B", "Model C", "Model D")
MAX_PANES = len(ALIASES)

# --------------------------------------------------------------------------- requests


@dataclass(frozen=True)
class PaneSpec:
    """One pane's request. `body` is the full request body (model included)."""

    model: str
    surface: Surface
    body: dict[str, Any]
    label: str  # what the UI shows: the model id, or "Model A" in blind mode
    grammar: str | None = None  # EBNF the output is checked against (sent as `ebnf`)
    prompt_tokens: int | None = None  # exact for token-ID prompts, else None
    prompt_pieces: tuple[str, ...] = ()  # the prompt as the model's tokenizer split it

    @property
    def max_tokens(self) -> int | None:
        value = self.body.get("max_tokens")
        return int(value) if isinstance(value, int) else None


@dataclass(frozen=True)
class Params:
    temperature: float = 0.7
    top_p: float = 1.0
    max_tokens: int = 256
    seed: int | None = None

    def values(self) -> dict[str, Any]:
        """As the Chat page's parameter values (wafer_playground/params.py SPECS names)."""
        return {"temperature": self.temperature, "top_p": self.top_p,
                "max_tokens": self.max_tokens, "seed": self.seed}

    def settings(self) -> CompletionSettings:
        """As the Token page's completion settings (wafer_playground/tokens.py)."""
        return CompletionSettings(max_tokens=self.max_tokens, temperature=self.temperature,
                                  top_p=self.top_p, seed=self.seed, stream=False,
                                  logprobs=None, return_token_ids=False)


SENT_ALWAYS = ("temperature", "top_p", "max_tokens")  # shown on every pane, so always sent


def chat_body(model: Model | str, prompt: str, params: Params, *, system: str = "",
              parts: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """The Chat page's body builder (params.build_chat_body). `parts`: media content parts
    (wafer_playground/media.py) sent after the text."""
    message: dict[str, Any] = {"role": "user", "content": [
        {"type": "text", "text": prompt}, *(dict(p) for p in parts)] if parts else prompt}
    return build_chat_body(model, [message], {**params.values(), "system": system},
                           always=SENT_ALWAYS)


def completion_body(model: str, token_ids: Sequence[int], params: Params, *,
                    ebnf: str | None = None) -> dict[str, Any]:
    """The Token page's body builder (tokens.build_body)."""
    return build_body(model, [int(t) for t in token_ids], params.settings(), ebnf=ebnf)


def problems_of(spec: PaneSpec, model: Model | None) -> list[str]:
    """The checks each page makes before sending, for one pane: the Chat page's parameter
    validation (chat), the Token page's (completions)."""
    b = spec.body
    if spec.surface == "chat":
        values = {k: b.get(k) for k in ("temperature", "top_p", "max_tokens", "seed")}
        return [f"{spec.label}: {i}" for i in validate_chat(values, model) if i.blocking]
    settings = CompletionSettings(max_tokens=b.get("max_tokens"),
                                  temperature=b.get("temperature"), top_p=b.get("top_p"),
                                  seed=b.get("seed"))
    return [f"{spec.label}: {p.message}" for p in validate_completion(
        b.get("prompt"), settings, ebnf=spec.grammar, model=spec.label,  # blind-safe
        vocab_size=model.vocab_size if model else None)]


def assign_labels(models: Sequence[str], *, blind: bool,
                  order: Sequence[int] | None = None) -> list[tuple[int, str]]:
    """(original index, label) in display order.

    Blind mode shows panes in `order` (a shuffle chosen by the caller) under neutral
    aliases, so neither the name nor the position the user picked gives the model away.
    Otherwise labels are model ids, made unique when a model appears twice.
    """
    if len(models) > MAX_PANES:
        raise ValueError(f"at most {MAX_PANES} panes")
    idx = list(order) if order is not None else list(range(len(models)))
    if sorted(idx) != list(range(len(models))):
        raise ValueError("order must be a permutation of the pane indices")
    if blind:
        return [(i, ALIASES[pos]) for pos, i in enumerate(idx)]
    out: list[tuple[int, str]] = []
    for i in idx:
        same = [j for j, m in enumerate(models) if m == models[i]]
        label = models[i] if len(same) == 1 else f"{models[i]} #{same.index(i) + 1}"
        out.append((i, label))
    return out


@dataclass(frozen=True)
class PaneConfig:
    """What the user set for one pane before anything is tokenized or sent."""

    model: str
    params: Params


Encoder = Callable[[str], tuple[list[int], tuple[str, ...]]]  # model -> (ids, pieces)


def build_specs(configs: Sequence[PaneConfig], surface: Surface, *, prompt: str,
                system: str = "", ebnf: str | None = None, ids: Sequence[int] | None = None,
                encode: Callable[[str], Encoder] | None = None, blind: bool = False,
                order: Sequence[int] | None = None,
                parts: Sequence[dict[str, Any]] = ()) -> list[PaneSpec]:
    """Pane specs in display order.

    Completions take either one id list for every pane (`ids`) or the text `prompt`
    tokenized per model (`encode(model)(prompt)`), since each model has its own vocabulary.
    Encoder errors propagate, naming nothing secret; the caller shows them.
    """
    labelled = assign_labels([c.model for c in configs], blind=blind, order=order)
    specs: list[PaneSpec] = []
    grammar = ebnf if ebnf and ebnf.strip() else None
    for i, label in labelled:
        cfg = configs[i]
        pane_ids: list[int]
        pieces: tuple[str, ...]
        if surface == "chat":
            specs.append(PaneSpec(cfg.model, "chat", chat_body(cfg.model, prompt, cfg.params,
                                                               system=system, parts=parts),
                                  label))
            continue
        if ids is not None:
            pane_ids, pieces = list(ids), ()
        elif encode is not None:
            pane_ids, pieces = encode(cfg.model)(prompt)
        else:
            raise ValueError("a completion needs token ids or a tokenizer")
        specs.append(PaneSpec(cfg.model, "completions",
                              completion_body(cfg.model, pane_ids, cfg.params, ebnf=grammar),
                              label, grammar=grammar, prompt_tokens=len(pane_ids),
                              prompt_pieces=tuple(pieces)))
    return specs


def prompt_estimate(spec: PaneSpec) -> int:
    """Exact for token-ID prompts, a deliberately high estimate for chat text."""
    if spec.prompt_tokens is not None:
        return spec.prompt_tokens
    return high_estimate(spec.body)  # media parts count as a guess each, not their base64


def preflight(specs: Sequence[PaneSpec], pricing_for: Callable[[str], Pricing], *,
              cap: Decimal | None = None, caps: Caps | None = None) -> list[str]:
    """Spend-guard messages for the panes that must not be sent (empty list: all clear).
    A comparison is sent whole or not at all, so one blocked pane blocks the run."""
    problems = []
    for spec in specs:
        # named by label: in blind mode the message must not reveal which pane is which
        msg = check_request(prompt_estimate(spec), spec.max_tokens or 0,
                            pricing_for(spec.model), cap=cap, caps=caps, model=spec.label)
        if msg:
            problems.append(msg)
    return problems


# --------------------------------------------------------------------------- the runner


@dataclass(frozen=True)
class PaneSnapshot:
    """An immutable copy of one pane's state, safe to read on the script thread."""

    index: int
    spec: PaneSpec
    status: PaneStatus
    content: str
    reasoning: str
    finish_reason: str | None
    usage: dict[str, Any] | None
    ttft_s: float | None
    tokens_per_s: float | None
    completion_tokens: int
    completion_source: str  # "usage" | "chunks" | "chars/4"
    started_s: float | None  # seconds after the run began: request sent
    first_token_s: float | None  # first generated text
    ended_s: float | None  # stream finished (done, stopped or failed)
    error: WaferError | None = None
    request_id: str | None = None
    record_id: str | None = None  # the pane's request-log row

    @property
    def streaming(self) -> bool:
        return self.status in ("pending", "streaming")


class _Pane:
    """One pane: its run (wafer_playground/runs.py) plus what cancel() froze."""

    def __init__(self, index: int, spec: PaneSpec, run: Run) -> None:
        self.index = index
        self.spec = spec
        self.run = run
        self.frozen_at: float | None = None  # cancel() marked it stopped at this time


class CompareRun:
    """N concurrent runs, one worker thread each; the script thread reads snapshots.

    Each pane is a `runs.Run`, so it is logged as "streaming" when sent and finalised when
    it ends, like a chat turn. `cancel()` is safe from any thread (also from a `finally`
    after Streamlit's Stop, where no `st.*` call may run). It marks every unfinished pane
    "stopped" at once, freezing its text, so the UI never waits. The worker itself is not
    interrupted mid-read (closing a socket under another thread's blocking read is not
    reliable); its run notices on its next chunk or at the read timeout and ends then.
    """

    def __init__(self, client: WaferClient, specs: Sequence[PaneSpec], *,
                 pricing_for: Callable[[str], Pricing] | None = None,
                 log_for: Callable[[PaneSpec], RequestLog | None] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        # `clock` must share time.perf_counter's origin: Stream.started_at is stamped with it
        if not specs:
            raise ValueError("nothing to compare")
        self.client = client
        self.clock = clock
        price = pricing_for or (lambda _model: Pricing())
        self.panes = [
            _Pane(i, s, Run(client, s.surface, s.body, pricing=price(s.model),
                            prompt_tokens=s.prompt_tokens, prompt_estimate=prompt_estimate(s),
                            log=log_for(s) if log_for else None, clock=clock))
            for i, s in enumerate(specs)]
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._threads: list[threading.Thread] = []
        self.t0: float | None = None

    def start(self) -> CompareRun:
        self.t0 = self.clock()
        for pane in self.panes:
            t = threading.Thread(target=pane.run.run, daemon=True,
                                 name=f"compare-pane-{pane.index}")
            self._threads.append(t)
        for t in self._threads:
            t.start()
        return self

    def cancel(self) -> None:
        now = self.clock()
        self._cancel.set()
        for pane in self.panes:
            pane.run.stop()
            with self._lock:
                if pane.run.status in ("pending", "streaming") and pane.frozen_at is None:
                    pane.frozen_at = now

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    def _status(self, pane: _Pane) -> PaneStatus:
        return "stopped" if pane.frozen_at is not None else pane.run.status

    @property
    def done(self) -> bool:
        """Every pane has a final status (workers of stopped panes may still be winding down)."""
        if not self._threads:
            return False
        with self._lock:
            return all(self._status(p) not in ("pending", "streaming") for p in self.panes)

    @property
    def workers_alive(self) -> int:
        return sum(t.is_alive() for t in self._threads)

    def wait(self, timeout: float | None = None, *, poll: float = 0.01) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self.done:
            if deadline is not None and time.monotonic() >= deadline:
                return False
            time.sleep(poll)
        return True

    def snapshot(self) -> list[PaneSnapshot]:
        return [self._snap(p) for p in self.panes]

    def _rel(self, t: float | None) -> float | None:
        return None if t is None or self.t0 is None else t - self.t0

    def _snap(self, pane: _Pane) -> PaneSnapshot:
        run = pane.run
        with self._lock:
            status = self._status(pane)
            frozen_at = pane.frozen_at
        with run.lock:
            acc = run.acc
            m = acc.metrics()
            ended = frozen_at if frozen_at is not None else run.ended_at
            sent = run.started_at if run.stream is None and run.result is None \
                else acc.started_at
            return PaneSnapshot(
                index=pane.index, spec=pane.spec, status=status, content=acc.content,
                reasoning=acc.reasoning, finish_reason=acc.finish_reason,
                usage=dict(acc.usage) if acc.usage else None,
                ttft_s=m.ttft_s if acc.first_token_at is not None else None,
                tokens_per_s=m.tokens_per_s, completion_tokens=m.completion_tokens,
                completion_source=m.completion_source,
                started_s=self._rel(sent),
                first_token_s=self._rel(acc.first_token_at),
                ended_s=self._rel(ended) if status in ("done", "stopped", "error") else None,
                error=None if frozen_at is not None else run.error,
                request_id=run.request_id, record_id=run.record_id)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class PaneResult:
    label: str
    model: str
    status: PaneStatus
    ttft_s: float | None = None
    tokens_per_s: float | None = None
    total_s: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost_usd: Decimal | None = None
    cost_kind: str | None = None  # "actual" | "estimate"
    finish_reason: str | None = None
    grammar_ok: bool | None = None  # None: no grammar on this run
    error: str | None = None
    params: dict[str, Any] = field(default_factory=dict)


def pane_cost(snap: PaneSnapshot, pricing: Pricing, *,
              prompt_estimate: int | None = None) -> Cost | None:
    """Actual cost from the usage chunk; an estimate from streamed tokens when it is missing
    (Stop, cut stream), so a stopped pane still shows what it spent. None: nothing to price."""
    if snap.usage:
        try:
            return cost_of(Usage.from_openai(snap.usage), pricing, kind="actual")
        except UsageError:
            pass
    prompt = snap.spec.prompt_tokens if snap.spec.prompt_tokens is not None else prompt_estimate
    if prompt is None and snap.completion_tokens == 0:
        return None
    return cost_of(Usage(prompt or 0, snap.completion_tokens), pricing, kind="estimate")


def pane_result(snap: PaneSnapshot, pricing: Pricing, *, grammar_ok: bool | None = None,
                prompt_estimate: int | None = None) -> PaneResult:
    cost = pane_cost(snap, pricing, prompt_estimate=prompt_estimate)
    prompt_tokens = None
    reported = (snap.usage or {}).get("prompt_tokens")
    if isinstance(reported, int) and 0 <= reported <= MAX_REQUEST_TOKENS:  # a server's number
        prompt_tokens = int(reported)
    elif snap.spec.prompt_tokens is not None:
        prompt_tokens = snap.spec.prompt_tokens
    total = None
    if snap.started_s is not None and snap.ended_s is not None:
        total = snap.ended_s - snap.started_s
    params: dict[str, Any] = {k: snap.spec.body[k]
                              for k in ("temperature", "top_p", "max_tokens", "seed")
                              if k in snap.spec.body}
    return PaneResult(
        label=snap.spec.label, model=snap.spec.model, status=snap.status,
        ttft_s=snap.ttft_s, tokens_per_s=snap.tokens_per_s, total_s=total,
        prompt_tokens=prompt_tokens,
        completion_tokens=snap.completion_tokens if snap.status != "error" or
        snap.completion_tokens else None,
        cost_usd=cost.total if cost else None, cost_kind=cost.kind if cost else None,
        finish_reason=snap.finish_reason, grammar_ok=grammar_ok,
        error=snap.error.human() if snap.error else None, params=params,
    )


# --------------------------------------------------------------------------- past runs


KEEP_OUTPUT = 2000  # characters of each pane's answer kept with its log row (History)


@dataclass(frozen=True)
class PastRun:
    """A comparison as the request log kept it: its panes' rows, in display order."""

    id: str
    ts: str
    prompt: str
    blind: bool
    panes: tuple[RequestRecord, ...]

    @property
    def cost_usd(self) -> Decimal | None:
        costs = [p.cost_usd for p in self.panes if p.cost_usd is not None]
        return sum(costs, Decimal(0)) if costs else None


def _prompt_of(params: dict[str, Any]) -> str:
    prompt = params.get("prompt")
    if isinstance(prompt, list):
        return f"token ids: {', '.join(str(i) for i in prompt[:24])}" + (
            "…" if len(prompt) > 24 else "")
    for m in reversed(params.get("messages") or []):
        if isinstance(m, dict) and m.get("role") == "user":
            text, _ = media.split_content(m.get("content"))
            return text
    return ""


def past_runs(records: Sequence[RequestRecord]) -> list[PastRun]:
    """Comparisons in the request log (rows the Compare page tagged `compare_run`), most
    recent first; a run whose process died keeps its panes, marked interrupted."""
    groups: dict[str, list[RequestRecord]] = {}
    for r in records:
        gid = (r.response or {}).get("compare_run")
        if isinstance(gid, str) and gid:
            groups.setdefault(gid, []).append(r)
    out = []
    for gid, rows in groups.items():
        rows.sort(key=lambda r: str((r.response or {}).get("label") or ""))
        first = min(rows, key=lambda r: r.ts)
        out.append(PastRun(gid, first.ts, _prompt_of(first.params),
                           bool((first.response or {}).get("blind")), tuple(rows)))
    return sorted(out, key=lambda p: p.ts, reverse=True)


# --------------------------------------------------------------------------- summary


@dataclass(frozen=True)
class Metric:
    key: str  # PaneResult attribute
    column: str  # table header
    better: Literal["min", "max"]
    title: str  # "cheapest", "fastest first token", ...
    digits: int  # display precision; ties are judged at this precision


METRICS: tuple[Metric, ...] = (
    Metric("cost_usd", "Cost ($)", "min", "cheapest", 8),
    Metric("ttft_s", "TTFT (s)", "min", "fastest first token", 2),
    Metric("tokens_per_s", "Tokens/s", "max", "highest tokens/s", 1),
    Metric("total_s", "Total (s)", "min", "quickest overall", 2),
)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) or math.isinf(f) else f


def best_indices(values: Sequence[Any], better: Literal["min", "max"], *,
                 digits: int | None = None, eligible: Sequence[bool] | None = None) -> set[int]:
    """Indices holding the best value. Missing (None/NaN) and ineligible entries never win;
    equal values (at `digits` precision, i.e. as displayed) all win; no values -> empty."""
    keyed: list[tuple[int, float]] = []
    for i, v in enumerate(values):
        f = _num(v)
        if f is None or (eligible is not None and not eligible[i]):
            continue
        keyed.append((i, round(f, digits) if digits is not None else f))
    if not keyed:
        return set()
    pick = min if better == "min" else max
    target = pick(f for _, f in keyed)
    return {i for i, f in keyed if f == target}


@dataclass(frozen=True)
class Summary:
    results: tuple[PaneResult, ...]
    best: dict[str, set[int]]  # metric key -> winning row indices

    def wins(self, row: int) -> list[str]:
        return [m.title for m in METRICS if row in self.best.get(m.key, set())]

    def winner_labels(self, key: str) -> list[str]:
        return [self.results[i].label for i in sorted(self.best.get(key, set()))]


def summarize(results: Sequence[PaneResult]) -> Summary:
    """Best value per metric. Only completed panes compete: a stopped pane is cheap and a
    failed one fast only because they did not finish."""
    eligible = [r.status == "done" for r in results]
    best = {m.key: best_indices([getattr(r, m.key) for r in results], m.better,
                                digits=m.digits, eligible=eligible) for m in METRICS}
    return Summary(tuple(results), best)


def _grammar_text(ok: bool | None) -> str:
    return "" if ok is None else ("matches" if ok else "does not match")


def summary_frame(summary: Summary) -> pd.DataFrame:
    """One row per pane, numbers as numbers (NaN when missing) for styling and CSV."""
    rows = []
    for i, r in enumerate(summary.results):
        rows.append({
            "Pane": r.label,
            "Status": r.status,
            "TTFT (s)": r.ttft_s,
            "Tokens/s": r.tokens_per_s,
            "Total (s)": r.total_s,
            "Prompt tokens": r.prompt_tokens,
            "Output tokens": r.completion_tokens,
            "Cost ($)": float(r.cost_usd) if r.cost_usd is not None else None,
            "Cost kind": r.cost_kind or "",
            "Finish": r.finish_reason or "",
            "Grammar": _grammar_text(r.grammar_ok),
            "Best at": ", ".join(summary.wins(i)),
        })
    frame = pd.DataFrame(rows)
    for col in ("TTFT (s)", "Tokens/s", "Total (s)", "Cost ($)"):
        frame[col] = pd.to_numeric(frame[col], errors="coerce")
    for col in ("Prompt tokens", "Output tokens"):
        frame[col] = frame[col].astype("Int64")
    return frame


def _fmt(value: Any, digits: int) -> str:
    f = _num(value)
    return "–" if f is None else f"{f:.{digits}f}"


def _cell(r: PaneResult, key: str) -> str:
    if key == "cost_usd":
        if r.cost_usd is None:
            return "not published" if r.status == "done" else "–"
        text = format_usd(r.cost_usd)
        return text if r.cost_kind == "actual" else f"{text} (est.)"
    metric = next(m for m in METRICS if m.key == key)
    return _fmt(getattr(r, key), metric.digits)


def display_rows(summary: Summary) -> list[dict[str, str]]:
    """Formatted cells (what a person reads) for the on-screen table and Markdown."""
    out = []
    for r in summary.results:
        out.append({
            # markdown cells (st.table and the export): upstream text is drawn inert
            "Pane": md_text(r.label, None),
            "Status": r.status,
            "TTFT (s)": _cell(r, "ttft_s"),
            "Tokens/s": _cell(r, "tokens_per_s"),
            "Total (s)": _cell(r, "total_s"),
            "Prompt tokens": "–" if r.prompt_tokens is None else str(r.prompt_tokens),
            "Output tokens": "–" if r.completion_tokens is None else str(r.completion_tokens),
            "Cost": _cell(r, "cost_usd"),
            "Finish": md_text(r.finish_reason, 80) if r.finish_reason else "–",
            "Grammar": {None: "–", True: "✓ matches", False: "✗ no match"}[r.grammar_ok],
        })
    return out


DISPLAY_METRIC_COLUMN = {"cost_usd": "Cost", "ttft_s": "TTFT (s)", "tokens_per_s": "Tokens/s",
                         "total_s": "Total (s)"}


def to_csv(summary: Summary) -> str:
    """Machine-readable: raw numbers (cost as exact decimal dollars) + which bests a row holds."""
    header = ["pane", "model", "status", "ttft_s", "tokens_per_s", "total_s",
              "prompt_tokens", "completion_tokens", "cost_usd", "cost_kind",
              "finish_reason", "grammar_match", "best_at", "error"]
    # numbers stay numbers; text an upstream chose (model, finish, error) is formula-safe
    return csv_text(header, ([
        r.label, r.model, r.status, r.ttft_s, r.tokens_per_s, r.total_s,
        r.prompt_tokens, r.completion_tokens,
        "" if r.cost_usd is None else format(r.cost_usd, "f"), r.cost_kind or "",
        r.finish_reason or "", "" if r.grammar_ok is None else str(r.grammar_ok).lower(),
        "; ".join(summary.wins(i)), r.error or "",
    ] for i, r in enumerate(summary.results)))


def to_markdown(summary: Summary, *, title: str | None = None) -> str:
    """A GitHub table with each column's best value in bold."""
    rows = display_rows(summary)
    if not rows:
        return ""
    headers = list(rows[0])
    bold_cols = {DISPLAY_METRIC_COLUMN[m.key]: summary.best.get(m.key, set()) for m in METRICS}
    lines = []
    if title:
        lines += [f"### {md_text(title, None)}", ""]
    lines.append("| " + " | ".join(headers) + " |")
    lines.append("|" + "|".join("---" if h in ("Pane", "Status", "Finish", "Grammar")
                                else "---:" for h in headers) + "|")
    for i, row in enumerate(rows):
        cells = []
        for h in headers:
            text = row[h]  # display_rows made every cell markdown-safe
            if i in bold_cols.get(h, set()):
                text = f"**{text}**"
            cells.append(text)
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("Bold = best in its column (lowest cost, TTFT and total time; highest "
                 "tokens/s), among panes that finished.")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- figures

ACCENT = "#f97316"  # the "best" bar
MUTED = "#94a3b8"


def summary_figure(summary: Summary, *, height: int = 300, font_size: int = 12) -> go.Figure:
    """Three small bar charts (cost, TTFT, tokens/s); each metric's best bar in the accent."""
    shown = [m for m in METRICS if m.key != "total_s"]
    fig = make_subplots(rows=1, cols=len(shown), horizontal_spacing=0.08,
                        subplot_titles=[f"{m.column} {'↓' if m.better == 'min' else '↑'}"
                                        for m in shown])
    labels = [r.label for r in summary.results]
    for col, m in enumerate(shown, start=1):
        values = [_num(getattr(r, m.key)) for r in summary.results]
        best = summary.best.get(m.key, set())
        colors = [ACCENT if i in best else MUTED for i in range(len(values))]
        text = [_cell(r, m.key) if v is not None else "–"
                for r, v in zip(summary.results, values, strict=True)]
        fig.add_trace(go.Bar(x=labels, y=[v if v is not None else 0 for v in values],
                             marker_color=colors, text=text, textposition="outside",
                             cliponaxis=False,
                             name=m.column, showlegend=False,
                             hovertemplate="%{x}<br>%{text}<extra>" + m.column + "</extra>"),
                      row=1, col=col)
    fig.update_layout(height=height, margin={"l": 10, "r": 10, "t": 50, "b": 10},
                      bargap=0.35, uniformtext={"minsize": 9, "mode": "hide"},
                      font={"size": font_size})
    fig.update_annotations(font_size=font_size + 2)  # the subplot titles
    fig.update_xaxes(tickangle=-20)
    fig.update_yaxes(rangemode="tozero")
    return fig


def timeline_figure(snaps: Sequence[PaneSnapshot], *, height: int | None = None,
                    font_size: int = 12) -> go.Figure:
    """When each pane waited (request -> first token) and streamed (first token -> end):
    overlapping bars are the visible proof that the requests ran concurrently."""
    fig = go.Figure()
    labels = [s.spec.label for s in snaps]
    wait_base, wait_len, stream_base, stream_len = [], [], [], []
    for s in snaps:
        start = s.started_s or 0.0
        first = s.first_token_s
        end = s.ended_s
        wait_base.append(start)
        wait_len.append((first if first is not None else (end or start)) - start)
        stream_base.append(first if first is not None else 0.0)
        stream_len.append((end - first) if first is not None and end is not None else 0.0)
    fig.add_trace(go.Bar(y=labels, x=wait_len, base=wait_base, orientation="h",
                         name="waiting for first token", marker_color=MUTED))
    fig.add_trace(go.Bar(y=labels, x=stream_len, base=stream_base, orientation="h",
                         name="streaming", marker_color=ACCENT))
    fig.update_layout(barmode="overlay", height=height or 140 + 40 * len(snaps),
                      margin={"l": 10, "r": 10, "t": 30, "b": 10},
                      xaxis_title="seconds since Run",
                      legend={"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
                      yaxis={"autorange": "reversed"}, font={"size": font_size})
    return fig


def windows_overlap(snaps: Sequence[PaneSnapshot]) -> bool:
    """True when every pair of streaming windows (first token -> end) intersects."""
    spans: list[tuple[float, float]] = []
    for s in snaps:
        if s.first_token_s is None or s.ended_s is None:
            return False
        spans.append((s.first_token_s, s.ended_s))
    return all(max(a1, a2) < min(b1, b2)
               for i, (a1, b1) in enumerate(spans) for (a2, b2) in spans[i + 1:])


def with_labels(results: Sequence[PaneResult], labels: Sequence[str], *,
                hide_models: bool = False) -> list[PaneResult]:
    """The same results under other labels (blind aliases -> model ids after the reveal).
    `hide_models` also blanks the model column, so a blind export cannot give the game away."""
    return [replace(r, label=lab, model=lab if hide_models else r.model)
            for r, lab in zip(results, labels, strict=True)]


__all__ = [
    "ALIASES",
    "KEEP_OUTPUT",
    "METRICS",
    "CompareRun",
    "PaneResult",
    "PaneSnapshot",
    "PaneConfig",
    "PaneSpec",
    "Params",
    "PastRun",
    "Summary",
    "assign_labels",
    "best_indices",
    "build_specs",
    "chat_body",
    "completion_body",
    "display_rows",
    "pane_cost",
    "pane_result",
    "past_runs",
    "preflight",
    "problems_of",
    "prompt_estimate",
    "summarize",
    "summary_figure",
    "summary_frame",
    "timeline_figure",
    "to_csv",
    "to_markdown",
    "windows_overlap",
]
