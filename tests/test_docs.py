"""The README and the documentation: what their commands install, and the docstrings the
API reference renders (the built site itself is checked by ``.ci/check_site.py``)."""

import ast
import importlib.util
import re
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _first_command(markdown: Path) -> str:
    """The first ``pip install`` command of a ``bash`` block of ``markdown`` (its lines
    ending in a backslash joined, runs of spaces as one)."""
    block = re.search(r"```bash\n(pip install .*?)```", markdown.read_text(), re.S)
    command = re.match(r"(?:.*\\\n)*.*", block[1])[0]
    return " ".join(command.replace("\\\n", " ").split())


def _extras(command: str) -> list[str]:
    found = re.search(r'-e "\.\[([^\]]*)\]"', command)
    assert found, f"no editable install with extras in {command!r}"
    return found[1].split(",")


def test_the_readme_first_command_installs_what_the_demo_draws_its_figures_with():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    command = _first_command(ROOT / "README.md")
    assert command.endswith("&& torch-deepsmote demo"), command
    optional = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    installed = [req for extra in _extras(command) for req in optional[extra]]
    assert any(req.startswith("matplotlib") for req in installed), installed
    assert any(req.startswith("faiss-cpu") for req in installed), installed
    # The getting-started page shows the very same command.
    assert _first_command(ROOT / "docs" / "index.md") == command


def test_the_install_docs_give_cpu_only_machines_the_cpu_wheels():
    text = (ROOT / "docs" / "install.md").read_text()
    assert "--index-url https://download.pytorch.org/whl/cpu" in text
    assert "--index-url https://download.pytorch.org/whl/cpu" in (ROOT / "README.md").read_text()
    # The page starts from the checkout the package is installed from, not from PyPI.
    assert 'pip install "torch-deepsmote' not in text


def _code_lines(markdown: Path) -> list[tuple[int, str]]:
    """(line number, line) of every line inside a fenced code block of ``markdown``."""
    lines, fenced = [], False
    for number, line in enumerate(markdown.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced:
            lines.append((number, line.rstrip()))
    return lines


@pytest.mark.parametrize(
    "pattern, width",
    # The site's content column holds about 80 monospace characters (check_site.py's
    # CODE_WIDTH); a forge's README column about 100.
    [("docs/**/*.md", 78), ("README.md", 88)],
)
def test_code_blocks_fit_the_column_they_are_read_in(pattern, width):
    wide = [
        f"{path.relative_to(ROOT)}:{number}: {len(line)} characters"
        for path in sorted(ROOT.glob(pattern))
        for number, line in _code_lines(path)
        if len(line) > width
    ]
    assert not wide, wide


def _check_site():
    """``.ci/check_site.py`` as a module (``.ci`` is not a package)."""
    spec = importlib.util.spec_from_file_location("check_site", ROOT / ".ci" / "check_site.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _site(root: Path, body: str, names: list[str]) -> Path:
    """A built site of one page holding ``body``, whose reference renders ``names``."""
    rows = "".join(f"torch_deepsmote.{n} py:class 1 api/#$ -\n" for n in names)
    root.mkdir()
    (root / "objects.inv").write_bytes(
        b"# Sphinx inventory version 2\n# Project: x\n# Version: 0\n# zlib below\n"
        + zlib.compress(rows.encode())
    )
    (root / "api").mkdir()
    (root / "api" / "index.html").write_text('<html><body><h2 id="top">API</h2></body></html>')
    (root / "index.html").write_text(f"<html><body>{body}</body></html>")
    return root


def test_the_site_check_finds_what_a_reader_would_trip_over(tmp_path):
    import torch_deepsmote

    check = _check_site().check
    clean = '<p>See <a href="api/#top">the API</a>.</p><pre><code>short = 1\n</code></pre>'
    everything = list(torch_deepsmote.__all__)
    assert check(_site(tmp_path / "clean", clean, everything)) == []
    bad = (
        "<p>Returns the :class:<code>~torch_deepsmote.fitting.FittedDeepSMOTE</code>.</p>"
        "<blockquote><blockquote><blockquote><p>model.fit(X, y)</p></blockquote>"
        "</blockquote></blockquote>"
        '<a href="guide/missing.md">a guide</a> <a href="api/#nowhere">an anchor</a>'
        f"<pre><code>{'x' * 79}\n</code></pre><p><code>torch_deepsmote.quality.assess</code></p>"
    )
    problems = "\n".join(check(_site(tmp_path / "bad", bad, everything[1:])))
    assert "a literal Sphinx role" in problems and "FittedDeepSMOTE" in problems
    assert "blockquote(s) inside a blockquote" in problems
    assert "a broken link 'guide/missing.md'" in problems
    assert "a broken anchor 'api/#nowhere'" in problems
    assert "a code line of 79 characters" in problems
    assert f"torch_deepsmote.{everything[0]} is not in the API reference" in problems
    assert "torch_deepsmote.quality.assess is not in the API reference" in problems


def _docstrings(path: Path) -> list[tuple[int, str]]:
    """(first line, text) of every docstring of the module at ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            text = ast.get_docstring(node, clean=False)
            if text is not None:
                found.append((node.body[0].lineno, text))
    return found


PACKAGE = sorted((ROOT / "torch_deepsmote").rglob("*.py"))


def test_docstrings_use_markdown_cross_references_not_sphinx_roles():
    # mkdocstrings renders Markdown: `:class:`X`` prints literally; [`X`][torch_deepsmote.x.X]
    # links where the reference renders X, ``X`` elsewhere.
    roles = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj):`")
    found = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in PACKAGE
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if roles.search(line)
    ]
    assert not found, found


def test_docstring_sections_are_ones_the_reference_renders():
    # griffe's Google parser knows "Examples:" (rendered as code) and takes "Example:" for
    # an admonition, where its doctest lines become nested quotes; "Note:" is a section (an
    # admonition), "NOTE:" at a paragraph's start only plain text.
    wrong = re.compile(r"^\s*(?:Example:\s*$|NOTE: )", re.M)
    found = [
        f"{path.relative_to(ROOT)}:{start}: {match.group().strip()}"
        for path in PACKAGE
        for start, text in _docstrings(path)
        for match in wrong.finditer(text)
    ]
    assert not found, found
