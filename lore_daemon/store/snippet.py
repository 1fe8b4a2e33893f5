"""Snippets: a short window of a document around the query's matched terms, terms marked.

Built in Python with the index's own tokenizer rather than FTS5's ``snippet()``: that function
needs the row inside a ``MATCH`` scan, so each hit would cost its own full-text query (~0.1 ms
measured, for 20 hits 2-3 ms), and a semantic hit (no lexical match) could not have one at all.
Tokenising the document with the same tokenizer gives the same normalised tokens the index holds,
so a term is marked exactly when the index would match it (stems and prefixes included).

The document is tokenised 4 KB at a time (cut at whitespace) and only until a chunk with a match
is found, so a long description costs what its first match costs. Whitespace is collapsed to
single spaces; cut text is shown as ``…``; matches are wrapped in ``<mark>``/``</mark>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from lore_daemon.protocol_read import SNIPPET_MARKERS
from lore_daemon.store.fts_query import Tokenize

WINDOW_TOKENS = 24
CHUNK_BYTES = 4096
_OPEN, _CLOSE = SNIPPET_MARKERS
_ELLIPSIS = "…"
_SPACES = re.compile(r"\s+")


def _chunks(raw: bytes) -> list[tuple[int, int]]:
    """Byte ranges of about CHUNK_BYTES, each ending at whitespace (never inside a token)."""
    out: list[tuple[int, int]] = []
    start = 0
    while start < len(raw):
        end = min(len(raw), start + CHUNK_BYTES)
        if end < len(raw):
            cut = max(raw.rfind(b" ", start, end), raw.rfind(b"\n", start, end))
            end = cut + 1 if cut > start else end
        out.append((start, end))
        start = end
    return out


def _best_window(hits: Sequence[int], tokens: Sequence[tuple[int, int, str]]) -> int:
    """The start index of the window holding the most distinct matched terms (then most matches)."""
    best_start, best_key = 0, (-1, -1)
    for first in hits:
        start = max(0, first - 3)
        inside = [i for i in hits if start <= i < start + WINDOW_TOKENS]
        key = (len({tokens[i][2] for i in inside}), len(inside))
        if key > best_key:
            best_start, best_key = start, key
    return best_start


def _text(raw: bytes, start: int, end: int) -> str:
    """The bytes as text with every run of whitespace made one space (kept at the edges)."""
    return _SPACES.sub(" ", raw[start:end].decode("utf-8", "replace"))


def snippet(content: str, terms: frozenset[str], prefixes: frozenset[str], tokenize: Tokenize) -> str:
    """A window of ``content`` with each matched term marked; its start when nothing matches."""
    raw = content.encode("utf-8", "replace")
    starts = tuple(prefixes)
    tokens: list[tuple[int, int, str]] = []
    hits: list[int] = []
    for start, end in _chunks(raw):
        chunk = [(start + s, start + e, t) for s, e, t in tokenize(raw[start:end])]
        base = len(tokens)
        tokens.extend(chunk)
        hits.extend(
            base + i for i, (_, _, t) in enumerate(chunk) if t in terms or (starts and t.startswith(starts))
        )
        if (hits or not (terms or prefixes)) and len(tokens) - (hits[0] if hits else 0) >= WINDOW_TOKENS:
            break
    if not tokens:
        return _text(raw, 0, min(len(raw), 200)).strip()
    first = _best_window(hits, tokens) if hits else 0
    last = min(len(tokens), first + WINDOW_TOKENS) - 1
    marked = set(hits)
    parts: list[str] = [_ELLIPSIS] if first > 0 else []
    cursor = tokens[first][0]
    for i in range(first, last + 1):
        start, end, _ = tokens[i]
        if i in marked:
            parts.append(_text(raw, cursor, start))
            parts.append(_OPEN + raw[start:end].decode("utf-8", "replace") + _CLOSE)
            cursor = end
    end_byte = tokens[last][1]
    parts.append(_text(raw, cursor, end_byte))
    if raw[end_byte:].strip():
        parts.append(_ELLIPSIS)
    return "".join(parts).strip()
