"""Media in Chat, in headless Chromium against a real `streamlit run app.py`.

Against the fake Wafer server (tests/fake_wafer.py) with its vision card: an
attached image shows as a thumbnail, goes up through POST /v1/files, the chat request carries
the documented `image_url.file_id` part, and the answer and its cost appear; inline mode
sends a data URL instead; a text-only model refuses the attachment before anything is sent.
Against the real local engine (text-only models): the refusal is seen too.
Screenshots go to /tmp/shots17/ (and .pytest_cache/screens/).
"""

from __future__ import annotations

import io
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.conftest import ROOT, wait_for_app
from tests.fake_wafer import CARDS_WITH_VISION, VISION_MODEL, FakeWafer, serve

pytestmark = pytest.mark.e2e
SHOTS = [Path("/tmp/shots17"), ROOT / ".pytest_cache" / "screens"]
KEY = "wfr_media_e2e_key"


def shot(page: Page, name: str) -> None:
    for folder in SHOTS:
        folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS[0] / f"{name}.png"), full_page=True)
    shutil.copy(SHOTS[0] / f"{name}.png", SHOTS[1] / f"{name}.png")


def picture(tmp_path: Path) -> Path:
    """A real PNG with something to see: four coloured squares."""
    from PIL import Image, ImageDraw

    im = Image.new("RGB", (240, 160), "white")
    d = ImageDraw.Draw(im)
    for i, colour in enumerate(("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e")):
        d.rectangle((10 + i * 57, 40, 57 + i * 57, 120), fill=colour)
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    f = tmp_path / "squares.png"
    f.write_bytes(buf.getvalue())
    return f


def open_page(page: Page, url: str, path: str, height: int = 1300) -> None:
    """The root first (a cold server answers a deep link in legacy pages/ mode), then path."""
    page.set_default_timeout(90_000)
    page.set_viewport_size({"width": 1440, "height": height})
    page.goto(url)
    wait_for_app(page, timeout=120_000)
    page.goto(url + path)
    wait_for_app(page, timeout=120_000)


def open_chat(page: Page, url: str, model: str) -> None:
    open_page(page, url, f"/chat?model={model}")
    expect(page.get_by_test_id("stChatInputTextArea")).to_be_enabled(timeout=60_000)


def wafer_app(factory: Any, fake: FakeWafer, db: Path) -> Any:
    """`streamlit run app.py` on the Wafer endpoint, pointed at the fake server, with a key."""
    return factory(env={"WAFER_ENDPOINT": "wafer", "WAFER_BASE_URL": fake.url,
                        "WAFER_API_KEY": KEY, "WAFER_PLAYGROUND_DB": str(db)})


def attach_and_send(page: Page, file: Path, text: str) -> None:
    page.locator("[data-testid='stChatInput'] input[type='file']").set_input_files(str(file))
    expect(page.get_by_test_id("stChatInput")).to_contain_text(file.name, timeout=20_000)
    send_typed(page, text)


def send_typed(page: Page, text: str) -> None:
    """Type and send once the attachment has finished uploading to Streamlit (Enter is
    ignored while it uploads, and the text would just sit in the box)."""
    wait_for_app(page)
    box = page.get_by_test_id("stChatInputTextArea")
    box.fill(text)
    expect(page.get_by_test_id("stChatInputSubmitButton")).to_be_enabled(timeout=30_000)
    box.press("Enter")
    expect(box).to_have_value("", timeout=30_000)


@pytest.fixture
def fake() -> Iterator[FakeWafer]:
    yield from serve(CARDS_WITH_VISION)


def test_image_on_a_vision_model_and_refusal_on_a_text_model(
        page: Page, streamlit_server_factory, fake: FakeWafer, tmp_path: Path) -> None:
    server = wafer_app(streamlit_server_factory, fake, tmp_path / "m.db")
    png = picture(tmp_path)
    open_chat(page, server.url, VISION_MODEL)
    attach_and_send(page, png, "What colours are these squares?")
    user = page.get_by_test_id("stChatMessage").first
    expect(user.get_by_test_id("stImage")).to_be_visible(timeout=30_000)  # the thumbnail
    answer = page.get_by_test_id("stChatMessage").nth(1)
    expect(answer).to_contain_text("Hello from the fake server.", timeout=30_000)
    expect(answer).to_contain_text("$", timeout=30_000)  # cost from the returned usage
    wait_for_app(page)
    shot(page, "media_vision_upload")
    # the upload: raw bytes, purpose and type headers, the key
    up = fake.requests_to("POST", "/files")
    assert len(up) == 1
    assert up[0].body == png.read_bytes()
    assert up[0].header("x-wafer-purpose") == "vision"
    assert up[0].header("content-type") == "image/png"
    assert up[0].header("x-wafer-filename") == "squares.png"
    assert up[0].sent_key(KEY)
    fid = next(iter(fake.files))  # the id the fake server issued
    chats = fake.requests_to("POST", "/chat/completions")
    assert len(chats) == 1
    content = chats[0].json()["messages"][-1]["content"]
    assert content == [{"type": "text", "text": "What colours are these squares?"},
                       {"type": "image_url", "image_url": {"file_id": fid}}]
    expect(user).to_contain_text(fid)  # the id is shown with the thumbnail

    # inline mode: the next image travels as a data URL, no upload
    page.get_by_role("button", name="Attachments").click()
    page.get_by_text("Inline data URL in the request").click()
    wait_for_app(page)
    page.keyboard.press("Escape")
    attach_and_send(page, png, "And now inline?")
    expect(page.get_by_test_id("stChatMessage").nth(3)).to_contain_text(
        "Hello from the fake server.", timeout=30_000)
    wait_for_app(page)
    assert len(fake.requests_to("POST", "/files")) == 1
    last = fake.requests_to("POST", "/chat/completions")[-1].json()["messages"]
    assert last[0]["content"][1]["image_url"]["file_id"] == fid  # history kept by id
    url = last[-1]["content"][1]["image_url"]["url"]
    assert url.startswith("data:image/png;base64,")
    shot(page, "media_vision_inline")
    # neither the turn nor the request log keeps the inline bytes
    db = tmp_path / "m.db"
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert url[22:80].encode() not in raw and b"characters not kept" in raw

    # a text-only model: refused before sending, with the reason
    open_chat(page, server.url, "fake-glm")
    before = (len(fake.requests_to("POST", "/chat/completions")),
              len(fake.requests_to("POST", "/files")))
    attach_and_send(page, png, "Can you see this?")
    alert = page.get_by_test_id("stAlert").filter(has_text="Not sent")
    expect(alert).to_contain_text("no vision", timeout=30_000)
    wait_for_app(page)
    time.sleep(0.5)
    assert (len(fake.requests_to("POST", "/chat/completions")),
            len(fake.requests_to("POST", "/files"))) == before
    shot(page, "media_text_model_refused")


def test_local_engine_refuses_media_before_sending(
        page: Page, streamlit_server_factory, local_engine: str, tmp_path: Path) -> None:
    server = streamlit_server_factory(env={
        "WAFER_ENDPOINT": "local", "WAFER_LOCAL_URL": local_engine,
        "WAFER_PLAYGROUND_DB": str(tmp_path / "l.db")})
    open_chat(page, server.url, "smollm2-135m-instruct")
    attach_and_send(page, picture(tmp_path), "Describe this picture.")
    alert = page.get_by_test_id("stAlert").filter(has_text="Not sent")
    expect(alert).to_contain_text("no vision", timeout=30_000)
    expect(page.get_by_test_id("stChatMessage")).to_have_count(0)
    expect(page.get_by_text("Your message, not sent: Describe this picture.")).to_be_visible()
    wait_for_app(page)
    shot(page, "media_local_refused")


def pick(page: Page, key: str, typed: str) -> None:
    """Choose a model in a Compare selectbox by typing part of its label."""
    box = page.locator(f".st-key-{key}")
    for _ in range(3):
        wait_for_app(page)
        box.click()
        page.keyboard.type(typed)
        page.keyboard.press("Enter")
        wait_for_app(page)
        if typed in box.get_by_role("combobox").input_value():
            return
    raise AssertionError(f"{key} did not take {typed!r}")


def test_compare_sends_the_image_to_every_vision_pane(
        page: Page, streamlit_server_factory, fake: FakeWafer, tmp_path: Path) -> None:
    server = wafer_app(streamlit_server_factory, fake, tmp_path / "c.db")
    png = picture(tmp_path)
    open_page(page, server.url, "/compare", height=1800)
    pick(page, "cmp_model_0", "Fake Kimi Vision")
    pick(page, "cmp_model_1", "Fake GLM")
    page.get_by_label("Prompt", exact=True).fill("Which colours do you see?")
    page.locator(".st-key-cmp_media input[type='file']").set_input_files(str(png))
    expect(page.locator(".st-key-cmp_media")).to_contain_text("squares.png")
    wait_for_app(page)
    # one text-only pane: nothing is uploaded or sent, and the reason names it
    page.get_by_role("button", name="Run comparison").click()
    alert = page.get_by_test_id("stAlert").filter(has_text="Not sent")
    expect(alert).to_contain_text("Fake GLM", timeout=30_000)
    expect(alert).to_contain_text("no vision")
    wait_for_app(page)
    assert not fake.requests_to("POST", "/files")
    assert not fake.requests_to("POST", "/chat/completions")
    shot(page, "media_compare_refused")
    # both panes on the vision model: one upload, the same file_id part in both requests
    pick(page, "cmp_model_1", "Fake Kimi Vision")
    page.get_by_role("button", name="Run comparison").click()
    expect(page.get_by_role("heading", name="Summary")).to_be_visible(timeout=60_000)
    wait_for_app(page)
    expect(page.locator(".st-key-media_cmp_sent").get_by_test_id("stImage")).to_be_visible()
    up = fake.requests_to("POST", "/files")
    assert len(up) == 1 and up[0].body == png.read_bytes()
    fid = next(iter(fake.files))
    chats = fake.requests_to("POST", "/chat/completions")
    assert len(chats) == 2
    for hit in chats:
        assert hit.json()["messages"][-1]["content"] == [
            {"type": "text", "text": "Which colours do you see?"},
            {"type": "image_url", "image_url": {"file_id": fid}}]
    expect(page.get_by_text("Hello from the fake server.").first).to_be_visible()
    shot(page, "media_compare_vision")
    # a re-run reuses the uploaded file's id: no second upload
    page.get_by_role("button", name="Run comparison").click()
    expect(page.get_by_role("heading", name="Summary")).to_be_visible(timeout=60_000)
    wait_for_app(page)
    assert len(fake.requests_to("POST", "/chat/completions")) == 4
    assert len(fake.requests_to("POST", "/files")) == 1


def paste_file(page: Page, file: Path, mime: str) -> None:
    """Paste a file into the message box the way a browser does (a ClipboardEvent)."""
    import base64

    page.get_by_test_id("stChatInputTextArea").evaluate(
        """(box, [b64, name, mime]) => {
             const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
             const dt = new DataTransfer();
             dt.items.add(new File([bytes], name, {type: mime}));
             box.focus();
             box.dispatchEvent(new ClipboardEvent("paste", {clipboardData: dt,
                                                            bubbles: true, cancelable: true}));
           }""", [base64.b64encode(file.read_bytes()).decode(), file.name, mime])


def test_paste_a_pdf_with_the_guessed_part_shape_and_history_keeps_no_bytes(
        page: Page, streamlit_server_factory, fake: FakeWafer, tmp_path: Path) -> None:
    import sqlite3

    db = tmp_path / "p.db"
    server = wafer_app(streamlit_server_factory, fake, db)
    open_chat(page, server.url, VISION_MODEL)
    # the GUESSed document shape, picked in the one setting
    page.get_by_role("button", name="Attachments").click()
    page.get_by_text("file / video_url parts for documents and videos").click()
    wait_for_app(page)
    page.keyboard.press("Escape")
    pdf = tmp_path / "brief.pdf"
    pdf.write_bytes(b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n")
    paste_file(page, pdf, "application/pdf")
    expect(page.get_by_test_id("stChatInput")).to_contain_text("brief.pdf", timeout=20_000)
    send_typed(page, "Summarise the brief.")
    answer = page.get_by_test_id("stChatMessage").nth(1)
    expect(answer).to_contain_text("Hello from the fake server.", timeout=30_000)
    wait_for_app(page)
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text("brief.pdf")
    up = fake.requests_to("POST", "/files")[-1]
    assert up.header("x-wafer-purpose") == "document" and up.body == pdf.read_bytes()
    fid = list(fake.files)[-1]  # the id the fake server issued
    sent = fake.requests_to("POST", "/chat/completions")[-1].json()["messages"][-1]["content"]
    assert sent[1] == {"type": "file", "file": {"file_id": fid}}
    shot(page, "media_pasted_pdf")
    # History keeps the attachment's id and name, never its bytes
    raw = b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*"))
    assert fid.encode() in raw and b"brief.pdf" in raw
    assert b"%PDF-1.4" not in raw and b"base64" not in raw
    with sqlite3.connect(db) as con:
        metas = [r[0] for r in con.execute("SELECT meta FROM turns WHERE role = 'user'")]
    assert any(fid in (m or "") for m in metas)


def test_an_image_url_goes_out_as_an_image_url_part(
        page: Page, streamlit_server_factory, fake: FakeWafer, tmp_path: Path) -> None:
    server = wafer_app(streamlit_server_factory, fake, tmp_path / "u.db")
    open_chat(page, server.url, VISION_MODEL)
    page.get_by_role("button", name="Attachments").click()
    page.get_by_label("Image URL").fill("https://images.example/cat.png")
    page.get_by_role("button", name="Add", exact=True).click()
    wait_for_app(page)
    page.keyboard.press("Escape")
    expect(page.get_by_role("button", name="Attachments (1 URL)")).to_be_visible()
    send_typed(page, "What animal is this?")
    expect(page.get_by_test_id("stChatMessage").nth(1)).to_contain_text(
        "Hello from the fake server.", timeout=30_000)
    wait_for_app(page)
    expect(page.get_by_test_id("stChatMessage").first).to_contain_text("cat.png")
    sent = fake.requests_to("POST", "/chat/completions")[-1].json()["messages"][-1]["content"]
    assert sent[1] == {"type": "image_url", "image_url": {"url": "https://images.example/cat.png"}}
    assert not fake.requests_to("POST", "/files")  # a URL is not uploaded
    expect(page.get_by_role("button", name="Attachments", exact=True)).to_be_visible()  # used
