"""The provider interface every embedding backend implements, and what they share.

A provider turns texts into L2-normalised float32 vectors, one row per text, in order. It is
blocking (callers run it on a worker thread) and raises only ``EmbeddingError``:
``EMBEDDING_UNAVAILABLE`` (cannot reach or load it now), ``EMBEDDING_MISCONFIGURED`` (cannot work
as configured), ``EMBEDDING_FAILED`` (refused this input). ``model_key`` is recorded with every
vector: vectors of another key are never compared with this provider's queries.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

import numpy as np
import numpy.typing as npt

from lore_daemon.errors import EmbeddingError

TextKind = Literal["document", "query"]
Vectors = npt.NDArray[np.float32]


class Provider(Protocol):
    name: str  # local | ollama | openai
    model: str
    model_key: str

    def embed(self, texts: Sequence[str], *, kind: TextKind) -> Vectors:
        """One L2-normalised float32 row per text, in order."""
        ...

    def close(self) -> None: ...


def normalised(rows: Any, *, expected: int, provider: str, model: str) -> Vectors:
    """``rows`` as an (n, dims) float32 matrix with unit rows; EMBEDDING_MISCONFIGURED if the
    provider answered something else (wrong count, ragged or empty rows, NaN)."""
    try:
        matrix = np.asarray(rows, dtype=np.float32)
    except (TypeError, ValueError):
        matrix = np.zeros((0, 0), dtype=np.float32)
    shaped = matrix.ndim == 2 and matrix.shape[0] == expected and matrix.shape[1] > 0
    if not shaped or not np.isfinite(matrix).all():
        raise misconfigured(
            f"The {provider} provider answered {expected} text(s) with something that is not "
            f"{expected} vector(s) (shape {matrix.shape}).",
            "Check embedding.base_url and embedding.model point at an embeddings API.",
            provider=provider, model=model,
        )
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = (matrix / norms).astype(np.float32, copy=False)
    return out


def unavailable(message: str, suggestion: str, **details: Any) -> EmbeddingError:
    return EmbeddingError(message, "EMBEDDING_UNAVAILABLE", suggestion, details=details)


def misconfigured(message: str, suggestion: str, **details: Any) -> EmbeddingError:
    return EmbeddingError(message, "EMBEDDING_MISCONFIGURED", suggestion, details=details)


def failed(message: str, suggestion: str, **details: Any) -> EmbeddingError:
    return EmbeddingError(message, "EMBEDDING_FAILED", suggestion, details=details)
