"""Transcript export/import: byte-exact round trip, Markdown, validation, atomic import."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.pg import Backend
from wafer_playground import transcript
from wafer_playground.store import SQLStore, StoreError
from wafer_playground.transcript import TranscriptError, export_json, export_markdown, import_json


@pytest.fixture
def db(backend: Backend) -> SQLStore:
    return backend.open()


def _rich_conversation(db: SQLStore) -> str:
    cid = db.create_conversation("Unicode ✓ \"quotes\"", model="glm-5.2",
                                 params={"temperature": 0.7, "stop": ["\n\n"], "seed": 3})
    db.start_turn(cid, "system", "Be brief.")
    db.start_turn(cid, "user", "Line 1\nLine 2 — ünïcødé 🚀")
    a = db.start_turn(cid, "assistant")
    rid = db.log_request(model="glm-5.2", base_url="https://pass.wafer.ai/v1", surface="chat",
                         params={"messages": [{"role": "user", "content": "Line 1"}]},
                         conversation_id=cid, turn_id=a)
    db.update_turn(a, content="Partial answer", status="stopped",
                   meta={"reasoning": "Let me think", "ttft_s": 0.123456789, "tps": 41.0})
    db.update_request(rid, status="stopped", usage={"prompt_tokens": 12, "completion_tokens": 3},
                      cost=Decimal("0.00000012"), cost_kind="actual", ttft_s=0.1 + 0.2,
                      request_id="req_abcdefabcdef", http_status=200)
    db.start_turn(cid, "user", "")
    b = db.start_turn(cid, "assistant")
    db.update_turn(b, status="error", meta={"error": {"code": "rate_limit_exceeded"}})
    db.log_request(model="glm-5.2", base_url="https://pass.wafer.ai/v1", surface="chat",
                   params={}, status="error", conversation_id=cid, error_code="rate_limit_exceeded")
    return cid


def test_round_trip_is_byte_identical(db: SQLStore) -> None:
    cid = _rich_conversation(db)
    first = export_json(db, cid)
    cid2 = import_json(db, first)
    assert cid2 != cid
    second = export_json(db, cid2)
    assert second == first
    # and through bytes with a BOM, as a browser upload may deliver it
    cid3 = import_json(db, ("\ufeff" + second).encode())
    assert export_json(db, cid3) == first
    doc = json.loads(first)
    assert doc["format"] == "wafer-playground/conversation" and doc["version"] == 1
    assert [t["status"] for t in doc["turns"]] == ["done", "done", "stopped", "done", "error"]
    assert sorted(r["turn_index"] or -1 for r in doc["requests"]) == [-1, 2]
    assert db.list_turns(cid2)[2].meta["ttft_s"] == 0.123456789


def test_export_contains_no_ids_or_keys(db: SQLStore) -> None:
    cid = _rich_conversation(db)
    text = export_json(db, cid)
    assert cid not in text
    for t in db.list_turns(cid):
        assert t.id not in text


def test_streaming_turn_imports_as_interrupted(db: SQLStore) -> None:
    cid = db.create_conversation("live")
    db.start_turn(cid, "assistant", "half")
    doc = json.loads(export_json(db, cid))
    assert doc["turns"][0]["status"] == "streaming"
    new = import_json(db, doc)
    assert db.list_turns(new)[0].status == "interrupted"


def test_markdown(db: SQLStore) -> None:
    md = export_markdown(db, _rich_conversation(db))
    assert md.startswith('# Unicode ✓ "quotes"\n')
    assert "- Model: `glm-5.2`" in md
    assert "### Assistant (stopped)\n\n<details><summary>Reasoning</summary>" in md
    assert "Partial answer" in md and "### Assistant (error)" in md
    assert "- Cost: $0.00000012 over 2 request(s)" in md
    assert "Line 1\nLine 2 — ünïcødé 🚀" in md


def _valid(db: SQLStore) -> dict:
    return json.loads(export_json(db, _rich_conversation(db)))


def _set(doc: dict, path: list, value: object) -> dict:
    node = doc
    for p in path[:-1]:
        node = node[p]
    node[path[-1]] = value
    return doc


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda d: "not json {", "not valid JSON: Expecting value"),
    (lambda d: [1, 2], "expected a JSON object"),
    (lambda d: _set(d, ["format"], "something-else"), '"format" should be'),
    (lambda d: _set(d, ["version"], 99), "export version 99"),
    (lambda d: _set(d, ["turns", 1, "status"], "finished"), "turns[1].status: 'finished'"),
    (lambda d: _set(d, ["turns", 0, "role"], "wizard"), "turns[0].role"),
    (lambda d: _set(d, ["turns", 2, "created_at"], "yesterday"), "turns[2].created_at"),
    (lambda d: _set(d, ["conversation", "surface"], "fax"), "conversation.surface"),
    (lambda d: _set(d, ["conversation", "title"], 5), "conversation.title: 5 is not of type"),
    (lambda d: _set(d, ["requests", 0, "turn_index"], 50), "requests[0].turn_index: 50 points"),
    (lambda d: _set(d, ["requests", 0, "cost_usd"], "1e-3"), "requests[0].cost_usd"),
    (lambda d: _set(d, ["requests", 0, "api_key"], "x"), "unexpected field(s): 'api_key'"),
    (lambda d: _set(d, ["requests", 0, "params"], {"Authorization": "x"}),
     "credential-like data at requests[0].params.Authorization"),
    (lambda d: _set(d, ["turns", 0, "meta"], {"k": "wfr_" + "a" * 20}),
     "credential-like data at turns[0].k"),
    (lambda d: {k: v for k, v in d.items() if k != "turns"}, "'turns' is a required property"),
])
def test_bad_files_are_rejected_and_change_nothing(db: SQLStore, mutate, message) -> None:
    doc = mutate(_valid(db))
    before = (len(db.list_conversations()), len(db.list_requests()))
    payload = doc if isinstance(doc, str) else json.dumps(doc)
    with pytest.raises(TranscriptError) as exc:
        import_json(db, payload)
    assert message in str(exc.value)
    assert (len(db.list_conversations()), len(db.list_requests())) == before


def test_failure_during_insert_rolls_back(db: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Fault injection: the DB write fails after the conversation row is in."""
    good = export_json(db, _rich_conversation(db))
    before = len(db.list_conversations())
    real = type(db)._request_columns

    def boom(self: SQLStore, fields: dict) -> dict:
        if "turn_index" not in fields and fields.get("status") == "error":
            raise StoreError("disk on fire")
        return real(self, fields)

    monkeypatch.setattr(type(db), "_request_columns", boom)
    with pytest.raises(TranscriptError, match="nothing was saved: disk on fire"):
        import_json(db, good)
    monkeypatch.undo()
    assert len(db.list_conversations()) == before
    n_turns = sum(len(db.list_turns(c.id)) for c in db.list_conversations())
    assert n_turns == 5


def test_timestamps_are_normalised_on_import(db: SQLStore) -> None:
    doc = _valid(db)
    doc["conversation"]["created_at"] = "2026-01-02T03:04:05+02:00"
    cid = import_json(db, doc)
    assert db.get_conversation(cid).created_at == "2026-01-02T01:04:05.000000Z"  # type: ignore[union-attr]


def test_oversized_file(db: SQLStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(transcript, "MAX_IMPORT_BYTES", 100)
    with pytest.raises(TranscriptError, match="the limit is"):
        import_json(db, b"{" + b" " * 200 + b"}")
