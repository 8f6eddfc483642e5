"""Media rules (wafer_playground/media.py), attachments in chat bodies and history, and the
client's POST /v1/files."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.fake_wafer import FakeWafer
from wafer_playground import media
from wafer_playground.assembly import conversation_messages
from wafer_playground.client import WaferClient
from wafer_playground.errors import APIStatusError
from wafer_playground.params import estimate_prompt_tokens


def png(w: int = 400, h: int = 300) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), "red").save(buf, format="PNG")
    return buf.getvalue()


def test_checks_before_sending() -> None:
    assert media.check_media("image/png", 10) is None
    assert media.check_media("application/pdf; x=y", 10) is None
    assert media.check_media("video/x-matroska", media.MAX_BYTES) is None
    too_big = media.check_media("image/png", media.MAX_BYTES + 1)
    assert too_big and "50 MB" in too_big
    svg = media.check_media("image/svg+xml", 10)
    assert svg and "image/png" in svg and "application/pdf" in svg  # says what is allowed
    assert media.check_media("image/png", 0) == "The file is empty."
    wrong = media.check_media("image/png", 10, purpose="document")
    assert wrong and "application/pdf, text/plain" in wrong
    assert media.purpose_for("VIDEO/MP4") == "video" and media.purpose_for("x/y") is None
    assert media.mime_from_name("a.JPG") == "image/jpeg" and media.mime_from_name("a") is None


def test_parts_shapes() -> None:
    assert media.part("vision", file_id="file_1") == {
        "type": "image_url", "image_url": {"file_id": "file_1"}}
    # default: documents and videos in the documented image form too
    assert media.part("document", file_id="f") == {"type": "image_url",
                                                   "image_url": {"file_id": "f"}}
    assert media.part("document", file_id="f", shape="typed") == {"type": "file",
                                                                  "file": {"file_id": "f"}}
    assert media.part("video", url="https://v", shape="typed") == {
        "type": "video_url", "video_url": {"url": "https://v"}}
    with pytest.raises(ValueError):
        media.part("vision")


def test_turn_media_in_body_and_history() -> None:
    entries = [{"name": "a.png", "mime": "image/png", "purpose": "vision", "size": 3,
                "file_id": "file_" + "a" * 32, "thumb": b"png"},
               {"name": "b.png", "mime": "image/png", "purpose": "vision",
                "data_url": "data:image/png;base64,AAAA", "thumb": b"png"},
               {"name": "c.pdf", "mime": "application/pdf", "purpose": "document",
                "file_id": "file_" + "c" * 32, "shape": "typed"}]
    msgs = conversation_messages([{"role": "user", "content": "look", "media": entries}])
    assert msgs[0]["content"] == [
        {"type": "text", "text": "look"},
        {"type": "image_url", "image_url": {"file_id": "file_" + "a" * 32}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "file", "file": {"file_id": "file_" + "c" * 32}}]
    kept = media.stored(entries)
    assert all("thumb" not in e and "data_url" not in e for e in kept)
    assert kept[0]["file_id"] == "file_" + "a" * 32 and kept[1]["name"] == "b.png"
    # reopened from history: the inline one is gone, the ids still go out
    again = conversation_messages([{"role": "user", "content": "look", "media": kept}])
    assert [p["type"] for p in again[0]["content"]] == ["text", "image_url", "file"]
    # a turn without media stays a plain string
    assert conversation_messages([{"role": "user", "content": "hi"}])[0]["content"] == "hi"
    # base64 is not counted as text: each medium is a fixed guess
    n = estimate_prompt_tokens({"messages": msgs})
    assert 3 * media.MEDIA_TOKENS_GUESS <= n < 3 * media.MEDIA_TOKENS_GUESS + 50


def test_an_upload_id_is_reused_until_near_its_expiry() -> None:
    from datetime import UTC, datetime, timedelta

    soon = (datetime.now(UTC) + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
    later = (datetime.now(UTC) + timedelta(days=29)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert media.still_valid(later) and media.still_valid(None)
    assert not media.still_valid(soon)  # within the hour before expiry: upload again
    assert not media.still_valid("2020-01-01T00:00:00Z") and not media.still_valid("soon")


def test_logs_never_keep_inline_bytes() -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "data: a, b (text, not a data URL)"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,QUJDRA=="}},
        {"type": "image_url", "image_url": {"file_id": "file_1"}},
        {"type": "image_url", "image_url": {"url": "https://x/a.png"}}]}]}
    clean = media.without_inline(body)
    parts = clean["messages"][0]["content"]
    assert parts[0]["text"] == "data: a, b (text, not a data URL)"
    assert parts[1]["image_url"]["url"] == "data:image/png;base64,[8 characters not kept]"
    assert parts[2] == body["messages"][0]["content"][2]
    assert parts[3] == body["messages"][0]["content"][3]
    assert body["messages"][0]["content"][1]["image_url"]["url"].endswith("QUJDRA==")  # a copy


def test_refusal_and_thumbnail() -> None:
    assert media.refusal(True, 1, "M") is None and media.refusal(False, 0, "M") is None
    no = media.refusal(False, 2, "Tiny")
    assert no and "Tiny" in no and "no vision" in no
    unknown = media.refusal(None, 1, "Tiny")
    assert unknown and "does not list vision" in unknown
    thumb = media.thumbnail(png(), "image/png")
    assert thumb is not None
    with Image.open(io.BytesIO(thumb)) as im:
        assert max(im.size) <= 160
    assert media.thumbnail(b"not an image", "image/png") is None
    assert media.thumbnail(b"%PDF", "application/pdf") is None


def test_client_upload_file() -> None:
    fake = FakeWafer()  # tests/fake_wafer.py: its Files API follows wafer_playground/local/files
    c = WaferClient("https://pass.example/v1", api_key="wfr_secret",
                    transport=fake.transport())
    r = c.upload_file(b"\x89PNG", "image/png", "vision", "shot ✓.png")
    assert r.data["id"] == "file_" + "0" * 32 and r.request_id == "req_fake00000001"
    req = fake.requests[0]
    assert req.path == "/v1/files" and req.body == b"\x89PNG"
    assert req.header("content-type") == "image/png"
    assert req.header("x-wafer-filename") == "shot .png"  # ASCII only in a header
    assert req.sent_key("wfr_secret")
    with pytest.raises(APIStatusError) as exc:
        c.upload_file(b"x", "image/png", "audio")
    assert exc.value.code == "invalid_purpose" and len(fake.requests) == 2  # no retry
    assert "wfr_secret" not in str(exc.value)
