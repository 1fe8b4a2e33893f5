"""Chunks: a title/reference header on each, sized to the plan, breaking at structure, overlapping."""

from __future__ import annotations

import itertools

from lore_daemon.embedding.chunking import ChunkPlan, chunk_document, chunk_header, split_body

PLAN = ChunkPlan(max_chars=300, overlap_chars=40)


def test_header_is_the_reference_and_title() -> None:
    assert chunk_header("#12 Widget freezes", "grp/app") == "grp/app#12 Widget freezes"
    assert chunk_header("!3 Fix sync", "grp/app") == "grp/app!3 Fix sync"
    discussion = chunk_header("Discussion on #12: Widget freezes", "grp/app")
    assert discussion == "Discussion on grp/app#12: Widget freezes"
    assert chunk_header("Odd title", "grp/app") == "grp/app: Odd title"
    assert chunk_header("#12 T", None) == "#12 T"


def test_every_chunk_has_the_header_and_fits() -> None:
    body = "\n\n".join(f"Paragraph {i} " + "word " * 40 for i in range(8))
    chunks = chunk_document("#7 Long issue", "#7 Long issue\nProject: grp/app\n\n" + body, "grp/app", PLAN)
    assert len(chunks) > 3
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for chunk in chunks:
        header, _, text = chunk.text.partition("\n")
        assert header == "grp/app#7 Long issue"
        assert len(text) <= PLAN.max_chars
    assert chunks[0].text.count("Long issue") == 1, "the content's title line is replaced by the header"


def test_neighbours_overlap_and_nothing_is_lost() -> None:
    words = [f"w{i}" for i in range(400)]
    pieces = split_body(" ".join(words), PLAN)
    assert len(pieces) > 2 and all(len(p) <= PLAN.max_chars for p in pieces)
    for before, after in itertools.pairwise(pieces):
        assert before.split()[-1] in after.split()[:12], "the next chunk repeats the end of the previous"
    seen = {w for p in pieces for w in p.split()}
    assert seen == set(words)


def test_breaks_before_headings_and_keeps_code_fences_whole() -> None:
    code = "```\n" + "\n".join(f"line {i}" for i in range(6)) + "\n```"
    body = "Intro " * 20 + "\n\n## Details\n\nMore text here.\n\n" + code + "\n\n## Other\n\nEnd."
    pieces = split_body(body, PLAN)
    assert any(p.startswith("## Details") for p in pieces)
    assert any(code in p for p in pieces), "a fenced block that fits stays in one chunk"
    assert all(len(p) <= PLAN.max_chars for p in pieces)


def test_empty_body_is_one_header_only_chunk_and_hashes_are_stable() -> None:
    first = chunk_document("#1 Empty", "#1 Empty", "g/p", PLAN)
    again = chunk_document("#1 Empty", "#1 Empty", "g/p", PLAN)
    assert [c.text for c in first] == ["g/p#1 Empty"]
    assert first[0].hash == again[0].hash and len(first[0].hash) == 64
    other_plan = ChunkPlan(max_chars=400, overlap_chars=40)
    assert other_plan.key != PLAN.key, "chunking settings are part of what vectors are keyed by"


def test_long_unbroken_text_is_cut_hard() -> None:
    pieces = split_body("x" * 1000, PLAN)
    assert all(len(p) <= PLAN.max_chars for p in pieces)
    assert "".join(p.replace("\n", "") for p in pieces).count("x") >= 1000
