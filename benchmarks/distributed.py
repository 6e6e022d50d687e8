"""One process against two gloo processes fitting the same DeepSMOTE (issue 15, item 5).

Each configuration runs in a fresh subprocess: ``world`` ranks (``torch.multiprocessing``
spawn, gloo, a file rendezvous) with ``threads`` intra-op threads each fit the bundled
imbalanced Fashion-MNIST subset (2,249 images of 28x28, classes of 1,000 down to 10)
through ``DeepSMOTE.fit``: training for ``--epochs`` epochs (no early stop), then encoding,
residuals and the neighbour table. Rank 0 reports the training seconds per epoch (from the
model's history: the collectives included, the process start and the imports not), the
seconds of encoding + residuals + neighbours, and the last epoch's loss. Throughput is
training images per second: in total, and per process.

The two-process run uses ``batch_size / world`` images per rank and step, so that every
step sees as many images as one process does (the rule the docs give for matching one
process); its loss differs only by per-rank BatchNorm statistics and penalty draws.

Run (writes benchmarks/results/distributed/distributed.json and the "## Distributed
(issue 15)" section of benchmarks/RESULTS.md):

    nice -n 10 python -m benchmarks.distributed              # hidden 16, 3 epochs, ~3 min
    nice -n 10 python -m benchmarks.distributed --quick      # hidden 4, 1 epoch, ~30 s
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.results_md import write_section

HERE = Path(__file__).resolve().parent

__all__ = ["CONFIGS", "render", "run"]

SECTION = "## What does it cost under torch.distributed?"
# (label, world size, threads per process)
CONFIGS = (
    ("1 process, 1 thread", 1, 1),
    ("1 process, 2 threads", 1, 2),
    ("2 gloo processes, 1 thread each", 2, 1),
)
BATCH = 100


def _rank(rank: int, world: int, threads: int, options: dict, out: str, folder: str) -> None:
    import torch
    import torch.distributed as dist

    from torch_deepsmote import DeepSMOTE
    from torch_deepsmote.data import load_fashion_mnist_imbalanced

    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group(
            "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world
        )
    images, labels = load_fashion_mnist_imbalanced()
    model = DeepSMOTE(**options, batch_size=BATCH // world, random_state=0, progress=False)
    start = time.perf_counter()
    model.fit(images, labels)  # training, encoding, residuals, neighbours
    total = time.perf_counter() - start
    if rank == 0:
        train = sum(e["seconds"] for e in model.history_)
        Path(out).write_text(
            json.dumps(
                {
                    "images": len(labels),
                    "epoch_s": train / len(model.history_),
                    "after_training_s": total - train,
                    "loss": model.history_[-1]["loss"],
                }
            )
        )
    if world > 1:
        dist.destroy_process_group()


def _worker(world: int, threads: int, options: dict, out: str) -> None:
    import torch.multiprocessing as mp

    with tempfile.TemporaryDirectory() as folder:
        if world == 1:
            _rank(0, 1, threads, options, out, folder)
        else:
            mp.spawn(_rank, args=(world, threads, options, out, folder), nprocs=world)


def measure(world: int, threads: int, options: dict) -> dict:
    """One configuration in a fresh subprocess; rank 0's numbers."""
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "result.json")
        env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
        code = (
            "from benchmarks import distributed; "
            f"distributed._worker({world}, {threads}, {options!r}, {out!r})"
        )
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=HERE.parent)
        result = json.loads(Path(out).read_text())
    per_process = result["images"] / result["epoch_s"] / world
    return {
        **result,
        "world": world,
        "threads": threads,
        "batch_per_rank": BATCH // world,
        "images_per_s": result["images"] / result["epoch_s"],
        "images_per_s_per_process": per_process,
    }


def render(results: dict) -> str:
    rows = results["rows"]
    base = rows[0]["images_per_s"]
    lines = [
        SECTION,
        "",
        f"`{results['command']}` on {results['machine']}. The bundled imbalanced "
        f"Fashion-MNIST subset ({rows[0]['images']} images of 28x28), the paper's "
        f"architecture at hidden_channels={results['options']['hidden_channels']}, "
        f"{results['options']['max_epochs']} epochs, {BATCH} images per step in total "
        "(batch_size / world per rank). Training throughput from the models' per-epoch "
        "seconds (collectives included, process start excluded); 'after training' is "
        "encoding, residuals and the neighbour table (sharded by rows and by class across "
        "ranks).",
        "",
        "| configuration | batch per rank | s / epoch | images/s total | images/s per process "
        "| ratio to 1 process, 1 thread | after training (s) | last epoch loss |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, row in zip(results["labels"], rows):
        lines.append(
            f"| {label} | {row['batch_per_rank']} | {row['epoch_s']:.2f} | "
            f"{row['images_per_s']:.0f} | {row['images_per_s_per_process']:.0f} | "
            f"{row['images_per_s'] / base:.2f} | {row['after_training_s']:.2f} | "
            f"{row['loss']:.4f} |"
        )
    lines += ["", results["note"], ""]
    return "\n".join(lines)


def run(quick: bool, write: bool) -> dict:
    options = (
        dict(hidden_channels=4, latent_dim=16, max_epochs=1, patience=0)
        if quick
        else dict(hidden_channels=16, max_epochs=3, patience=0)
    )
    rows = [measure(world, threads, options) for _, world, threads in CONFIGS]
    results = {
        "command": "python -m benchmarks.distributed" + (" --quick" if quick else ""),
        "machine": f"{os.cpu_count()} CPU cores ({platform.machine()}), shared",
        "options": options,
        "labels": [label for label, _, _ in CONFIGS],
        "rows": rows,
        "note": (
            "Measured on 2 CPU cores (the long benchmark on the other core paused): two "
            "threads in one process beat two gloo processes, whose gradient all-reduce at "
            "every step and half-size batches per rank cost more than the second process "
            "gains. DDP is for several GPUs or machines, each rank with its own device; on "
            "the cores of one CPU, give one process the threads. The loss of the "
            "two-process run is close to, not equal to, the one-process loss: BatchNorm "
            "normalises over each rank's half batch, and each rank draws its own penalty "
            "class per step."
        ),
    }
    print(render(results))
    if write:
        folder = HERE / "results" / "distributed"
        folder.mkdir(parents=True, exist_ok=True)
        name = "distributed-quick.json" if quick else "distributed.json"
        (folder / name).write_text(json.dumps(results, indent=2) + "\n")
        if not quick:
            write_section(HERE / "RESULTS.md", render(results))
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny model, one epoch")
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    run(args.quick, not args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
