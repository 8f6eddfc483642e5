""""View code" for a chat that references uploaded media: upload tabs beside the request's."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest


def _view(known: bool, surface: str = "chat") -> AppTest:
    def script(known: bool, surface: str) -> None:
        import streamlit as st

        from components.code_view import code_view
        from wafer_playground import media

        fid = "file_" + "ab" * 16
        if known:  # what components/media_attach records when it uploads or shows a file
            st.session_state["_media_files"] = {
                fid: {"name": "cat photo.jpg", "mime": "image/jpeg", "purpose": "vision"}}
        body = {"model": "v", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "what is this?"}, media.part("vision", file_id=fid)]}]}
        code_view(surface, "https://pass.wafer.ai/v1", body, zdr=False)  # type: ignore[arg-type]

    at = AppTest.from_function(script, kwargs={"known": known, "surface": surface})
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_upload_tabs_for_a_request_with_file_ids() -> None:
    at = _view(known=True)
    labels = [t.label for t in at.tabs]
    assert labels[-4:] == ["Upload · curl", "Upload · httpx", "Upload · openai",
                           "Raw request/response"]
    codes = [c.value for c in at.code]
    curl = next(c for c in codes if "/v1/files" in c and c.startswith("# POST"))
    assert "--data-binary '@cat photo.jpg'" in curl and "X-Wafer-Purpose: vision" in curl
    assert "Content-Type: image/jpeg" in curl and "$WAFER_API_KEY" in curl
    assert any("client.post(" in c and '"cat photo.jpg", "image/jpeg"' in c for c in codes)
    captions = " ".join(c.value for c in at.caption)
    assert "references 1 uploaded file(s)" in captions and "stand-in" not in captions


def test_an_id_not_uploaded_here_gets_a_labelled_stand_in() -> None:
    at = _view(known=False)
    assert "Upload · httpx" in [t.label for t in at.tabs]
    assert "stand-in file name" in " ".join(c.value for c in at.caption)
    assert any('("image.png", "image/png", "vision")' in c.value for c in at.code)


def test_no_upload_tabs_without_file_ids() -> None:
    at = _view(known=True, surface="messages")  # only chat bodies carry media
    assert not any(t.label.startswith("Upload") for t in at.tabs)
