"""The one writer of benchmarks/RESULTS.md: replace one ``## `` section, keep the rest."""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["write_section"]


def write_section(path: str | Path, section: str) -> None:
    """Replace the section of ``path`` that ``section`` is, or append it.

    A section runs from its ``## `` heading line to the next ``## `` heading (``### ``
    subsections belong to it) or the end of the file. Only the first section with the same
    heading is replaced; the text around it is kept byte for byte, and the file ends with one
    newline. A missing file is created with the title ``# Benchmarks``.

    Args:
        path: The markdown file.
        section: The new section, starting with its ``## `` heading line.

    Raises:
        ValueError: ``section`` does not start with a ``## `` heading.

    Example:
        >>> import tempfile
        >>> md = Path(tempfile.mkdtemp()) / "RESULTS.md"
        >>> md.write_text("# Benchmarks\\n\\n## A\\n\\nold\\n\\n## B\\n\\nkeep\\n")
        36
        >>> write_section(md, "## A\\n\\nnew\\n")
        >>> md.read_text()
        '# Benchmarks\\n\\n## A\\n\\nnew\\n\\n## B\\n\\nkeep\\n'
    """
    heading = section.split("\n", 1)[0]
    if not heading.startswith("## "):
        raise ValueError(
            f"`section` should start with a '## ' heading line, but got {heading[:60]!r}."
        )
    path = Path(path)
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    body = section.rstrip() + "\n\n"
    pattern = re.compile(rf"^{re.escape(heading)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: body, text, count=1)
    else:
        text = text.rstrip() + "\n\n" + body
    path.write_text(text.rstrip() + "\n")
