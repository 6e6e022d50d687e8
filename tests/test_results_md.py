"""benchmarks/results_md.py: the one writer of a RESULTS.md section."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from benchmarks.results_md import write_section

SECTION = "## Classification (issue 5)"


def test_write_section_replaces_only_its_own_section(tmp_path):
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmarks\n\n## Performance (issue 4)\n\nfast\n\n" + SECTION + "\n\nold\n")
    write_section(md, SECTION + "\n\nnew\n")
    write_section(md, SECTION + "\n\nnewer\n")
    text = md.read_text()
    assert text.count(SECTION) == 1
    assert "## Performance (issue 4)\n\nfast" in text
    assert "newer" in text and "old" not in text and "\nnew\n" not in text


def test_write_section_keeps_a_later_section(tmp_path):
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmarks\n\n" + SECTION + "\n\nold\n\n## Later\n\nkeep\n")
    write_section(md, SECTION + "\n\nnew\n")
    assert md.read_text() == "# Benchmarks\n\n" + SECTION + "\n\nnew\n\n## Later\n\nkeep\n"


def test_write_section_replaces_a_first_section_with_subsections(tmp_path):
    md = tmp_path / "RESULTS.md"
    md.write_text("# Benchmarks\n\n## Speed\n\n### 1. a\n\nold\n\n## Other\n\nkeep\n")
    write_section(md, "## Speed\n\n### 1. a\n\nnew\n")
    assert md.read_text() == "# Benchmarks\n\n## Speed\n\n### 1. a\n\nnew\n\n## Other\n\nkeep\n"


def test_write_section_appends_a_new_section_and_creates_the_file(tmp_path):
    md = tmp_path / "RESULTS.md"
    write_section(md, "## First\n\none\n")
    write_section(md, "## Second\n\ntwo")
    assert md.read_text() == "# Benchmarks\n\n## First\n\none\n\n## Second\n\ntwo\n"


def test_write_section_refuses_text_without_a_section_heading(tmp_path):
    with pytest.raises(ValueError, match="'## ' heading"):
        write_section(tmp_path / "RESULTS.md", "### Not a section\n")


# ---------------------------------------------------------------------- the committed results
RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def test_every_results_folder_that_results_md_cites_exists():
    text = (RESULTS.parent / "RESULTS.md").read_text()
    cited = set(re.findall(r"benchmarks/results/([\w.-]+)", text))
    assert cited, "RESULTS.md should cite the folders of its runs"
    missing = sorted(name for name in cited if not (RESULTS / name).exists())
    assert not missing, f"RESULTS.md cites folders that are not in benchmarks/results: {missing}"


def test_every_figure_of_the_notes_exists():
    text = (RESULTS / "classification_notes.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", text)
    assert figures
    assert [f for f in figures if not (RESULTS / f).is_file()] == []


def test_results_folders_are_named_by_question_not_by_history():
    # Folders say what they answer (plateau-, ceiling-, short-budget-, ...), not which
    # issue or pilot made them; classification_notes.md keeps the history.
    by_history = re.compile(r"(i\d+-|pilot-|headroom-)")
    historical = [p.name for p in RESULTS.iterdir() if by_history.match(p.name)]
    assert historical == []
