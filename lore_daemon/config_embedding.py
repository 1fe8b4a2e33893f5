"""``[embedding]``: its keys, their cross-key checks and per-provider defaults, its status summary.

docs/configuration.md and docs/search.md document every key; ``embedding_catalog`` holds the
bundled local models and each provider's defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import msgspec

from lore_daemon.config_errors import (
    FRIENDLY_EXPECTED,
    OVERRIDES_SOURCE,
    EnvVarName,
    checked_url,
    config_error,
    has_key,
    looks_like_token,
)
from lore_daemon.embedding_catalog import LOCAL_MODELS, PROVIDER_DEFAULTS, ProviderName
from lore_daemon.errors import ConfigError


class EmbeddingConfig(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """``[embedding]`` (docs/search.md). Keys left out take the provider's defaults
    (``embedding_catalog.PROVIDER_DEFAULTS``); ``load_config`` fills them in, so a loaded
    ``Config`` has no None here except ``api_key_env`` (no key) and ``dimensions`` (the model's)."""

    provider: ProviderName = "local"
    model: Annotated[str, msgspec.Meta(min_length=1, max_length=200)] | None = None
    base_url: str | None = None
    api_key_env: EnvVarName | None = None
    dimensions: Annotated[int, msgspec.Meta(ge=8, le=8192)] | None = None
    batch_size: Annotated[int, msgspec.Meta(ge=1, le=512)] | None = None
    chunk_chars: Annotated[int, msgspec.Meta(ge=200, le=32_000)] | None = None
    chunk_overlap_chars: Annotated[int, msgspec.Meta(ge=0, le=8_000)] | None = None
    threads: Annotated[int, msgspec.Meta(ge=0, le=64)] = 0
    timeout_ms: Annotated[int, msgspec.Meta(ge=100, le=600_000)] = 30_000
    query_prefix: Annotated[str, msgspec.Meta(max_length=100)] = ""
    document_prefix: Annotated[str, msgspec.Meta(max_length=100)] = ""


def resolve_embedding(
    parsed: EmbeddingConfig, file: Path | None, overrides: Mapping[str, Any]
) -> EmbeddingConfig:
    """``[embedding]`` checked across keys, with the provider's defaults filled in."""
    defaults = PROVIDER_DEFAULTS[parsed.provider]

    def invalid(key: str, expected: str) -> ConfigError:
        dotted = f"embedding.{key}"
        source = OVERRIDES_SOURCE if file is None or has_key(overrides, dotted) else str(file)
        return config_error(
            "CONFIG_INVALID", f"Invalid value for `{dotted}` in {source}: expected {expected}.",
            f"Fix `{dotted}` in {source}.", file, key=dotted, expected=expected, source=source,
        )

    model = parsed.model or defaults.model
    base_url = parsed.base_url
    if parsed.provider == "local":
        known = LOCAL_MODELS.get(model)
        if known is None:
            raise invalid("model", "one of the bundled local models: " + ", ".join(LOCAL_MODELS))
        if parsed.dimensions not in (None, known.dims):
            raise invalid("dimensions", f"{known.dims} (the dimensions of {model}) or no value")
        if base_url is not None:
            raise invalid("base_url", "no value: the local provider runs in the daemon")
    elif parsed.provider in ("ollama", "openai"):
        example = defaults.base_url or "http://127.0.0.1:8000/v1"
        base_url = checked_url(base_url or example, "embedding.base_url", example, file, overrides)
    if parsed.api_key_env is not None and looks_like_token(parsed.api_key_env):
        raise invalid("api_key_env", FRIENDLY_EXPECTED["embedding.api_key_env"])
    chunk_chars = parsed.chunk_chars or defaults.chunk_chars
    overlap = parsed.chunk_overlap_chars
    if overlap is None:
        overlap = defaults.chunk_overlap_chars
    if overlap * 2 > chunk_chars:
        raise invalid("chunk_overlap_chars", f"at most half of chunk_chars ({chunk_chars // 2})")
    return msgspec.structs.replace(
        parsed,
        model=model if parsed.provider != "none" else None,
        base_url=base_url,
        batch_size=parsed.batch_size or defaults.batch_size,
        chunk_chars=chunk_chars,
        chunk_overlap_chars=overlap,
    )


def embedding_summary(embedding: EmbeddingConfig) -> dict[str, Any]:
    """``[embedding]`` as ``lore/status`` shows it: the key's variable NAME only, never a value."""
    return {
        "provider": embedding.provider,
        "model": embedding.model,
        "baseUrl": embedding.base_url,
        "apiKeyEnv": embedding.api_key_env,
        "dimensions": embedding.dimensions,
        "batchSize": embedding.batch_size,
        "chunkChars": embedding.chunk_chars,
        "chunkOverlapChars": embedding.chunk_overlap_chars,
        "threads": embedding.threads,
        "timeoutMs": embedding.timeout_ms,
        "queryPrefix": embedding.query_prefix,
        "documentPrefix": embedding.document_prefix,
    }
