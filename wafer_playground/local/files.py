"""The local engine's Files API stand-in: `POST /v1/files` and file-id lookups for chat.

Follows docs/spec/addendum-2026-12.md §1 and its stand-in rules (§1.7):
raw body (multipart refused), `X-Wafer-Purpose` required, the MIME type must be allowed for
the purpose (`wafer_playground.media.ALLOWED`), `X-Wafer-Extraction-Fps` only on videos and
> 0, 413 over 50 MB, ids `file_` + 32 hex, 200 with Bifrost's response shape and
`expires_at = created_at + 30 days`. No GET/DELETE, as on pass.wafer.ai.

Files live under `<cache_root>/files/<owner>/` (one folder per API key fingerprint, so a
file is visible only to the key that uploaded it, as a Wafer file is only to its user), a
`.bin` with the bytes next to a `.json` with the metadata. Expired files are deleted on the
next upload or lookup. The whole store is capped (`WAFER_LOCAL_FILES_MAX_MB`, default 500):
an upload that would pass the cap is refused with 507 rather than evicting live files.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from wafer_playground import media
from wafer_playground.local.validation import ApiError

DEFAULT_CAP_MB = 500


def default_root() -> Path:
    from wafer_playground.local.provision import cache_root

    return cache_root() / "files"


def default_cap() -> int:
    raw = os.environ.get("WAFER_LOCAL_FILES_MAX_MB", "")
    mb = int(raw) if raw.isdigit() else DEFAULT_CAP_MB
    return mb * 1000 * 1000


def owner_of(key: str | None) -> str:
    """Folder name for a caller: a fingerprint of its key (never the key), `anonymous`."""
    return hashlib.sha256(key.encode()).hexdigest()[:16] if key else "anonymous"


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Upload:
    purpose: str
    mime: str
    filename: str | None
    fps: float | None


def check_headers(headers: Any) -> Upload:
    """Validate an upload's headers (a Starlette `Headers`, or any case-insensitive map)."""
    ctype = headers.get("content-type")
    mime = media.base_mime(ctype)
    if mime.startswith("multipart/"):
        raise ApiError(400, "multipart_not_supported",
                       "POST /v1/files takes the raw file bytes as the body, not multipart "
                       "form data; send the file's MIME type as Content-Type and the purpose "
                       "in X-Wafer-Purpose", param="Content-Type")
    purpose = (headers.get("x-wafer-purpose") or "").strip()
    if not purpose:
        raise ApiError(400, "missing_purpose", "X-Wafer-Purpose is required: vision, "
                       "document or video", param="X-Wafer-Purpose")
    if purpose not in media.ALLOWED:
        raise ApiError(400, "invalid_purpose", f"X-Wafer-Purpose '{purpose[:40]}' is not one "
                       "of vision, document, video", param="X-Wafer-Purpose")
    if not mime:
        raise ApiError(400, "missing_content_type", "Content-Type (the file's MIME type) is "
                       "required", param="Content-Type")
    if mime not in media.ALLOWED[purpose]:
        raise ApiError(400, "unsupported_media_type",
                       f"{mime[:80]} is not allowed for purpose '{purpose}' (allowed: "
                       f"{', '.join(media.ALLOWED[purpose])})", param="Content-Type")
    fps: float | None = None
    raw_fps = headers.get("x-wafer-extraction-fps")
    if raw_fps is not None:
        if purpose != "video":
            raise ApiError(400, "invalid_extraction_fps", "X-Wafer-Extraction-Fps is only "
                           "accepted with purpose video", param="X-Wafer-Extraction-Fps")
        try:
            fps = float(raw_fps)
        except ValueError:
            fps = -1.0
        if not fps > 0 or fps == float("inf"):
            raise ApiError(400, "invalid_extraction_fps", "X-Wafer-Extraction-Fps must be a "
                           "number > 0", param="X-Wafer-Extraction-Fps")
    name = headers.get("x-wafer-filename")
    if name is not None:
        name = "".join(c for c in name if c.isprintable())[:255] or None
    return Upload(purpose, mime, name, fps)


class FileStore:
    def __init__(self, root: Path | None = None, cap_bytes: int | None = None) -> None:
        self.root = root or default_root()
        self.cap = cap_bytes if cap_bytes is not None else default_cap()
        self._lock = threading.Lock()

    # --- housekeeping ------------------------------------------------------------------

    def _metas(self) -> list[tuple[Path, dict[str, Any]]]:
        out = []
        for p in self.root.glob("*/file_*.json"):
            try:
                out.append((p, json.loads(p.read_text())))
            except (OSError, ValueError):
                continue
        return out

    def _expire(self, now: datetime) -> int:
        """Delete expired files; return the bytes the live ones use."""
        used = 0
        for p, meta in self._metas():
            try:
                expired = datetime.fromisoformat(meta["expires_at"].replace("Z", "+00:00")) <= now
            except (KeyError, ValueError, AttributeError):
                expired = True
            if expired:
                p.with_suffix(".bin").unlink(missing_ok=True)
                p.unlink(missing_ok=True)
            else:
                used += int(meta.get("bytes", 0))
        return used

    # --- upload ------------------------------------------------------------------------

    async def save(self, owner: str, up: Upload, declared: str | None,
                   body: AsyncIterator[bytes]) -> dict[str, Any]:
        if declared and declared.isdigit() and int(declared) > media.MAX_BYTES:
            raise _too_large()
        folder = self.root / owner
        folder.mkdir(parents=True, exist_ok=True)
        fid = "file_" + secrets.token_hex(16)
        tmp = folder / f".{fid}.part"
        size = 0
        try:
            with open(tmp, "wb") as fh:
                async for chunk in body:
                    size += len(chunk)
                    if size > media.MAX_BYTES:
                        raise _too_large()
                    fh.write(chunk)
            if size == 0:
                raise ApiError(400, "empty_file", "The file body is empty")
            now = datetime.now(UTC).replace(microsecond=0)
            with self._lock:
                used = self._expire(now)
                if used + size > self.cap:
                    full = f"{media.human_size(used)} of {media.human_size(self.cap)}"
                    raise ApiError(507, "file_storage_full",
                                   f"The local engine's file store is full ({full} used by "
                                   "files that have not expired); set WAFER_LOCAL_FILES_MAX_MB "
                                   "to raise the cap", type="api_error")
                meta: dict[str, Any] = {
                    "id": fid, "purpose": up.purpose, "filename": up.filename,
                    "mime_type": up.mime, "bytes": size, "status": "ready",
                    "created_at": _iso(now), "expires_at": _iso(now + media.FILE_TTL)}
                if up.fps is not None:
                    meta["extraction_fps"] = up.fps
                os.replace(tmp, folder / f"{fid}.bin")
                (folder / f"{fid}.json").write_text(json.dumps(meta))
            return meta
        finally:
            tmp.unlink(missing_ok=True)

    # --- lookup ------------------------------------------------------------------------

    def get(self, owner: str, file_id: str, *, param: str) -> dict[str, Any]:
        """The metadata of a live file of this owner; 404 `file_not_found` otherwise (an
        unknown id, another key's id and an expired one all look the same)."""
        if media.FILE_ID.match(file_id):
            p = self.root / owner / f"{file_id}.json"
            with self._lock:
                self._expire(datetime.now(UTC))
                try:
                    meta: dict[str, Any] = json.loads(p.read_text())
                    return meta
                except (OSError, ValueError):
                    pass
        raise ApiError(404, "file_not_found",
                       f"No file '{file_id[:64]}' for this API key (unknown, expired after 30 "
                       "days, or uploaded with another key)", param=param)


def _too_large() -> ApiError:
    return ApiError(413, "file_too_large", "The file exceeds the 50 MB upload limit",
                    param="body")


__all__ = ["FileStore", "Upload", "check_headers", "owner_of"]
