""""View code": the exact request as curl, Python (openai / httpx / anthropic) and JS fetch.

Every field of `body` appears in every snippet (nothing is dropped or defaulted), so running a
snippet reproduces the request byte-for-byte in meaning. The key is never embedded: snippets
read `$WAFER_API_KEY` / `os.environ["WAFER_API_KEY"]` / `process.env.WAFER_API_KEY`.

A chat that references uploaded media by `file_id` also gets upload snippets (curl, httpx,
openai): `POST /v1/files` with the raw bytes and `X-Wafer-Purpose`, as
docs/spec/addendum-2026-12.md §1.2 describes, printing the new id.
"""

from __future__ import annotations

import json
import pprint
import re
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from . import media
from .client import root_url

Surface = Literal["chat", "completions", "messages"]

PATHS: dict[str, str] = {
    "chat": "/chat/completions",
    "completions": "/completions",
    "messages": "/messages",
}

# Keyword arguments the openai SDK's create() accepts by name; everything else (Wafer and
# SGLang extras such as top_k, min_p, ebnf, thinking) must go through `extra_body`.
_OPENAI_CHAT_KWARGS = frozenset({
    "messages", "model", "audio", "frequency_penalty", "function_call", "functions",
    "logit_bias", "logprobs", "max_completion_tokens", "max_tokens", "metadata", "modalities",
    "n", "parallel_tool_calls", "prediction", "presence_penalty", "reasoning_effort",
    "response_format", "seed", "service_tier", "stop", "store", "stream", "stream_options",
    "temperature", "tool_choice", "tools", "top_logprobs", "top_p", "user",
})
_OPENAI_COMPLETIONS_KWARGS = frozenset({
    "model", "prompt", "best_of", "echo", "frequency_penalty", "logit_bias", "logprobs",
    "max_tokens", "n", "presence_penalty", "seed", "stop", "stream", "stream_options",
    "suffix", "temperature", "top_p", "user",
})
# Keyword arguments of the anthropic SDK's messages.create()/stream() in both 0.x and 2.x.
# 2.x dropped temperature, top_p and top_k as keywords (TypeError), so those go through
# `extra_body`, which both majors accept.
_ANTHROPIC_KWARGS = frozenset({
    "max_tokens", "messages", "model", "metadata", "stop_sequences", "system",
    "thinking", "tool_choice", "tools", "service_tier",
})

LABELS: dict[str, str] = {
    "curl": "curl",
    "python_openai": "Python · openai",
    "python_httpx": "Python · httpx",
    "javascript": "JavaScript · fetch",
    "python_anthropic": "Python · anthropic",
}


def request_headers(surface: Surface, *, zdr: bool, stream: bool) -> dict[str, str]:
    """The non-secret headers a snippet sends (Authorization is added per language)."""
    headers = {"Content-Type": "application/json",
               "Accept": "text/event-stream" if stream else "application/json"}
    if surface == "messages":
        headers["anthropic-version"] = "2023-06-01"
    if zdr:
        headers["Wafer-ZDR"] = "required"
    return headers


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, indent=2, ensure_ascii=False)


def _py(value: Any, indent: int) -> str:
    text = pprint.pformat(value, indent=1, width=88 - indent, sort_dicts=False)
    return text.replace("\n", "\n" + " " * indent)


def _heredoc_tag(text: str) -> str:
    tag = "JSON"
    while any(line.strip() == tag for line in text.splitlines()):
        tag += "_END"
    return tag


def curl(surface: Surface, base_url: str, body: dict[str, Any], *, zdr: bool = False) -> str:
    url = base_url.rstrip("/") + PATHS[surface]
    stream = bool(body.get("stream"))
    data = _json(body)
    tag = _heredoc_tag(data)
    # --fail-with-body: an HTTP error prints Wafer's error body AND exits non-zero
    lines = [f"curl {'-N ' if stream else ''}-sS --fail-with-body {url}",
             '  -H "Authorization: Bearer $WAFER_API_KEY"']
    lines += [f'  -H "{k}: {v}"' for k, v in request_headers(surface, zdr=zdr,
                                                             stream=stream).items()]
    # quoted heredoc: the shell expands nothing inside, so the JSON goes out verbatim
    lines.append(f"  --data-binary @- <<'{tag}'")
    return " \\\n".join(lines) + f"\n{data}\n{tag}\n"


def python_openai(surface: Surface, base_url: str, body: dict[str, Any], *,
                  zdr: bool = False) -> str:
    if surface == "messages":
        raise ValueError("the openai SDK does not speak /v1/messages; use python_anthropic")
    known = _OPENAI_CHAT_KWARGS if surface == "chat" else _OPENAI_COMPLETIONS_KWARGS
    kwargs = {k: v for k, v in body.items() if k in known}
    extra = {k: v for k, v in body.items() if k not in known}
    call = "client.chat.completions.create" if surface == "chat" else "client.completions.create"
    args = [f"    {k}={_py(v, 4 + len(k) + 1)}," for k, v in kwargs.items()]
    if extra:
        args.append("    # Wafer / SGLang fields the SDK has no argument for")
        args.append(f"    extra_body={_py(extra, 15)},")
    if zdr:
        args.append('    extra_headers={"Wafer-ZDR": "required"},')
    out = [
        "import os",
        "",
        "from openai import OpenAI",
        "",
        f'client = OpenAI(base_url="{base_url.rstrip("/")}", '
        'api_key=os.environ["WAFER_API_KEY"])',
        "",
        f"response = {call}(",
        *args,
        ")",
    ]
    if body.get("stream"):
        out += ["for chunk in response:", "    print(chunk.model_dump_json())"]
    else:
        out += ["print(response.model_dump_json(indent=2))"]
    return "\n".join(out) + "\n"


def _target(surface: Surface, base_url: str, body: dict[str, Any], *,
            zdr: bool) -> tuple[str, bool, dict[str, str]]:
    """URL, streaming flag and non-secret headers shared by the raw-HTTP snippets."""
    stream = bool(body.get("stream"))
    return (base_url.rstrip("/") + PATHS[surface], stream,
            request_headers(surface, zdr=zdr, stream=stream))


def python_httpx(surface: Surface, base_url: str, body: dict[str, Any], *,
                 zdr: bool = False) -> str:
    url, stream, headers = _target(surface, base_url, body, zdr=zdr)
    header_lines = ['    "Authorization": f"Bearer {os.environ[\'WAFER_API_KEY\']}",']
    header_lines += [f"    {json.dumps(k)}: {json.dumps(v)}," for k, v in headers.items()]
    out = [
        "import os",
        "",
        "import httpx",
        "",
        f'url = "{url}"',
        "headers = {",
        *header_lines,
        "}",
        f"body = {_py(body, 7)}",
        "",
    ]
    if stream:
        out += [
            'with httpx.stream("POST", url, headers=headers, json=body, timeout=60) as r:',
            "    if r.is_error:  # Wafer's error body says what was wrong",
            '        raise SystemExit(f"HTTP {r.status_code}: {r.read().decode()}")',
            "    for line in r.iter_lines():",
            '        if line.startswith("data: "):',
            "            print(line[6:])",
        ]
    else:
        out += [
            "r = httpx.post(url, headers=headers, json=body, timeout=60)",
            "if r.is_error:  # Wafer's error body says what was wrong",
            '    raise SystemExit(f"HTTP {r.status_code}: {r.text}")',
            "print(r.json())",
        ]
    return "\n".join(out) + "\n"


def javascript(surface: Surface, base_url: str, body: dict[str, Any], *,
               zdr: bool = False) -> str:
    url, stream, headers = _target(surface, base_url, body, zdr=zdr)
    header_lines = ["    Authorization: `Bearer ${process.env.WAFER_API_KEY}`,"]
    header_lines += [f"    {json.dumps(k)}: {json.dumps(v)}," for k, v in headers.items()]
    body_js = _json(body)  # JSON is a valid JS expression
    out = [
        f"const body = {body_js};",
        "",
        f'const res = await fetch("{url}", {{',
        '  method: "POST",',
        "  headers: {",
        *["  " + h for h in header_lines],
        "  },",
        "  body: JSON.stringify(body),",
        "});",
        "if (!res.ok) throw new Error(`${res.status}: ${await res.text()}`);",
    ]
    if stream:
        out += [
            "const reader = res.body.getReader();",
            "const decoder = new TextDecoder();",
            "for (;;) {",
            "  const { done, value } = await reader.read();",
            "  if (done) break;",
            "  process.stdout.write(decoder.decode(value, { stream: true }));",
            "}",
        ]
    else:
        out += ["console.log(JSON.stringify(await res.json(), null, 2));"]
    return "\n".join(out) + "\n"


def python_anthropic(base_url: str, body: dict[str, Any], *, zdr: bool = False) -> str:
    kwargs = {k: v for k, v in body.items() if k in _ANTHROPIC_KWARGS}
    extra = {k: v for k, v in body.items() if k not in _ANTHROPIC_KWARGS and k != "stream"}
    stream = bool(body.get("stream"))
    args = [f"    {k}={_py(v, 4 + len(k) + 1)}," for k, v in kwargs.items()]
    if extra:
        args.append(f"    extra_body={_py(extra, 15)},")
    client_args = [f'base_url="{root_url(base_url)}"',
                   'auth_token=os.environ["WAFER_API_KEY"]']  # sends Authorization: Bearer
    if zdr:
        client_args.append('default_headers={"Wafer-ZDR": "required"}')
    out = ["import os", "", "import anthropic", "",
           "client = anthropic.Anthropic(" + ", ".join(client_args) + ")", ""]
    if stream:
        out += ["with client.messages.stream(", *args, ") as stream:",
                "    for event in stream:", "        print(event.to_json())"]
    else:
        out += ["message = client.messages.create(", *args, ")",
                "print(message.to_json())"]
    return "\n".join(out) + "\n"


# ---- uploads (POST /v1/files) -----------------------------------------------------------

UPLOAD_LABELS: dict[str, str] = {
    "upload_curl": "Upload · curl",
    "upload_python_httpx": "Upload · httpx",
    "upload_python_openai": "Upload · openai",
}
# the purpose a part type implies when the app has no record of the upload
# (docs/spec/addendum-2026-12.md §1.5)
_KIND_PURPOSE = {"image_url": "vision", "input_image": "vision", "image": "vision",
                 "file": "document", "video_url": "video"}
_DEFAULT_NAME = {"vision": "image.png", "document": "document.pdf", "video": "video.mp4"}


@dataclass(frozen=True)
class Upload:
    """One file a request references by id, as an upload snippet sends it again."""

    file_id: str  # the id the request carries
    path: str  # the local file the snippet reads (the attachment's own name)
    mime: str
    purpose: str
    known: bool  # False: not uploaded in this session; path and type are stand-ins


def referenced_files(body: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(file_id, part type) of every media part referenced by id, in order, once each."""
    out: dict[str, str] = {}
    for i, m in enumerate(body.get("messages") or []):
        content = m.get("content") if isinstance(m, dict) else None
        for j, p in enumerate(content if isinstance(content, list) else []):
            try:
                ref = media.media_ref(p, f"messages[{i}].content[{j}]") \
                    if isinstance(p, dict) else None
            except ValueError:
                continue  # malformed: the request's own checks say so
            if ref is not None and ref.file_id:
                out.setdefault(ref.file_id, ref.kind)
    return list(out.items())


def header_label(name: str) -> str:
    """`X-Wafer-Filename`: a free label; header values must be printable ASCII (as
    `WaferClient.upload_file` sends it)."""
    return "".join(c for c in name if 32 <= ord(c) < 127)[:200]


def local_name(name: Any, purpose: str) -> str:
    """The file name a snippet reads: the attachment's base name (no folders, no control
    characters), or a stand-in for its purpose."""
    base = PurePath(str(name or "").replace("\\", "/")).name if name else ""
    base = re.sub(r"[\x00-\x1f\x7f]", "", base).strip()[:200]
    return base if base not in ("", ".", "..") else _DEFAULT_NAME.get(purpose, "file.bin")


def uploads_for(body: Mapping[str, Any],
                known: Mapping[str, Mapping[str, Any]] | None = None) -> list[Upload]:
    """The uploads a request's file ids stand for. `known` maps a file id to what this app
    uploaded under it (name, mime, purpose); an id it does not know gets a stand-in file of
    the type its part implies, marked `known=False`."""
    out = []
    for fid, kind in referenced_files(body):
        info = (known or {}).get(fid) or {}
        purpose = str(info.get("purpose") or _KIND_PURPOSE.get(kind, "vision"))
        if purpose not in media.ALLOWED:
            purpose = "vision"
        mime = media.base_mime(str(info.get("mime") or ""))
        is_known = bool(info) and mime in media.ALLOWED[purpose]
        path = local_name(info.get("name"), purpose) if is_known else _DEFAULT_NAME[purpose]
        if not is_known:
            mime = media.mime_from_name(path) or media.ALLOWED[purpose][0]
        out.append(Upload(fid, path, mime, purpose, is_known))
    return out


def _upload_headers(u: Upload, *, zdr: bool) -> dict[str, str]:
    headers = {"Content-Type": u.mime, "X-Wafer-Purpose": u.purpose}
    label = header_label(u.path)
    if label:
        headers["X-Wafer-Filename"] = label
    if zdr:
        headers["Wafer-ZDR"] = "required"
    return headers


def _replaces(u: Upload) -> str:
    # goes into a code comment: an id is upstream text, so nothing but id characters
    fid = re.sub(r"[^A-Za-z0-9_.-]", "?", u.file_id)[:80]
    return f"replaces {fid}" + ("" if u.known else "; put your own file here")


def upload_curl(base_url: str, uploads: Sequence[Upload], *, zdr: bool = False) -> str:
    url = base_url.rstrip("/") + "/files"
    blocks = []
    for u in uploads:
        lines = [f"# {_replaces(u)}",
                 f"curl -sS --fail-with-body {url}",
                 '  -H "Authorization: Bearer $WAFER_API_KEY"']
        # quoted: a file name is the user's text, the shell must expand nothing in it
        lines += [f"  -H {shlex.quote(f'{k}: {v}')}" for k, v in
                  _upload_headers(u, zdr=zdr).items()]
        lines.append(f"  --data-binary {shlex.quote('@' + u.path)}")
        blocks.append(lines[0] + "\n" + " \\\n".join(lines[1:]) + " &&\necho")
    head = ("# POST /v1/files takes the raw bytes (not multipart); the answer's \"id\" goes "
            "in\n# the chat as {\"type\": \"image_url\", \"image_url\": {\"file_id\": ...}}\n")
    # chained with &&: the first failed upload stops the rest and is the exit status
    return head + " &&\n".join(blocks) + "\n"


def _upload_list(uploads: Sequence[Upload]) -> list[str]:
    out = ["FILES = [  # (file, MIME type, purpose)"]
    for u in uploads:
        out.append(f"    ({json.dumps(u.path, ensure_ascii=False)}, {json.dumps(u.mime)}, "
                   f"{json.dumps(u.purpose)}),  # {_replaces(u)}")
    out.append("]")
    return out


def _label_expr() -> str:
    # the same rule as header_label: X-Wafer-Filename must be printable ASCII
    return '"".join(c for c in Path(path).name if 32 <= ord(c) < 127)[:200]'


def upload_python_httpx(base_url: str, uploads: Sequence[Upload], *,
                        zdr: bool = False) -> str:
    url = base_url.rstrip("/") + "/files"
    zdr_line = ['            "Wafer-ZDR": "required",'] if zdr else []
    out = [
        "import os",
        "from pathlib import Path",
        "",
        "import httpx",
        "",
        *_upload_list(uploads),
        "",
        "# POST /v1/files takes the raw bytes (not multipart), metadata in headers",
        "for path, mime, purpose in FILES:",
        "    r = httpx.post(",
        f'        "{url}",',
        "        headers={",
        '            "Authorization": f"Bearer {os.environ[\'WAFER_API_KEY\']}",',
        '            "Content-Type": mime,',
        '            "X-Wafer-Purpose": purpose,',
        f"            \"X-Wafer-Filename\": {_label_expr()},",
        *zdr_line,
        "        },",
        "        content=Path(path).read_bytes(),",
        "        timeout=300,",
        "    )",
        "    if r.is_error:  # Wafer's error body says what was wrong",
        '        raise SystemExit(f"HTTP {r.status_code}: {r.text}")',
        '    print(path, r.json()["id"])  # use it as image_url.file_id',
    ]
    return "\n".join(out) + "\n"


def upload_python_openai(base_url: str, uploads: Sequence[Upload], *,
                         zdr: bool = False) -> str:
    zdr_line = ['            "Wafer-ZDR": "required",'] if zdr else []
    out = [
        "import os",
        "from pathlib import Path",
        "",
        "import httpx",
        "from openai import OpenAI",
        "",
        f'client = OpenAI(base_url="{base_url.rstrip("/")}", '
        'api_key=os.environ["WAFER_API_KEY"])',
        "",
        *_upload_list(uploads),
        "",
        "# client.files.create() sends multipart, which Wafer refuses: POST /v1/files takes",
        "# the raw bytes with the metadata in headers, so use the SDK's generic post()",
        "for path, mime, purpose in FILES:",
        "    r = client.post(",
        '        "/files",',
        "        cast_to=httpx.Response,",
        "        content=Path(path).read_bytes(),",
        "        options={",
        '            "headers": {',
        '                "Content-Type": mime,',
        '                "X-Wafer-Purpose": purpose,',
        f"                \"X-Wafer-Filename\": {_label_expr()},",
        *["    " + z for z in zdr_line],
        "            },",
        '            "max_retries": 0,  # an upload is not idempotent: never sent twice',
        "        },",
        "    )",
        '    print(path, r.json()["id"])  # use it as image_url.file_id',
    ]
    return "\n".join(out) + "\n"


def upload_snippets(base_url: str, uploads: Sequence[Upload], *,
                    zdr: bool = False) -> dict[str, str]:
    """Label -> code for uploading `uploads`; keys are those of `UPLOAD_LABELS`. Empty when
    the request references no file."""
    if not uploads:
        return {}
    return {"upload_curl": upload_curl(base_url, uploads, zdr=zdr),
            "upload_python_httpx": upload_python_httpx(base_url, uploads, zdr=zdr),
            "upload_python_openai": upload_python_openai(base_url, uploads, zdr=zdr)}


def snippets(surface: Surface, base_url: str, body: dict[str, Any], *,
             zdr: bool = False) -> dict[str, str]:
    """Label -> code, in display order. Keys are those of `LABELS`."""
    out = {"curl": curl(surface, base_url, body, zdr=zdr)}
    if surface == "messages":
        out["python_anthropic"] = python_anthropic(base_url, body, zdr=zdr)
    else:
        out["python_openai"] = python_openai(surface, base_url, body, zdr=zdr)
    out["python_httpx"] = python_httpx(surface, base_url, body, zdr=zdr)
    out["javascript"] = javascript(surface, base_url, body, zdr=zdr)
    return out


__all__ = ["LABELS", "PATHS", "UPLOAD_LABELS", "Surface", "Upload", "curl", "header_label",
           "javascript", "local_name", "python_anthropic", "python_httpx", "python_openai",
           "referenced_files", "request_headers", "snippets", "upload_curl",
           "upload_python_httpx", "upload_python_openai", "upload_snippets", "uploads_for"]
