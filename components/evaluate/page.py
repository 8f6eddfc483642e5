"""Evaluate: a template × a test set × 1–4 models × N repeats, run in the background.

Draws only; the rules are in wafer_playground/evals.py (test sets, checks), eval_runner.py
(plan, spend guard, the job) and eval_stats.py (summary, chart, diff, exports). Progress is
read from the store by a fragment that reruns alone once a second, so the page stays
responsive while a run goes on, and a closed tab or a restarted server loses nothing.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any, cast

import pandas as pd
import streamlit as st

from components import presentation
from components.connection import Connection
from components.evaluate.results import diff_view, results, share_state
from components.history import get_store, share_panel, shared_state
from components.model_picker import option_label
from components.untrusted import md_text
from wafer_playground import share
from wafer_playground.catalog import Catalog, Pricing
from wafer_playground.client import DEFAULT_TIMEOUT
from wafer_playground.compare import Encoder, problems_of
from wafer_playground.costs import format_usd
from wafer_playground.eval_runner import (
    EvalJob,
    estimate,
    job_of,
    plan,
    progress,
    refusal,
    start_job,
)
from wafer_playground.evals import (
    EXPECT_KINDS,
    EXPECT_PREFIX,
    KIND_HELP,
    EvalSetup,
    Expectation,
    ExpectKind,
    Judge,
    Surface,
    TestSet,
    TestSetError,
    from_records,
    parse_delimited,
    parse_upload,
)
from wafer_playground.store import SQLStore, prompt_variables
from wafer_playground.store.evals import EvalRun, EvalStore
from wafer_playground.tokenizers import TokenizerUnavailable, tokenizer_for
from wafer_playground.untrusted import TEXT_LIMIT, clean

K = "ev_"  # session-state prefix
RUN = K + "run"  # the run shown
SURFACES = {"chat": "Chat (/v1/chat/completions)",
            "completions": "Token ids (/v1/completions, optional grammar)"}
EXAMPLE_TEMPLATE = "What is {{a}} + {{b}}? Answer with the number only."
EXAMPLE_ROWS = [{"a": "2", "b": "3", "expect_number": "5"},
                {"a": "10", "b": "7", "expect_number": "17"}]
POLL_S = 1.0


def _estore() -> EvalStore:
    return EvalStore(get_store())


def _store() -> SQLStore:
    return get_store()


def _pricing_for(catalog: Catalog) -> Any:
    def pricing(model_id: str) -> Pricing:
        m = catalog.get(model_id)
        return m.pricing if m is not None else Pricing()
    return pricing


def _encoder(client: Any, catalog: Catalog) -> Any:
    def for_model(model_id: str) -> Encoder:
        m = catalog.get(model_id)
        tok = tokenizer_for(model_id, local=bool(m and m.local), client=client)

        def encode(text: str) -> tuple[list[int], tuple[str, ...]]:
            pieces = tok.encode(text, add_special=True)
            return [p.id for p in pieces], tuple(p.text for p in pieces)
        return encode
    return for_model


# --------------------------------------------------------------------------- setup: template


def _template_section() -> tuple[str, str, str | None]:
    """(name, text, version id); a save adds a version, the old one stays."""
    ss = st.session_state
    es = _estore()
    saved = [p.name for p in _store().list_prompts()]
    ss.setdefault(K + "tpl_text", EXAMPLE_TEMPLATE)
    ss.setdefault(K + "tpl_name", "arithmetic")
    cols = st.columns([3, 2], vertical_alignment="bottom")
    pick = cols[0].selectbox("Saved templates", ["(new)", *saved], key=K + "tpl_pick")
    if cols[1].button("Load", key=K + "tpl_load", disabled=pick == "(new)"):
        p = _store().get_prompt(pick)
        if p is not None:
            ss[K + "tpl_text"], ss[K + "tpl_name"] = p.text, p.name
            st.rerun()
    name = st.text_input("Template name", key=K + "tpl_name")
    text = st.text_area("Prompt template (use {{variable}})", key=K + "tpl_text", height=110)
    versions = es.template_versions(name) if name.strip() else []
    current = next((v for v in versions if v.text == text), None)
    row = st.columns([2, 3], vertical_alignment="center")
    if row[0].button("Save version", key=K + "tpl_save", icon=":material/save:",
                     disabled=not name.strip() or not text.strip() or current is not None):
        try:
            current = es.save_template(name, text)
            st.toast(f"Saved “{clean(name, 60)}” version {current.version}.")
        except Exception as exc:  # noqa: BLE001 - a refused (key-like) or failed save
            st.error(f"Not saved: {md_text(exc, TEXT_LIMIT)}")
    row[1].caption(f"Version {current.version} of {len(versions)}" if current else
                   "Unsaved changes: a run saves this text as a new version first."
                   if versions else "Not saved yet: a run saves it as version 1.")
    names = prompt_variables(text)
    st.caption("Variables: " + (", ".join(f"`{n}`" for n in names) if names else "none"))
    return name.strip(), text, current.id if current else None


# --------------------------------------------------------------------------- setup: test set


def _records_frame(variables: list[str], records: list[dict[str, Any]]) -> pd.DataFrame:
    cols = list(dict.fromkeys([*variables, *[c for r in records for c in r]]))
    if not any(c.startswith(EXPECT_PREFIX) for c in cols):
        cols.append(EXPECT_PREFIX + "contains")
    return pd.DataFrame([{c: r.get(c, "") for c in cols} for r in records] or
                        [dict.fromkeys(cols, "")], columns=cols, dtype="string")


def _test_set_section(variables: list[str]) -> TestSet | None:
    ss = st.session_state
    src = K + "rows"
    if src not in ss:
        ss[src] = EXAMPLE_ROWS
    with st.expander("Paste or upload rows", icon=":material/upload_file:"):
        st.caption("A header row names the columns: the template's variables, and optional "
                   "checks `expect_equals`, `expect_contains`, `expect_regex`, `expect_json`, "
                   "`expect_schema`, `expect_grammar`, `expect_number` (+ `expect_tolerance`).")
        pasted = st.text_area("Paste CSV or TSV (from a spreadsheet)", key=K + "paste",
                              height=100)
        up = st.file_uploader("Or upload CSV / TSV / JSONL", type=["csv", "tsv", "jsonl"],
                              key=K + "upload")
        c = st.columns(2)
        if c[0].button("Use pasted rows", key=K + "use_paste", disabled=not pasted.strip()):
            _load_rows(lambda: parse_delimited(pasted))
        if c[1].button("Use uploaded file", key=K + "use_upload", disabled=up is None):
            assert up is not None
            _load_rows(lambda: parse_upload(up.name, up.getvalue()))
    frame = _records_frame(variables, ss[src])
    edited = st.data_editor(frame, num_rows="dynamic", key=K + f"editor_{ss.get(K + 'gen', 0)}",
                            width="stretch", hide_index=False)
    records = [{k: (None if pd.isna(v) else v) for k, v in r.items()}
               for r in edited.to_dict("records")]
    try:
        tests = from_records(records, variables=variables)
    except TestSetError as exc:
        st.error(f"Test set: {md_text(exc, TEXT_LIMIT)}", icon=":material/table:")
        return None
    st.caption(f"{len(tests.rows)} row(s).")
    return tests


def _load_rows(parse: Any) -> None:
    try:
        tests = parse()
    except TestSetError as exc:
        st.error(f"Not loaded: {md_text(exc, TEXT_LIMIT)}", icon=":material/table:")
        return
    st.session_state[K + "rows"] = tests.records()
    st.session_state[K + "gen"] = st.session_state.get(K + "gen", 0) + 1  # a fresh editor
    st.rerun()


# --------------------------------------------------------------------------- setup: the rest


def _options(catalog: Catalog) -> tuple[list[str], dict[str, Any]]:
    by_id = {m.id: m for m in catalog.models}
    return list(by_id), by_id


def _setup_form(catalog: Catalog, name: str, template: str, version: str | None,
                tests: TestSet | None) -> tuple[EvalSetup | None, Decimal | None]:
    ss = st.session_state
    ids, by_id = _options(catalog)
    ss.setdefault(K + "models", ids[:2])
    ss[K + "models"] = [m for m in ss[K + "models"] if m in by_id]
    models = st.multiselect("Models (1–4)", ids, key=K + "models", max_selections=4,
                            format_func=lambda mid: option_label(by_id[mid]))
    c = st.columns(4)
    surface = c[0].selectbox("Request", list(SURFACES), format_func=SURFACES.__getitem__,
                             key=K + "surface")
    repeats = int(c[1].number_input("Repeats", 1, 20, 1, key=K + "repeats",
                                    help="Run every row this many times to see flakiness."))
    temperature = c[2].slider("temperature", 0.0, 2.0, 0.0, 0.05, key=K + "temp")
    max_tokens = int(c[3].number_input("max_tokens", 1, 32_768, 64, key=K + "max"))
    system = st.text_input("System prompt (optional)", key=K + "system")
    ebnf = ""
    if surface == "completions":
        ebnf = st.text_area("Grammar (EBNF) the output is constrained to (optional)",
                            key=K + "ebnf", height=80,
                            placeholder='root ::= [0-9]+')
    with st.expander("Default check for rows without their own", icon=":material/rule:"):
        kind = st.selectbox("Check", ["(none)", *EXPECT_KINDS], key=K + "dkind",
                            format_func=lambda k: k if k == "(none)" else f"{k}: {KIND_HELP[k]}")
        dval = st.text_area("Expected value / pattern / schema / grammar", key=K + "dval",
                            height=70)
        dtol = st.number_input("Tolerance (number)", 0.0, value=0.0, key=K + "dtol")
        judge_on = st.toggle("LLM judge (its cost is counted apart)", key=K + "judge_on")
        judge = None
        if judge_on:
            jm = st.selectbox("Judge model", ids, key=K + "judge_model",
                              format_func=lambda mid: option_label(by_id[mid]))
            rubric = st.text_area("Rubric", key=K + "rubric",
                                  placeholder="The answer is correct and has no extra text.")
            judge = Judge(str(jm), rubric)
    cap_text = st.text_input("Cost cap for the whole run, USD (blank: none)", key=K + "cap",
                             help="A run whose worst case is above the cap is refused before "
                                  "anything is sent.")
    cap: Decimal | None = None
    if cap_text.strip():
        try:
            cap = Decimal(cap_text.strip().lstrip("$"))
        except InvalidOperation:
            st.error("The cap must be a number of dollars, such as 0.50.")
            return None, None
    if tests is None:
        return None, cap
    defaults: tuple[Expectation, ...] = ()
    if kind != "(none)" and (dval.strip() or kind == "json"):
        defaults = (Expectation(cast(ExpectKind, kind), dval or "yes", float(dtol)),)
    setup = EvalSetup(template=template, tests=tests, models=tuple(models),
                      surface=cast(Surface, surface), repeats=repeats, system=system,
                      params={"temperature": temperature, "top_p": 1.0,
                              "max_tokens": max_tokens},
                      ebnf=ebnf, defaults=defaults, judge=judge, template_name=name,
                      template_version=version)
    return setup, cap


def apply_shared(state: share.ShareState) -> str | None:
    if not state.evaluate:
        return None
    try:
        setup = EvalSetup.from_json(state.evaluate)
    except TestSetError as exc:
        return f"The shared setup was not applied: {exc}"
    ss = st.session_state
    ss[K + "tpl_text"], ss[K + "tpl_name"] = setup.template, setup.template_name or "shared"
    ss[K + "rows"] = setup.tests.records()
    ss[K + "gen"] = ss.get(K + "gen", 0) + 1
    ss[K + "models"] = list(setup.models)
    ss[K + "surface"], ss[K + "repeats"] = setup.surface, setup.repeats
    ss[K + "system"], ss[K + "ebnf"] = setup.system, setup.ebnf
    return None


# --------------------------------------------------------------------------- start / resume


def _job(conn: Connection, catalog: Catalog, es: EvalStore, run_id: str,
         setup: EvalSetup) -> EvalJob | str:
    """A job for `run_id` (its own client: the session's may close while it runs)."""
    from components.team import make_client

    client = make_client(conn, DEFAULT_TIMEOUT)
    try:
        p = plan(setup, encode=_encoder(client, catalog) if setup.surface == "completions"
                 else None)
    except TokenizerUnavailable as exc:
        client.close()
        return f"Cannot tokenize the prompts: {exc}. Use the chat request type."
    return EvalJob(es, run_id, p, client=client, base_url=conn.base_url,
                   pricing_for=_pricing_for(catalog), owns_client=True)


def start(setup: EvalSetup, cap: Decimal | None, conn: Connection, catalog: Catalog) -> None:
    problems = setup.problems()
    if problems:
        st.error("Not started:\n\n" + "\n".join(f"- {md_text(p, TEXT_LIMIT)}"
                                                for p in problems), icon=":material/error:")
        return
    es = _estore()
    try:
        version = es.save_template(setup.template_name or "untitled", setup.template)
    except Exception as exc:  # noqa: BLE001 - a key-like template is refused
        st.error(f"Not started: {md_text(exc, TEXT_LIMIT)}")
        return
    setup = EvalSetup.from_json({**setup.to_json(), "template_version": version.id,
                                 "template_name": version.name})
    job_or_problem = _job(conn, catalog, es, "", setup)
    if isinstance(job_or_problem, str):
        st.error(job_or_problem)
        return
    p = job_or_problem.plan
    invalid = sorted({x for spec in p.specs.values()
                      for x in problems_of(spec, catalog.get(spec.model))})
    if invalid:
        job_or_problem.client.close()
        st.error("Not started: fix these first.\n\n" + "\n".join(
            f"- {md_text(x, TEXT_LIMIT)}" for x in invalid[:8]), icon=":material/error:")
        return
    est = estimate(p, _pricing_for(catalog))
    msg = refusal(est, cap, caps=presentation.caps(),
                  max_tokens=int(setup.params.get("max_tokens") or 0))
    if msg:
        job_or_problem.client.close()
        st.error(msg, icon=":material/block:")
        return
    rid = es.create_run(setup.to_json(), setup.cells(), base_url=conn.base_url,
                        name=f"{setup.template_name} v{version.version}")
    job_or_problem.run_id = rid
    start_job(job_or_problem)
    st.session_state[RUN] = rid
    total = est.total
    st.session_state[K + "started_note"] = (
        f"Started {est.requests:,} requests; worst case "
        f"{format_usd(total) if total is not None else 'not published'}.")


def resume_orphans(conn: Connection, catalog: Catalog) -> list[str]:
    """Runs left `running` by a process that is gone, on this endpoint: resumed now (cells
    not `done` are sent again; `done` cells never are)."""
    es = _estore()
    notes = []
    for run in es.list_runs(limit=20):
        if run.base_url != conn.base_url or job_of(run.id) is not None or \
                not es.resumable(run) or not es.claim(run):  # another server may win
            continue
        notes.append(resume(run, conn, catalog) or f"Resumed “{clean(run.name, 60)}”.")
    return notes


def resume(run: EvalRun, conn: Connection, catalog: Catalog) -> str | None:
    try:
        setup = EvalSetup.from_json(run.setup)
    except TestSetError as exc:
        return f"Cannot resume “{clean(run.name, 60)}”: {exc}"
    job = _job(conn, catalog, _estore(), run.id, setup)
    if isinstance(job, str):
        return job
    start_job(job)
    return None


# --------------------------------------------------------------------------- progress


def _eta(seconds: float | None) -> str:
    if seconds is None:
        return "ETA …"
    return f"ETA {seconds:.0f} s" if seconds < 90 else f"ETA {seconds / 60:.0f} min"


def progress_view(run_id: str) -> None:
    """Progress, redrawn alone every second while the run goes on; one full rerun when it
    ends, to draw the results."""
    es = _estore()
    pr = progress(es, run_id)
    live = pr.status == "running"

    @st.fragment(run_every=POLL_S if live else None)
    def draw() -> None:
        p = progress(es, run_id)
        frac = p.done / p.total if p.total else 1.0
        st.progress(frac, text=f"{p.rows_done}/{p.rows} rows · {p.done}/{p.total} cells done"
                               f" · {format_usd(p.spent)} so far"
                               f" · {_eta(p.eta_s) if p.status == 'running' else p.status}"
                               + (f" · {p.errors} error(s)" if p.errors else ""))
        job = job_of(run_id)
        if p.status == "running" and job is not None and \
                st.button("Stop", key=K + "stop", icon=":material/stop_circle:"):
            job.stop()
        if live and p.status != "running":
            st.rerun(scope="app")
    draw()


# --------------------------------------------------------------------------- the page


def render_page(conn: Connection, catalog: Catalog, *, presenting: bool) -> None:
    from components.evaluate import leaderboard

    shared = shared_state("evaluate")
    if shared is not None:
        note = apply_shared(shared)
        if note:
            st.warning(note)
    if not conn.base_url:
        st.warning(conn.problem or "No endpoint.")
        return
    # kept for the session: the resumed run may end (and rerun the page) within a second
    notes = st.session_state.setdefault(K + "resumed", [])
    notes.extend(resume_orphans(conn, catalog))
    for note in notes:
        st.info(note, icon=":material/restart_alt:")
    es = _estore()
    runs = es.list_runs(limit=50)
    tabs = st.tabs(["Setup", "Results", "Compare runs", "Leaderboard"])
    with tabs[0]:
        left, right = st.columns([1, 1])
        with left:
            name, template, version = _template_section()
        with right:
            tests = _test_set_section(prompt_variables(template))
        setup, cap = _setup_form(catalog, name, template, version, tests)
        c = st.columns([1, 4], vertical_alignment="center")
        if c[0].button("Run evaluation", type="primary", key=K + "start",
                       icon=":material/play_arrow:", disabled=setup is None):
            assert setup is not None
            start(setup, cap, conn, catalog)
            runs = es.list_runs(limit=50)
        if st.session_state.get(K + "started_note"):
            c[1].caption(st.session_state[K + "started_note"])
        if setup is not None:
            with c[1]:
                share_panel(share_state(setup), key=K + "share_setup")
    with tabs[1]:
        if not runs:
            st.caption("No evaluation yet: set one up and run it.")
        else:
            ids = [r.id for r in runs]
            current = st.session_state.get(RUN)
            # no status here: the progress line below is the live one
            labels = {r.id: f"{clean(r.name, 50) or 'run'} · {r.ts[:16].replace('T', ' ')}"
                      for r in runs}
            rid = st.selectbox("Run", ids, index=ids.index(current) if current in ids else 0,
                               format_func=labels.__getitem__, key=K + "pick_run")
            st.session_state[RUN] = rid
            run = next(r for r in runs if r.id == rid)
            progress_view(run.id)
            if run.status == "stopped" and job_of(run.id) is None and \
                    st.button("Resume (sends only the cells not done)", key=K + "resume"):
                note = resume(run, conn, catalog)
                if note:
                    st.error(note)
                else:
                    st.rerun()
            try:
                results(run, presenting=presenting)
            except Exception as exc:  # noqa: BLE001 - never a traceback in the page
                st.error(f"The results could not be drawn: {md_text(exc, TEXT_LIMIT)}")
    with tabs[2]:
        diff_view(runs)
    with tabs[3]:
        leaderboard.render(presenting=presenting)


__all__ = ["apply_shared", "progress_view", "render_page", "resume", "resume_orphans", "start"]

