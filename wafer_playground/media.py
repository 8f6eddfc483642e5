"""Media for chat: the Files API's purposes and MIME types, size limits, and content parts.

One table for the app (checks before anything is sent) and the local engine (the
`POST /v1/files` stand-in), from docs/spec/addendum-2026-12.md §1:

- purposes `vision` | `document` | `video`, each with its allowed MIME types [DOC];
- 50 MB per request body; the per-upload limit is not published, so 50 MB is used for
  uploads too (GUESS, §1.2), answered with 413;
- uploads expire after 30 days [INT];
- an uploaded image is referenced as `{"type": "image_url", "image_url": {"file_id": …}}`
  (no `url` key) [INT]. Documents and videos have no documented part shape: `REF_SHAPES`
  makes that one setting, defaulting to the documented image form.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

Purpose = Literal["vision", "document", "video"]
RefShape = Literal["image_url", "typed"]

ALLOWED: dict[str, tuple[str, ...]] = {
    "vision": ("image/jpeg", "image/png", "image/gif", "image/webp"),
    "document": ("application/pdf", "text/plain"),
    "video": ("video/mp4", "video/quicktime", "video/webm", "video/x-matroska"),
}
PURPOSES: tuple[str, ...] = tuple(ALLOWED)
MAX_BYTES = 50 * 1000 * 1000  # "50 MB" (decimal: the lower reading, so a file we pass fits)
FILE_TTL = timedelta(days=30)
FILE_ID = re.compile(r"^file_[0-9a-f]{32}$")
# Part types a chat body may carry media in: OpenAI's image_url, and the GUESSed shapes for
# documents and videos (docs/spec/addendum-2026-12.md §1.5-1.6) that the stand-in accepts.
MEDIA_PART_TYPES = ("image_url", "video_url", "file", "input_image", "image")

REF_SHAPE_LABELS: dict[str, str] = {
    "image_url": "image_url part for every file (the documented form)",
    "typed": "file / video_url parts for documents and videos (GUESS, unverified)",
}
DEFAULT_REF_SHAPE: RefShape = "image_url"

_EXTENSIONS = {
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
    ".webp": "image/webp", ".pdf": "application/pdf", ".txt": "text/plain",
    ".mp4": "video/mp4", ".mov": "video/quicktime", ".webm": "video/webm",
    ".mkv": "video/x-matroska",
}


def base_mime(content_type: str | None) -> str:
    """`image/png; charset=x` -> `image/png` (lower case); "" when absent."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def purpose_for(mime: str) -> str | None:
    """The purpose whose allowed list has this MIME type, or None."""
    m = base_mime(mime)
    return next((p for p, types in ALLOWED.items() if m in types), None)


def mime_from_name(name: str) -> str | None:
    dot = name.rfind(".")
    return _EXTENSIONS.get(name[dot:].lower()) if dot >= 0 else None


def human_size(n: int) -> str:
    if n >= 1000 * 1000:
        return f"{n / 1e6:.1f} MB"
    if n >= 1000:
        return f"{n / 1e3:.1f} kB"
    return f"{n} bytes"


def allowed_text() -> str:
    return "; ".join(f"{p}: {', '.join(t)}" for p, t in ALLOWED.items())


def check_media(mime: str, size: int, *, purpose: str | None = None) -> str | None:
    """None when a file of this type and size may be sent; else one sentence why not."""
    m = base_mime(mime)
    if size <= 0:
        return "The file is empty."
    if size > MAX_BYTES:
        return (f"The file is {human_size(size)}; Wafer accepts at most 50 MB per upload "
                "and per request.")
    if purpose is not None:
        if purpose not in ALLOWED:
            return f"Unknown purpose '{purpose}': use one of {', '.join(PURPOSES)}."
        if m not in ALLOWED[purpose]:
            return (f"{m or 'This type'} is not allowed for purpose '{purpose}' "
                    f"(allowed: {', '.join(ALLOWED[purpose])}).")
    elif purpose_for(m) is None:
        return f"{m or 'This file type'} is not accepted (allowed: {allowed_text()})."
    return None


def data_url(mime: str, data: bytes) -> str:
    return f"data:{base_mime(mime)};base64,{base64.b64encode(data).decode()}"


def part(purpose: str, *, file_id: str | None = None, url: str | None = None,
         shape: str = DEFAULT_REF_SHAPE) -> dict[str, Any]:
    """The chat content part for one medium, by file id or by URL (http(s) or data URL).

    `shape="image_url"` sends every medium as the documented image part; `"typed"` uses the
    GUESSed `file` / `video_url` parts for documents and videos.
    """
    if (file_id is None) == (url is None):
        raise ValueError("give exactly one of file_id and url")
    ref: dict[str, str] = {"file_id": file_id} if file_id is not None else {"url": str(url)}
    if shape == "typed" and purpose == "document":
        return {"type": "file", "file": ref}
    if shape == "typed" and purpose == "video":
        return {"type": "video_url", "video_url": ref}
    return {"type": "image_url", "image_url": ref}


@dataclass(frozen=True)
class MediaRef:
    """One media part found in a chat message."""

    path: str  # e.g. messages[0].content[1]
    kind: str  # the part's type
    file_id: str | None
    url: str | None


def media_ref(p: dict[str, Any], path: str) -> MediaRef | None:
    """The media reference in a content part, or None when it is not a media part.
    Raises ValueError (with the offending sub-path) for a malformed one."""
    kind = p.get("type")
    if kind not in MEDIA_PART_TYPES:
        return None
    inner = p.get(kind)
    if isinstance(inner, str) and kind in ("image_url", "video_url", "input_image"):
        inner = {"url": inner}
    if not isinstance(inner, dict):
        raise ValueError(f"{path}.{kind} must be an object with url or file_id")
    fid, url = inner.get("file_id"), inner.get("url")
    if (fid is None) == (url is None):
        raise ValueError(f"{path}.{kind} needs exactly one of url and file_id")
    if fid is not None and not isinstance(fid, str):
        raise ValueError(f"{path}.{kind}.file_id must be a string")
    if url is not None and not isinstance(url, str):
        raise ValueError(f"{path}.{kind}.url must be a string")
    return MediaRef(path, str(kind), fid, url)


def has_media(messages: Any) -> bool:
    """Does any message carry a media part (the app's pre-send check)?"""
    if not isinstance(messages, list):
        return False
    for m in messages:
        c = m.get("content") if isinstance(m, dict) else None
        if isinstance(c, list) and any(isinstance(p, dict) and p.get("type") in
                                       MEDIA_PART_TYPES for p in c):
            return True
    return False


# Prompt tokens one media part is counted as before sending (the spend guard and context
# meter need a figure; Wafer publishes none, so this is a GUESS on the high side of what
# VLMs spend on one image). The cost shown after the answer comes from the returned usage.
MEDIA_TOKENS_GUESS = 2_000


def split_content(content: Any) -> tuple[str, int]:
    """A message content -> (its text, how many media parts it carries)."""
    if isinstance(content, str):
        return content, 0
    if not isinstance(content, list):
        return "", 0
    texts, n = [], 0
    for p in content:
        if not isinstance(p, dict):
            continue
        if p.get("type") in MEDIA_PART_TYPES:
            n += 1
        elif isinstance(p.get("text"), str):
            texts.append(p["text"])
    return "\n".join(texts), n


# --- attachments on a chat turn ---------------------------------------------------------
# A turn's `media` is a list of dicts: name, mime, purpose, size, shape, and one reference:
# `file_id` (uploaded), `url` (http(s), as typed) or `data_url` (inline bytes). History keeps
# the id, name and type, never the bytes (`stored`); a reopened inline attachment is gone.

_SESSION_ONLY = ("data_url", "thumb")


def stored(entries: Any) -> list[dict[str, Any]]:
    """The attachments as history keeps them: no bytes, no data URLs."""
    if not isinstance(entries, list):
        return []
    return [{k: v for k, v in e.items() if k not in _SESSION_ONLY}
            for e in entries if isinstance(e, dict)]


def parts_for(entries: Any) -> list[dict[str, Any]]:
    """Chat content parts for a turn's attachments (those whose reference is still here)."""
    out: list[dict[str, Any]] = []
    for e in entries if isinstance(entries, list) else []:
        if not isinstance(e, dict):
            continue
        purpose = str(e.get("purpose") or "vision")
        shape = str(e.get("shape") or DEFAULT_REF_SHAPE)
        if e.get("file_id"):
            out.append(part(purpose, file_id=str(e["file_id"]), shape=shape))
        elif e.get("url") or e.get("data_url"):
            out.append(part(purpose, url=str(e.get("url") or e["data_url"]), shape=shape))
    return out


_DATA_URL = re.compile(r"^data:([^;,]{0,100})(;base64)?,")


def still_valid(expires_at: str | None, *, margin: timedelta = timedelta(hours=1)) -> bool:
    """An upload's id may be reused until shortly before its `expires_at` (RFC 3339); an
    upload without one is treated as valid for FILE_TTL from now on, so True."""
    if not expires_at:
        return True
    from datetime import UTC, datetime

    try:
        end = datetime.fromisoformat(expires_at.replace("Z", "+00:00"))
    except ValueError:
        return False
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    return end - margin > datetime.now(UTC)


def without_inline(value: Any) -> Any:
    """A copy of a request body for logs and history: every inline data URL replaced by a
    note of its type and size (the bytes are never kept; ids and http URLs are)."""
    if isinstance(value, dict):
        return {k: _short_url(v) if k == "url" else without_inline(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_inline(v) for v in value]
    return value


def _short_url(value: Any) -> Any:
    m = _DATA_URL.match(value) if isinstance(value, str) else None
    if m is None:
        return without_inline(value)
    return f"data:{m[1]}{m[2] or ''},[{len(value) - m.end():,} characters not kept]"


def refusal(vision: bool | None, n_media: int, model_name: str) -> str | None:
    """Why media may not go to this model (its card), or None."""
    if n_media and vision is not True:
        said = "says it has no vision" if vision is False else "does not list vision"
        return (f"{model_name}'s card {said} (capabilities.vision / supports_vision), so it "
                "cannot take images, documents or video. Remove the attachments or pick a "
                "vision model.")
    return None


def thumbnail(data: bytes, mime: str, size: int = 160) -> bytes | None:
    """A small PNG of an image for the transcript; None when it is not a readable image."""
    if purpose_for(mime) != "vision":
        return None
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as im:
            im.thumbnail((size, size))
            out = io.BytesIO()
            im.convert("RGBA").save(out, format="PNG")
            return out.getvalue()
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
        return None


__all__ = ["ALLOWED", "DEFAULT_REF_SHAPE", "FILE_ID", "FILE_TTL", "MAX_BYTES",
           "MEDIA_PART_TYPES", "PURPOSES", "REF_SHAPE_LABELS", "MediaRef", "allowed_text",
           "base_mime", "check_media", "data_url", "has_media", "human_size", "media_ref",
           "mime_from_name", "part", "parts_for", "purpose_for", "refusal", "split_content",
           "still_valid", "stored", "thumbnail", "without_inline", "MEDIA_TOKENS_GUESS"]
