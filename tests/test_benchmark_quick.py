"""benchmarks/: the data helpers and classifiers (fast); classify.py's quick mode end to end and
the bundled demo set against Fashion-MNIST (slow)."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch


def test_ratio_counts_span_the_requested_imbalance():
    from benchmarks.imbalanced_data import ratio_counts

    counts = ratio_counts(4000, 400)
    assert counts[0] == 4000 and counts[-1] == 10
    assert list(counts) == sorted(counts, reverse=True)


def test_digits_keep_the_papers_imbalance_ratio_in_a_fixed_split():
    from benchmarks import classify_batches as cb
    from benchmarks import imbalanced_data as data

    train_counts, test_counts = data.PAPER_COUNTS["digits"]
    assert train_counts[0] / train_counts[-1] == 100 == 4000 / 40  # Table I's ratio
    train, test = data.digits(True), data.digits(False)
    y_train, y_test = data.labels_of(train), data.labels_of(test)
    assert len(train) + len(test) == 1797
    # Every class can give the largest count, and the split is the same every time.
    assert np.bincount(y_train).min() >= train_counts[0]
    assert (data.labels_of(data.digits(False)) == y_test).all()
    x, y = train[0]
    assert x.shape == (1, 8, 8) and x.dtype == torch.float32 and 0 <= float(x.min())
    assert float(x.max()) <= 1 and isinstance(y, int)
    # A one-pixel crop for 8x8 images, no flip (a mirrored digit is another digit).
    augment = cb.make_augment("crop", 8, seed=0)
    assert augment.pad == 1 and not augment.flip


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
        "--save-model",
    ]
    assert classify.main(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    # --save-model: each run's classifier beside results.json, named in its record.
    for rec in result["records"]:
        assert rec["model_file"] == classify.model_file(rec["method"], 0, 0)
        assert (tmp_path / "out" / rec["model_file"]).is_file()
    methods = {r["method"] for r in result["records"]}
    assert methods == set(classify.cm.METHODS)
    for rec in result["records"]:
        assert rec["seed"] == 0 and rec["parameters"] > 0 and rec["seconds"] > 0
        assert set(rec["scores"]) == {"imbalanced", "balanced"}
        for scores in rec["scores"].values():
            assert all(0 <= scores[m] <= 100 for m in ("acsa", "gm", "f1"))
            # ACSA is the mean of the ten per-class recalls.
            assert len(scores["recall"]) == 10 and all(0 <= r <= 100 for r in scores["recall"])
            assert scores["acsa"] == pytest.approx(sum(scores["recall"]) / 10)
        # Three steps, one loss read every 100: one finite point of the curve.
        (loss,) = rec["loss_curve"]
        assert math.isfinite(loss) and loss > 0
        assert 0 <= rec["train_fit"]["acsa"] <= 100 and rec["train_fit"]["ce"] > 0
    by_method = {r["method"]: r for r in result["records"]}
    # The same seed, batches and classifier; the loss told the prior changes the training.
    assert by_method["logit_adj"]["final_loss"] != by_method["none"]["final_loss"]
    # The balanced rows fill every class up to the largest of the subset's counts.
    counts = result["config"]["train_counts"]
    assert len(counts) == 10 and counts == sorted(counts, reverse=True)
    for method in ("ros", "smote", "deepsmote"):
        assert by_method[method]["n_train"] == 10 * counts[0]
    assert by_method["deepsmote"]["n_synthetic"] == 10 * counts[0] - sum(counts)
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


def test_a_saved_classifier_loads_back_with_the_same_outputs_and_stays_small(tmp_path):
    from benchmarks import classify
    from benchmarks import classify_methods as cm

    torch.manual_seed(0)
    model = cm.make_classifier("cnn-fc", 1, 10)
    path = tmp_path / classify.model_file("cmo_la", 1, 3)
    assert path.name == "cmo_la-d1-s3.pt"
    cm.save_classifier(model, path)
    loaded = cm.load_classifier(path, "cnn-fc", 1, 10)
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        assert torch.equal(loaded(x), model.eval()(x))
    assert not loaded.training
    assert path.stat().st_size < 2_000_000  # small enough to commit beside results.json
    with pytest.raises(RuntimeError, match="size mismatch"):
        cm.load_classifier(path, "cnn-fc", 1, 5)  # another head: refused, not half-loaded


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


ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = (
    "ae_budget",
    "bench_speed",
    "classify",
    "classify_report",
    "distributed",
    "memory",
    "serving_cost",
    "synthetic_quality",
    "variety",
)


def test_every_benchmark_script_runs_as_a_module_of_the_package():
    # ``python -m benchmarks.<name> --help`` from the repository root, each script in turn
    # in one interpreter (runpy does what -m does): its imports resolve as a package, with
    # no sys.path edit, and its command line parses.
    code = (
        "import runpy, sys\n"
        f"for name in {SCRIPTS!r}:\n"
        "    sys.argv = ['benchmarks.' + name, '--help']\n"
        "    try:\n"
        "        runpy.run_module('benchmarks.' + name, run_name='__main__', alter_sys=True)\n"
        "    except SystemExit as done:\n"
        "        assert done.code in (0, None), (name, done.code)\n"
        "    print('ran', name)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.count("usage: ") == len(SCRIPTS)
    assert [line for line in out.stdout.splitlines() if line.startswith("ran ")] == [
        f"ran {name}" for name in SCRIPTS
    ]
    for path in (ROOT / "benchmarks").rglob("*.py"):
        assert "sys.path" not in path.read_text(), path


def _benchmark_imports(path: Path) -> set[str]:
    """The ``benchmarks`` modules ``path`` imports, anywhere in it (functions included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "benchmarks":
                names |= {f"benchmarks.{alias.name}" for alias in node.names}
            elif node.module.startswith("benchmarks."):
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("benchmarks.")}
    return names


def test_the_benchmark_modules_import_one_way():
    modules = {
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
        for p in (ROOT / "benchmarks").rglob("*.py")
    }
    edges = {name: _benchmark_imports(path) & set(modules) for name, path in modules.items()}
    assert "benchmarks.classify_batches" in edges["benchmarks.classify_deepsmote"]
    assert "benchmarks.classify_methods" not in edges["benchmarks.classify_deepsmote"]
    # Depth-first search for a path back to where it started.
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, f"import cycle: {' -> '.join(path + (name,))}"
        if name not in done:
            for child in sorted(edges[name]):
                visit(child, path + (name,))
            done.add(name)

    for name in sorted(modules):
        visit(name, ())
