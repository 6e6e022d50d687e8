"""What serving an epoch of ``OversampledDataset`` costs, against one classifier epoch.

Fashion-MNIST with the paper's Table I counts (9,000 real images, 31,000 synthetic ones to
balance them), the library's default autoencoder width (64; serving cost does not depend
on the weights, so it trains one epoch on a few images), on one device. Every figure is a
ratio of two costs measured in the same run on the same device: the seconds one epoch of
the balanced set takes to serve, over the seconds one classifier epoch over it takes
(forward, backward and AdamW step, batch 128). Serving, four ways:

- ``per batch``: ``pool=False``, each batch's synthetic images decoded on demand in the
  process that asks (here the main process, ``num_workers=0``: the same device);
- ``pool, set_epoch``: ``pool=True`` with a fresh set every epoch: one batched decode of
  the epoch's set (``set_epoch``) plus the reads;
- ``pool, refresh 25%``: ``pool=True, refresh=0.25``: each ``set_epoch`` draws a quarter of
  the set anew and decodes only that quarter (measured: the seconds of one ``set_epoch``),
  plus the reads;
- ``pool, fixed set``: the paper's single synthetic set, decoded once: the reads alone.

    python -m benchmarks.serving_cost                  # CPU, about 4 min on 2 cores
    python -m benchmarks.serving_cost --device cuda    # the GPU columns (device_check.sh)
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch
from torch.utils.data import DataLoader, SubsetRandomSampler, TensorDataset

from benchmarks.classify_methods import make_classifier
from benchmarks.speed.common import load_fashion_mnist, sync
from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.data import TABLE_I_TRAIN, imbalanced_subset
from torch_deepsmote.storage.atomic import write_bytes

__all__ = ["main", "render", "run"]

HERE = Path(__file__).resolve().parent
BATCH = 128
CLASSIFIERS = ("cnn-fc", "resnet18")


def _per_image(loader_of, indices, n_batches: int) -> float:
    """Seconds per image of ``n_batches`` random batches from ``indices`` (first one warm-up)."""
    sampler = SubsetRandomSampler(indices, generator=torch.Generator().manual_seed(0))
    batches = iter(DataLoader(loader_of, batch_size=BATCH, sampler=sampler))
    next(batches)
    start, count = time.perf_counter(), 0
    for _ in range(n_batches):
        count += len(next(batches)[0])
    return (time.perf_counter() - start) / count


def _classifier_per_image(kind: str, device: torch.device, steps: int) -> float:
    """Seconds per image of a training step of ``kind`` at 28x28, batch 128."""
    model = make_classifier(kind, 1, 10, 28).to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    x = torch.rand(BATCH, 1, 28, 28, device=device)
    y = torch.randint(0, 10, (BATCH,), device=device)

    def step():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step()  # warm-up
    sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    sync(device)
    return (time.perf_counter() - start) / (steps * BATCH)


def run(device: torch.device, quick: bool = False, refresh: float = 0.25) -> dict:
    train = load_fashion_mnist(True)
    idx = imbalanced_subset(train, TABLE_I_TRAIN, seed=0).indices
    x, y = train.data[idx][:, None].contiguous(), train.targets[idx]
    n_real = len(y)
    n_synthetic = len(TABLE_I_TRAIN) * max(TABLE_I_TRAIN) - n_real  # to balance Table I
    # Per-image costs are measured on a small served set (a model fitted on 20 images per
    # class, topped up to 300 per class); the epoch figures scale them to Table I's counts.
    few = imbalanced_subset(TensorDataset(x, y), (20,) * len(TABLE_I_TRAIN), seed=0).indices
    served = TensorDataset(x[few], y[few])
    model = DeepSMOTE(max_epochs=1, progress=False, random_state=0, knn="torch", device=device)
    model.fit(*served.tensors)
    strategy = {c: 300 for c in range(len(TABLE_I_TRAIN))}
    per_batch = OversampledDataset(served, model, sampling_strategy=strategy, pool=False)
    n_batches = 4 if quick else 12
    synthetic_idx = list(range(per_batch.n_real, len(per_batch)))
    start = time.perf_counter()
    pooled = OversampledDataset(served, model, sampling_strategy=strategy, pool=True)
    fill = (time.perf_counter() - start) / pooled.n_synthetic
    partial = OversampledDataset(
        served, model, sampling_strategy=strategy, pool=True, refresh=refresh
    )
    refills = []
    for epoch in (1, 2, 3):  # seconds of one set_epoch: the share drawn anew, decoded
        start = time.perf_counter()
        partial.set_epoch(epoch)
        refills.append((time.perf_counter() - start) / partial.n_synthetic)
    refill = sorted(refills)[1]
    costs = {
        "real read": _per_image(TensorDataset(x, y), list(range(n_real)), 40),
        "synthetic decoded per batch": _per_image(per_batch, synthetic_idx, n_batches),
        "synthetic read from the pool": _per_image(pooled, synthetic_idx, n_batches),
        "pool fill per synthetic image": fill,
        f"pool refresh {refresh:.0%} per synthetic image": refill,
    }
    serving = {
        "per batch": n_real * costs["real read"]
        + n_synthetic * costs["synthetic decoded per batch"],
        "pool, set_epoch": n_real * costs["real read"]
        + n_synthetic * (fill + costs["synthetic read from the pool"]),
        f"pool, refresh {refresh:.0%}": n_real * costs["real read"]
        + n_synthetic * (refill + costs["synthetic read from the pool"]),
        "pool, fixed set": n_real * costs["real read"]
        + n_synthetic * costs["synthetic read from the pool"],
    }
    steps = 2 if quick else 4
    classifier = {
        kind: (n_real + n_synthetic) * _classifier_per_image(kind, device, steps)
        for kind in CLASSIFIERS
    }
    return {
        "device": str(device),
        "machine": f"{platform.processor() or platform.machine()}, "
        f"{torch.get_num_threads()} threads",
        "n_real": n_real,
        "n_synthetic": n_synthetic,
        "refresh": refresh,
        "seconds_per_image": costs,
        "serving_epoch_seconds": serving,
        "classifier_epoch_seconds": classifier,
        "ratios": {
            way: {kind: serving[way] / classifier[kind] for kind in CLASSIFIERS} for way in serving
        },
    }


def render(result: dict) -> str:
    lines = [
        f"Serving one epoch ({result['n_real']:,} real + {result['n_synthetic']:,} synthetic "
        f"images) over one classifier epoch, on {result['device']} ({result['machine']}):",
        "",
        "| serving | seconds | / cnn-fc epoch | / resnet18 epoch |",
        "| --- | --- | --- | --- |",
    ]
    for way, seconds in result["serving_epoch_seconds"].items():
        ratio = result["ratios"][way]
        lines.append(f"| {way} | {seconds:.1f} | {ratio['cnn-fc']:.2f} | {ratio['resnet18']:.2f} |")
    epochs = result["classifier_epoch_seconds"]
    lines.append("")
    lines.append(
        f"Classifier epochs: cnn-fc {epochs['cnn-fc']:.1f} s, resnet18 {epochs['resnet18']:.1f} s."
    )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--refresh", type=float, default=0.25, help="the partial refresh's share (0.25)"
    )
    parser.add_argument("--out", default=str(HERE / "results" / "serving_cost"))
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    result = run(device, args.quick, args.refresh)
    out = Path(args.out) / f"{device.type}.json"
    write_bytes(out, json.dumps(result, indent=1).encode())
    print(render(result))
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
