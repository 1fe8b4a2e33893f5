"""The bundled model, for real: meaning without shared words, pinned weights, nothing downloaded."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Iterator

import numpy as np
import pytest

from lore_daemon.config_embedding import EmbeddingConfig, resolve_embedding
from lore_daemon.embedding.local import LocalProvider, weights_path
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.embedding_catalog import LOCAL_MODELS
from lore_daemon.errors import EmbeddingError

SPEC = LOCAL_MODELS["all-MiniLM-L6-v2"]

# Each query shares no word with its target (checked below); the distractors are the other targets.
PAIRS = [
    ("home screen tile goes blank when the phone is nearly out of charge",
     "Widget stops refreshing in battery saver mode. The weather widget freezes and shows stale data "
     "while power saving is on."),
    ("can't sign in after my password was changed",
     "Login rejected with 401 once credentials are rotated; the cached session token is not invalidated."),
    ("app dies when I turn the device sideways",
     "Crash on orientation change: activity recreated while the fragment holds a dead view reference."),
    ("alerts arrive hours late",
     "Push notifications delayed by the doze scheduler; FCM high priority messages are downgraded."),
    ("my phone plan runs out because the app uses so many megabytes while idle",
     "Background sync downloads full attachments over cellular; respect the wifi-only setting."),
    ("offline edits vanish when connection returns",
     "Conflict resolution drops local changes made without network during reconciliation."),
]


def _words(text: str) -> set[str]:
    return {w.strip(".,;:'!?()").lower() for w in text.split()} - {""}


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Any attempt to open a socket fails the test: the model must never reach the network."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the local model tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    yield


def test_paraphrases_with_no_shared_word_find_their_target_first(local_model: LocalProvider) -> None:
    for query, target in PAIRS:
        function_words = {"the", "a", "is", "when", "in", "of", "on", "while"}
        assert not _words(query) & (_words(target) - function_words), query
    docs = local_model.embed([t for _, t in PAIRS], kind="document")
    queries = local_model.embed([q for q, _ in PAIRS], kind="query")
    scores = queries @ docs.T
    assert [int(np.argmax(row)) for row in scores] == list(range(len(PAIRS)))


def test_vectors_are_unit_384_float32_in_input_order(local_model: LocalProvider) -> None:
    texts = ["short", "a much longer text " * 20, "medium length text here"]
    together = local_model.embed(texts, kind="document")
    alone = np.vstack([local_model.embed([t], kind="document") for t in texts])
    assert together.dtype == np.float32 and together.shape == (3, SPEC.dims)
    assert np.allclose(np.linalg.norm(together, axis=1), 1.0, atol=1e-5)
    assert np.allclose(together, alone, atol=2e-3), "batching (and length sorting) keeps order and values"
    assert local_model.embed([], kind="query").shape == (0, SPEC.dims)


def test_long_texts_are_truncated_to_the_model_window(local_model: LocalProvider) -> None:
    long_text = "battery widget refresh " * 400
    assert local_model.token_counts([long_text])[0] > SPEC.max_tokens
    assert local_model.embed([long_text], kind="document").shape == (1, SPEC.dims)


def test_loading_uses_no_network_and_the_configured_threads(no_network: None) -> None:
    config = resolve_embedding(EmbeddingConfig(threads=1, batch_size=2), None, {})
    service = EmbeddingService(config, {})
    assert service.embed(["offline"], kind="query").shape == (1, SPEC.dims)
    provider = service.provider()
    assert isinstance(provider, LocalProvider) and provider.batch_size == 2
    assert provider._session.get_session_options().intra_op_num_threads == 1
    assert provider.model_key == f"local:all-MiniLM-L6-v2@{SPEC.weights_sha256[:12]}"


def test_weights_and_tokenizer_are_checked_against_their_pinned_sha256() -> None:
    assert weights_path(SPEC).is_file()
    with pytest.raises(EmbeddingError) as bad_weights:
        LocalProvider(dataclasses.replace(SPEC, weights_sha256="0" * 64))
    assert bad_weights.value.code == "EMBEDDING_MISCONFIGURED" and "SHA256" in bad_weights.value.message
    with pytest.raises(EmbeddingError) as bad_tokenizer:
        LocalProvider(dataclasses.replace(SPEC, tokenizer_sha256="f" * 64))
    assert "tokenizer" in bad_tokenizer.value.message
    with pytest.raises(EmbeddingError) as missing:
        LocalProvider(dataclasses.replace(SPEC, package="no_such_weights_package"))
    assert missing.value.code == "EMBEDDING_MISCONFIGURED" and "not installed" in missing.value.message
