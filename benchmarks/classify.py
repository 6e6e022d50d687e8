"""Does the balanced data make a better classifier? The DeepSMOTE paper's protocol, side by side.

    python -m benchmarks.classify --quick                       # a few minutes on 2 CPU cores
    python -m benchmarks.classify --seeds 5                     # CPU: SmallCNN, all methods
    python -m benchmarks.classify --seeds 5 --device cuda       # GPU: ResNet-18, paper budget
    python -m benchmarks.classify --dataset cifar10 --root ~/data --device cuda
    python -m benchmarks.classify --preset i12-cnn --data-seed 0 --out DIR --resume  # issue 12

Protocol (DeepSMOTE, TNNLS 2022, Sec. IV): a training subset with the paper's Table I class
counts, an imbalanced test set (Table I) and a balanced one (equal counts per class), the
metrics ACSA, macro GM and macro F1 from scikit-learn / imbalanced-learn. Every method
trains the same classifier with the same optimiser for the same number of optimiser steps
(``--steps`` batches of ``--batch-size``); methods differ only in the batches they hand it
and, for the logit-adjusted ones, the loss. Every batch of every method, synthetic
images included, gets the same augmentation (``--augment``, default a random crop after
a 2-pixel pad and a horizontal flip). Spread: several classifier seeds on one training
subset; the DeepSMOTE autoencoder is trained once on that subset and reused through
``OversampledDataset(cache_dir=...)``; ``--data-seed`` draws another subset (and so
another autoencoder), and ``python -m benchmarks.classify_report --protocol`` pools the
runs of several.
Writes ``results.json`` (every number, the training-loss curve of every run), the figures,
and with ``--results-md`` the "Does it make my classifier better, and when?" section.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from benchmarks import classify_batches as cb
from benchmarks import classify_methods as cm
from benchmarks import classify_report as report
from benchmarks import imbalanced_data as data
from torch_deepsmote.storage.atomic import write_bytes

QUICK = dict(
    count_scale=0.1,
    steps=60,
    batch_size=64,
    ae_epochs=1,
    ae_lr=2e-4,
    hidden=8,
    latent_dim=32,
    seeds="2",
    sweep_ratios="20,400",
    sweep_seeds=1,
    classifier="auto",
    methods=",".join(cm.METHODS),
    augment="crop-flip",
)
# NOTE: sized for 90 minutes on 2 otherwise idle CPU cores, from timings measured on loaded
# ones (autoencoder width 32: about 3 min per epoch on 9,000 images; SmallCNN about 0.08 s
# per step of 128; decoding about 650 images/s). The Fig. 8 sweep trains one autoencoder
# per ratio, so on a CPU it is a separate run: --sweep-ratios 20,100,400 --seeds 1.
CPU = dict(
    count_scale=1.0,
    steps=500,
    batch_size=128,
    ae_epochs=10,
    ae_lr=1e-3,
    hidden=32,
    latent_dim=None,
    seeds="5",
    sweep_ratios="",
    sweep_seeds=1,
    classifier="auto",
    methods=",".join(cm.METHODS),
    augment="crop-flip",
)
# The settings that define a run, in one list. True: the setting also changes the
# autoencoder, so it is part of the autoencoder cache's key (in this order, which old cache
# folder names depend on); --resume compares every setting listed here.
SETTINGS = {
    "dataset": True,
    "train_counts": True,
    "data_seed": True,
    "hidden": True,
    "latent_dim": True,
    "ae_epochs": True,
    "ae_lr": True,
    "penalty_weight": True,
    "k_neighbors": False,  # the library rebuilds its neighbour table from the cached model
    "la_balance": False,
    "classifier": False,
    "steps": False,
    "batch_size": False,
    "lr": False,
    "augment": False,
    "val_split": True,  # trains on the rest of the subset
}
# NOTE: a setting at the value it had before it joined the cache key is left out of the
# key, so that autoencoders cached before keep their folder names.
_KEY_DEFAULTS = {"ae_lr": 2e-4, "val_split": 0.0}
# Settings added after runs were committed, at the value those runs had: --resume reads a
# results.json without them as made with these.
_ADDED = {"val_split": 0.0}

GPU = dict(
    count_scale=1.0,
    steps=6000,
    batch_size=128,
    ae_epochs=50,
    ae_lr=2e-4,
    hidden=64,
    latent_dim=None,
    seeds="5",
    sweep_ratios="20,50,100,200,400",
    sweep_seeds=3,
    classifier="auto",
    methods=",".join(cm.METHODS),
    augment="crop-flip",
)
# Issue 12's protocol on the CPU: classifiers trained to convergence, every baseline and
# DeepSMOTE row, 5 seeds. Run it once per data seed (--data-seed 0, 1, ...; each trains its
# own autoencoder) into its own --out. The budgets come from the convergence pilot
# (benchmarks/results/plateau-budget, classification_notes.md): with the crop-flip
# augmentation, `none` on cnn-fc scores 78.7 / 83.4 / 85.6 / 86.5 / 86.6 balanced-test ACSA
# at 1k / 2k / 4k / 8k / 16k steps, so 16k only memorises (training CE 0.05 -> 0.009) and
# 8k is the plateau; ResNet-18-w8 gives 78.3 / 83.2 / 85.1 / 86.2 to 8k, and its adjusted
# loss has levelled off from 4k (87.8 -> 88.0); 16k was not run for it (the cost, 26 min).
I12 = {
    "i12-cnn": {**CPU, "classifier": "cnn-fc", "steps": 8000},
    "i12-resnet": {**CPU, "classifier": "resnet18-w8", "steps": 8000},
}
PRESETS = {"quick": QUICK, "cpu": CPU, "gpu": GPU, **I12}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=data.DATASETS)
    p.add_argument("--root", default=None, help="folder with the torchvision dataset (or IDX)")
    p.add_argument("--quick", action="store_true", help="tiny run: a tenth of the counts")
    p.add_argument(
        "--preset",
        default=None,
        choices=sorted(PRESETS),
        help="named defaults (explicit options win); i12-*: issue 12's protocol, classifiers "
        "trained to convergence (see PRESETS); default: 'gpu' on CUDA, else 'cpu'",
    )
    p.add_argument(
        "--seeds", default=None, help="a count N (seeds 0..N-1) or a list: '0,3,7', '3,'"
    )
    p.add_argument("--data-seed", type=int, default=0, help="seed of the subset draws")
    p.add_argument("--device", default="auto", help="'auto', 'cpu', 'cuda', ...")
    p.add_argument(
        "--classifier",
        default=None,
        choices=("auto", *cm.CLASSIFIERS),
        help="auto: resnet18 on CUDA, the small CNN on CPU; cnn-fc: the 0.42 M-parameter "
        "textbook CNN; mlp: a 2-layer MLP on pixels; resnet18-wN: ResNet-18's layout at base "
        "width N (64 in the paper)",
    )
    p.add_argument("--methods", default=None, help="comma-separated; default: every method")
    p.add_argument(
        "--augment",
        default=None,
        choices=cb.AUGMENTATIONS,
        help="augmentation of every training batch, the same for every method (default "
        "crop-flip: random crop after a 2-pixel pad at 28x28, 4 at 32x32, and a horizontal "
        "flip)",
    )
    p.add_argument("--steps", type=int, default=None, help="optimiser steps per classifier")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--ae-epochs", type=int, default=None, help="autoencoder epochs (no early stop)")
    p.add_argument("--hidden", type=int, default=None, help="autoencoder width (paper: 64)")
    p.add_argument("--ae-lr", type=float, default=None, help="autoencoder Adam lr (paper: 2e-4)")
    p.add_argument("--latent-dim", type=int, default=None, help="default: the paper's 300/600")
    p.add_argument("--penalty-weight", type=float, default=1.0)
    p.add_argument("--k-neighbors", type=int, default=5)
    p.add_argument(
        "--la-balance",
        type=float,
        default=0.5,
        help="the *_la methods fill every class up to this share of the largest",
    )
    p.add_argument("--count-scale", type=float, default=None, help="multiply all counts")
    p.add_argument("--sweep-ratios", default=None, help="Fig. 8 ratios; '' skips the sweep")
    p.add_argument("--sweep-seeds", type=int, default=None)
    p.add_argument(
        "--sweep-ae-epochs", type=int, default=None, help="autoencoder epochs per sweep ratio"
    )
    p.add_argument(
        "--sweep-methods",
        default="none,ros,smote,deepsmote,deepsmote_residual",
        help="methods of the sweep (those also in --methods)",
    )
    p.add_argument("--out", default=None, help="folder for results.json and the figures")
    p.add_argument("--work", default=None, help="cache folder (datasets, autoencoders)")
    p.add_argument("--results-md", default=None, help="write the section into this RESULTS.md")
    p.add_argument("--notes", default=None, help="markdown file put at the top of the section")
    p.add_argument(
        "--include-json",
        nargs="*",
        default=[],
        help="earlier results.json files whose tables follow this run's",
    )
    p.add_argument(
        "--val-split",
        type=float,
        default=0.0,
        help="share of each class of the training subset held out (at least one image) as "
        "a validation set, scored instead of the test sets: for choosing settings "
        "without looking at the test set",
    )
    p.add_argument(
        "--save-model",
        action="store_true",
        help="keep each trained classifier's state_dict beside results.json "
        "(METHOD-dDATA_SEED-sSEED.pt; cnn-fc: 1.7 MB), for head refits on its features",
    )
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--no-figures", action="store_true")
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the (method, seed) runs of an earlier results.json in --out",
    )
    args = p.parse_args(argv)
    args.device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    default = "gpu" if args.device.type == "cuda" else "cpu"
    preset = args.preset = args.preset or ("quick" if args.quick else default)
    for key, value in PRESETS[preset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    seeds = [s for s in args.seeds.split(",") if s.strip()]
    args.seeds = [int(s) for s in seeds] if "," in args.seeds else list(range(int(seeds[0])))
    if args.classifier == "auto":
        args.classifier = "resnet18" if args.device.type == "cuda" else "cnn"
    args.methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(args.methods) - set(cm.METHODS + cm.EXTRA_METHODS)
    for method in sorted(unknown):
        if method.startswith(cm.TAU_PREFIX):
            try:
                cm.tau_of(method)
            except ValueError as error:
                p.error(str(error))
            unknown.discard(method)
        elif cm.cd.is_recipe(method):
            try:
                cm.cd.parse(method)
            except ValueError as error:
                p.error(str(error))
            unknown.discard(method)
    if unknown:
        p.error(
            f"unknown methods {sorted(unknown)}; choose from {cm.METHODS + cm.EXTRA_METHODS}, "
            f"{cm.TAU_PREFIX}<T> or a recipe dsp-... (classify_deepsmote.py)"
        )
    if not 0.0 <= args.val_split < 1.0:
        p.error(f"--val-split should be in [0, 1), but got {args.val_split}.")
    args.sweep_ratios = [float(r) for r in args.sweep_ratios.split(",") if r.strip()]
    here = Path(__file__).resolve().parent
    tag = preset if preset in ("quick", *I12) else args.dataset
    args.out = Path(args.out or here / "results" / tag)
    args.work = Path(args.work or os.environ.get("DEEPSMOTE_BENCH_WORK", "/tmp/deepsmote-bench"))
    return args


def validation_split(labels, rows, share: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(training rows, validation rows) of the subset ``rows``: ``round(share * n_c)`` rows
    of each class ``c`` (at least one, and one left to train on) held out, drawn with
    ``seed``; both sorted."""
    rng = np.random.default_rng([seed, 7])
    rows = np.asarray(rows)
    held = []
    for c in np.unique(labels[rows]):
        mine = rows[labels[rows] == c]
        n = min(max(1, round(share * len(mine))), len(mine) - 1)
        held.append(rng.permutation(mine)[:n])
    held_out = np.sort(np.concatenate(held))
    return np.setdiff1d(rows, held_out), held_out


def model_file(method: str, data_seed: int, seed: int) -> str:
    """The file name ``--save-model`` gives a run's classifier in ``--out``."""
    return f"{method}-d{data_seed}-s{seed}.pt"


def settings(args, train_counts) -> dict:
    """The values of :data:`SETTINGS` for a run on a subset with ``train_counts``."""
    values = {k: getattr(args, k) for k in SETTINGS if k != "train_counts"}
    return {**values, "train_counts": [int(n) for n in train_counts]}


def changed_settings(old: dict, new: dict) -> list[str]:
    """The :data:`SETTINGS` whose values differ between two runs' configs (a setting added
    since ``old`` was made counts at the value it had then)."""
    return [k for k in SETTINGS if old.get(k, _ADDED.get(k)) != new.get(k)]


def autoencoder_key(values: dict) -> str:
    """The cache key of the autoencoder: the autoencoder's settings, in :data:`SETTINGS`
    order, as JSON (those at their :data:`_KEY_DEFAULTS` value left out)."""
    return json.dumps(
        [
            values[k]
            for k, keyed in SETTINGS.items()
            if keyed and not (k in _KEY_DEFAULTS and values[k] == _KEY_DEFAULTS[k])
        ]
    )


def _git_commit(path: Path) -> str | None:
    """HEAD of the git checkout holding ``path`` (``+dirty`` when it has changes)."""
    import subprocess

    def git(*cmd):
        return subprocess.run(
            ["git", "-C", str(path), *cmd], capture_output=True, text=True, check=True
        ).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no", "--", ".")
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+dirty" if dirty else "")


def environment(args) -> dict:
    import imblearn
    import sklearn
    import torchvision

    import torch_deepsmote

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    machine = f"{cpu}, {torch.get_num_threads()} threads"
    if args.device.type == "cuda":
        machine += f", {torch.cuda.get_device_name(args.device)}"
    return {
        "machine": machine,
        "versions": f"Python {platform.python_version()}, torch {torch.__version__}, "
        f"torchvision {torchvision.__version__}, scikit-learn {sklearn.__version__}, "
        f"imbalanced-learn {imblearn.__version__}, torch_deepsmote {torch_deepsmote.__version__}",
        "command": "python -m benchmarks.classify " + " ".join(map(shlex.quote, sys.argv[1:])),
        # Which code made the numbers: the benchmark's and the library's checkouts (the
        # library may be a frozen worktree on PYTHONPATH while the main one changes).
        "benchmark_commit": _git_commit(Path(__file__).resolve().parent),
        "library": str(Path(torch_deepsmote.__file__).resolve().parent),
        "library_commit": _git_commit(Path(torch_deepsmote.__file__).resolve().parent),
    }


class Experiment:
    """One training subset: its test sets, its autoencoder cache, every method and seed."""

    def __init__(self, args, train_full, test_full, train_counts, name: str) -> None:
        self.args = args
        y_full = data.labels_of(train_full)
        self.n_classes = len(train_counts)
        self.train_counts = tuple(int(n) for n in train_counts)
        rows = data.take(y_full, self.train_counts, args.data_seed)
        self._rest = (train_full, np.setdiff1d(np.arange(len(y_full)), rows))
        self.validation = None
        if args.val_split:
            rows, held_out = validation_split(y_full, rows, args.val_split, args.data_seed)
            self.validation = data.as_tensors(data.subset(train_full, held_out))
            counts = np.bincount(y_full[rows], minlength=self.n_classes)
            self.train_counts = tuple(int(n) for n in counts)
        self.train = data.subset(train_full, rows)
        self._pool: tuple[torch.Tensor, torch.Tensor] | None = None
        self.x, self.y = data.as_tensors(self.train)
        key = autoencoder_key(settings(args, self.train_counts))
        digest = hashlib.sha256(key.encode()).hexdigest()[:10]
        self.cache_dir = args.work / "autoencoders" / f"{name}-{digest}"
        self.autoencoder: dict | None = None

    def pool(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The training split's images outside the subset (read once, for oracle rows)."""
        if self._pool is None:
            self._pool = data.as_tensors(data.subset(*self._rest))
        return self._pool

    def oversampled(self, seed: int, strategy=None, residual: bool = False, **options):
        """The experiment's OversampledDataset; ``options`` are DeepSMOTE's serving
        options (``interpolation``, ``k_neighbors``, ``lam_range``), which the cached
        autoencoder serves without training again."""
        from torch_deepsmote import OversampledDataset

        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # tiny classes in quick mode
            ds = OversampledDataset(
                self.train,
                cache_dir=self.cache_dir,
                seed=seed,
                sampling_strategy=strategy,
                residual=residual,
                random_state=self.args.data_seed,
                max_epochs=self.args.ae_epochs,
                lr=self.args.ae_lr,
                patience=0,
                hidden_channels=self.args.hidden,
                latent_dim=self.args.latent_dim,
                penalty_weight=self.args.penalty_weight,
                device=self.args.device,
                progress=False,
                **{"k_neighbors": self.args.k_neighbors, **options},
            )
        if self.autoencoder is None:
            history = getattr(ds.model, "history_", [])
            self.autoencoder = {
                "seconds": time.perf_counter() - start,
                "train_seconds": sum(h["seconds"] for h in history),
                "epochs": len(history),
                "reconstruction": history[-1]["reconstruction"] if history else float("nan"),
                "history": history,
                "cache_dir": str(self.cache_dir),
            }
        return ds

    def run(self, method: str, seed: int, tests: dict) -> dict:
        args = self.args
        ctx = {
            "x": self.x,
            "y": self.y,
            "batch_size": args.batch_size,
            "n_classes": self.n_classes,
            "oversampled": self.oversampled,
            "pool": self.pool,
            "la_balance": args.la_balance,
            "steps": args.steps,
        }
        start = time.perf_counter()
        recipe = cm.batches_for(method, ctx, seed)
        torch.manual_seed(seed)  # the classifier's initialisation
        channels, side = self.x.shape[1], self.x.shape[-1]
        model = cm.make_classifier(args.classifier, channels, self.n_classes, side)
        # Its own stream: the same crops whatever the method draws from its generators.
        augment = cb.make_augment(args.augment, side, cb.child_seed(seed, 100))
        timing = cm.train_classifier(
            model, recipe, steps=args.steps, lr=args.lr, device=args.device, augment=augment
        )
        scores = {
            name: cm.evaluate(y.numpy(), cm.predict(model, x, args.device))
            for name, (x, y) in tests.items()
        }
        saved = {}
        if args.save_model:
            path = args.out / model_file(method, args.data_seed, seed)
            cm.save_classifier(model, path)
            saved["model_file"] = path.name
        return {
            "method": method,
            "seed": seed,
            "data_seed": args.data_seed,
            "scores": scores,
            "train_fit": cm.training_fit(model, self.x, self.y, args.device),
            "parameters": sum(p.numel() for p in model.parameters()),
            **recipe.info,
            **timing,
            **saved,
            "seconds": time.perf_counter() - start,
        }


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.backends.cudnn.benchmark = args.device.type == "cuda"  # fixed shapes: tune once
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    train_full = data.load_split(args.dataset, args.root, True, args.work)
    test_full = data.load_split(args.dataset, args.root, False, args.work)
    train_counts, test_counts = data.PAPER_COUNTS[args.dataset]
    train_counts = data.scale(train_counts, args.count_scale)
    test_counts = data.scale(test_counts, args.count_scale, minimum=1)
    tests, balanced_counts = _test_sets(args, test_full, test_counts)
    config = {
        k: (str(v) if isinstance(v, (Path, torch.device)) else v) for k, v in vars(args).items()
    }
    config.update(
        train_counts=list(train_counts),
        imbalanced_test_counts=list(test_counts),
        balanced_test_counts=list(balanced_counts),
    )
    result = {
        "config": config,
        "environment": environment(args),
        "records": [],
        "sweep": [],
        "figures": [],
    }
    json_path = args.out / "results.json"
    done: dict = {}
    if args.resume and json_path.exists():
        # Runs can be split into shorter pieces: an interrupted run continues where it stopped.
        old = json.loads(json_path.read_text())
        differ = changed_settings(old["config"], config)
        if differ:
            log(f"--resume: {json_path} was made with other {differ}; starting again")
        else:
            done = {(r["method"], r["seed"]): r for r in old["records"]}
            result["seconds_before"] = old.get("seconds", 0.0) + old.get("seconds_before", 0.0)

    def save():
        result["seconds"] = time.perf_counter() - start
        # Atomic: a run stopped by a time limit leaves the last complete file behind.
        write_bytes(json_path, json.dumps(result, indent=1).encode())

    exp = Experiment(args, train_full, test_full, train_counts, f"{args.dataset}-table1")
    if exp.validation is not None:
        # Choosing on held-out training images: the test sets are not scored at all.
        tests = {"validation": exp.validation}
        config["validation_counts"] = torch.bincount(exp.validation[1]).tolist()
    if any(cm.uses_autoencoder(m) for m in args.methods):
        log(f"autoencoder: {len(exp.y)} images, hidden {args.hidden}, {args.ae_epochs} epochs")
        balanced = exp.oversampled(0)
        log(f"autoencoder ready in {exp.autoencoder['seconds']:.0f} s")
        if not args.no_figures:
            fig = args.out / f"{args.dataset}_real_vs_synthetic.png"
            report.plot_real_vs_synthetic(balanced, fig)
            result["figures"].append(str(fig))
            if any("residual" in m for m in args.methods):
                fig = args.out / f"{args.dataset}_real_vs_synthetic_residual.png"
                report.plot_real_vs_synthetic(
                    exp.oversampled(0, residual=True),
                    fig,
                    title="per class: 8 real | 8 DeepSMOTE(residual=True)",
                )
                result["figures"].append(str(fig))
    result["autoencoder"] = exp.autoencoder or {"seconds": 0.0, "reconstruction": float("nan")}
    for seed in args.seeds:
        for method in args.methods:
            if (method, seed) in done:
                result["records"].append(done[(method, seed)])
                continue
            rec = exp.run(method, seed, tests)
            result["records"].append(rec)
            s = rec["scores"]
            log(
                f"seed {seed} {method:16s} imb ACSA {s['imbalanced']['acsa']:.2f} "
                f"bal ACSA {s['balanced']['acsa']:.2f} GM {s['balanced']['gm']:.2f} "
                f"({rec['seconds']:.0f} s)"
            )
            save()

    _sweep(args, train_full, test_full, train_counts, tests, result, save)
    if result["sweep"] and not args.no_figures:
        fig = args.out / f"{args.dataset}_ratio_sweep.png"
        report.plot_ratio_sweep(result["sweep"], fig)
        result["figures"].append(str(fig))
    save()

    _print_summary(result)
    if args.results_md:
        others = [json.loads(Path(p).read_text()) for p in args.include_json]
        report.write_report(Path(args.results_md), [result, *others], args.notes)
        log(f"wrote {args.results_md}")
    log(f"wrote {json_path} ({(time.perf_counter() - start) / 60:.1f} min)")
    return 0


def _test_sets(args: argparse.Namespace, test_full, test_counts) -> tuple[dict, list]:
    """The imbalanced (Table I) and balanced test sets, as tensors, and the balanced counts."""
    y_test = data.labels_of(test_full)
    balanced_counts = data.balanced_counts(
        y_test, cap=max(10, round(1000 * min(1.0, args.count_scale)))
    )
    tests = {
        "imbalanced": data.as_tensors(
            data.subset(test_full, data.take(y_test, test_counts, args.data_seed))
        ),
        "balanced": data.as_tensors(
            data.subset(test_full, data.take(y_test, balanced_counts, args.data_seed))
        ),
    }
    return tests, balanced_counts


def _sweep(args, train_full, test_full, train_counts, tests, result: dict, save) -> None:
    """Fig. 8's imbalance-ratio sweep: each ratio's subset, methods and seeds."""
    sweep_methods = [m for m in args.sweep_methods.split(",") if m in args.methods]
    sweep_args = argparse.Namespace(**vars(args))
    sweep_args.ae_epochs = args.sweep_ae_epochs or args.ae_epochs
    for ratio in args.sweep_ratios:
        counts = data.ratio_counts(train_counts[0], ratio, len(train_counts))
        name = f"{args.dataset}-ratio{ratio:g}"
        sweep = Experiment(sweep_args, train_full, test_full, counts, name)
        for seed in range(args.sweep_seeds):
            for method in sweep_methods:
                rec = sweep.run(method, seed, {"balanced": tests["balanced"]})
                rec.update(ratio=ratio, counts=list(counts))
                result["sweep"].append(rec)
                log(
                    f"ratio {ratio:g} seed {seed} {method:10s} bal ACSA "
                    f"{rec['scores']['balanced']['acsa']:.2f}"
                )
                save()


def _print_summary(result: dict) -> None:
    for test in dict.fromkeys(t for r in result["records"] for t in r["scores"]):
        print(f"\n{test} test")
        for (t, meth), stats in report.summarise(result["records"]).items():
            if t == test:
                print(
                    f"  {meth:16s} "
                    + "  ".join(
                        f"{m.upper()} {mean:6.2f} ± {std:4.2f}"
                        for m, (mean, std, _) in stats.items()
                    )
                )


if __name__ == "__main__":
    raise SystemExit(main())
