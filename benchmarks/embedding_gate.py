"""Would oversampling a trained classifier's features help? The gate before any library code.

    python -m benchmarks.embedding_gate benchmarks/results/ceiling-feature-head/d0-s*-*/ \\
        --out benchmarks/results/ceiling-feature-head --resume

Each backbone folder is a ``python -m benchmarks.classify ... --save-model`` run (its
results.json and the classifier's state_dict). Its penultimate features of the training
subset (no augmentation) are fed to a fresh linear head, the same optimiser, sampler and
budget for every variant, on:

- ``crt``: the real features only, drawn class-balanced (cRT: Kang et al., "Decoupling
  representation and classifier for long-tailed recognition", ICLR 2020);
- ``oracle``: the real features plus features of unseen real images of each smaller class,
  from the training split outside the subset, until every class has the largest class's
  count (a ceiling: a user does not have these images; as ``oracle_la`` is for images);
- ``eos``: the real features plus EOS features (Dablain, Bellinger, Krawczyk and Chawla,
  "Efficient Augmentation for Imbalanced Deep Learning", arXiv 2207.06080): bases are the
  smaller classes' rows with an enemy (a row of another class) among their ``k`` nearest
  neighbours, and each new feature steps from a base towards one of its enemies,
  ``x = x_base + r (x_enemy - x_base)``, ``r ~ U(0, 1)``, with the base's label, until every
  class has the largest class's count;
- ``eos_code``: the same draw as the published code makes it (dd1github/EOS, ``EOS.py``):
  the enemy's position is drawn among the neighbours without the row itself but looked up
  in the table that lists the row first, so the step goes to the neighbour one rank nearer
  than the drawn enemy (the row itself, a copy, when the enemy is the nearest).

Each is scored against the backbone's own head on the balanced and imbalanced test sets
(ACSA, macro GM, macro F1, as classify.py), paired by backbone seed, and the issue's stop
rule is applied: the oracle head must gain at least ``+0.3`` balanced ACSA over the better
of the own head and ``crt``, and EOS at least ``+0.2`` over ``crt`` on some seed.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from benchmarks import classify
from benchmarks import classify_methods as cm
from benchmarks import imbalanced_data as data
from torch_deepsmote.storage.atomic import write_bytes

__all__ = ["HEADS", "eos_features", "features_of", "fit_head", "oracle_rows", "split_head"]

HEADS = ("own", "crt", "oracle", "eos", "eos_code")
# The stop rule of the gate, in balanced-test ACSA points.
ORACLE_BAR, EOS_BAR = 0.3, 0.2


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("backbones", nargs="+", help="folders of classify.py --save-model runs")
    p.add_argument("--out", required=True, help="folder for gate.json and gate.md")
    p.add_argument("--head-steps", type=int, default=4000, help="optimiser steps per head")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--head-seeds", type=int, default=3, help="heads (and EOS draws) per backbone")
    p.add_argument("--k-neighbors", type=int, default=10, help="EOS's neighbours (its code: 10)")
    p.add_argument("--work", default="/tmp/deepsmote-bench", help="classify.py's data cache")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--resume", action="store_true", help="keep backbones done in gate.json")
    return p.parse_args(argv)


# ---------------------------------------------------------------------- features
def split_head(model: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(the body up to the penultimate features, the last ``nn.Linear``) of a classify.py
    classifier: ``model.net`` a Sequential ending in the head, inputs normalised as in
    ``forward``."""
    net = getattr(model, "net", None)
    if not isinstance(net, nn.Sequential) or not isinstance(net[-1], nn.Linear):
        raise TypeError(
            f"`model` should hold its layers in `net`, an nn.Sequential ending in nn.Linear, "
            f"but got {type(model).__name__}."
        )

    class Body(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.layers = net[:-1]

        def forward(self, x):
            return self.layers((x - 0.5) / 0.5)

    return Body(), net[-1]


@torch.inference_mode()
def features_of(body: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """``body(x)`` in batches, no augmentation, no gradient: (N, d) float32."""
    body.eval()
    return torch.cat([body(x[i : i + batch_size]).float() for i in range(0, len(x), batch_size)])


# ---------------------------------------------------------------------- the three sets
def oracle_rows(y_pool: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
    """Rows of the unseen pool that fill each class up to the largest count: for class ``c``
    the first ``max(counts) - counts[c]`` of a seeded permutation of its pool rows."""
    rng = np.random.default_rng(seed)
    target = counts.max()
    rows = []
    for c, n in enumerate(counts):
        mine = np.flatnonzero(y_pool == c)
        if len(mine) < target - n:
            raise ValueError(
                f"the pool holds {len(mine)} images of class {c}, fewer than the "
                f"{target - n} that would fill it to {target}."
            )
        rows.append(rng.permutation(mine)[: target - n])
    return np.sort(np.concatenate(rows))


def eos_features(
    feats: np.ndarray,
    labels: np.ndarray,
    k: int,
    rng: np.random.Generator,
    published_indexing: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """EOS's synthetic features: every class filled to the largest class's count.

    Bases are the rows of a smaller class with at least one enemy (another class's row)
    among their ``k`` nearest neighbours in ``feats`` (all classes, Euclidean, as EOS.py);
    a base is drawn uniformly among them, an enemy uniformly among its enemies, and
    ``x = x_base + r (x_enemy - x_base)``, ``r ~ U(0, 1)``, keeps the base's label.

    Args:
        feats: (N, d) features of the real training images.
        labels: (N,) int labels.
        k: Neighbours per row (EOS: 10).
        rng: The draw's generator.
        published_indexing: Step to the neighbour one rank nearer than the drawn enemy (the
            row itself for the nearest), as dd1github/EOS's ``EOS.py`` indexes its table.

    Returns:
        (M, d) synthetic features and their (M,) labels.
    """
    from sklearn.neighbors import NearestNeighbors

    counts = np.bincount(labels)
    nn_index = NearestNeighbors(n_neighbors=k + 1).fit(feats)
    _, ind = nn_index.kneighbors(feats)
    # Each row's k neighbours without itself (a duplicate may come first; drop the row's
    # own index where it is listed, else the farthest).
    own = ind == np.arange(len(feats))[:, None]
    own[~own.any(1), -1] = True
    ind = ind[~own].reshape(len(feats), k)
    enemy = labels[ind] != labels[:, None]
    out_x, out_y = [], []
    for c, n in enumerate(counts):
        need = counts.max() - n
        if need == 0:
            continue
        bases = np.flatnonzero((labels == c) & enemy.any(1))
        if len(bases) == 0:
            raise RuntimeError(f"class {c} has no row with an enemy among {k} neighbours.")
        base = bases[rng.integers(len(bases), size=need)]
        # A uniform choice among each base's enemies: the largest of random keys on them.
        column = np.argmax(rng.random((need, k)) * enemy[base], axis=1)
        neighbour = ind[base, column]
        if published_indexing:
            neighbour = np.where(column == 0, base, ind[base, np.maximum(column - 1, 0)])
        r = rng.random((need, 1))
        out_x.append(feats[base] + r * (feats[neighbour] - feats[base]))
        out_y.append(np.full(need, c))
    return np.concatenate(out_x).astype(feats.dtype), np.concatenate(out_y)


# ---------------------------------------------------------------------- the head
def fit_head(
    feats: torch.Tensor,
    labels: torch.Tensor,
    n_classes: int,
    *,
    steps: int,
    batch_size: int,
    lr: float,
    seed: int,
) -> nn.Linear:
    """A fresh ``nn.Linear`` trained with plain cross-entropy on class-balanced draws
    (weights ``1 / n_c``, with replacement) of ``(feats, labels)``: classify.py's optimiser
    (AdamW, weight decay 5e-4, cosine decay to 0) for ``steps`` steps."""
    torch.manual_seed(seed)
    head = nn.Linear(feats.shape[1], n_classes)
    gen = torch.Generator().manual_seed(seed)
    counts = torch.bincount(labels, minlength=n_classes).double()
    weights = (1.0 / counts)[labels]
    optimizer = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    for _ in range(steps):
        rows = torch.multinomial(weights, batch_size, replacement=True, generator=gen)
        loss = nn.functional.cross_entropy(head(feats[rows]), labels[rows])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    return head.eval()


@torch.inference_mode()
def _scores(head: nn.Module, tests: dict) -> dict:
    return {
        name: cm.evaluate(y.numpy(), head(f).argmax(1).numpy()) for name, (f, y) in tests.items()
    }


# ---------------------------------------------------------------------- one backbone
class DataSplit:
    """The training subset, its unseen pool and the test sets of a backbone's run, drawn as
    classify.py drew them (dataset, counts and data seed from its results.json config)."""

    def __init__(self, config: dict, work: str) -> None:
        args = classify.parse_args(
            ["--dataset", config["dataset"], "--device", "cpu", "--work", work]
            + ["--data-seed", str(config["data_seed"])]
            + ["--count-scale", str(config["count_scale"])]
        )
        train_full = data.load_split(args.dataset, config["root"], True, args.work)
        test_full = data.load_split(args.dataset, config["root"], False, args.work)
        train_counts, test_counts = data.PAPER_COUNTS[args.dataset]
        train_counts = data.scale(train_counts, args.count_scale)
        test_counts = data.scale(test_counts, args.count_scale, minimum=1)
        self.tests, _ = classify._test_sets(args, test_full, test_counts)
        self.exp = classify.Experiment(
            args, train_full, test_full, train_counts, f"{args.dataset}-table1"
        )


def run_backbone(folder: Path, record: dict, config: dict, subset: DataSplit, args) -> dict:
    """The heads of one saved classifier (``record`` of ``folder``'s results.json)."""
    exp = subset.exp
    channels, side = exp.x.shape[1], exp.x.shape[-1]
    model = cm.load_classifier(
        folder / record["model_file"], config["classifier"], channels, exp.n_classes, side
    )
    body, own_head = split_head(model)
    start = time.perf_counter()
    f_train = features_of(body, exp.x)
    tests = {name: (features_of(body, x), y) for name, (x, y) in subset.tests.items()}
    x_pool, y_pool = exp.pool()
    counts = np.bincount(exp.y.numpy(), minlength=exp.n_classes)
    rows = oracle_rows(y_pool.numpy(), counts, seed=record["seed"])
    f_oracle, y_oracle = features_of(body, x_pool[rows]), y_pool[rows]
    feature_seconds = time.perf_counter() - start
    own = _scores(own_head, tests)
    # The backbone's own head on these features is the run's classifier: same scores.
    for name in own:
        if abs(own[name]["acsa"] - record["scores"][name]["acsa"]) > 1e-6:
            raise RuntimeError(
                f"{folder}: the saved classifier scores {own[name]['acsa']:.4f} ACSA on the "
                f"{name} test set, its run recorded {record['scores'][name]['acsa']:.4f}: "
                "another data seed, test draw or model file?"
            )
    fit = dict(steps=args.head_steps, batch_size=args.batch_size, lr=args.lr)
    heads: dict = {"own": [own]}
    for h in range(args.head_seeds):
        seed = 1000 * record["seed"] + h
        x_eos, y_eos = eos_features(
            f_train.numpy(), exp.y.numpy(), args.k_neighbors, np.random.default_rng(seed)
        )
        x_code, y_code = eos_features(
            f_train.numpy(),
            exp.y.numpy(),
            args.k_neighbors,
            np.random.default_rng(seed),
            published_indexing=True,
        )
        sets = {
            "crt": (f_train, exp.y),
            "oracle": (torch.cat([f_train, f_oracle]), torch.cat([exp.y, y_oracle])),
            "eos": (
                torch.cat([f_train, torch.from_numpy(x_eos)]),
                torch.cat([exp.y, torch.from_numpy(y_eos).long()]),
            ),
            "eos_code": (
                torch.cat([f_train, torch.from_numpy(x_code)]),
                torch.cat([exp.y, torch.from_numpy(y_code).long()]),
            ),
        }
        for name, (f, y) in sets.items():
            head = fit_head(f, y, exp.n_classes, seed=seed, **fit)
            heads.setdefault(name, []).append(_scores(head, tests))
    return {
        "folder": folder.name,
        "model_file": record["model_file"],
        "method": record["method"],
        "seed": record["seed"],
        "data_seed": record["data_seed"],
        "classifier": config["classifier"],
        "feature_dim": int(f_train.shape[1]),
        "n_oracle": len(rows),
        "n_eos": int(len(y_eos)),
        "heads": heads,
        "feature_seconds": feature_seconds,
        "seconds": time.perf_counter() - start,
    }


# ---------------------------------------------------------------------- the verdict
def mean_score(entry: dict, head: str, test: str, metric: str) -> float:
    """The mean over head seeds of ``metric`` on ``test`` for ``head``."""
    return float(np.mean([s[test][metric] for s in entry["heads"][head]]))


def verdict(entries: list[dict]) -> dict:
    """The stop rule per backbone method: paired per seed, balanced-test ACSA."""
    out = {}
    for method in sorted({e["method"] for e in entries}):
        mine = sorted((e for e in entries if e["method"] == method), key=lambda e: e["seed"])
        acsa = {h: [mean_score(e, h, "balanced", "acsa") for e in mine] for h in HEADS}
        oracle_gain = [o - max(a, b) for o, a, b in zip(acsa["oracle"], acsa["own"], acsa["crt"])]
        eos_gain = [e - c for e, c in zip(acsa["eos"], acsa["crt"])]
        code_gain = [e - c for e, c in zip(acsa["eos_code"], acsa["crt"])]
        out[method] = {
            "seeds": [e["seed"] for e in mine],
            "oracle_gain": oracle_gain,
            "eos_gain": eos_gain,
            "eos_code_gain": code_gain,
            "oracle_passes": bool(np.mean(oracle_gain) >= ORACLE_BAR),
            "eos_passes": any(g >= EOS_BAR for g in eos_gain),
        }
        out[method]["passes"] = out[method]["oracle_passes"] and out[method]["eos_passes"]
    return out


def markdown(gate: dict) -> str:
    entries = gate["backbones"]
    lines = [
        "| backbone | seed | head | bal. ACSA | bal. GM | bal. F1 | imb. ACSA | imb. GM | imb. F1 "
        "| Δ bal. ACSA vs own |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for e in sorted(entries, key=lambda e: (e["method"], e["seed"])):
        own = mean_score(e, "own", "balanced", "acsa")
        for h in HEADS:
            cells = [
                f"{mean_score(e, h, t, m):.2f}"
                for t in ("balanced", "imbalanced")
                for m in ("acsa", "gm", "f1")
            ]
            delta = "" if h == "own" else f"{mean_score(e, h, 'balanced', 'acsa') - own:+.2f}"
            lines.append(
                f"| `{e['method']}` | {e['seed']} | {h} | " + " | ".join(cells) + f" | {delta} |"
            )
    lines += [
        "",
        "| backbone | oracle − max(own, crt), per seed | eos − crt, per seed "
        "| eos_code − crt, per seed | gate |",
        "| --- | --- | --- | --- | --- |",
    ]
    for method, v in gate["verdict"].items():

        def fmt(gains):
            return ", ".join(f"{g:+.2f}" for g in gains)

        lines.append(
            f"| `{method}` | {fmt(v['oracle_gain'])} (mean {np.mean(v['oracle_gain']):+.2f}; "
            f"bar +{ORACLE_BAR}) | {fmt(v['eos_gain'])} (bar +{EOS_BAR} on a seed) | "
            f"{fmt(v['eos_code_gain'])} | {'passes' if v['passes'] else 'stops'} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "gate.json"
    settings = {
        k: getattr(args, k) for k in ("head_steps", "batch_size", "lr", "head_seeds", "k_neighbors")
    }
    settings["heads"] = list(HEADS)
    done = {}
    if args.resume and path.exists():
        old = json.loads(path.read_text())
        if old["settings"] == settings:
            done = {f"{e['folder']}/{e['model_file']}": e for e in old["backbones"]}
    gate = {
        "settings": settings,
        "command": "python -m benchmarks.embedding_gate " + shlex.join(sys.argv[1:]),
        "benchmark_commit": classify._git_commit(Path(__file__).resolve().parent),
        "backbones": [],
    }
    subsets: dict = {}

    def save() -> None:
        gate["verdict"] = verdict(gate["backbones"])
        write_bytes(path, json.dumps(gate, indent=1).encode())

    for folder in map(Path, args.backbones):
        result = json.loads((folder / "results.json").read_text())
        config = result["config"]
        for record in result["records"]:
            if "model_file" not in record:
                raise FileNotFoundError(
                    f"{folder}: the run of {record['method']} seed {record['seed']} kept no "
                    "classifier; run classify.py with --save-model."
                )
            name = f"{folder.name}/{record['model_file']}"
            if name in done:
                gate["backbones"].append(done[name])
                continue
            key = (config["dataset"], config["count_scale"], config["data_seed"])
            if key not in subsets:
                subsets[key] = DataSplit(config, args.work)
            entry = run_backbone(folder, record, config, subsets[key], args)
            gate["backbones"].append(entry)
            print(
                f"{name}: "
                + ", ".join(f"{h} {mean_score(entry, h, 'balanced', 'acsa'):.2f}" for h in HEADS)
                + f" ({entry['seconds']:.0f} s)",
                flush=True,
            )
            save()  # after each backbone: an interrupted gate resumes from here
    save()
    text = markdown(gate)
    write_bytes(out / "gate.md", text.encode())
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
