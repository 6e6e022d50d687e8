"""benchmarks/: the data helpers and classifiers (fast); classify.py's quick mode end to end and
the bundled demo set against Fashion-MNIST (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


def test_ratio_counts_span_the_requested_imbalance():
    from benchmarks.imbalanced_data import ratio_counts

    counts = ratio_counts(4000, 400)
    assert counts[0] == 4000 and counts[-1] == 10
    assert list(counts) == sorted(counts, reverse=True)


def _fashion_mnist_or_skip(root=None):
    """The local Fashion-MNIST training split (unpacked into ``root``), or a skip: the
    slow tests read it but never download it."""
    from torch_deepsmote.data import fashion_mnist

    try:
        return fashion_mnist(root)
    except FileNotFoundError as error:
        pytest.skip(str(error))


def _cache_files(work: Path) -> dict:
    """Each autoencoder cache file under ``work`` with what a rewrite would change."""
    return {
        str(f): (f.stat().st_ino, f.stat().st_mtime_ns, f.stat().st_size)
        for f in sorted(work.glob("autoencoders/*/*.h5"))
    }


@pytest.mark.slow
def test_quick_mode_runs_every_method_and_writes_results(tmp_path):
    from benchmarks import classify

    _fashion_mnist_or_skip(tmp_path / "work" / "torchvision")  # where classify.py reads it
    md = tmp_path / "RESULTS.md"
    argv = "--quick --count-scale 0.02 --steps 3 --seeds 1 --sweep-ratios 20".split() + [
        "--out",
        str(tmp_path / "out"),
        "--work",
        str(tmp_path / "work"),
        "--results-md",
        str(md),
    ]
    assert classify.main(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    methods = {r["method"] for r in result["records"]}
    assert methods == set(classify.cm.METHODS)
    for rec in result["records"]:
        assert set(rec["scores"]) == {"imbalanced", "balanced"}
        for scores in rec["scores"].values():
            assert all(0 <= scores[m] <= 100 for m in ("acsa", "gm", "f1"))
    sweep_methods = set(classify.parse_args(argv).sweep_methods.split(","))
    assert {r["method"] for r in result["sweep"]} == sweep_methods
    assert all(Path(f).exists() for f in result["figures"])
    assert sorted(Path(f).name for f in result["figures"]) == [
        "fashion-mnist_ratio_sweep.png",
        "fashion-mnist_real_vs_synthetic.png",
        "fashion-mnist_real_vs_synthetic_residual.png",
    ]
    text = md.read_text()
    assert "## Does it make my classifier better, and when?" in text and "| deepsmote |" in text
    # A second run reuses the cached autoencoders instead of training them again: it writes
    # no cache file (same inode, mtime and size) and makes no new one.
    cached = _cache_files(tmp_path / "work")
    assert len(cached) == 2  # the Table I subset and the ratio-20 sweep
    assert classify.main(argv + ["--methods", "deepsmote", "--no-figures"]) == 0
    assert _cache_files(tmp_path / "work") == cached
    again = json.loads((tmp_path / "out" / "results.json").read_text())
    assert again["autoencoder"]["cache_dir"] == result["autoencoder"]["cache_dir"]
    assert {r["method"] for r in again["records"]} == {"deepsmote"}


@pytest.mark.slow
def test_make_demo_data_reproduces_the_bundled_set():
    from benchmarks.make_demo_data import demo_subset
    from torch_deepsmote.data import load_fashion_mnist_imbalanced

    _fashion_mnist_or_skip()
    images, labels = demo_subset()
    bundled_images, bundled_labels = load_fashion_mnist_imbalanced()
    assert images.dtype == bundled_images.dtype and (images == bundled_images).all()
    assert (labels == bundled_labels).all()


@pytest.mark.parametrize("kind", ["cnn", "mlp", "resnet18-w8"])
def test_cpu_classifiers_give_one_logit_per_class(kind):
    from benchmarks import classify_methods as cm

    torch.manual_seed(0)
    for channels, side in ((1, 28), (3, 32)):
        model = cm.make_classifier(kind, channels, 10, side)
        x, y = torch.rand(8, channels, side, side), torch.arange(8) % 10
        logits = model(x)
        assert logits.shape == (8, 10) and bool(torch.isfinite(logits).all())
        assert not torch.allclose(logits[0], logits[1])  # the output depends on the input
        # A few steps on one batch lower its loss, and every parameter gets a gradient.
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
        losses = []
        for _ in range(5):
            loss = torch.nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            losses.append(float(loss.detach()))
            if len(losses) == 1:
                assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
            optimizer.step()
        assert losses[-1] < losses[0]


def test_narrow_resnet18_keeps_resnet18_layout():
    from torchvision.models.resnet import BasicBlock

    from benchmarks import classify_methods as cm

    net = cm.make_classifier("resnet18-w8", 1, 10)
    blocks = [m for m in net.modules() if isinstance(m, BasicBlock)]
    assert [b.conv2.out_channels for b in blocks] == [8, 8, 16, 16, 32, 32, 64, 64]


def test_speed_report_renders_sections_in_order_from_their_saved_keys():
    from benchmarks.speed.report import HEADING, render

    out = {
        "machine": "m",
        "versions": "v",
        "wall_s": 12.3,
        "cache": {
            "n": 60_000,
            "d": 300,
            "whole_class_latents_per_s": 1.5e6,
            "random_256_latents_per_s_workers2": 2.5e5,
        },
        "knn": {
            "table_i": {
                name: {"all classes + plan s": s, "class of 4000 s": s / 2}
                for name, s in (("torch", 0.25), ("scikit-learn", 0.5))
            }
        },
        "errors": {"serve": "RuntimeError('boom')"},
    }
    text = render(out, " --quick --sections cache,knn,serve", "cpu")
    assert text.startswith(HEADING + "\n\nCommand: `flock /tmp/deepsmote-cpu.lock python ")
    assert "benchmarks.bench_speed --quick --sections cache,knn,serve` (12 s)" in text
    assert text.index("### 4. Neighbour search") < text.index("### 5. Cache reads")
    assert "| torch | 0.250 | 2.00x | 0.125 | 2.00x |" in text
    assert "needs FAISS, which this machine lacks: skipped" in text
    assert "1,500,000 latents/s" in text and "250,000 latents/s" in text
    assert text.endswith("Section `serve` failed in this run: `RuntimeError('boom')`.\n")
