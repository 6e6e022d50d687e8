"""Section 3, serving: images/s a DataLoader gets from ``OversampledDataset``.

Real, synthetic and the balanced mix (workers 0 and 2) against in-memory real images, the
decoder alone (batch 256) and a loader that decodes one image per call; then ``pool=True``,
where each epoch's synthetic set is decoded once into shared memory.
"""

from __future__ import annotations

import time
from statistics import median

import torch
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler, TensorDataset

from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.data import TABLE_I_TRAIN, imbalanced_subset

from .common import fmt, load_fashion_mnist, sync

__all__ = ["render", "run"]

# Images per class the serving model trains on, for one epoch: serving cost does not depend
# on the weights, and a fit on all 9,000 images would take the whole benchmark's budget.
FIT_PER_CLASS = 20


class OneByOne(Dataset):
    """Hides ``__getitems__``: one decoder call per synthetic image."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]


def loader_rate(dataset, indices, workers, n_batches, batch_size=128):
    """Images/s of ``n_batches`` batches drawn at random from ``indices``."""
    sampler = SubsetRandomSampler(indices, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    it = iter(loader)
    next(it)  # worker start-up and first-batch warm-up are not serving throughput
    start, count = time.perf_counter(), 0
    for _ in range(n_batches):
        images, _ = next(it)
        count += len(images)
    seconds = time.perf_counter() - start
    del it, loader
    return count / seconds


def run(quick, device):
    """Median images/s per loader, and the dataset's sizes."""
    train_set = load_fashion_mnist(True)
    idx = imbalanced_subset(train_set, TABLE_I_TRAIN, seed=0).indices
    x = train_set.data[idx][:, None].contiguous()
    y = train_set.targets[idx]
    memory = TensorDataset(x, y)
    few = imbalanced_subset(memory, (FIT_PER_CLASS,) * len(TABLE_I_TRAIN), seed=0).indices
    model = DeepSMOTE(max_epochs=1, progress=False, random_state=0, knn="torch")
    # Per batch (no pool): the synthetic rows time decoding in the loader.
    ds = OversampledDataset(memory, model.fit(x[few], y[few]), pool=False)
    n_real, n_total = ds.n_real, len(ds)
    real_idx = list(range(n_real))
    synth_idx = list(range(n_real, n_total))
    all_idx = list(range(n_total))
    n_batches = 4 if quick else 10
    reps = 2 if quick else 3
    codes = torch.randn(256, model.latents_.shape[1])
    decoder = model.decoder_.eval().to(device)

    @torch.inference_mode()
    def decoder_rate():
        decoder(codes.to(device))
        sync(device)
        start = time.perf_counter()
        for _ in range(max(2, n_batches // 2)):
            decoder(codes.to(device)).cpu()
        sync(device)
        return 256 * max(2, n_batches // 2) / (time.perf_counter() - start)

    results = {}

    def record(name, value):
        results.setdefault(name, []).append(value)

    for _ in range(reps):
        record("decoder alone (batch 256)", decoder_rate())
        for workers in (0, 2):
            record(f"in-memory real, workers={workers}", loader_rate(memory, real_idx, workers, 40))
            record(f"real only, workers={workers}", loader_rate(ds, real_idx, workers, 40))
            record(
                f"synthetic only, workers={workers}",
                loader_rate(ds, synth_idx, workers, n_batches),
            )
            record(f"balanced mix, workers={workers}", loader_rate(ds, all_idx, workers, n_batches))
    one = OneByOne(ds)
    results["synthetic one image per decoder call, workers=0"] = [
        loader_rate(one, synth_idx, 0, 2) for _ in range(reps)
    ]
    # pool=True: the epoch's synthetic set is decoded once (timed) and then served from
    # shared memory. Filled to 1,000 per class (4,750 synthetic) to keep the fill short;
    # the serving rate does not depend on the pool's size.
    counts = torch.bincount(y).tolist()
    start = time.perf_counter()
    pooled = OversampledDataset(
        memory,
        model,
        sampling_strategy={c: max(n, 1000) for c, n in enumerate(counts)},
        pool=True,
    )
    pool_fill = pooled.n_synthetic / (time.perf_counter() - start)
    pool_idx = list(range(pooled.n_real, len(pooled)))
    n_pool_batches = min(40, len(pool_idx) // 128 - 1)
    for _ in range(reps):
        for workers in (0, 2):
            real_rate = loader_rate(memory, real_idx, workers, 40)
            record(f"in-memory real (pool run), workers={workers}", real_rate)
            pool_rate = loader_rate(pooled, pool_idx, workers, n_pool_batches)
            record(f"synthetic from pool, workers={workers}", pool_rate)
    results["pool fill: decode one epoch's synthetic set"] = [pool_fill]
    return {
        "rates": {name: median(v) for name, v in results.items()},
        "n_real": n_real,
        "n_synthetic": n_total - n_real,
        "n_pool": pooled.n_synthetic,
    }


def render(s):
    """The section's markdown lines, from the keys :func:`run` returns."""
    r = s["rates"]
    dec = r["decoder alone (batch 256)"]
    lines = [
        "### 3. Serving",
        "",
        f"OversampledDataset over Table I counts ({s['n_real']} real + {s['n_synthetic']} "
        "synthetic 1x28x28 uint8 tensors), DataLoader batch 128, random order. Pool rows: "
        f"the same model with `pool=True`, filled to 1,000 per class ({s.get('n_pool')} "
        "synthetic); the fill row is images decoded per second of fill.",
        "",
        "| loader | images/s | vs decoder alone | vs in-memory real (same workers) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for name, v in r.items():
        w = name.rsplit("workers=", 1)[-1] if "workers=" in name else None
        mem = r.get(f"in-memory real, workers={w}") if w else None
        if w and "pool" in name:  # compared with the real loader timed beside it
            mem = r.get(f"in-memory real (pool run), workers={w}")
        lines.append(
            f"| {name} | {fmt(v, 0)} | {v / dec:.2f} | " + (f"{v / mem:.2f}" if mem else "") + " |"
        )
    lines.append("")
    return lines
