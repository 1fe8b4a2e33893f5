"""Any user text → a safe FTS5 query (never a syntax error) plus what to highlight.

The text is read as words separated by whitespace, with a little of the syntax people type into
search boxes:

* ``"a phrase"`` — the words in that order (an unclosed quote runs to the end);
* ``word*`` — prefix match (also ``"a phr"*``);
* ``-word`` / ``-"a phrase"`` — documents without it (only alongside something to match);
* ``OR`` (upper case, between words) — either side; otherwise every word must match.

Common English words (``the``, ``in``, ``of``...) typed as plain words are left out when the
group has other words: nearly every document holds them, so requiring them changes almost no
result and costs a walk over a posting list as long as the index (a 5-word query on a 300k
document mirror: 38 ms with them, 16 ms without). Inside a quoted phrase they are kept.

Everything else is text: parentheses, ``AND``, ``NEAR``, ``:``, ``^``, ``+``, quotes inside
words and any other punctuation never reach FTS5 as operators. Each word or phrase is run through
the index's own tokenizer (``porter unicode61``, the one ``documents_fts`` uses) and written back
as a double-quoted FTS5 string of the original token spellings, so FTS5 sees only quoted strings,
``AND``, ``OR``, ``NOT``, ``*`` and parentheses it generated itself. A word the tokenizer drops
entirely (``!!!``) is skipped rather than becoming an empty phrase, which matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

# (start byte, end byte, normalised token) for each token of UTF-8 bytes, as apsw's FTS5
# tokenizer objects return them.
Tokenize = Callable[[bytes], Sequence[tuple[int, int, str]]]

MAX_TERMS = 32  # words and phrases used from one query; the rest is dropped with a warning
STOPWORDS = frozenset({
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "from", "has", "have", "i", "if",
    "in", "into", "is", "it", "its", "of", "on", "or", "so", "that", "the", "their", "then", "there",
    "these", "they", "this", "to", "was", "were", "will", "with",
})

_CHUNK = re.compile(r'(-?)(?:"([^"]*)"?(\*?)|(\S+))')


@dataclass(frozen=True, slots=True)
class _Item:
    phrase: str  # the FTS5 string, quoted, with its * when a prefix
    tokens: tuple[str, ...]  # normalised tokens (what the index stores)
    prefix: bool
    negated: bool
    stopword: bool = False  # a plain word from STOPWORDS (left out when the group has others)


@dataclass(frozen=True, slots=True)
class FtsQuery:
    """``expression``: the FTS5 query (None when the text has nothing to search for).
    ``fallback``: the same words OR-ed, for when requiring every word finds nothing (None when
    it would be the same query). ``terms``/``prefixes``: normalised tokens to highlight."""

    expression: str | None
    fallback: str | None
    terms: frozenset[str] = frozenset()
    prefixes: frozenset[str] = frozenset()
    dropped: int = 0
    warnings: tuple[str, ...] = field(default=())
    excluded: tuple[tuple[str, ...], ...] = ()  # normalised tokens of each -word / -"phrase"


def _item(
    text: str, tokenize: Tokenize, *, prefix: bool, negated: bool, bare: bool = False
) -> _Item | None:
    raw = text.encode("utf-8", "replace")
    tokens = tokenize(raw)
    if not tokens:
        return None
    spelled = [raw[start:end].decode("utf-8", "replace").replace('"', '""') for start, end, _ in tokens]
    ends_at_star = prefix and tokens[-1][1] == len(raw)
    phrase = '"' + " ".join(spelled) + '"' + ("*" if ends_at_star else "")
    stopword = bare and not ends_at_star and len(spelled) == 1 and spelled[0].lower() in STOPWORDS
    return _Item(phrase, tuple(t for _, _, t in tokens), ends_at_star, negated, stopword)


def _parse(text: str, tokenize: Tokenize) -> tuple[list[list[_Item]], list[_Item], int]:
    """Groups of AND-ed positive items (split at OR), the negated items, and how many were dropped."""
    groups: list[list[_Item]] = [[]]
    negated: list[_Item] = []
    used = dropped = 0
    for match in _CHUNK.finditer(text):
        minus, quoted, quoted_star, bare = match.groups()
        if bare == "OR" and not minus:
            if groups[-1]:
                groups.append([])
            continue
        if quoted is not None:
            body, prefix = quoted, bool(quoted_star)
        else:
            body, prefix = bare, bare.endswith("*")
            if prefix:
                body = body.rstrip("*")
        item = _item(body, tokenize, prefix=prefix, negated=bool(minus), bare=quoted is None)
        if item is None:
            continue
        if used >= MAX_TERMS:
            dropped += 1
            continue
        used += 1
        (negated if item.negated else groups[-1]).append(item)
    kept = [[i for i in g if not i.stopword] or g for g in groups if g]
    return kept, negated, dropped


def _join(groups: list[list[_Item]], negated: list[_Item]) -> str:
    """``a AND b OR c`` as FTS5 text, parenthesised only where an operator needs it."""
    ands = [" AND ".join(i.phrase for i in group) for group in groups]
    if len(groups) > 1:
        ands = [f"({a})" if len(group) > 1 else a for a, group in zip(ands, groups, strict=True)]
    expression = " OR ".join(ands)
    if not negated:
        return expression
    if len(groups) > 1 or len(groups[0]) > 1:
        expression = f"({expression})"
    return expression + "".join(f" NOT {i.phrase}" for i in negated)


def fts_query(text: str, tokenize: Tokenize) -> FtsQuery:
    """The FTS5 query for ``text`` (see the module docstring). Never raises for any ``str``."""
    groups, negated, dropped = _parse(text, tokenize)
    warnings: list[str] = []
    if dropped:
        warnings.append(f"the query has more than {MAX_TERMS} words; the last {dropped} were not used")
    positive = [item for group in groups for item in group]
    if not positive:
        if negated:
            warnings.append("a query of only excluded words (-word) matches nothing; add a word to find")
        return FtsQuery(None, None, dropped=dropped, warnings=tuple(warnings))
    expression = _join(groups, negated)
    fallback = None
    if len(groups) == 1 and len(positive) > 1:
        fallback = _join([[item] for item in positive], negated)
    return FtsQuery(
        excluded=tuple(item.tokens for item in negated),
        expression=expression,
        fallback=fallback,
        terms=frozenset(t for item in positive for t in (item.tokens[:-1] if item.prefix else item.tokens)),
        prefixes=frozenset(item.tokens[-1] for item in positive if item.prefix),
        dropped=dropped,
        warnings=tuple(warnings),
    )
