"""History page under AppTest, through the real app.py router: list, search, rename, delete,
reopen (chat and token page), request log, import, and a DB the app cannot read."""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from components.history import get_store, import_upload
from tests.app.conftest import FAKE_BASE, make_app
from wafer_playground.store import SCHEMA_VERSION, SQLiteStore
from wafer_playground.transcript import export_json


@pytest.fixture
def db(app_env: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, httpx_mock) -> SQLiteStore:
    # The sidebar checks the endpoint on every run; answer it with an empty model list.
    httpx_mock.add_response(url=f"{FAKE_BASE}/models", json={"object": "list", "data": []},
                            is_reusable=True, is_optional=True)
    path = tmp_path / "history.db"
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(path))
    s = SQLiteStore(path)
    yield s
    s.close()


def _seed(db: SQLiteStore) -> dict[str, str]:
    a = db.create_conversation("Paris trip", model="glm-5.2")
    db.start_turn(a, "user", "Which museums open on Monday?")
    t = db.start_turn(a, "assistant")
    db.update_turn(t, content="The Louvre is closed on Tuesdays.", status="done")
    db.log_request(model="glm-5.2", base_url=FAKE_BASE, surface="chat", params={},
                   status="done", conversation_id=a, turn_id=t, cost=Decimal("0.0123"),
                   usage={"prompt_tokens": 10, "completion_tokens": 20})
    b = db.create_conversation("Cooking", model="qwen")
    db.start_turn(b, "user", "How long to boil an egg?")
    run = db.log_request(model="local-smollm", base_url=FAKE_BASE, surface="completions",
                         params={"prompt": [1, 2, 3], "max_tokens": 4}, status="done",
                         usage={"prompt_tokens": 3, "completion_tokens": 4},
                         cost=Decimal("0.000002"))
    db.log_request(model="glm-5.2", base_url=FAKE_BASE, surface="chat", params={},
                   status="error", error_code="rate_limit_exceeded")
    return {"paris": a, "cooking": b, "run": run}


def _history(run: bool = True) -> AppTest:
    at = make_app("pages/history.py")
    return at.run() if run else at


def _titles(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if m.value.startswith("**")]


def test_lists_conversations(db: SQLiteStore) -> None:
    ids = _seed(db)
    at = _history()
    assert not at.exception
    assert [t.value for t in at.title] == ["History"]
    assert _titles(at) == ["**Cooking**", "**Paris trip**"]  # most recent first
    captions = [c.value for c in at.caption]
    paris = next(c for c in captions if c.startswith("glm-5.2 · chat"))
    assert "2 turn(s)" in paris and "$0.0123" in paris
    assert any(c.startswith("qwen · chat") and "cost —" in c for c in captions)
    assert at.button(key=f"hist_open_{ids['paris']}").label == "Open"


def test_empty_store(db: SQLiteStore) -> None:
    at = _history()
    assert not at.exception
    assert "No saved conversations yet" in at.info[0].value


def test_search_title_and_content(db: SQLiteStore) -> None:
    _seed(db)
    at = _history()
    at.text_input(key="history_search").input("egg").run()
    assert _titles(at) == ["**Cooking**"]  # matched in a message
    at.text_input(key="history_search").input("PARIS").run()
    assert _titles(at) == ["**Paris trip**"]  # title, case-insensitive
    at.text_input(key="history_search").input("zebra").run()
    assert _titles(at) == [] and "No conversation matches." in at.info[0].value


def test_rename(db: SQLiteStore) -> None:
    ids = _seed(db)
    at = _history()
    at.button(key=f"hist_manage_{ids['paris']}").click().run()
    at.text_input(key=f"hist_title_{ids['paris']}").input("Rome trip").run()
    at.button(key=f"hist_rename_{ids['paris']}").click().run()
    assert not at.exception
    assert db.get_conversation(ids["paris"]).title == "Rome trip"  # type: ignore[union-attr]
    assert "**Rome trip**" in _titles(at)
    assert at.success[0].value == "Renamed to “Rome trip”."
    # an empty title is refused with a message, nothing changes
    at.text_input(key=f"hist_title_{ids['paris']}").input("   ").run()
    at.button(key=f"hist_rename_{ids['paris']}").click().run()
    assert "cannot be empty" in at.error[0].value
    assert db.get_conversation(ids["paris"]).title == "Rome trip"  # type: ignore[union-attr]


def test_delete_needs_confirmation(db: SQLiteStore) -> None:
    ids = _seed(db)
    cid = ids["cooking"]
    at = _history(run=False)
    at.session_state["chat_conversation_id"] = cid
    at.run()
    at.button(key=f"hist_manage_{cid}").click().run()
    at.button(key=f"hist_delete_{cid}").click().run()
    assert "cannot be undone" in at.warning[0].value
    at.button(key=f"hist_cancel_{cid}").click().run()
    assert db.get_conversation(cid) is not None and not at.warning

    at.button(key=f"hist_delete_{cid}").click().run()
    at.button(key=f"hist_confirm_{cid}").click().run()
    assert not at.exception
    assert db.get_conversation(cid) is None
    assert _titles(at) == ["**Paris trip**"]
    assert at.success[0].value == "Deleted “Cooking”."
    assert at.session_state["chat_conversation_id"] is None


def test_reopen_in_chat(db: SQLiteStore) -> None:
    ids = _seed(db)
    at = _history()
    at.button(key=f"hist_open_{ids['paris']}").click().run()
    assert not at.exception
    assert at.session_state["chat_conversation_id"] == ids["paris"]
    assert "History" not in [t.value for t in at.title]  # we are on the chat page now


def test_reopen_completion_run_in_token_page(db: SQLiteStore) -> None:
    ids = _seed(db)
    at = _history()
    assert at.button(key=f"hist_open_run_{ids['run']}")  # only completions rows are listed
    run_buttons = [b.key for b in at.button if b.key and b.key.startswith("hist_open_run_")]
    assert run_buttons == [f"hist_open_run_{ids['run']}"]
    at.button(key=f"hist_open_run_{ids['run']}").click().run()
    assert not at.exception
    assert "History" not in [t.value for t in at.title]
    # The token page consumes the hand-off key once it has loaded the run.
    state = at.session_state
    handed = state.get("tokens_run_id")
    loaded = state.get("tokens_loaded_run")
    assert ids["run"] in (handed, loaded)


def test_request_log(db: SQLiteStore) -> None:
    _seed(db)
    at = _history()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics == {"Requests": "3", "Recorded cost": "$0.0123", "Errors": "1"}
    df = at.dataframe[0].value
    assert len(df) == 3 and "api_key" not in df.columns
    at.session_state["history_log_surface"] = "completions"
    at.run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Requests"] == "1" and metrics["Recorded cost"] == "$0.000002"


def test_import_upload(db: SQLiteStore) -> None:
    ids = _seed(db)
    good = export_json(db, ids["paris"]).encode()
    cid, msg = import_upload(db, good)
    assert cid and msg == "Imported “Paris trip”."
    assert export_json(db, cid).encode() == good
    n = len(db.list_conversations())
    bad_cid, bad = import_upload(db, good.replace(b'"done"', b'"finished"', 1))
    assert bad_cid is None
    assert bad.startswith("Nothing was imported. requests[0].status: 'finished'")
    assert len(db.list_conversations()) == n


def test_get_store_is_cached_per_path(db: SQLiteStore, monkeypatch: pytest.MonkeyPatch,
                                      tmp_path: Path) -> None:
    first = get_store()
    # a fresh owner view each call, over one cached connection per file
    assert get_store()._conn is first._conn and first.path == db.path
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(tmp_path / "other.db"))
    assert get_store()._conn is not first._conn


def test_unreadable_database_shows_an_error(db: SQLiteStore, monkeypatch: pytest.MonkeyPatch,
                                            tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    con = sqlite3.connect(path)
    con.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 5}")
    con.close()
    monkeypatch.setenv("WAFER_PLAYGROUND_DB", str(path))
    at = _history()
    assert not at.exception
    assert "newer than this app" in at.error[0].value


def test_library_lists_and_removes_saved_items(db: SQLiteStore) -> None:
    at = _history()
    assert any("Nothing saved yet" in i.value for i in at.info)
    db.save_preset("Precise", {"temperature": 0.1})
    db.save_prompt("Summarise", "Summarise {{text}} in {{n}} words")
    db.save_grammar("yes-no", 'root ::= "yes" | "no"')
    at.run()
    presets, prompts, grammars = (el.value for el in at.dataframe)  # log is empty: no table
    assert presets["parameters"].tolist() == ['{"temperature": 0.1}']
    assert prompts["variables"].tolist() == ["text, n"]
    assert grammars["name"].tolist() == ["yes-no"]
    at.selectbox(key="history_lib_kind").select("prompt").run()
    at.selectbox(key="history_lib_name").select("Summarise").run()
    at.button(key="history_lib_remove").click().run()
    assert not at.exception
    assert db.list_prompts() == [] and db.get_preset("Precise") is not None
    assert at.success[0].value == "Removed the prompt “Summarise”."


def _share_app() -> None:
    import streamlit as st

    from components.history import share_panel, shared_state
    from wafer_playground.share import ShareState

    got = shared_state("chat")
    st.session_state["got"] = got
    big = st.session_state.get("big", "")
    share_panel(ShareState(page="chat", model="glm-5.2",
                           params={"temperature": 0.3, "api_key": "wfr_" + "x" * 24},
                           prompt=big or "hi"), key="share")


def test_share_panel_link_and_file_fallback() -> None:
    import random
    import string

    at = AppTest.from_function(_share_app)
    at.run()
    assert not at.exception
    link = at.code[0].value
    assert link.startswith("?page=chat&model=glm-5.2&s=")
    assert "wfr_" not in link
    assert any("Left out of the link" in c.value and "params.api_key" in c.value
               for c in at.caption)
    # too big for a URL: a download instead of a code block, with the notice
    rnd = random.Random(1)
    at.session_state["big"] = "".join(rnd.choice(string.ascii_letters) for _ in range(9000))
    at.run()
    assert len(at.code) == 0
    assert any("too large for a link" in c.value for c in at.caption)


def test_shared_state_applies_once() -> None:
    from wafer_playground.share import ShareState, encode

    query = encode(ShareState(page="chat", model="m", params={"seed": 7})).query
    at = AppTest.from_function(_share_app)
    at.query_params.update(query)
    at.run()
    assert at.session_state["got"] == ShareState(page="chat", model="m", params={"seed": 7})
    at.run()  # later runs: the user's own edits win
    assert at.session_state["got"] is None


def test_shared_state_bad_link_warns() -> None:
    from wafer_playground.share import ShareState

    at = AppTest.from_function(_share_app)
    at.query_params.update({"page": "chat", "s": "%%%broken"})
    at.run()
    assert not at.exception
    assert "could not be read" in at.warning[0].value
    assert at.session_state["got"] == ShareState(page="chat")  # readable params still apply


def test_comparisons_are_listed_with_or_without_a_vote(db: SQLiteStore) -> None:
    """Issue 16: History lists Compare runs (voted or not), each pane with its answer."""
    from wafer_playground.runs import RequestLog

    for label, model, status in (("Model A", "glm-5.2", "done"),
                                 ("Model B", "qwen", "interrupted")):
        log = RequestLog(db, base_url=FAKE_BASE,
                         meta={"compare_run": "cmp1", "label": label, "blind": True})
        row = db.log_request(model=model, base_url=FAKE_BASE, surface="chat",
                             params={"model": model, "messages": [
                                 {"role": "user", "content": "Name a prime above 100"}]},
                             status="streaming", response=log.meta)
        db.update_request(row, status=status, cost=Decimal("0.001"),
                          response={**log.meta, "output": f"{model} says 101"})
    at = _history()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown) + " ".join(c.value for c in at.caption)
    assert "Name a prime above 100" in text and "blind" in text
    assert "2 pane(s)" in text and "$0.002" in text
    heads = [e.label for e in at.expander]
    assert any("Model A" in h and "glm-5.2" in h and "done" in h for h in heads)
    assert any("Model B" in h and "interrupted" in h for h in heads)
    assert "glm-5.2 says 101" in text
