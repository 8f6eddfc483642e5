"""Code snippets: every field sent, key only from the environment, curl run for real."""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fake_wafer import FakeWafer, Reply, serve
from wafer_playground.codegen import request_headers, snippets

BODY = {
    "model": "GLM-5.1",
    "messages": [
        {"role": "system", "content": "Be terse; it's $HOME `date` \"quoted\"\nJSON"},
        {"role": "user", "content": "héllo 🌍 'single' quotes"},
    ],
    "temperature": 0.3,
    "top_k": 40,
    "min_p": 0.05,
    "stop": ["END"],
    "thinking": {"type": "enabled"},
    "tools": [{"type": "function", "function": {
        "name": "get_weather", "parameters": {"type": "object", "properties": {
            "city": {"type": "string"}}, "required": ["city"]}}}],
    "stream": True,
    "stream_options": {"include_usage": True},
    "logprobs": False,
    "seed": None,
}
SECRET = "wfr_test_canary_value_123"


@pytest.fixture
def capture_server() -> Iterator[FakeWafer]:
    """The shared fake Wafer server (tests/fake_wafer.py): logs each request, answers [DONE]."""
    for fake in serve():
        for path in ("/chat/completions", "/messages", "/completions"):
            fake.script("POST", path, Reply(sse=["[DONE]"]))
        yield fake


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                    reason="needs curl and bash")
@pytest.mark.parametrize("surface,zdr", [("chat", True), ("messages", False),
                                         ("completions", False)])
def test_curl_snippet_sends_exact_body_and_headers(capture_server: FakeWafer, surface: str,
                                                   zdr: bool) -> None:
    body = dict(BODY)
    if surface == "completions":
        body = {"model": "m", "prompt": [1, 2, 3], "ebnf": 'root ::= "a"', "max_tokens": 4}
    code = snippets(surface, capture_server.url, body, zdr=zdr)["curl"]  # type: ignore[arg-type]
    assert SECRET not in code and "$WAFER_API_KEY" in code
    env = {"PATH": os.environ["PATH"], "WAFER_API_KEY": SECRET}
    proc = subprocess.run(["bash", "-c", code], env=env, capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    hit = capture_server.requests[-1]
    path, headers, raw = hit.path, {k.lower(): v for k, v in hit.headers}, hit.body
    assert path == {"chat": "/v1/chat/completions", "messages": "/v1/messages",
                    "completions": "/v1/completions"}[surface]
    assert json.loads(raw) == body  # every field, nothing added, nothing dropped
    assert hit.sent_key(SECRET)  # the fake logs Authorization as a fingerprint only
    assert headers["content-type"] == "application/json"
    expected = {k.lower(): v for k, v in request_headers(
        surface, zdr=zdr, stream=bool(body.get("stream"))).items()}  # type: ignore[arg-type]
    sent = {k: v for k, v in headers.items()
            if k not in ("host", "user-agent", "content-length", "expect")}
    assert sent == expected  # exactly these headers: nothing missing, nothing extra
    assert headers.get("wafer-zdr") == ("required" if zdr else None)
    if surface == "messages":
        assert headers["anthropic-version"] == "2023-06-01"


def _kwargs_of_create(code: str) -> dict[str, object]:
    tree = ast.parse(code)
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("create", "stream"):
            return {kw.arg: ast.literal_eval(kw.value) for kw in node.keywords if kw.arg}
    raise AssertionError("no create() call")


def test_openai_snippet_has_every_field_and_extra_body() -> None:
    code = snippets("chat", "https://pass.wafer.ai/v1", BODY, zdr=True)["python_openai"]
    kwargs = _kwargs_of_create(code)
    extra = kwargs.pop("extra_body")
    headers = kwargs.pop("extra_headers")
    assert {**kwargs, **extra} == BODY  # type: ignore[dict-item]
    assert set(extra) == {"top_k", "min_p", "thinking"}  # type: ignore[arg-type]
    assert headers == {"Wafer-ZDR": "required"}
    assert 'api_key=os.environ["WAFER_API_KEY"]' in code


def test_httpx_snippet_body_is_literal_body() -> None:
    code = snippets("chat", "http://x/v1", BODY)["python_httpx"]
    tree = ast.parse(code)
    body = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                and getattr(n.targets[0], "id", "") == "body")
    assert body == BODY
    assert "os.environ['WAFER_API_KEY']" in code


def test_anthropic_snippet() -> None:
    body = {"model": "GLM-5.1", "max_tokens": 100, "system": "s",
            "messages": [{"role": "user", "content": "hi"}], "stream": True,
            "thinking": {"type": "enabled", "budget_tokens": 1024}, "top_k": 5}
    code = snippets("messages", "https://pass.wafer.ai/v1", body, zdr=True)["python_anthropic"]
    kwargs = _kwargs_of_create(code)
    extra = kwargs.pop("extra_body")
    # anthropic 2.x has no temperature/top_p/top_k keywords: they travel in extra_body
    assert extra == {"top_k": 5}
    assert {**kwargs, **extra, "stream": True} == body  # type: ignore[dict-item]
    assert 'base_url="https://pass.wafer.ai"' in code  # the SDK appends /v1 itself
    assert "Wafer-ZDR" in code
    assert set(snippets("messages", "http://x/v1", body)) == {
        "curl", "python_anthropic", "python_httpx", "javascript"}


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_javascript_snippet_parses_and_embeds_body(tmp_path: Path) -> None:
    code = snippets("chat", "http://x/v1", BODY, zdr=True)["javascript"]
    assert "process.env.WAFER_API_KEY" in code and '"Wafer-ZDR": "required"' in code
    f = tmp_path / "snippet.mjs"  # .mjs: top-level await is legal in modules
    f.write_text(code)
    proc = subprocess.run(["node", "--check", str(f)], capture_output=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    # evaluate the body literal with node and compare
    f2 = tmp_path / "body.mjs"
    f2.write_text(code.split("\n\nconst res")[0] + "\nconsole.log(JSON.stringify(body));\n")
    out = subprocess.run(["node", str(f2)], capture_output=True, timeout=30, text=True)
    assert json.loads(out.stdout) == BODY


# ---- upload snippets (POST /v1/files) for a chat that references files by id -----------

FID = "file_" + "0123456789abcdef" * 2
PNG = bytes.fromhex("89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
                    "0000000d4944415478da63f8cfc0f01f0005000201a5f1e7d20000000049454e44ae426082")


def _media_body(*parts: dict[str, object]) -> dict[str, object]:
    return {"model": "v", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what is this?"}, *parts]}]}


def test_uploads_for_names_each_referenced_file_once() -> None:
    from wafer_playground import codegen, media

    body = _media_body(media.part("vision", file_id=FID),
                       media.part("document", file_id="file_doc", shape="typed"),
                       media.part("vision", file_id=FID),  # the same file twice: once
                       media.part("vision", url="https://example.com/x.png"))  # not an id
    known = {FID: {"name": "C:\\shots\\my dot's (1).png", "mime": "image/png",
                   "purpose": "vision"}}
    ups = codegen.uploads_for(body, known)
    assert [(u.file_id, u.path, u.mime, u.purpose, u.known) for u in ups] == [
        (FID, "my dot's (1).png", "image/png", "vision", True),  # base name only
        ("file_doc", "document.pdf", "application/pdf", "document", False)]  # a stand-in
    assert codegen.uploads_for(BODY) == []
    assert codegen.upload_snippets("http://x/v1", []) == {}


def test_upload_snippets_are_safe_with_hostile_names_and_ids() -> None:
    from wafer_playground import codegen, media

    evil_id = 'file_x"\nimport os; os.system("id")  #'
    body = _media_body(media.part("vision", file_id=evil_id))
    ups = codegen.uploads_for(body, {evil_id: {"name": "../../a$(id)`x`\n.png",
                                               "mime": "image/png", "purpose": "vision"}})
    codes = codegen.upload_snippets("https://pass.wafer.ai/v1", ups, zdr=True)
    assert set(codes) == set(codegen.UPLOAD_LABELS)
    for key in ("upload_python_httpx", "upload_python_openai"):
        tree = ast.parse(codes[key])  # still valid Python: the id cannot break out
        assert not [n for n in ast.walk(tree) if isinstance(n, ast.Call)
                    and getattr(n.func, "attr", "") == "system"]
        assert SECRET not in codes[key] and "WAFER_API_KEY" in codes[key]
        assert '"Wafer-ZDR": "required"' in codes[key]
    curl = codes["upload_curl"]
    assert "$(id)" not in curl.replace("'@a$(id)`x`.png'", "").replace(
        "'X-Wafer-Filename: a$(id)`x`.png'", "")  # only inside single quotes
    assert "import os; os.system" not in curl
    assert '"max_retries": 0' in codes["upload_python_openai"]


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("bash") is None,
                    reason="needs curl and bash")
def test_upload_curl_sends_the_raw_bytes_with_the_headers(capture_server: FakeWafer,
                                                          tmp_path: Path) -> None:
    from wafer_playground import codegen, media

    name = "my dot's (1).png"
    (tmp_path / name).write_bytes(PNG)
    ups = codegen.uploads_for(_media_body(media.part("vision", file_id=FID)),
                              {FID: {"name": name, "mime": "image/png", "purpose": "vision"}})
    code = codegen.upload_curl(capture_server.url, ups)
    env = {"PATH": os.environ["PATH"], "WAFER_API_KEY": SECRET}
    proc = subprocess.run(["bash", "-c", code], env=env, capture_output=True, timeout=30,
                          cwd=tmp_path, text=True)
    assert proc.returncode == 0, proc.stderr
    hit = capture_server.requests_to("POST", "/files")[-1]
    assert hit.body == PNG  # the raw bytes, not multipart
    assert hit.header("content-type") == "image/png"
    assert hit.header("x-wafer-purpose") == "vision"
    assert hit.header("x-wafer-filename") == name
    assert hit.sent_key(SECRET)
    assert json.loads(proc.stdout)["id"] in capture_server.files
    # a failed upload fails the script and stops the uploads after it
    two = codegen.upload_curl(capture_server.url + "/nowhere", [*ups, *ups])
    before = len(capture_server.requests)
    proc = subprocess.run(["bash", "-c", two], env=env, capture_output=True, timeout=30,
                          cwd=tmp_path, text=True)
    assert proc.returncode != 0
    assert len(capture_server.requests) == before + 1
