"""The README and the documentation: what their commands install, and the docstrings the
API reference renders (the built site itself is checked by ``.ci/check_site.py``)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _first_command(markdown: Path) -> str:
    """The first line of the first ``bash`` block of ``markdown``."""
    block = re.search(r"```bash\n(.*?)```", markdown.read_text(), re.S)
    return block[1].splitlines()[0]


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
