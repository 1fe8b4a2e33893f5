"""What the HTTP providers share: one JSON POST with bounded retries and typed failures.

Connection errors, timeouts, 429 and 5xx are retried (``ATTEMPTS`` tries, short backoff) and then
raise ``EMBEDDING_UNAVAILABLE``; 401/403/404 mean the configuration is wrong
(``EMBEDDING_MISCONFIGURED``); other 4xx refuse this input (``EMBEDDING_FAILED``). The API key is
sent only to the configured base URL (redirects are not followed) and is removed from any server
message before it is put in an error.
"""

from __future__ import annotations

import time
from typing import Any

import httpx

from lore_daemon.config import Secret
from lore_daemon.embedding.provider import failed, misconfigured, unavailable

ATTEMPTS = 3
BACKOFF_S = (0.2, 0.6)
_MESSAGE_CHARS = 300


def _server_message(response: httpx.Response, key: Secret | None) -> str:
    """The server's own error text (OpenAI ``error.message``, Ollama ``error``), key removed."""
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        text = error.get("message") if isinstance(error, dict) else error
        text = str(text) if text else response.text
    except ValueError:
        text = response.text
    if key is not None and key.reveal():
        text = text.replace(key.reveal(), "***")
    return " ".join(text.split())[:_MESSAGE_CHARS]


class JsonApi:
    """POST JSON to ``base_url + path`` for one provider and model."""

    def __init__(
        self, provider: str, model: str, base_url: str, *, timeout_ms: int, key: Secret | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.provider = provider
        self.model = model
        self.base_url = base_url
        self._key = key
        headers = {"Authorization": f"Bearer {key.reveal()}"} if key is not None else {}
        self._client = httpx.Client(
            base_url=base_url, headers=headers, timeout=timeout_ms / 1000, follow_redirects=False,
            transport=transport,
        )

    def post(self, path: str, body: dict[str, Any]) -> Any:
        where = f"{self.base_url}{path}"
        details = {"provider": self.provider, "model": self.model, "url": where}
        problem = ""
        for attempt in range(ATTEMPTS):
            if attempt:
                time.sleep(BACKOFF_S[min(attempt - 1, len(BACKOFF_S) - 1)])
            try:
                response = self._client.post(path, json=body)
            except httpx.TimeoutException:
                problem = "timed out"
                continue
            except httpx.TransportError as exc:
                problem = f"could not be reached ({type(exc).__name__})"
                continue
            status = response.status_code
            if status == 429 or status >= 500:
                problem = f"answered HTTP {status}: {_server_message(response, self._key)}"
                continue
            if status in (401, 403):
                raise misconfigured(
                    f"The {self.provider} embeddings API at {where} refused the key (HTTP {status}): "
                    f"{_server_message(response, self._key)}",
                    "Check embedding.api_key_env names a variable holding a valid key.",
                    httpStatus=status, **details,
                )
            if status == 404:
                raise misconfigured(
                    f"The {self.provider} embeddings API at {where} answered 404 for model "
                    f"{self.model!r}: {_server_message(response, self._key)}",
                    "Check embedding.base_url and embedding.model (for Ollama: `ollama pull MODEL`).",
                    httpStatus=status, **details,
                )
            if status >= 300:
                raise failed(
                    f"The {self.provider} embeddings API refused the input (HTTP {status}): "
                    f"{_server_message(response, self._key)}",
                    "Lower embedding.chunk_chars if the texts are too long for the model.",
                    httpStatus=status, **details,
                )
            try:
                return response.json()
            except ValueError:
                raise misconfigured(
                    f"The {self.provider} embeddings API at {where} did not answer JSON.",
                    "Check embedding.base_url points at the embeddings API.", **details,
                ) from None
        raise unavailable(
            f"The {self.provider} embeddings API at {where} {problem} ({ATTEMPTS} attempts).",
            "Start the embedding server or check embedding.base_url; search falls back to lexical meanwhile.",
            **details,
        )

    def close(self) -> None:
        self._client.close()
