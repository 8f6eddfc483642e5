"""Media for chat: the Files API's purposes and MIME types, size limits, and content parts.

One table for the app (checks before anything is sent) and the local engine (the
`POST /v1/files` stand-in), from ../shared/spec/wafer-api-2026-12-addendum.md §1:

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
# documents and videos (addendum §1.5-1.6) that the stand-in accepts.
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


__all__ = ["ALLOWED", "DEFAULT_REF_SHAPE", "FILE_ID", "FILE_TTL", "MAX_BYTES",
           "MEDIA_PART_TYPES", "PURPOSES", "REF_SHAPE_LABELS", "MediaRef", "allowed_text",
           "base_mime", "check_media", "data_url", "has_media", "human_size", "media_ref",
           "mime_from_name", "part", "purpose_for"]
