"""bench/report.py regenerates docs/performance.md and keeps the hand-written notes."""

from __future__ import annotations

import pytest

from bench import report


def test_regeneration_keeps_hand_written_notes_in_place(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    (out / "search.md").write_text("## 1:N search\n\nnew figures\n")
    (out / "search.json").write_text('{"scale": 1.0}')
    doc = tmp_path / "performance.md"
    doc.write_text(
        "# Performance\n\nold intro\n"
        "<!-- notes after=intro -->\nwhat a run outside make bench found\n<!-- /notes -->\n"
        "## 1:N search\n\nold figures\n"
        "<!-- notes after=search -->\n## float16, measured by hand\n<!-- /notes -->\n"
    )
    monkeypatch.setattr(report, "OUT", out)
    monkeypatch.setattr(report, "DOC", doc)

    assert report.main() == 0

    text = doc.read_text()
    assert "old figures" not in text
    assert "new figures" in text
    intro_note = text.index("what a run outside make bench found")
    assert text.index(report.INTRO.splitlines()[0]) < intro_note < text.index("## Machine")
    assert text.index("new figures") < text.index("## float16, measured by hand")
    assert text.index("## float16, measured by hand") < text.index("## embedding")
    # A second regeneration neither loses nor doubles them.
    report.main()
    assert doc.read_text().count("## float16, measured by hand") == 1


def test_a_part_not_run_this_time_keeps_its_figures(tmp_path, monkeypatch):
    out = tmp_path / "out"
    out.mkdir()
    doc = tmp_path / "performance.md"
    doc.write_text(
        "# Performance\n<!-- part search -->\n## 1:N search\n\nearlier figures\n<!-- /part -->\n"
    )
    (out / "embedding.md").write_text("## Photo to embeddings\n\nthis run\n")
    (out / "embedding.json").write_text('{"scale": 1.0}')
    monkeypatch.setattr(report, "OUT", out)
    monkeypatch.setattr(report, "DOC", doc)

    report.main()

    text = doc.read_text()
    assert "earlier figures" in text  # search did not run: its block stays
    assert "this run" in text
    assert text.index("earlier figures") < text.index("this run")  # in the parts' order


def test_a_note_for_an_unknown_part_is_refused_rather_than_dropped():
    with pytest.raises(ValueError, match="after=nowhere"):
        report.kept_notes("<!-- notes after=nowhere -->\nx\n<!-- /notes -->\n")
