"""History is partitioned by owner (a key fingerprint): one file, several keys, no crossing."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.pg import Backend
from wafer_playground.client import key_fingerprint
from wafer_playground.store import ANONYMOUS, SQLiteStore, SQLStore, StoreError

A, B = key_fingerprint("wfr_alpha_key"), key_fingerprint("wfr_bravo_key")


@pytest.fixture
def stores(backend: Backend) -> tuple[SQLStore, SQLStore]:
    base = backend.open("h")
    return base.for_owner(A), base.for_owner(B)


def test_anonymous_is_the_keyless_fingerprint() -> None:
    assert key_fingerprint(None) == ANONYMOUS == SQLiteStore(":memory:").owner


def test_owners_never_see_each_others_history(stores: tuple[SQLStore, SQLStore]) -> None:
    a, b = stores
    cid = a.create_conversation("alpha plan")
    tid = a.start_turn(cid, "user", "alpha question")
    rid = a.log_request(model="m", base_url="https://x/v1", surface="chat", params={},
                        conversation_id=cid, status="done", cost=Decimal("0.01"))
    a.record_vote("p", ["m1", "m2"], "m1")

    assert [c.id for c in a.list_conversations()] == [cid]
    assert a.list_conversations()[0].cost_usd == Decimal("0.01")
    assert b.list_conversations() == [] and b.list_conversations("alpha") == []
    assert b.get_conversation(cid) is None
    assert b.list_turns(cid) == [] and b.get_turn(tid) is None
    assert b.get_request(rid) is None and b.list_requests() == []
    assert b.request_log_frame().empty and len(a.request_log_frame()) == 1
    assert b.list_votes() == [] and b.vote_tally() == {}


def test_owners_cannot_change_each_others_history(
        stores: tuple[SQLStore, SQLStore]) -> None:
    a, b = stores
    cid = a.create_conversation("alpha plan")
    tid = a.start_turn(cid, "user", "alpha question")
    rid = a.log_request(model="m", base_url="https://x/v1", surface="chat", params={})
    with pytest.raises(StoreError):
        b.start_turn(cid, "user", "injected")
    with pytest.raises(StoreError):
        b.update_turn(tid, content="overwritten")
    with pytest.raises(StoreError):
        b.update_request(rid, status="error")
    with pytest.raises(StoreError):
        b.rename_conversation(cid, "taken")
    assert b.delete_turns_from(cid, 0) == 0
    b.delete_conversation(cid)  # silently nothing: B cannot even learn that it exists
    conv = a.get_conversation(cid)
    assert conv is not None and conv.title == "alpha plan"
    assert [t.content for t in a.list_turns(cid)] == ["alpha question"]
    rec = a.get_request(rid)
    assert rec is not None and rec.status == "streaming"


def test_import_belongs_to_the_importer(stores: tuple[SQLStore, SQLStore]) -> None:
    from wafer_playground.transcript import export_json, import_json

    a, b = stores
    cid = a.create_conversation("alpha plan")
    a.start_turn(cid, "user", "hello")
    new = import_json(b, export_json(a, cid).encode())
    assert b.get_conversation(new) is not None and a.get_conversation(new) is None
    assert len(a.list_conversations()) == 1


def test_an_owner_is_never_empty(backend: Backend) -> None:
    with pytest.raises(StoreError, match="cannot be empty"):
        backend.open("x").for_owner("")


def test_the_library_is_per_owner_too(stores: tuple[SQLStore, SQLStore]) -> None:
    a, b = stores
    a.save_prompt("plan", "The alpha launch plan is {{secret}}")
    a.save_preset("hot", {"temperature": 1.5})
    a.save_grammar("yn", 'root ::= "y" | "n"')
    assert b.list_prompts() == [] and b.list_presets() == [] and b.list_grammars() == []
    assert b.get_prompt("plan") is None and b.get_preset("hot") is None
    b.save_prompt("plan", "bravo's own")  # same name, another owner: no clash, no overwrite
    b.delete_preset("hot")
    a_plan, b_plan = a.get_prompt("plan"), b.get_prompt("plan")
    assert a_plan is not None and a_plan.text.startswith("The alpha")
    assert b_plan is not None and b_plan.text == "bravo's own"
    assert a.get_preset("hot") is not None
