"""No module imports another module's private helpers: what two modules share is public in
one of them (the samplers' helpers in ``samplers/_common.py``, the seeding rules in
``_seeding.py``, the k-NN table check in ``knn``)."""

from __future__ import annotations

import ast
from pathlib import Path

import torch_deepsmote

ROOT = Path(torch_deepsmote.__file__).parent


def _private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ImportFrom):
            continue
        if not (node.level or (node.module or "").startswith("torch_deepsmote")):
            continue
        for alias in node.names:
            name = alias.name
            module = ROOT.joinpath(*(node.module or "").split("."))
            is_module = module.joinpath(name + ".py").exists() or (module / name).is_dir()
            if name.startswith("_") and not name.startswith("__") and not is_module:
                found.append(f"{path.relative_to(ROOT)}: {node.module}.{name}")
    return found


def test_no_module_imports_a_private_name_of_another():
    found = [hit for path in sorted(ROOT.rglob("*.py")) for hit in _private_imports(path)]
    assert found == []


def test_the_samplers_live_together_and_the_seeding_rules_beside_make_generator():
    from torch_deepsmote import (
        ClassBalancedBatchSampler,
        ClassPriorSampler,
        DeepSMOTESampler,
        MinoritySampler,
        _seeding,
        _validation,
    )

    for sampler in (
        DeepSMOTESampler,
        ClassBalancedBatchSampler,
        ClassPriorSampler,
        MinoritySampler,
    ):
        assert sampler.__module__.startswith("torch_deepsmote.samplers."), sampler
    assert not hasattr(_validation, "make_generator")
    assert {"make_generator", "epoch_generator", "mixed_seed", "fan_out"} <= set(_seeding.__all__)
    assert not (ROOT / "sampler.py").exists() and not (ROOT / "prior_sampler.py").exists()
