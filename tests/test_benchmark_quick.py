"""benchmarks/classify.py: the RESULTS.md writer (fast) and its quick mode end to end (slow)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))


def test_ratio_counts_span_the_requested_imbalance():
    from imbalanced_data import ratio_counts

    counts = ratio_counts(4000, 400)
    assert counts[0] == 4000 and counts[-1] == 10
    assert list(counts) == sorted(counts, reverse=True)


def _fashion_mnist_available() -> bool:
    from fashion_mnist import find_root

    try:
        find_root(None)
    except FileNotFoundError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _fashion_mnist_available(), reason="Fashion-MNIST IDX files not found")
def test_quick_mode_runs_every_method_and_writes_results(tmp_path):
    import classify

    md = tmp_path / "RESULTS.md"
    argv = ["--quick", "--count-scale", "0.02", "--steps", "3", "--seeds", "1",
            "--sweep-ratios", "20", "--out", str(tmp_path / "out"), "--work",
            str(tmp_path / "work"), "--results-md", str(md)]
    assert classify.main(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    methods = {r["method"] for r in result["records"]}
    assert methods == set(classify.cm.METHODS)
    for rec in result["records"]:
        assert set(rec["scores"]) == {"imbalanced", "balanced"}
        for scores in rec["scores"].values():
            assert all(0 <= scores[m] <= 100 for m in ("acsa", "gm", "f1"))
    assert {r["method"] for r in result["sweep"]} == {"none", "smote", "deepsmote"}
    assert all(Path(f).exists() for f in result["figures"]) and len(result["figures"]) == 2
    text = md.read_text()
    assert "## Classification (issue 5)" in text and "| deepsmote |" in text
    # A second run reuses the cached autoencoder instead of training it again.
    assert classify.main(argv + ["--methods", "deepsmote", "--no-figures"]) == 0


@pytest.mark.parametrize("kind", ["cnn", "mlp", "resnet18-w8"])
def test_cpu_classifiers_give_one_logit_per_class(kind):
    import classify_methods as cm

    for channels, side in ((1, 28), (3, 32)):
        model = cm.make_classifier(kind, channels, 10, side)
        assert model(torch.rand(4, channels, side, side)).shape == (4, 10)


def test_narrow_resnet18_keeps_resnet18_layout():
    import classify_methods as cm
    from torchvision.models.resnet import BasicBlock

    net = cm.make_classifier("resnet18-w8", 1, 10)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    assert [b.conv2.out_channels for b in blocks] == [8, 8, 16, 16, 32, 32, 64, 64]
