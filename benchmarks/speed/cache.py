"""Section 5, cache reads: latents/s from the HDF5 cache.

Whole-class reads (scattered rows) and random batches of 256 through a DataLoader with 2
workers, each opening the file itself as the library's datasets do.
"""

from __future__ import annotations

import os
import tempfile
import time
from statistics import median

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from torch_deepsmote.storage.hdf5 import CacheFile, write_cache

from .common import fmt, time_it

__all__ = ["render", "run"]


class CacheRows(Dataset):
    """Rows of the cache's latents, read one batch per call."""

    def __init__(self, path, n):
        self.cache, self.n = CacheFile(path), n

    def __len__(self):
        return self.n

    def __getitems__(self, indices):
        return self.cache.rows("latents", torch.as_tensor(indices))

    def __getitem__(self, i):
        return self.cache.rows("latents", [i])[0]


def run(quick, device):
    """Latents/s of whole-class reads and of random DataLoader batches."""
    n, d = 60_000, 300
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((n, d), dtype=np.float32)
    labels = rng.integers(0, 10, n)
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "deepsmote.h5")
    write_cache(path, arrays={"latents": latents, "labels": labels}, blobs={}, attrs={})
    cache = CacheFile(path).open()
    reps = 3
    class_rows = [np.flatnonzero(labels == c) for c in range(10)]
    whole = time_it(lambda: [cache.rows("latents", r) for r in class_rows], reps)
    ds = CacheRows(path, n)
    n_batches = 50 if quick else 200

    def loader_pass():
        loader = DataLoader(
            ds,
            batch_size=256,
            shuffle=True,
            num_workers=2,
            collate_fn=lambda b: b,
            generator=torch.Generator().manual_seed(0),
        )
        it = iter(loader)
        next(it)
        start = time.perf_counter()
        for _ in range(n_batches):
            next(it)
        return 256 * n_batches / (time.perf_counter() - start)

    rates = [loader_pass() for _ in range(reps)]
    return {
        "n": n,
        "d": d,
        "whole_class_latents_per_s": n / whole,
        "random_256_latents_per_s_workers2": median(rates),
    }


def render(c):
    """The section's markdown lines, from the keys :func:`run` returns."""
    return [
        "### 5. Cache reads",
        "",
        f"{c['n']:,} x {c['d']} float32 latents, contiguous and uncompressed (the layout "
        "chosen from the measurements in torch_deepsmote/cache.py: chunking slowed random "
        "rows 4-8x and float latents do not compress). Whole-class reads (10 classes, "
        f"scattered rows): {fmt(c['whole_class_latents_per_s'])} latents/s. Random batches "
        f"of 256 through a DataLoader with 2 workers: "
        f"{fmt(c['random_256_latents_per_s_workers2'])} latents/s.",
        "",
    ]
