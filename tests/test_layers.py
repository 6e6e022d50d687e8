"""The README's layout table holds: every module has a layer, and imports point down.

Imports inside functions count: an import placed in a function to dodge a cycle is a cycle.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import torch_deepsmote

ROOT = Path(torch_deepsmote.__file__).parent
README = ROOT.parent / "README.md"


def _table() -> dict[str, int]:
    """``{path or folder/: layer}`` from the README's layout table."""
    text = README.read_text().split("## Layout", 1)[1]
    rows = re.findall(r"^\| `([^`]+)` \| (\d+) [^|]*\|", text, flags=re.M)
    return {path: int(layer) for path, layer in rows}


def _layer_of(module: Path, table: dict[str, int]) -> int | None:
    relative = module.relative_to(ROOT).as_posix()
    if relative in table:
        return table[relative]
    folder = relative.split("/")[0] + "/"
    return table.get(folder)


def _module_path(dotted: str) -> Path | None:
    parts = dotted.split(".")[1:]
    for candidate in (
        ROOT.joinpath(*parts).with_suffix(".py"),
        ROOT.joinpath(*parts, "__init__.py"),
    ):
        if candidate.exists():
            return candidate
    return None


def _imports(path: Path) -> set[Path]:
    """The package modules ``path`` imports, anywhere in it."""
    package = ".".join(("torch_deepsmote", *path.relative_to(ROOT).parent.parts))
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names if a.name.startswith("torch_deepsmote")]
                found.update(p for p in map(_module_path, targets) if p)
            continue
        if node.level:
            base = package.split(".")[: len(package.split(".")) - node.level + 1]
            module = ".".join(base + ([node.module] if node.module else []))
        elif (node.module or "").startswith("torch_deepsmote"):
            module = node.module
        else:
            continue
        submodules = [_module_path(f"{module}.{a.name}") for a in node.names]
        if node.module is None and all(submodules):
            found.update(submodules)
        else:
            found.add(_module_path(module))
    found.discard(None)
    return found


def test_every_module_has_a_layer_in_the_readme():
    table = _table()
    missing = [
        str(path.relative_to(ROOT)) for path in ROOT.rglob("*.py") if _layer_of(path, table) is None
    ]
    assert missing == []


def test_no_module_imports_a_module_of_a_higher_layer():
    table = _table()
    upward = []
    for path in ROOT.rglob("*.py"):
        own = _layer_of(path, table)
        for target in _imports(path):
            if target.parent == path.parent and target.name == "__init__.py":
                continue  # a subpackage's own __init__ (storage's imports nothing)
            theirs = _layer_of(target, table)
            if theirs is not None and theirs > own:
                upward.append(
                    f"{path.relative_to(ROOT)} ({own}) -> {target.relative_to(ROOT)} ({theirs})"
                )
    assert upward == []
