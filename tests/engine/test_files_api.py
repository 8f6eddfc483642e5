"""The local engine's Files API stand-in, model retrieval, request ids, max_tokens limits and
media refusal (docs/spec/addendum-2026-12.md §1.7), in process: the adapter over a scripted
llama-server, the file store in a temporary folder. No llama-server needed."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.testclient import TestClient

from tests.engine.conftest import assert_error
from wafer_playground import media
from wafer_playground.local import cards
from wafer_playground.local.files import FileStore, owner_of
from wafer_playground.local.server import Backend, EngineConfig, create_app

PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a5f1e7d20000000049454e44ae426082")
SMOL = cards.SMOLLM2.id


def _upstream(request: httpx.Request) -> httpx.Response:
    path = request.url.path
    if path == "/apply-template":
        return httpx.Response(200, json={"prompt": "x"})
    if path == "/tokenize":
        return httpx.Response(200, json={"tokens": [1, 2, 3]})
    return httpx.Response(200, json={
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}})


@pytest.fixture
def store(tmp_path: Path) -> FileStore:
    return FileStore(tmp_path / "files", cap_bytes=1_000_000)


@pytest.fixture
def client(store: FileStore) -> Iterator[TestClient]:
    backends = [Backend(spec=s, url="http://upstream.invalid", n_ctx=4096, n_vocab=49152)
                for s in (cards.SMOLLM2, cards.GEMMA)]
    app = create_app(backends, EngineConfig(
        upstream_transport=httpx.MockTransport(_upstream), files=store))
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


def upload(c: TestClient, data: bytes = PNG, mime: str = "image/png", purpose: str = "vision",
           **headers: str) -> httpx.Response:
    h = {"Content-Type": mime, "X-Wafer-Purpose": purpose, **headers}
    return c.post("/v1/files", content=data, headers={k: v for k, v in h.items() if v})


def test_upload_answers_the_documented_shape(client: TestClient, store: FileStore) -> None:
    r = upload(client, **{"X-Wafer-Filename": "dot.png"})
    assert r.status_code == 200, r.text
    d = r.json()
    assert set(d) == {"id", "purpose", "filename", "mime_type", "bytes", "status",
                      "created_at", "expires_at"}
    assert re.fullmatch(r"file_[0-9a-f]{32}", d["id"])
    assert (d["purpose"], d["filename"], d["mime_type"], d["bytes"], d["status"]) == (
        "vision", "dot.png", "image/png", len(PNG), "ready")
    created = datetime.fromisoformat(d["created_at"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(d["expires_at"].replace("Z", "+00:00"))
    assert expires - created == timedelta(days=30)
    assert abs(created - datetime.now(UTC)) < timedelta(minutes=1)
    # stored under the owner's folder, bytes intact
    assert (store.root / owner_of(None) / f"{d['id']}.bin").read_bytes() == PNG


@pytest.mark.parametrize(("headers", "status", "code", "param"), [
    ({"mime": "multipart/form-data; boundary=x"}, 400, "multipart_not_supported",
     "Content-Type"),
    ({"purpose": ""}, 400, "missing_purpose", "X-Wafer-Purpose"),
    ({"purpose": "audio"}, 400, "invalid_purpose", "X-Wafer-Purpose"),
    ({"mime": "application/pdf"}, 400, "unsupported_media_type", "Content-Type"),
    ({"mime": "image/png", "purpose": "document"}, 400, "unsupported_media_type",
     "Content-Type"),
    ({"mime": "image/svg+xml"}, 400, "unsupported_media_type", "Content-Type"),
    ({"X-Wafer-Extraction-Fps": "2"}, 400, "invalid_extraction_fps", "X-Wafer-Extraction-Fps"),
    ({"mime": "video/mp4", "purpose": "video", "X-Wafer-Extraction-Fps": "0"}, 400,
     "invalid_extraction_fps", "X-Wafer-Extraction-Fps"),
    ({"mime": "video/mp4", "purpose": "video", "X-Wafer-Extraction-Fps": "fast"}, 400,
     "invalid_extraction_fps", "X-Wafer-Extraction-Fps"),
    ({"data": b""}, 400, "empty_file", None),
])
def test_upload_refusals(client: TestClient, store: FileStore, headers: dict[str, str],
                         status: int, code: str, param: str | None) -> None:
    kw = dict(headers)
    r = upload(client, kw.pop("data", PNG), kw.pop("mime", "image/png"),  # type: ignore[arg-type]
               kw.pop("purpose", "vision"), **kw)
    assert_error(r, status, code, param=param)
    assert not list(store.root.glob("*/file_*")), "a refused upload left a file behind"


def test_upload_accepts_every_allowed_type(client: TestClient) -> None:
    for purpose, types in media.ALLOWED.items():
        for mime in types:
            extra = {"X-Wafer-Extraction-Fps": "0.5"} if purpose == "video" else {}
            r = upload(client, b"x" * 10, f"{mime}; charset=binary", purpose, **extra)
            assert r.status_code == 200, (mime, r.text)
            assert r.json()["mime_type"] == mime


def test_upload_over_50_mb_is_413(client: TestClient, store: FileStore) -> None:
    big = b"\0" * (media.MAX_BYTES + 1)
    assert_error(upload(client, big), 413, "file_too_large")

    def chunks() -> Iterator[bytes]:  # no Content-Length: counted while streaming
        for _ in range(51):
            yield b"\0" * 1_000_000

    r = client.post("/v1/files", content=chunks(),
                    headers={"Content-Type": "image/png", "X-Wafer-Purpose": "vision"})
    assert_error(r, 413, "file_too_large")
    assert not list(store.root.rglob("*file_*")), "a refused upload left a file behind"


def test_store_cap_and_expiry(client: TestClient, store: FileStore) -> None:
    ok = upload(client, b"a" * 600_000)
    assert ok.status_code == 200
    full = upload(client, b"b" * 600_000)
    assert_error(full, 507, "file_storage_full")
    # once the first file has expired it no longer counts, and it is gone
    meta_path = store.root / owner_of(None) / f"{ok.json()['id']}.json"
    meta = json.loads(meta_path.read_text())
    meta["expires_at"] = "2020-01-01T00:00:00Z"
    meta_path.write_text(json.dumps(meta))
    assert upload(client, b"b" * 600_000).status_code == 200
    assert not meta_path.exists()
    r = client.post("/v1/chat/completions", json=_image_chat(ok.json()["id"]))
    assert_error(r, 404, "file_not_found", param="messages[0].content[1].image_url.file_id")


def _image_chat(file_id: str | None = None, url: str | None = None,
                model: str = SMOL) -> dict[str, object]:
    ref = {"file_id": file_id} if file_id else {"url": url}
    return {"model": model, "max_tokens": 4, "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"}, {"type": "image_url", "image_url": ref}]}]}


def test_chat_resolves_file_ids_then_refuses_media_on_text_models(client: TestClient) -> None:
    fid = upload(client).json()["id"]
    # a known id resolves, and the text-only model refuses it with the reason
    err = assert_error(client.post("/v1/chat/completions", json=_image_chat(fid)), 400,
                       "model_capability_unsupported", param="messages[0].content[1]")
    assert "text-only" in err["message"] and "vision" in err["message"]
    # an unknown id is a 404 naming the part
    unknown = "file_" + "0" * 32
    assert_error(client.post("/v1/chat/completions", json=_image_chat(unknown)), 404,
                 "file_not_found", param="messages[0].content[1].image_url.file_id")
    assert_error(client.post("/v1/chat/completions", json=_image_chat("not-an-id")), 404,
                 "file_not_found")
    # inline data URLs and the GUESSed document/video shapes are refused the same way
    for part in ({"type": "image_url", "image_url": {"url": media.data_url("image/png", PNG)}},
                 media.part("document", file_id=fid, shape="typed"),
                 media.part("video", url="https://example.com/v.mp4", shape="typed")):
        body = {"model": SMOL, "messages": [{"role": "user", "content": [part]}]}
        assert_error(client.post("/v1/chat/completions", json=body), 400,
                     "model_capability_unsupported", param="messages[0].content[0]")
    # malformed media parts are schema errors
    bad = {"model": SMOL, "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://x", "file_id": fid}}]}]}
    assert_error(client.post("/v1/chat/completions", json=bad), 422,
                 "schema_validation_failed", param="messages[0].content[0].image_url")
    # apply-template sees the same rule
    assert_error(client.post("/v1/apply-template", json={"model": SMOL, "messages":
                                                         _image_chat(fid)["messages"]}),
                 400, "model_capability_unsupported")
    # and a text chat still works
    r = client.post("/v1/chat/completions", json={"model": SMOL, "max_tokens": 4, "messages": [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]}]})
    assert r.status_code == 200, r.text


def test_models_retrieve(client: TestClient) -> None:
    r = client.get(f"/v1/models/{SMOL}")
    assert r.status_code == 200
    listed = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert r.json() == listed[SMOL]
    assert client.get("/v1/models/SmolLM2-135M-Instruct").json()["id"] == SMOL
    assert_error(client.get("/v1/models/nope"), 404, "model_not_found", param="model")


def test_request_id_header_on_messages(client: TestClient) -> None:
    body = {"model": SMOL, "max_tokens": 4, "messages": [{"role": "user", "content": "hi"}]}
    r = client.post("/v1/messages", json=body)
    assert r.status_code == 200, r.text
    assert r.headers["request-id"] == r.headers["x-request-id"]
    bad = client.post("/v1/messages", json={**body, "max_tokens": 0})
    assert bad.headers["request-id"] == bad.json()["error"]["request_id"]
    assert "request-id" not in client.get("/v1/models").headers


def test_max_tokens_above_max_output_is_refused(client: TestClient) -> None:
    cap = cards.DEFAULT_MAX_OUTPUT
    msgs = [{"role": "user", "content": "hi"}]
    for path, body, param in (
        ("/v1/chat/completions", {"messages": msgs, "max_tokens": 5000}, "max_tokens"),
        ("/v1/chat/completions", {"messages": msgs, "max_completion_tokens": 5000},
         "max_completion_tokens"),
        ("/v1/messages", {"messages": msgs, "max_tokens": 5000}, "max_tokens"),
        ("/v1/completions", {"prompt": [1, 2], "max_tokens": 5000}, "max_tokens"),
    ):
        r = client.post(path, json={"model": SMOL, **body})
        err = assert_error(r, 400, "max_tokens_exceeded", param=param,
                           anthropic=path == "/v1/messages")
        assert str(cap) in err["message"]
    ok = client.post("/v1/chat/completions", json={"model": SMOL, "messages": msgs,
                                                   "max_tokens": cap})
    assert ok.status_code == 200, ok.text
