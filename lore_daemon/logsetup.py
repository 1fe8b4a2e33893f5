"""Logging for a stdio daemon: stderr or a file, never stdout, and secrets redacted.

stdout carries the protocol, so one stray log line there would corrupt a frame. The token never
reaches a log by design; the redacting filter is a second line of defence should a library ever
echo a request header.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TextIO

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
REDACTED = "***"


class RedactingFilter(logging.Filter):
    """Replaces every registered secret in the formatted message with ``***``."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: set[str] = set()

    def add(self, secret: str) -> None:
        if len(secret) >= 4:  # a tiny "secret" would redact ordinary words
            self._secrets.add(secret)

    def filter(self, record: logging.LogRecord) -> bool:
        if not self._secrets:
            return True
        message = record.getMessage()
        redacted = message
        for secret in self._secrets:
            redacted = redacted.replace(secret, REDACTED)
        if redacted != message or record.exc_info:
            if record.exc_info and not record.exc_text:
                record.exc_text = logging.Formatter().formatException(record.exc_info)
            if record.exc_text:
                for secret in self._secrets:
                    record.exc_text = record.exc_text.replace(secret, REDACTED)
            record.msg, record.args = redacted, None
        return True


def configure_logging(log_file: str | None, verbosity: int, stderr: TextIO) -> None:
    """Root logging to ``log_file`` (appended) or ``stderr``.

    Verbosity 0: lore_daemon INFO, libraries WARNING. 1: lore_daemon DEBUG. 2+: pygls DEBUG too
    (it logs every message body).
    """
    handler: logging.Handler
    if log_file:
        path = Path(log_file).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(path, encoding="utf-8")
    else:
        handler = logging.StreamHandler(stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    logging.getLogger("lore_daemon").setLevel(logging.DEBUG if verbosity >= 1 else logging.INFO)
    logging.getLogger("pygls").setLevel(logging.DEBUG if verbosity >= 2 else logging.WARNING)


def redact(secret: str) -> None:
    """Register ``secret`` with every redacting filter on the root handlers."""
    for handler in logging.getLogger().handlers:
        for flt in handler.filters:
            if isinstance(flt, RedactingFilter):
                flt.add(secret)
