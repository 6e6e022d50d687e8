"""Check the built documentation site as a reader meets it.

    python .ci/check_site.py SITE_DIR

``mkdocs build --strict`` catches broken Markdown links and docstring warnings; this reads the
HTML it wrote and fails (exit status 1, one line per problem) on what still reaches a reader:

- a Sphinx role printed literally (``:class:`X```, ``:meth:``...): mkdocstrings renders
  Markdown, where a cross-reference is ``[X][torch_deepsmote.X]``;
- a doctest turned into quotes: ``>>>`` read as Markdown is three nested blockquotes (an
  ``Example:`` section that griffe took for an admonition), or ``# doctest:`` flags shown;
- a public name missing from the API reference: every name in ``torch_deepsmote.__all__``,
  and every ``torch_deepsmote.x.y`` the guides name in code;
- a broken internal link or anchor (``href`` and ``src`` relative to the page);
- a line of a code block wider than the content column (about 80 monospace characters at
  Material's font and width; the limit leaves a margin).
"""

from __future__ import annotations

import html
import os
import re
import sys
import zlib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

CODE_WIDTH = 78  # characters of a code line that fit Material's content column
ROLE = re.compile(r":(?:py:)?(?:class|meth|func|mod|attr|data|exc|obj|ref):`?")
DOTTED = re.compile(r"\btorch_deepsmote(?:\.\w+)+")


class _Page(HTMLParser):
    """What one HTML page holds: text outside code, code blocks, links, ids, quote depth."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.text: list[str] = []  # prose, outside <code> and <pre>
        self.code: list[str] = []  # inline code spans
        self.blocks: list[str] = []  # <pre> blocks
        self.links: list[str] = []
        self.ids: set[str] = set()
        self.nested_quotes = 0
        self._quote = self._pre = self._code = 0
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(found["id"])
        if tag == "a" and found.get("name"):
            self.ids.add(found["name"])
        for key in ("href", "src"):
            if tag in ("a", "img") and found.get(key):
                self.links.append(found[key])
        if tag == "blockquote":
            self._quote += 1
            self.nested_quotes += self._quote >= 2
        elif tag == "pre":
            self._pre += 1
            self._buffer = []
        elif tag == "code":
            self._code += 1
            if not self._pre:
                self._buffer = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "blockquote":
            self._quote -= 1
        elif tag == "pre":
            self._pre -= 1
            self.blocks.append("".join(self._buffer))
        elif tag == "code":
            self._code -= 1
            if not self._pre:
                self.code.append("".join(self._buffer))

    def handle_data(self, data: str) -> None:
        if self._pre or self._code:
            self._buffer.append(data)
        else:
            self.text.append(data)


def _inventory(site: Path) -> set[str]:
    """The object names of mkdocstrings' ``objects.inv`` (Sphinx's inventory format)."""
    raw = (site / "objects.inv").read_bytes()
    body = zlib.decompress(raw.split(b"\n", 4)[4]).decode()
    return {line.split(" ", 1)[0] for line in body.splitlines() if line}


def _target(page: Path, site: Path, link: str) -> tuple[Path, str] | None:
    """The file and fragment an internal ``link`` of ``page`` points to; ``None`` for links
    that leave the site."""
    parts = urlsplit(link)
    if parts.scheme or parts.netloc or link.startswith(("mailto:", "data:")):
        return None
    if not parts.path:
        path = page
    elif parts.path.startswith("/"):  # from the site's root (a site served at /)
        path = site / unquote(parts.path).lstrip("/")
    else:
        path = (page.parent / unquote(parts.path)).resolve()
    if path.is_dir() or parts.path.endswith("/"):
        path = path / "index.html"
    return path, unquote(parts.fragment)


def check(site: Path) -> list[str]:
    """Every problem found in the built ``site``, one line each (empty: none)."""
    import torch_deepsmote

    site = site.resolve()
    pages = {path: _Page() for path in sorted(site.rglob("*.html"))}
    for path, parsed in pages.items():
        parsed.feed(path.read_text(encoding="utf-8"))
    problems = []
    named: dict[str, str] = {}
    for path, page in pages.items():
        where = str(path.relative_to(site))
        prose = html.unescape("".join(page.text))
        for match in ROLE.finditer(prose):
            context = prose[max(0, match.start() - 30) : match.end() + 40].replace("\n", " ")
            problems.append(f"{where}: a literal Sphinx role: ...{context}...")
        if ">>>" in prose or "# doctest:" in prose:
            problems.append(f"{where}: a doctest shown as text ('>>>' or '# doctest:')")
        if page.nested_quotes:
            problems.append(
                f"{where}: {page.nested_quotes} blockquote(s) inside a blockquote: a doctest "
                "read as Markdown quotes (write 'Examples:' in the docstring)"
            )
        for block in page.blocks:
            for line in block.splitlines():
                if len(line) > CODE_WIDTH:
                    problems.append(
                        f"{where}: a code line of {len(line)} characters (at most "
                        f"{CODE_WIDTH} fit the column): {line.strip()[:60]}..."
                    )
        if not where.startswith("api/"):  # what the guides send readers to look up
            for span in page.code:
                for name in DOTTED.findall(span):
                    named.setdefault(name, where)
        for link in page.links:
            target = _target(path, site, link)
            if target is None:
                continue
            file, fragment = target
            if not file.exists():
                missing = os.path.relpath(file, site)
                problems.append(f"{where}: a broken link {link!r} (no {missing})")
            elif fragment and file in pages and fragment not in pages[file].ids:
                problems.append(f"{where}: a broken anchor {link!r} (no id {fragment!r})")
    inventory = _inventory(site)
    public = {
        f"torch_deepsmote.{name}": "torch_deepsmote.__all__" for name in torch_deepsmote.__all__
    }
    for name, where in {**named, **public}.items():
        # A name the pages write in code: itself, or the module it is an attribute of
        # (``torch_deepsmote.app.plots``, ``model.fitted_``), must be in the reference.
        if name in inventory or (name not in public and name.rsplit(".", 1)[0] in inventory):
            continue
        problems.append(f"{where}: {name} is not in the API reference")
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    site = Path(argv[0])
    if not (site / "objects.inv").exists():
        print(
            f"{site} is not a built site (no objects.inv): run mkdocs build first", file=sys.stderr
        )
        return 2
    problems = check(site)
    for problem in problems:
        print(problem)
    pages = len(list(site.rglob("*.html")))
    print(f"checked {pages} pages of {site}: {len(problems)} problem(s)", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
