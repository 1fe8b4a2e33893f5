"""Documents cut into chunks that fit the embedding model, each prefixed with a header.

A chunk is ``header + "\\n" + body``. The header is the entity's reference and title
(``group/project#12 Widget freezes``), so every chunk of a long thread still says what it is
about. Bodies are at most ``max_chars`` characters; they break at headings, fenced code blocks and
paragraphs first, then at lines, sentences and words, and neighbours share up to ``overlap_chars``
characters (not across a heading). ``ChunkPlan.key`` names the settings and is stored with every
vector, so changing them re-embeds (``CHUNKING_VERSION`` changes when this algorithm does).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

CHUNKING_VERSION = 1

_HEADING = re.compile(r"^ {0,3}#{1,6}\s")
_FENCE = re.compile(r"^ {0,3}(```|~~~)")
_REF = re.compile(r"^(?:Discussion on )?([#!]\d+)")
_SEPARATORS = ("\n", ". ", " ")


@dataclass(frozen=True, slots=True)
class ChunkPlan:
    max_chars: int
    overlap_chars: int

    @property
    def key(self) -> str:
        return f"v{CHUNKING_VERSION}:{self.max_chars}:{self.overlap_chars}"


@dataclass(frozen=True, slots=True)
class Chunk:
    index: int
    text: str

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.text.encode()).hexdigest()


def chunk_header(title: str, project_path: str | None) -> str:
    """``group/project#12 Title`` (or ``Discussion on group/project!3: Title``) for a document title."""
    if not project_path:
        return title
    match = _REF.match(title)
    if match is None:
        return f"{project_path}: {title}"
    return title[: match.start(1)] + project_path + title[match.start(1) :]


def _blocks(text: str) -> list[tuple[str, bool]]:
    """(block, starts a section) in order: paragraphs, headings and whole fenced code blocks."""
    blocks: list[tuple[str, bool]] = []
    current: list[str] = []
    heading = in_fence = False

    def flush() -> None:
        nonlocal heading
        if current:
            blocks.append(("\n".join(current), heading))
            current.clear()
        heading = False

    for line in text.split("\n"):
        if in_fence:
            current.append(line)
            if _FENCE.match(line):
                in_fence = False
                flush()
        elif _FENCE.match(line):
            flush()
            current.append(line)
            in_fence = True
        elif not line.strip():
            flush()
        elif _HEADING.match(line):
            flush()
            current.append(line)
            heading = True
        else:
            current.append(line)
    flush()
    return blocks


def _split(text: str, limit: int, separators: tuple[str, ...] = _SEPARATORS) -> list[str]:
    """``text`` in pieces of at most ``limit`` characters, cut at the first separator that helps."""
    if len(text) <= limit:
        return [text]
    if not separators:
        return [text[i : i + limit] for i in range(0, len(text), limit)]
    sep, rest = separators[0], separators[1:]
    parts = text.split(sep)
    if len(parts) == 1:
        return _split(text, limit, rest)
    pieces: list[str] = []
    current = ""
    for i, part in enumerate(parts):
        part = part + sep if i < len(parts) - 1 and sep != "\n" else part
        if len(part) > limit:
            if current:
                pieces.append(current)
                current = ""
            pieces.extend(_split(part, limit, rest))
        elif not current:
            current = part
        elif len(current) + len(sep if sep == "\n" else "") + len(part) <= limit:
            current = f"{current}\n{part}" if sep == "\n" else current + part
        else:
            pieces.append(current)
            current = part
    if current:
        pieces.append(current)
    return [p.strip() for p in pieces if p.strip()]


def _tail(text: str, overlap: int) -> str:
    """The last ``overlap`` characters of ``text``, starting at a word."""
    if overlap <= 0 or not text:
        return ""
    tail = text[-overlap:]
    if len(text) > overlap:
        cut = tail.find(" ")
        tail = tail[cut + 1 :] if 0 <= cut < len(tail) - 1 else tail
    return tail.strip()


def split_body(body: str, plan: ChunkPlan) -> list[str]:
    """The chunk bodies of ``body`` (at least one, possibly empty)."""
    limit = max(plan.max_chars - plan.overlap_chars - 1, 1)
    chunks: list[str] = []
    current = ""
    for block, section in _blocks(body):
        for k, piece in enumerate(_split(block, limit)):
            if not current:
                current = piece
                continue
            starts_section = section and k == 0 and len(current) >= plan.max_chars // 3
            if starts_section:
                chunks.append(current)
                current = piece
            elif len(current) + 2 + len(piece) > plan.max_chars:
                chunks.append(current)
                tail = _tail(current, plan.overlap_chars)
                current = f"{tail}\n{piece}" if tail else piece
            else:
                current = f"{current}\n\n{piece}"
    chunks.append(current)
    return chunks


def chunk_document(title: str, content: str, project_path: str | None, plan: ChunkPlan) -> list[Chunk]:
    """A document's chunks. The content's first line repeats the title; the header replaces it."""
    body = content
    first, _, rest = content.partition("\n")
    if first.strip() == title.strip():
        body = rest
    header = chunk_header(title, project_path)
    return [
        Chunk(i, f"{header}\n{text}" if text else header)
        for i, text in enumerate(split_body(body.strip(), plan))
    ]
