""""View code": the exact request as curl, Python (openai / httpx / anthropic) and JS fetch.

Every field of `body` appears in every snippet (nothing is dropped or defaulted), so running a
snippet reproduces the request byte-for-byte in meaning. The key is never embedded: snippets
read `$WAFER_API_KEY` / `os.environ["WAFER_API_KEY"]` / `process.env.WAFER_API_KEY`.
"""

from __future__ import annotations

import json
import pprint
from typing import Any, Literal

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


__all__ = ["LABELS", "PATHS", "Surface", "curl", "javascript", "python_anthropic",
           "python_httpx", "python_openai", "request_headers", "snippets"]
