"""One daemon's embeddings: the configured provider (loaded on first use), its health, the index.

The provider is built lazily — a daemon that never embeds never loads the model — under a lock,
so concurrent first calls share one load. Every call records the provider's health (``ready``, or
``unavailable`` with the error), which ``lore/status`` shows; a failed load is retried on the next
call. The OpenAI-compatible key is read from the variable named by ``embedding.api_key_env`` when
the provider is built, kept as a ``Secret``, and sent only to ``embedding.base_url``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import httpx

from lore_daemon.config import Secret
from lore_daemon.config_embedding import EmbeddingConfig
from lore_daemon.embedding.chunking import ChunkPlan
from lore_daemon.embedding.index import VectorIndex
from lore_daemon.embedding.provider import Provider, TextKind, Vectors, misconfigured
from lore_daemon.embedding.remote import remote_model_key
from lore_daemon.embedding_catalog import LOCAL_MODELS
from lore_daemon.errors import EmbeddingError, LoreError
from lore_daemon.store.vectors import VectorKey
from lore_daemon.timeutil import now_ms

HealthState = Literal["disabled", "notLoaded", "ready", "unavailable"]


@dataclass(frozen=True, slots=True)
class Health:
    state: HealthState
    error: EmbeddingError | None = None
    checked_at_ms: int | None = None


class EmbeddingService:
    def __init__(
        self,
        embedding: EmbeddingConfig,
        env: Mapping[str, str] | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
        provider: Provider | None = None,
    ) -> None:
        """``transport`` (tests) replaces the HTTP providers' network; ``provider`` hands in one
        already loaded (tests and benchmarks share one model among many daemons' services)."""
        import os

        self.embedding = embedding
        self._env = os.environ if env is None else env
        self._transport = transport
        self._provider: Provider | None = provider
        self._lock = threading.Lock()
        self._health = Health("disabled" if embedding.provider == "none" else "notLoaded")
        self.plan = ChunkPlan(embedding.chunk_chars or 800, embedding.chunk_overlap_chars or 0)
        self.key = VectorKey(self.model_key(), self.expected_dims(), self.plan.key) if self.enabled else None
        self.index = VectorIndex(self.key) if self.key is not None else None

    @property
    def enabled(self) -> bool:
        return self.embedding.provider != "none"

    def model_key(self) -> str:
        """What this configuration's vectors are recorded with (known without loading anything)."""
        if self.embedding.provider == "local":
            return LOCAL_MODELS[self.embedding.model or ""].key
        return remote_model_key(self.embedding)

    def expected_dims(self) -> int | None:
        if self.embedding.provider == "local":
            return LOCAL_MODELS[self.embedding.model or ""].dims
        return self.embedding.dimensions

    # ----------------------------------------------------------------------------- provider

    def provider(self) -> Provider:
        """The provider, built on first use; raises ``EmbeddingError`` (and records it)."""
        if self._provider is not None:
            return self._provider
        with self._lock:
            if self._provider is None:
                try:
                    self._provider = self._build()
                except EmbeddingError as exc:
                    self._record(exc)
                    raise
        return self._provider

    def _build(self) -> Provider:
        embedding = self.embedding
        if embedding.provider == "local":
            from lore_daemon.embedding.local import LocalProvider

            return LocalProvider(
                LOCAL_MODELS[embedding.model or ""], threads=embedding.threads,
                batch_size=embedding.batch_size or 8,
            )
        if embedding.provider in ("ollama", "openai"):
            from lore_daemon.embedding.remote import OllamaProvider, OpenAIProvider

            cls = OllamaProvider if embedding.provider == "ollama" else OpenAIProvider
            return cls(embedding, key=self._key(), transport=self._transport)
        raise misconfigured(
            'Embedding is switched off (embedding.provider = "none").',
            'Set embedding.provider to "local" (bundled), "ollama" or "openai".',
            provider=embedding.provider,
        )

    def _key(self) -> Secret | None:
        name = self.embedding.api_key_env
        if name is None:
            return None
        value = self._env.get(name, "").strip()
        if not value:
            raise misconfigured(
                f"The environment variable {name} (embedding.api_key_env) is not set or empty.",
                f"Export the embedding API key: export {name}=<key>, or remove embedding.api_key_env.",
                provider=self.embedding.provider, model=self.embedding.model, env=name,
            )
        return Secret(value)

    def embed(self, texts: Sequence[str], *, kind: TextKind) -> Vectors:
        """Vectors for ``texts`` (blocking: call from a worker thread). Records the health."""
        provider = self.provider()
        try:
            vectors = provider.embed(texts, kind=kind)
        except EmbeddingError as exc:
            if exc.code != "EMBEDDING_FAILED":  # one refused input says nothing about the provider
                self._record(exc)
            raise
        self._health = Health("ready", None, now_ms())
        return vectors

    def _record(self, exc: EmbeddingError) -> None:
        self._health = Health("unavailable", exc, now_ms())

    def health(self) -> Health:
        return self._health

    def note_failure(self, exc: LoreError) -> None:
        """Record a failure seen by a caller (e.g. a search that fell back to lexical)."""
        if isinstance(exc, EmbeddingError) and exc.code != "EMBEDDING_FAILED":
            self._record(exc)

    def close(self) -> None:
        with self._lock:
            if self._provider is not None:
                self._provider.close()
                self._provider = None
