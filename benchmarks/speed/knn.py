"""Section 4, neighbour search and the SMOTE plan.

The per-class neighbour table and the plan for 'auto' on 9,000 codes in Table I counts, for
each backend (FAISS where it is installed, torch, scikit-learn); then one class of 200,000
codes of size 600 through FAISS's approximate index, with its recall against exact search.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from torch_deepsmote.data import TABLE_I_TRAIN
from torch_deepsmote.knn import FaissKNN, SklearnKNN, TorchKNN, class_neighbors
from torch_deepsmote.smote import plan_synthetic, resolve_sampling_strategy

from .common import time_it

__all__ = ["render", "run"]


def run(quick, device):
    """Seconds per backend for Table I counts, and the 200,000-code search (with FAISS)."""
    from sklearn.neighbors import NearestNeighbors

    rng = np.random.default_rng(0)  # one stream: the big search draws after the table
    backends = {}
    try:  # FaissKNN raises ImportError without FAISS (the GPU machine lacks its wheel)
        backends["faiss"] = FaissKNN(use_gpu=None)
    except ImportError:
        pass
    backends["torch"] = TorchKNN()
    backends["scikit-learn"] = SklearnKNN(NearestNeighbors(algorithm="auto"))
    result = {"table_i": table_i(backends, 2 if quick else 3, device, rng)}
    if "faiss" not in backends:
        print("no faiss: the 200,000-code search is skipped", flush=True)
        return result
    result["big"] = big_search(50_000 if quick else 200_000, 600, rng)
    return result


def table_i(backends, reps, device, rng):
    """Seconds of the neighbour table + plan for 9,000 codes in Table I counts, and of the
    class of 4,000 alone, per backend."""
    labels = torch.from_numpy(np.repeat(np.arange(10), TABLE_I_TRAIN))
    # Codes with the low-dimensional structure of an autoencoder's: 32 factors, 300 sizes.
    factors = torch.from_numpy(rng.standard_normal((len(labels), 32), dtype=np.float32))
    mix = torch.from_numpy(rng.standard_normal((32, 300), dtype=np.float32))
    centres = torch.from_numpy(rng.standard_normal((10, 300), dtype=np.float32))
    latents = factors @ mix + 3 * centres[labels]
    latents += 0.1 * torch.from_numpy(rng.standard_normal(latents.shape, dtype=np.float32))
    x_dev = latents.to(device)
    n_new = resolve_sampling_strategy("auto", labels)
    rows = {}
    for name, backend in backends.items():
        points = x_dev if name == "torch" else latents
        table = {}

        def table_and_plan(backend=backend, points=points, table=table):
            table["r"] = class_neighbors(points, labels, 5, knn=backend)
            plan_synthetic(n_new, labels, *table["r"], torch.Generator().manual_seed(0))

        table_and_plan()
        first = points[labels.to(points.device) == 0]
        rows[name] = {
            "all classes + plan s": time_it(table_and_plan, reps, device),
            "class of 4000 s": time_it(
                lambda b=backend, p=first: b.kneighbors(p, 5),
                reps,
                device,
            ),
        }
    return rows


def big_search(n, d, rng):
    """FAISS's approximate search in one class of ``n`` codes of size ``d``: seconds, recall
    against exact search and the extrapolated cost of exact search.

    The codes are a mixture of 2,000 clusters in a 48-factor subspace plus noise (codes of
    one class gather by style; plain Gaussian factors, with no cluster at all, are the worst
    case for a cell index).
    """
    mix = torch.from_numpy(rng.standard_normal((48, d), dtype=np.float32))
    centres = torch.from_numpy(rng.standard_normal((2000, 48), dtype=np.float32))
    member = torch.from_numpy(rng.integers(0, 2000, n))
    factors = centres[member] + 0.5 * torch.from_numpy(
        rng.standard_normal((n, 48), dtype=np.float32)
    )
    big = factors @ mix + 0.1 * torch.from_numpy(rng.standard_normal((n, d), dtype=np.float32))
    # About sqrt(nprobe * n) cells (see FaissKNN); the candidates measured against each
    # other are in benchmarks/results/performance_notes.md.
    nlist = 1024 if n >= 100_000 else 512
    ivf = FaissKNN(nlist=nlist, nprobe=8)
    start = time.perf_counter()
    found = ivf.kneighbors(big, 5)
    ivf_s = time.perf_counter() - start
    # Recall against exact search for 1,000 random queries.
    q = torch.from_numpy(rng.choice(n, 1000, replace=False))
    norms = (big * big).sum(1)
    dist = norms[None, :] - 2 * big[q] @ big.T
    dist[torch.arange(len(q)), q] = float("inf")
    exact = torch.topk(dist, 5, dim=1, largest=False).indices
    recall = float(
        np.mean([len(set(a.tolist()) & set(b.tolist())) / 5 for a, b in zip(found[q], exact)])
    )
    # Exact cost, extrapolated from exact FAISS on 20,000 queries against all n.
    import faiss

    index = faiss.IndexFlatL2(d)
    index.add(big.numpy())
    sub = big[:20_000].numpy()
    start = time.perf_counter()
    index.search(sub, 6)
    exact_s = (time.perf_counter() - start) * n / len(sub)
    return {
        "n": n,
        "d": d,
        "backend": repr(ivf),
        "seconds": ivf_s,
        "recall_at_5": recall,
        "exact_faiss_seconds_extrapolated": exact_s,
    }


def render(k):
    """The section's markdown lines, from the keys :func:`run` returns."""
    sk = k["table_i"]["scikit-learn"]
    lines = [
        "### 4. Neighbour search and the SMOTE plan",
        "",
        "9,000 codes of size 300 in Table I counts (32-factor structure plus noise), k=5: "
        "per-class table for all classes plus the plan for 'auto'; and the class of 4,000.",
        "",
        "| backend | all classes + plan s | vs scikit-learn | class of 4,000 s | vs scikit-learn |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name, v in k["table_i"].items():
        lines.append(
            f"| {name} | {v['all classes + plan s']:.3f} | "
            f"{sk['all classes + plan s'] / v['all classes + plan s']:.2f}x | "
            f"{v['class of 4000 s']:.3f} | "
            f"{sk['class of 4000 s'] / v['class of 4000 s']:.2f}x |"
        )
    b = k.get("big")
    lines.append(
        f"\nOne class of {b['n']:,} codes of size {b['d']} (2,000 clusters in a 48-factor "
        "subspace, plus noise): "
        f"`{b['backend']}` (approximate) {b['seconds']:.1f} s, recall@5 {b['recall_at_5']:.3f} "
        f"on 1,000 queries against exact search; exact FAISS would take about "
        f"{b['exact_faiss_seconds_extrapolated']:.0f} s (extrapolated from 20,000 queries)."
        if b
        else "\nThe 200,000-code search needs FAISS, which this machine lacks: skipped."
    )
    lines.append("")
    return lines
