"""Attachments in Chat and Compare: the send settings, checks before anything is sent,
upload (`POST /v1/files`) or inline data URL, and thumbnails in the conversation.

The rules live in `wafer_playground/media.py` (MIME types per purpose, 50 MB, part shapes);
this module only draws and calls the client.

Default: **upload, then reference by `image_url.file_id`.** Referenced media do not count
toward Wafer's 50 MB request cap and are not re-sent with every later turn
(docs/spec/addendum-2026-12.md §1.1),
and History can keep the id (valid 30 days) where it must never keep the bytes. Inline data
URLs stay one click away for endpoints without a Files API (a custom vLLM/SGLang URL).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import streamlit as st

from components.errors import error_markdown
from components.untrusted import md_code, md_text
from wafer_playground import media
from wafer_playground.client import WaferClient
from wafer_playground.errors import WaferError

MODES = {"upload": "Upload (POST /v1/files), send file_id",
         "inline": "Inline data URL in the request"}
DEFAULT_MODE = "upload"
_UPLOADED = "_media_uploaded"  # (base URL, key fingerprint, purpose, sha256) -> id, expiry
_FILES = "_media_files"  # file id -> name, mime, purpose: what "View code" uploads again
_ICONS = {"vision": ":material/image:", "document": ":material/description:",
          "video": ":material/movie:"}


def _key(prefix: str, name: str) -> str:
    return f"{prefix}_media_{name}"


def mode(prefix: str) -> str:
    value = st.session_state.get(_key(prefix, "mode"), DEFAULT_MODE)
    return value if value in MODES else DEFAULT_MODE


def shape(prefix: str) -> str:
    value = st.session_state.get(_key(prefix, "shape"), media.DEFAULT_REF_SHAPE)
    return value if value in media.REF_SHAPE_LABELS else media.DEFAULT_REF_SHAPE


def pending_urls(prefix: str) -> list[str]:
    return st.session_state.setdefault(_key(prefix, "urls"), [])


def _add_url(prefix: str) -> None:
    url = str(st.session_state.get(_key(prefix, "url_input")) or "").strip()
    if url:
        pending_urls(prefix).append(url)
    st.session_state[_key(prefix, "url_input")] = ""


def _drop_url(prefix: str, index: int) -> None:
    urls = pending_urls(prefix)
    if 0 <= index < len(urls):
        del urls[index]


def settings(prefix: str) -> None:
    """The "Attachments" popover: how media are sent, the document/video part shape, and
    image URLs to attach to the next message (files are attached in the message box)."""
    urls = pending_urls(prefix)
    label = f"Attachments ({len(urls)} URL)" if urls else "Attachments"
    with st.popover(label, icon=":material/attach_file:"):
        st.caption("Attach images (png, jpeg, gif, webp), documents (pdf, txt) and videos "
                   "(mp4, mov, webm, mkv) with the **+** in the message box (or paste them "
                   "there; in Compare, the uploader), or add image URLs here; at most 50 MB "
                   "each. Only models whose card lists vision take them.")
        st.radio("Send media as", list(MODES), key=_key(prefix, "mode"),
                 format_func=MODES.get, index=list(MODES).index(DEFAULT_MODE),
                 help="Upload: the file goes to POST /v1/files once and the message refers to "
                      "its id (not counted toward the 50 MB request cap; History keeps the id "
                      "for the file's 30 days). Inline: the bytes travel base64-encoded inside "
                      "every request that includes this turn.")
        st.radio("Documents and videos are sent as", list(media.REF_SHAPE_LABELS),
                 key=_key(prefix, "shape"), format_func=media.REF_SHAPE_LABELS.get,
                 help="Wafer documents only the image form (image_url with url or file_id). "
                      "The file / video_url shapes are guesses from other APIs.")
        with st.container(horizontal=True, vertical_alignment="bottom"):
            st.text_input("Image URL", key=_key(prefix, "url_input"),
                          placeholder="https://…/picture.png")
            st.button("Add", key=_key(prefix, "url_add"), on_click=_add_url, args=(prefix,))
        for i, url in enumerate(urls):
            with st.container(horizontal=True, vertical_alignment="center"):
                st.caption(f":material/link: {md_code(url[:120])}")
                st.button("Remove", key=_key(prefix, f"url_drop_{i}"), type="tertiary",
                          on_click=_drop_url, args=(prefix, i))


@dataclass(frozen=True)
class Picked:
    """One attachment the user picked: bytes from a file, or a URL."""

    name: str
    mime: str
    data: bytes | None = None
    url: str | None = None


def split_input(value: Any) -> tuple[str | None, list[Picked]]:
    """A chat_input value (text, or text + files) -> (text, attached files)."""
    if value is None or isinstance(value, str):
        return value, []
    text = getattr(value, "text", None)
    files = [Picked(name=str(f.name), data=f.getvalue(),
                    mime=media.base_mime(f.type) or media.mime_from_name(f.name) or "")
             for f in (getattr(value, "files", None) or [])]
    return (str(text) if text is not None else ""), files


def picked_urls(prefix: str) -> list[Picked]:
    out = []
    for url in pending_urls(prefix):
        name = url.rsplit("/", 1)[-1].split("?", 1)[0] or url
        out.append(Picked(name=name[:120], url=url, mime=media.mime_from_name(name) or
                          "image/*"))
    return out


def check(picked: list[Picked], *, vision: bool | None, model_name: str,
          surface: str = "chat") -> str | None:
    """Every reason not to send these attachments, before anything leaves the browser."""
    if not picked:
        return None
    refused = media.refusal(vision, len(picked), model_name)
    if refused:
        return refused
    if surface == "messages":
        return ("Attachments go out on the OpenAI protocol only: Wafer documents no image "
                "blocks for /v1/messages. Switch the protocol to OpenAI.")
    for p in picked:
        if p.url is not None:
            if not p.url.lower().startswith(("http://", "https://")):
                return f"{p.url[:80]!r} is not an http(s) URL."
            continue
        problem = media.check_media(p.mime, len(p.data or b""))
        if problem:
            return f"{p.name[:80]}: {problem}"
    return None


def prepare(picked: list[Picked], client: WaferClient, prefix: str
            ) -> tuple[list[dict[str, Any]], str | None]:
    """Upload or inline each (already checked) attachment. Returns the turn's `media`
    entries, or a reason nothing was sent."""
    how, part_shape = mode(prefix), shape(prefix)
    entries: list[dict[str, Any]] = []
    for p in picked:
        if p.url is not None:
            entries.append({"name": p.name, "mime": p.mime, "purpose":
                            media.purpose_for(p.mime) or "vision", "url": p.url,
                            "shape": part_shape})
            continue
        data = p.data or b""
        purpose = media.purpose_for(p.mime) or "vision"
        entry: dict[str, Any] = {"name": p.name, "mime": p.mime, "purpose": purpose,
                                 "size": len(data), "shape": part_shape}
        thumb = media.thumbnail(data, p.mime)
        if thumb:
            entry["thumb"] = thumb
        if how == "upload":
            # the same bytes again (a Compare re-run, a re-sent picture) reuse their id
            ident = (client.base_url, client.key_fingerprint, purpose,
                     hashlib.sha256(data).hexdigest())
            uploaded: dict[tuple[str, ...], dict[str, str]] = st.session_state.setdefault(
                _UPLOADED, {})
            known = uploaded.get(ident)
            if known is None or not media.still_valid(known.get("expires_at")):
                try:
                    up = client.upload_file(data, p.mime, purpose, p.name)
                except WaferError as err:
                    return [], f"Uploading {p.name[:80]} failed: {error_markdown(err)}"
                known = {"file_id": str(up.data["id"])}
                if up.data.get("expires_at"):
                    known["expires_at"] = str(up.data["expires_at"])
                uploaded[ident] = known
            entry.update(known)
            _remember(entry)
        else:
            entry["data_url"] = media.data_url(p.mime, data)
        entries.append(entry)
    return entries, None


def _remember(entry: dict[str, Any]) -> None:
    files: dict[str, dict[str, str]] = st.session_state.setdefault(_FILES, {})
    if entry.get("file_id") and len(files) < 1000:
        files[str(entry["file_id"])] = {k: str(entry.get(k) or "")
                                        for k in ("name", "mime", "purpose")}


def uploaded_files() -> dict[str, dict[str, str]]:
    """File id -> name, MIME type and purpose of the uploads this session made or showed
    (a conversation reopened from History included), for the upload snippets."""
    files: dict[str, dict[str, str]] = st.session_state.get(_FILES, {})
    return files


def clear_pending(prefix: str) -> None:
    pending_urls(prefix).clear()


def show(entries: Any, *, key: str) -> None:
    """Thumbnails (images seen in this session) or a chip per attachment, with its id."""
    if not isinstance(entries, list) or not entries:
        return
    with st.container(horizontal=True, key=f"media_{key}"):
        for e in entries:
            if not isinstance(e, dict):
                continue
            _remember(e)
            name = md_text(str(e.get("name") or "attachment")[:80])
            ref = (md_code(e["file_id"]) if e.get("file_id") else
                   "inline" if e.get("data_url") else
                   "URL" if e.get("url") else "inline, not kept in history")
            if e.get("thumb"):
                with st.container(width=130):
                    st.image(e["thumb"], width=120)
                    st.caption(f"{name} · {ref}")
            else:
                icon = _ICONS.get(str(e.get("purpose")), ":material/attach_file:")
                size = media.human_size(int(e["size"])) if e.get("size") else ""
                st.caption(f"{icon} {name} {size} · {ref}")


__all__ = ["DEFAULT_MODE", "MODES", "Picked", "check", "clear_pending", "mode", "picked_urls",
           "prepare", "settings", "shape", "show", "split_input", "uploaded_files"]
