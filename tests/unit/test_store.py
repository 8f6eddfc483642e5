"""The store on both backends (SQLite and PostgreSQL, tests/pg.py): round trips, key refusal,
search, request log, presets/prompts/votes, render."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from tests.pg import Backend
from wafer_playground import store as store_mod
from wafer_playground.store import (
    SCHEMA_VERSION,
    NotFound,
    SecretRefused,
    SQLiteStore,
    SQLStore,
    Store,
    StoreError,
    default_db_path,
    prompt_variables,
    render,
)
from wafer_playground.store.postgres import PostgresStore

KEY = "wfr_" + "k3y" * 8  # looks like a Wafer key; must never be stored


@pytest.fixture
def db(backend: Backend) -> SQLStore:
    return backend.open()


def test_implements_protocol(db: SQLStore, backend: Backend) -> None:
    assert isinstance(db, Store)
    assert db.schema_version == SCHEMA_VERSION == backend.version("t")
    if backend.name == "sqlite":
        assert isinstance(db, SQLiteStore)
        mode = db._conn.execute("PRAGMA journal_mode").fetchone()[0]
        assert mode == "wal"
    else:
        assert isinstance(db, PostgresStore)


def test_conversation_and_turn_round_trip(db: SQLStore) -> None:
    cid = db.create_conversation("  Greeting  ", model="glm-5.2", params={"temperature": 0.3})
    u = db.start_turn(cid, "user", "héllo ✓")
    a = db.start_turn(cid, "assistant")
    turns = db.list_turns(cid)
    assert [t.id for t in turns] == [u, a]
    assert [t.seq for t in turns] == [0, 1]
    assert turns[0].status == "done" and turns[1].status == "streaming"
    db.update_turn(a, content="Hi", meta={"ttft_s": 0.25, "reasoning": "think"})
    db.update_turn(a, content="Hi there", status="done", meta={"reasoning": None, "tps": 40.5})
    t = db.get_turn(a)
    assert t is not None
    assert (t.content, t.status) == ("Hi there", "done")
    assert t.meta == {"ttft_s": 0.25, "tps": 40.5}  # merged; None removed a key
    conv = db.get_conversation(cid)
    assert conv is not None
    assert (conv.title, conv.model, conv.params) == ("Greeting", "glm-5.2", {"temperature": 0.3})
    assert conv.updated_at == t.updated_at  # turn activity bumps the conversation


def test_turn_errors(db: SQLStore) -> None:
    cid = db.create_conversation("x")
    with pytest.raises(NotFound):
        db.start_turn("nope", "user", "hi")
    with pytest.raises(StoreError, match="unknown role"):
        db.start_turn(cid, "wizard", "hi")  # type: ignore[arg-type]
    with pytest.raises(StoreError, match="unknown status"):
        db.start_turn(cid, "assistant", status="finished")  # type: ignore[arg-type]
    with pytest.raises(NotFound):
        db.update_turn("missing", content="x")


def test_stopped_and_error_turns_persist(db: SQLStore) -> None:
    cid = db.create_conversation("x")
    a = db.start_turn(cid, "assistant")
    db.update_turn(a, content="partial", status="stopped")
    b = db.start_turn(cid, "assistant")
    db.update_turn(b, status="error", meta={"error": "rate_limit_exceeded"})
    assert [(t.status, t.content) for t in db.list_turns(cid)] == [
        ("stopped", "partial"), ("error", "")]


def test_delete_turns_from(db: SQLStore) -> None:
    cid = db.create_conversation("x")
    for i in range(4):
        db.start_turn(cid, "user", f"m{i}")
    assert db.delete_turns_from(cid, 2) == 2
    assert [t.content for t in db.list_turns(cid)] == ["m0", "m1"]
    db.start_turn(cid, "user", "again")
    assert [t.seq for t in db.list_turns(cid)] == [0, 1, 2]


@pytest.mark.parametrize("params", [
    {"api_key": KEY},
    {"apiKey": "x"},
    {"Authorization": "Bearer abc"},
    {"extra_headers": {"X-Api-Key": "anything"}},
    {"headers": {"authorization": "Bearer something-long"}},
    {"messages": [{"role": "user", "content": f"my key is {KEY}"}]},
    {"nested": ["ok", {"client_secret": "s"}]},
    {"note": "Bearer abcdefghijklmnop"},
])
def test_refuses_key_like_params(db: SQLStore, backend: Backend, params: dict) -> None:
    cid = db.create_conversation("x")
    with pytest.raises(SecretRefused) as exc:
        db.log_request(model="m", base_url="https://pass.wafer.ai/v1", surface="chat",
                       params=params)
    assert KEY not in str(exc.value) and "Bearer abc" not in str(exc.value)
    with pytest.raises(SecretRefused):
        db.create_conversation("y", params=params)
    with pytest.raises(SecretRefused):
        db.save_preset("p", params)
    with pytest.raises(SecretRefused):
        db.start_turn(cid, "assistant", meta=params)
    t = db.start_turn(cid, "assistant")
    with pytest.raises(SecretRefused):
        db.update_turn(t, meta=params)
    assert db.list_requests() == [] and db.list_presets() == []
    assert len(db.list_conversations()) == 1
    assert KEY not in backend.dump()


def test_ordinary_params_are_not_mistaken_for_keys(db: SQLStore) -> None:
    params = {"max_tokens": 64, "prompt_tokens": 3, "top_k": 5, "token_ids": [1, 2],
              "prompt_cache_key": "abc", "messages": [{"role": "user", "content": "sk-learn"}]}
    rid = db.log_request(model="m", base_url="https://pass.wafer.ai/v1", surface="completions",
                         params=params, status="done",
                         response={"logprobs": [{"token": "Hi", "logprob": -0.1}]})
    rec = db.get_request(rid)
    assert rec is not None and rec.params == params
    assert rec.response["logprobs"][0]["token"] == "Hi"


def test_base_url_credentials_and_query_dropped(db: SQLStore, backend: Backend) -> None:
    rid = db.log_request(model="m", base_url=f"https://me:{KEY}@pass.wafer.ai/v1?key={KEY}",
                         surface="chat", params={})
    rec = db.get_request(rid)
    assert rec is not None and rec.base_url == "https://pass.wafer.ai/v1"
    assert KEY not in backend.dump()


def test_request_log_lifecycle_and_frame(db: SQLStore) -> None:
    cid = db.create_conversation("c")
    tid = db.start_turn(cid, "assistant")
    rid = db.log_request(model="glm-5.2", base_url="https://pass.wafer.ai/v1", surface="chat",
                         params={"temperature": 0.2}, conversation_id=cid, turn_id=tid)
    assert db.get_request(rid).status == "streaming"  # type: ignore[union-attr]
    db.update_request(rid, status="done", http_status=200, request_id="req_0123456789ab",
                      usage={"prompt_tokens": 100, "completion_tokens": 40,
                             "prompt_tokens_details": {"cached_tokens": 80},
                             "completion_tokens_details": {"reasoning_tokens": 30}},
                      cost=Decimal("0.00000012"), cost_kind="actual", ttft_s=0.4,
                      tokens_per_s=55.5, duration_s=1.2)
    db.log_request(model="claude-ish", base_url="http://127.0.0.1:9/v1", surface="messages",
                   params={}, status="error", error_code="rate_limit_exceeded",
                   usage={"input_tokens": 7, "output_tokens": 2, "cache_read_input_tokens": 5})
    rec = db.get_request(rid)
    assert rec is not None
    assert (rec.prompt_tokens, rec.cached_tokens, rec.completion_tokens,
            rec.reasoning_tokens) == (100, 80, 40, 30)
    assert rec.cost_usd == Decimal("0.00000012") and rec.request_id == "req_0123456789ab"

    df = db.request_log_frame()
    for col in ("model", "prompt_tokens", "cached_tokens", "completion_tokens",
                "reasoning_tokens", "ts", "status"):
        assert col in df.columns
    assert len(df) == 2
    assert str(df["ts"].dtype).startswith("datetime64") and str(df["ts"].dt.tz) == "UTC"
    assert str(df["prompt_tokens"].dtype) == "Int64"
    err = df[df["status"] == "error"].iloc[0]
    assert (err["prompt_tokens"], err["cached_tokens"], err["completion_tokens"]) == (7, 5, 2)
    assert pd.isna(err["reasoning_tokens"])
    assert err["cost_usd"] is None  # not NaN, not Decimal("NaN")
    ok = df[df["status"] == "done"].iloc[0]
    assert ok["cost_usd"] == Decimal("0.00000012")
    assert db.list_requests(surface="messages")[0].error_code == "rate_limit_exceeded"
    with pytest.raises(StoreError, match="unknown request field"):
        db.update_request(rid, api_key="x")
    with pytest.raises(NotFound):
        db.update_request("nope", status="done")


def test_empty_request_log_frame_has_columns(db: SQLStore) -> None:
    df = db.request_log_frame()
    assert df.empty and {"model", "ts", "status", "prompt_tokens"} <= set(df.columns)


def test_list_search_cost_and_delete(db: SQLStore) -> None:
    a = db.create_conversation("Paris trip", model="m1")
    b = db.create_conversation("Cooking", model="m2")
    c = db.create_conversation("100% legit")
    db.start_turn(b, "user", "How long to boil an egg in Paris?")
    db.start_turn(a, "user", "Museums")
    for cost in ("0.10", "0.000001"):
        db.log_request(model="m1", base_url="https://x/v1", surface="chat", params={},
                       status="done", conversation_id=a, cost=Decimal(cost))
    rows = {r.id: r for r in db.list_conversations()}
    assert rows[a].cost_usd == Decimal("0.100001") and rows[a].turn_count == 1
    assert rows[b].cost_usd is None and rows[b].preview.startswith("How long")
    # newest activity first
    assert [r.id for r in db.list_conversations()][0] == a
    assert {r.id for r in db.list_conversations("paris")} == {a, b}  # title OR content
    assert [r.id for r in db.list_conversations("100%")] == [c]
    assert [r.id for r in db.list_conversations("%")] == [c]
    assert db.list_conversations("_") == []  # LIKE wildcards are escaped

    before = db.get_conversation(a).updated_at  # type: ignore[union-attr]
    db.rename_conversation(a, "Rome trip")
    after = db.get_conversation(a)
    assert after is not None and after.title == "Rome trip" and after.updated_at == before
    with pytest.raises(StoreError):
        db.rename_conversation(a, "   ")

    db.delete_conversation(a)
    assert db.get_conversation(a) is None and db.list_turns(a) == []
    # spend history stays in the request log, unlinked
    assert len(db.list_requests()) == 2
    assert all(r.conversation_id is None for r in db.list_requests())


def test_presets_prompts_grammars(db: SQLStore) -> None:
    db.save_preset("Precise", {"temperature": 0.0}, surface="chat")
    db.save_preset("Precise", {"temperature": 0.1, "top_p": 0.9})  # upsert
    db.save_preset("Tok", {"max_tokens": 8}, surface="completions")
    assert [p.name for p in db.list_presets()] == ["Precise", "Tok"]
    assert db.get_preset("Precise").params == {"temperature": 0.1, "top_p": 0.9}  # type: ignore[union-attr]
    assert [p.name for p in db.list_presets("completions")] == ["Tok"]
    db.delete_preset("Tok")
    assert db.get_preset("Tok") is None
    with pytest.raises(StoreError):
        db.save_preset("  ", {})

    db.save_prompt("Summarise", "Summarise {{text}} in {{ n }} words. {{text}}")
    p = db.get_prompt("Summarise")
    assert p is not None and p.variables == ["text", "n"]
    with pytest.raises(SecretRefused):
        db.save_prompt("leak", f"use {KEY}")
    db.save_grammar("digits", 'root ::= [0-9]+')
    assert db.get_grammar("digits").ebnf == 'root ::= [0-9]+'  # type: ignore[union-attr]
    db.delete_grammar("digits")
    assert db.list_grammars() == []
    db.delete_prompt("Summarise")
    assert db.list_prompts() == []


def test_votes(db: SQLStore) -> None:
    db.record_vote("q1", ["a", "b"], "a")
    db.record_vote("q2", ["a", "b", "c"], "c", blind=False)
    db.record_vote("q3", ["b", "c"], None)
    assert db.vote_tally() == {
        "a": {"appearances": 2, "wins": 1, "ties": 0},
        "b": {"appearances": 3, "wins": 0, "ties": 1},
        "c": {"appearances": 2, "wins": 1, "ties": 1},
    }
    assert [v.blind for v in sorted(db.list_votes(), key=lambda v: v.prompt)] == [
        True, False, True]
    with pytest.raises(StoreError, match="not among"):
        db.record_vote("q", ["a", "b"], "z")
    with pytest.raises(StoreError, match="two candidates"):
        db.record_vote("q", ["a"], "a")


def test_render_reports_missing_and_does_not_reexpand() -> None:
    r = render("Hi {{name}}, about {{ topic }} and {{name}}. {{missing}}",
               {"name": "{{topic}}", "topic": "SQL", "extra": 1})
    assert r.text == "Hi {{topic}}, about SQL and {{topic}}. {{missing}}"
    assert r.missing == ("missing",) and not r.ok
    assert r.unused == ("extra",)
    ok = render("{{a}}{{b}}", {"a": 1, "b": "x"})
    assert ok.ok and ok.text == "1x"
    assert prompt_variables("{{ a }} {b} {{b.c}} {{a}} {{ 9x }}") == ["a", "b.c"]


def test_default_db_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(tmp_path / "custom.db"))
    assert default_db_path() == tmp_path / "custom.db"
    s = SQLiteStore()
    assert s.path == tmp_path / "custom.db" and (tmp_path / "custom.db").exists()
    s.close()
    monkeypatch.delenv("WAFER_PLAYGROUND_DB")
    p = default_db_path()
    assert p.name == "playground.db" and "wafer-playground" in str(p)


def test_secret_helpers() -> None:
    assert store_mod.is_secret_name("X-API-Key") and store_mod.is_secret_name("openai_api_key")
    assert not store_mod.is_secret_name("max_tokens")
    assert store_mod.looks_like_secret(KEY)
    assert store_mod.redact_secrets(f"a {KEY} b") == "a [redacted] b"


def test_request_log_frame_feeds_the_cost_page_reprice(db: SQLStore) -> None:
    """The Costs page reprices `request_log_frame()` through usage.from_request_log."""
    from wafer_playground.usage import from_request_log

    db.log_request(model="m", base_url="https://x/v1", surface="chat", params={}, status="done",
                   usage={"prompt_tokens": 10, "completion_tokens": 5,
                          "prompt_tokens_details": {"cached_tokens": 4}})
    db.log_request(model="m", base_url="https://x/v1", surface="chat", params={},
                   status="error", error_code="server_error")
    parsed = from_request_log(db.request_log_frame())
    assert parsed.n_rows == 1 and parsed.n_bad == 1
    row = parsed.frame.iloc[0]
    assert (row["prompt_tokens"], row["cached_tokens"], row["completion_tokens"]) == (10, 4, 5)
    assert "request status: error" in parsed.bad[0].reason


def test_untitled_conversation_is_named_after_first_question(db: SQLStore) -> None:
    cid = db.create_conversation()
    db.start_turn(cid, "system", "You are terse.")
    db.start_turn(cid, "user", "  What is\nWAL mode " + "really " * 20)
    db.start_turn(cid, "user", "second question")
    title = db.get_conversation(cid).title  # type: ignore[union-attr]
    assert title.startswith("What is WAL mode really") and title.endswith("…")
    assert len(title) <= 60
    named = db.create_conversation("Mine")
    db.start_turn(named, "user", "hello")
    assert db.get_conversation(named).title == "Mine"  # type: ignore[union-attr]
