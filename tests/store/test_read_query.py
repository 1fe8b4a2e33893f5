"""The pure parts of the read methods: user text → FTS5 query (property-tested on a real FTS5
index: no text ever raises), snippets, list cursors, and query references."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lore_daemon.config import load_config
from lore_daemon.errors import InvalidParamsError
from lore_daemon.services.read_targets import query_references
from lore_daemon.store import migrate, open_connection
from lore_daemon.store.fts_query import MAX_TERMS, fts_query
from lore_daemon.store.read_filters import EntityFilter
from lore_daemon.store.read_list import Position, decode_cursor, encode_cursor, fingerprint
from lore_daemon.store.read_search import FTS_TOKENIZER, Reference, search_lexical, tokenizers
from lore_daemon.store.render_text import discussion_document
from lore_daemon.store.snippet import snippet

DOCS = [
    ("#1 Fix crash in the sync worker",
     "#1 Fix crash in the sync worker\n\nThe worker crashes when retrying."),
    ("#2 Speed up pagination", "#2 Speed up pagination\n\nPages of 100 items; the cursor is a tuple."),
    ("Discussion on #1: Fix crash", "Discussion on #1: Fix crash\n\n@ana: migrations ran twice (a:b) AND"),
    ("#3 Ünïcödé and 中文 text", "#3 Ünïcödé and 中文 text\n\nstraße İstanbul ﬁle"),
]


@pytest.fixture(scope="module")
def conn() -> Iterator[apsw.Connection]:
    db = open_connection(":memory:")
    migrate(db)
    with db:
        for i, (title, content) in enumerate(DOCS, start=1):
            db.execute(
                "INSERT INTO documents (source_type, source_id, title, content, content_hash, generated_at) "
                "VALUES ('issue', ?, ?, ?, 'h', 0)",
                (i, title, content),
            )
    yield db
    db.close()


def _matches(conn: apsw.Connection, expression: str) -> list[int]:
    return [int(r[0]) for r in conn.execute("SELECT rowid FROM documents_fts WHERE documents_fts MATCH ?",
                                            (expression,))]


# Text made of FTS5's own syntax (operators, quotes, parentheses, column filters, prefixes) and
# anything else: whatever it is, the query built from it must be one FTS5 accepts.
FTS_HEAVY = st.lists(
    st.sampled_from([
        *'"()*-:^+{}[]<>,.;!#@/\\\'`~ \t\n',
        "AND", "OR", "NOT", "NEAR", "NEAR(", " AND ", " OR ", " NOT ", "title:", "content:", "{title}:",
        "crash", "sync", "a", "12", "#12", "!3", '"', '""', "*", "-", "^",
    ])
    | st.characters(),
    max_size=25,
).map("".join)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=FTS_HEAVY | st.text(max_size=200))
def test_any_text_becomes_a_query_fts5_accepts(conn: apsw.Connection, text: str) -> None:
    query_tokens, _ = tokenizers(conn)
    query = fts_query(text, query_tokens)
    for expression in (query.expression, query.fallback):
        if expression is not None:
            _matches(conn, expression)  # raises on any FTS5 syntax error


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=FTS_HEAVY | st.text(max_size=200), limit=st.integers(1, 5))
def test_any_text_is_a_search_with_hits_or_none(conn: apsw.Connection, text: str, limit: int) -> None:
    found = search_lexical(conn, text, EntityFilter(), (), limit)
    assert len(found.hits) <= limit  # documents without parents here: no hits, but never an error


def test_words_phrases_prefixes_and_exclusions(conn: apsw.Connection) -> None:
    q, _ = tokenizers(conn)
    assert _matches(conn, fts_query("crashes", q).expression or "") == [1, 3]  # porter: crash
    assert _matches(conn, fts_query("crash retrying", q).expression or "") == [1]
    assert _matches(conn, fts_query('"sync worker"', q).expression or "") == [1]
    assert _matches(conn, fts_query('"worker sync"', q).expression or "") == []
    assert _matches(conn, fts_query("pagin*", q).expression or "") == [2]
    assert _matches(conn, fts_query("crash -migrations", q).expression or "") == [1]
    assert _matches(conn, fts_query("pagination OR migrations", q).expression or "") == [2, 3]
    assert _matches(conn, fts_query("a:b AND", q).expression or "") == [3]  # text, not syntax
    assert _matches(conn, fts_query("unicode 中文 straße", q).expression or "") == [4]  # diacritics folded


def test_what_fts_query_writes(conn: apsw.Connection) -> None:
    q, _ = tokenizers(conn)
    query = fts_query('crash "sync worker" pagin* -x:y', q)
    assert query.expression == '("crash" AND "sync worker" AND "pagin"*) NOT "x y"'
    assert query.fallback == '("crash" OR "sync worker" OR "pagin"*) NOT "x y"'
    assert fts_query("x y OR z", q).expression == '("x" AND "y") OR "z"'
    assert fts_query("x -y", q).expression == '"x" NOT "y"'
    assert fts_query("flaky test in the CLI", q).expression == '"flaky" AND "test" AND "CLI"'
    assert fts_query('"in the cli" the', q).expression == '"in the cli"'  # kept inside a phrase
    assert fts_query("the in", q).expression == '"the" AND "in"'  # nothing else to search for
    assert query.terms == {"crash", "sync", "worker"} and query.prefixes == {"pagin"}
    assert fts_query("!!! ??? ()", q).expression is None
    assert fts_query("", q) == fts_query("   ", q)
    many = fts_query(" ".join(f"w{i}" for i in range(MAX_TERMS + 5)), q)
    assert many.dropped == 5 and many.warnings


def test_the_tokenizer_is_the_one_the_index_was_created_with(conn: apsw.Connection) -> None:
    (sql,) = conn.execute("SELECT sql FROM sqlite_master WHERE name = 'documents_fts'").fetchone()
    name, args = FTS_TOKENIZER
    assert f"tokenize = '{name} {' '.join(args)}'" in sql


def test_snippets_mark_matches_around_the_best_window(conn: apsw.Connection) -> None:
    q, d = tokenizers(conn)
    query = fts_query("cursor tuple", q)
    text = " ".join(["filler"] * 60) + " the cursor\n\nis a   tuple " + " ".join(["tail"] * 60)
    got = snippet(text, query.terms, query.prefixes, d)
    assert got.startswith("…") and got.endswith("…")
    assert "the <mark>cursor</mark> is a <mark>tuple</mark>" in got
    assert "\n" not in got and "  " not in got
    assert snippet("Short text", frozenset({"nothing"}), frozenset(), d) == "Short text"
    assert snippet("", query.terms, query.prefixes, d) == ""
    stems = fts_query("retri*", q)
    assert "<mark>retrying</mark>" in snippet(DOCS[0][1], stems.terms, stems.prefixes, d)
    long_first = "x " * 5000 + "needle here"
    needle = fts_query("needle", q)
    assert "<mark>needle</mark> here" in snippet(long_first, needle.terms, needle.prefixes, d)


def test_cursors_round_trip_and_are_tied_to_their_query() -> None:
    mine = fingerprint(EntityFilter(state="opened"), "updated", "desc")
    position = Position(1_700_000_000_123, 1, 3_000_007)
    cursor = encode_cursor(position, mine)
    assert cursor.startswith("v1.") and decode_cursor(cursor, mine) == position
    other = fingerprint(EntityFilter(state="closed"), "updated", "desc")
    assert other != mine and other != fingerprint(EntityFilter(state="opened"), "updated", "asc")
    for bad, print_ in ((cursor, other), ("v2.abc", mine), ("v1.", mine), (cursor[:-3], mine),
                        ("v1." + "A" * 8, mine)):
        with pytest.raises(InvalidParamsError) as err:
            decode_cursor(bad, print_)
        assert err.value.details["path"] == "$.cursor"


def test_references_in_query_text(tmp_path: Path) -> None:
    config = load_config(
        None,
        env={"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        overrides={"gitlab": {"base_url": "https://gl.example.com/gitlab"}, "projects": [{"path": "g/p"}]},
        require_token=False,
    )
    found = query_references(
        config,
        "see (#12), !3. and g/sub/q#4; https://gl.example.com/gitlab/g/p/-/merge_requests/9/diffs "
        "https://evil.example/g/p/-/issues/5 #0 12 #12 https://[::1",
        None,
    )
    assert found == [
        Reference("g/p", "issue", 12), Reference("g/p", "mr", 3), Reference("g/sub/q", "issue", 4),
        Reference("g/p", "mr", 9),
    ]
    assert query_references(config, "#7", "other/proj") == [Reference("other/proj", "issue", 7)]


@given(text=FTS_HEAVY | st.text(max_size=100))
@settings(max_examples=300, deadline=None)
def test_any_text_yields_references_without_raising(text: str) -> None:
    config = load_config(
        None,
        env={"HOME": "/nonexistent", "XDG_CONFIG_HOME": "/nonexistent"},
        overrides={"gitlab": {"base_url": "https://gl.example.com"}, "projects": [{"path": "g/p"}]},
        require_token=False,
    )
    assert len(query_references(config, text, None)) <= 10


def test_the_index_holds_a_discussion_s_notes_without_its_header() -> None:
    """Migration 0011: documents_indexed strips the header render_text gives a discussion (the
    parent's title, project, resolution), so the parent's title words do not match its threads;
    the triggers keep the index in step through insert, update and delete."""
    db = open_connection(":memory:")
    migrate(db)
    notes = [
        (7, "ana", 1_700_000_000_000, "The cursor skips a page", 0, None, None, None, None, None, 0, 0,
         None, 1),
        (8, "bo", 1_700_000_060_000, "Confirmed on staging", 0, None, None, None, None, None, 0, 0, None, 1),
    ]
    rendered = discussion_document(("issue", 1, "g/p", 12, "Webhook retries flood the queue", "u"), notes)
    assert rendered is not None and rendered.content.startswith("Discussion on #12: Webhook retries")
    with db:
        db.execute(
            "INSERT INTO documents (source_type, source_id, title, content, content_hash, generated_at) "
            "VALUES ('discussion', 1, ?, ?, 'h', 0)",
            (rendered.title, rendered.content),
        )
    (title, content), = db.execute("SELECT title, content FROM documents_indexed").fetchall()
    assert title == "" and content.splitlines() == rendered.content.splitlines()[-2:]
    assert _matches(db, '"webhook"') == [] and _matches(db, '"staging"') == [1]
    with db:
        db.execute("UPDATE documents SET content = ? WHERE id = 1",
                   (rendered.content.replace("staging", "production"),))
    assert _matches(db, '"staging"') == [] and _matches(db, '"production"') == [1]
    db.execute("INSERT INTO documents_fts (documents_fts) VALUES ('integrity-check')")
    with db:
        db.execute("DELETE FROM documents WHERE id = 1")
    assert _matches(db, '"production"') == []
    db.execute("INSERT INTO documents_fts (documents_fts) VALUES ('integrity-check')")
    db.close()
