"""Tokenizer registry: engine, offline Qwen, Hugging Face files (GLM/Kimi) and offline failure."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import httpx
import pytest
from pytest_httpx import HTTPXMock

from wafer_playground.client import WaferClient
from wafer_playground.tokenizers import (
    HubPlan,
    TokenizerUnavailable,
    chatml,
    hub_plan,
    hub_tokenizer,
    known_template,
    parse_pat_str,
    plan_for,
    qwen_tokenizer,
    tokenizer_for,
)

BASE = "http://wafer.test/v1"


# ---- plans -------------------------------------------------------------------------------------


def test_plans_per_model_family() -> None:
    assert plan_for("smollm2-135m-instruct", local=True).kind == "engine"
    assert plan_for("Qwen3.5-397B-A17B", local=False).kind == "qwen"
    assert plan_for("Qwen3.6-35B-A3B", local=False).kind == "qwen"
    glm = plan_for("GLM-5.1", local=False)
    assert (glm.kind, glm.needs_download, glm.key) == ("hf", True, "hf:zai-org/GLM-5.1")
    assert hub_plan("glm5.2-fast") == HubPlan("zai-org/GLM-5.2", "glm")
    assert hub_plan("Kimi-K2.6") == HubPlan("moonshotai/Kimi-K2.6", "kimi")
    none = plan_for("DeepSeek-V4-Pro", local=False)
    assert none.kind is None and "paste token ids" in none.description


# ---- local engine ------------------------------------------------------------------------------


def test_engine_tokenizer_uses_tokenize_and_detokenize(httpx_mock: HTTPXMock) -> None:
    from wafer_playground.tokenizers import _ENGINE_MEMO

    _ENGINE_MEMO.clear()
    httpx_mock.add_response(url=f"{BASE}/tokenize", json={"tokens": [
        {"id": 2, "piece": "<bos>"}, {"id": 10979, "piece": "Hi"}, {"id": 7, "piece": [240, 159]},
    ]})
    httpx_mock.add_response(url=f"{BASE}/detokenize", json={"content": "Hi"})
    client = WaferClient(BASE)
    tok = tokenizer_for("gemma-3-270m", local=True, client=client, vocab_size=262144)
    pieces = tok.encode("Hi", add_special=True)
    assert [(p.id, p.piece) for p in pieces] == [(2, "<bos>"), (10979, "Hi"), (7, b"\xf0\x9f")]
    sent = json.loads(httpx_mock.get_requests()[0].content)
    assert sent == {"content": "Hi", "add_special": True, "with_pieces": True,
                    "model": "gemma-3-270m"}
    assert tok.decode([10979]) == "Hi"
    assert json.loads(httpx_mock.get_requests()[1].content)["tokens"] == [10979]
    assert tok.source.exact and tok.source.key == "engine:gemma-3-270m"
    assert tok.vocab_size == 262144
    # redraws ask again: answered from the memo, no new request (a new tokenizer object too)
    again = tokenizer_for("gemma-3-270m", local=True, client=client)
    assert again.encode("Hi", add_special=True) == pieces and again.decode([10979]) == "Hi"
    assert len(httpx_mock.get_requests()) == 2


# ---- Qwen offline ------------------------------------------------------------------------------


def test_qwen_offline_matches_known_ids_and_round_trips() -> None:
    tok = tokenizer_for("Qwen3.5-397B-A17B", local=False)
    # the README example of qwen-tokenizer, checked in docs/research/local-engine.md §6
    ids = [p.id for p in tok.encode("<|im_start|>user\nhi<|im_end|>")]
    assert ids == [248045, 846, 198, 5834, 248046]
    text = "Hello wörld 你好 🦄 <script>"
    pieces = tok.encode(text)
    assert tok.decode([p.id for p in pieces]) == text
    # the emoji is split across byte-level tokens that are not UTF-8 on their own
    assert any(isinstance(p.piece, bytes) for p in pieces)
    assert b"".join(p.piece if isinstance(p.piece, bytes) else p.piece.encode()
                    for p in pieces) == text.encode()
    assert tok.vocab_size == 248077
    assert tok.bos_ids() == []  # Qwen has no BOS: add_special changes nothing
    assert tok.encode("x", add_special=True) == tok.encode("x")
    assert tok.special_ids()[248045] == "<|im_start|>"
    assert not tok.source.exact


def test_qwen_template_renders_chatml_and_tokenizes_specials() -> None:
    render = known_template("Qwen3.6-35B-A3B")
    assert render is chatml
    assert known_template("GLM-5.1") is None
    prompt = chatml([{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "hi"}], thinking=False)
    assert prompt == ("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n"
                      "<|im_start|>assistant\n<think>\n\n</think>\n\n")
    ids = [p.id for p in qwen_tokenizer().encode(prompt)]
    assert ids.count(248045) == 3 and ids.count(248046) == 2
    with pytest.raises(ValueError):
        chatml([{"role": "user", "content": [{"type": "text", "text": "x"}]}])


# ---- Hugging Face: GLM tokenizer.json, Kimi tiktoken, offline ----------------------------------


def _tiny_tokenizer_json(path: Path) -> None:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["[gMASK]", "<sop>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(["hello world", "hello there", "wörld 你好"] * 20, trainer=trainer)
    tok.save(str(path))


class FakeHub:
    """Serves files from a folder like hf_hub_download, or fails like it does offline."""

    def __init__(self, folder: Path | None) -> None:
        self.folder = folder
        self.calls: list[tuple[str, str, bool]] = []

    def __call__(self, repo_id: str, filename: str, **kw: object) -> str:
        self.calls.append((repo_id, filename, bool(kw.get("local_files_only"))))
        if self.folder is None or not (self.folder / filename).exists():
            from huggingface_hub.errors import LocalEntryNotFoundError

            raise LocalEntryNotFoundError("Cannot find the requested files in the disk cache "
                                          "and outgoing traffic has been disabled.")
        return str(self.folder / filename)


def test_glm_from_downloaded_tokenizer_json(tmp_path: Path) -> None:
    _tiny_tokenizer_json(tmp_path / "tokenizer.json")
    hub = FakeHub(tmp_path)
    tok = tokenizer_for("GLM-5.1", local=False, download=hub)
    assert hub.calls[0] == ("zai-org/GLM-5.1", "tokenizer.json", True)  # cache first
    text = "hello wörld 你好"
    pieces = tok.encode(text)
    assert tok.decode([p.id for p in pieces]) == text
    # byte-level pieces are mapped back to real bytes ("Ġ" is a space, partial UTF-8 is bytes)
    assert b"".join(p.piece if isinstance(p.piece, bytes) else p.piece.encode()
                    for p in pieces) == text.encode()
    assert tok.source.key == "hf:zai-org/GLM-5.1"
    assert "not confirmed" in tok.source.note
    assert 0 in tok.special_ids()


def test_offline_download_degrades_with_a_clear_reason() -> None:
    hub = FakeHub(None)
    with pytest.raises(TokenizerUnavailable) as info:
        tokenizer_for("GLM-5.1", local=False, download=hub)
    msg = str(info.value)
    assert "zai-org/GLM-5.1" in msg and "(offline)" in msg and "network access once" in msg
    # tried the cache, then the network: two attempts, no hang, no fallback tokenizer
    assert [c[2] for c in hub.calls] == [True, False]


def test_offline_with_real_hub_client(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The real huggingface_hub in offline mode: fails fast with the same readable reason."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    import importlib

    import huggingface_hub.constants as constants

    importlib.reload(constants)
    try:
        with pytest.raises(TokenizerUnavailable, match="Kimi-K2.6"):
            hub_tokenizer(HubPlan("moonshotai/Kimi-K2.6", "kimi"))
    finally:
        monkeypatch.delenv("HF_HUB_OFFLINE")
        importlib.reload(constants)


def test_cache_only_never_touches_the_network(tmp_path: Path) -> None:
    hub = FakeHub(None)
    with pytest.raises(TokenizerUnavailable, match="not downloaded yet"):
        tokenizer_for("Kimi-K2.6", local=False, allow_download=False, download=hub)
    assert [c[2] for c in hub.calls] == [True]  # the cache was asked, nothing else
    _tiny_tokenizer_json(tmp_path / "tokenizer.json")
    cached = FakeHub(tmp_path)
    tok = tokenizer_for("GLM-5.1", local=False, allow_download=False, download=cached)
    assert tok.decode([p.id for p in tok.encode("hello")]) == "hello"
    assert all(c[2] for c in cached.calls)


KIMI_CODE = '''
class TikTokenTokenizer:
    num_reserved_special_tokens = 256
    pat_str = "|".join(
        [
            r"""[\\p{Han}]+""",
            r"""[^\\r\\n\\p{L}\\p{N}]?[\\p{L}\\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?""",
            r"""\\p{N}{1,3}""",
            r""" ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*""",
            r"""\\s*[\\r\\n]+""",
            r"""\\s+(?!\\S)""",
            r"""\\s+""",
        ]
    )
'''


def test_parse_pat_str_reads_the_list_as_text() -> None:
    pat = parse_pat_str(KIMI_CODE)
    assert pat is not None
    assert pat.startswith(r"[\p{Han}]+|") and pat.endswith(r"|\s+")
    assert pat.count("|") >= 6
    assert parse_pat_str("no pattern here") is None


def test_kimi_from_tiktoken_files(tmp_path: Path) -> None:
    ranks = [bytes([b]) for b in range(256)] + [b"he", b"ll", b"hell", b"hello", b" w"]
    (tmp_path / "tiktoken.model").write_text(
        "".join(f"{base64.b64encode(t).decode()} {i}\n" for i, t in enumerate(ranks)))
    (tmp_path / "tokenization_kimi.py").write_text(KIMI_CODE)
    base = len(ranks)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({
        "bos_token": "[BOS]",
        "added_tokens_decoder": {str(base): {"content": "[BOS]", "special": True},
                                 str(base + 1): {"content": "[EOS]", "special": True}}}))
    tok = tokenizer_for("Kimi-K2.6", local=False, download=FakeHub(tmp_path))
    pieces = tok.encode("hello world", add_special=True)
    assert pieces[0].id == base and pieces[0].piece == "[BOS]"
    assert pieces[1].piece == "hello"
    assert tok.decode([p.id for p in pieces[1:]]) == "hello world"
    assert tok.vocab_size == base + 256
    assert tok.bos_ids() == [base]
    assert tok.special_ids()[base + 2] == f"<|reserved_token_{base + 2}|>"


def test_engine_error_surfaces_as_wafer_error(httpx_mock: HTTPXMock) -> None:
    from wafer_playground.errors import WaferError

    httpx_mock.add_exception(httpx.ConnectError("refused"), url=f"{BASE}/tokenize")
    tok = tokenizer_for("smollm2-135m-instruct", local=True, client=WaferClient(BASE))
    with pytest.raises(WaferError):
        tok.encode("hi")
