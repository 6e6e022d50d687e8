"""Peak memory and wall time of fitting DeepSMOTE on N small images (issue 14, item 4).

The dataset makes every image from its index on demand (uint8 1x16x16: a class pattern plus
noise seeded by the index; 10 classes, counts falling by 0.7 per class), so it holds nothing
itself: what the process needs beyond its baseline is what the library keeps. Each
measurement runs ``OversampledDataset`` (tiny model: ``hidden_channels=4``, ``latent_dim=8``,
one epoch, FAISS neighbours, a fresh ``cache_dir``) in a fresh subprocess, which reports its
own peak resident set (``getrusage(RUSAGE_SELF).ru_maxrss``), its resident set after the
imports and a warm-up fit of 200 images (the baseline) and the wall time of the fit.

Run (writes benchmarks/results/memory/memory-<paths>.json, then the "## How much memory
does it take?" section of benchmarks/RESULTS.md from every memory-*.json in that folder, so
that the paths can be measured in separate runs):

    nice -n 10 python -m benchmarks.memory                  # N = 10k, 100k, 1M
    nice -n 10 python -m benchmarks.memory --quick          # N = 2k, 5k, ~1 min
    nice -n 10 python -m benchmarks.memory --sizes 10000 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.results_md import write_section

HERE = Path(__file__).resolve().parent

__all__ = ["SyntheticImages", "load", "measure", "render", "run"]

SECTION = "## How much memory does it take?"
FULL_SIZES = (10_000, 100_000, 1_000_000)
QUICK_SIZES = (2_000, 5_000)
# What each path passes to OversampledDataset; the keys name the rows of the table.
# NOTE: streaming reads in this process (num_workers=0) so that ru_maxrss covers all of it.
PATHS = {"in-memory": {"in_memory": True}, "streaming": {"in_memory": False}}
N_CLASSES = 10
FIELDS = ("n", "path", "peak_rss_mb", "baseline_rss_mb", "wall_s", "n_synthetic")


class SyntheticImages:
    """A map-style dataset of ``n`` uint8 (1, 16, 16) images made from the index.

    Class ``c`` holds a share of the items proportional to ``0.7**c`` (contiguous index
    ranges, so ``targets`` is cheap); item ``i`` is its class's pattern plus noise from a
    generator seeded with ``i``, the same in every process and every read.

    Args:
        n: Number of items.
        side: Image height and width.
    """

    def __init__(self, n: int, side: int = 16) -> None:
        weights = 0.7 ** np.arange(N_CLASSES)
        counts = np.floor(n * weights / weights.sum()).astype(np.int64)
        counts[0] += n - counts.sum()
        self.bounds = np.cumsum(counts)
        self.targets = np.repeat(np.arange(N_CLASSES), counts).tolist()
        self.classes = list(range(N_CLASSES))
        yy, xx = np.mgrid[0:side, 0:side]
        self.patterns = np.stack(
            [(96 + 80 * np.sin((xx * (c + 1) + yy * (c % 3)) / side * np.pi)) for c in self.classes]
        ).astype(np.int16)[:, None]
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int):
        import torch

        label = int(np.searchsorted(self.bounds, index, side="right"))
        noise = np.random.default_rng(index).integers(-40, 40, self.patterns.shape[1:])
        image = np.clip(self.patterns[label] + noise, 0, 255).astype(np.uint8)
        return torch.from_numpy(image), label


def _rss_mb() -> float:
    # Linux reports ru_maxrss in KiB; the current RSS comes from /proc.
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _child(n: int, path: str, out: str) -> None:
    """Fit in this process and write its measurements to ``out`` (JSON)."""
    import torch

    from torch_deepsmote import OversampledDataset

    torch.set_num_threads(1)

    def fit(dataset: SyntheticImages) -> OversampledDataset:
        with tempfile.TemporaryDirectory(prefix="deepsmote-memory-") as cache_dir:
            oversampled = OversampledDataset(
                dataset,
                cache_dir=cache_dir,
                hidden_channels=4,
                latent_dim=8,
                max_epochs=1,
                knn="faiss",
                random_state=0,
                progress=False,
                device="cpu",
                **PATHS[path],
            )
            oversampled[len(oversampled) - 1]  # one synthetic item, read as a user would
        return oversampled

    # A warm-up fit loads the lazy imports (h5py, FAISS) and the allocators' first pools,
    # so the baseline holds what any fit costs and peak - baseline what N costs.
    fit(SyntheticImages(200))
    baseline = _rss_mb()
    dataset = SyntheticImages(n)
    start = time.perf_counter()
    oversampled = fit(dataset)
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record = dict(
        n=n,
        path=path,
        peak_rss_mb=round(peak, 1),
        baseline_rss_mb=round(baseline, 1),
        wall_s=round(wall, 2),
        n_synthetic=oversampled.n_synthetic,
    )
    Path(out).write_text(json.dumps(record))


def measure(n: int, path: str = "in-memory") -> dict:
    """Fit on ``n`` images along ``path`` in a fresh subprocess; its measurements.

    Args:
        n: Number of images.
        path: A key of ``PATHS``.

    Returns:
        ``{n, path, peak_rss_mb, baseline_rss_mb, wall_s, n_synthetic}``.

    Raises:
        ValueError: An unknown ``path``.
        RuntimeError: The subprocess failed (its stderr tail in the message).
    """
    if path not in PATHS:
        raise ValueError(f"`path` should be one of {sorted(PATHS)}, but got path={path!r}.")
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "record.json")
        command = [sys.executable, "-m", "benchmarks.memory", "--child", str(n), path, out]
        done = subprocess.run(command, capture_output=True, text=True, cwd=HERE.parent)
        if done.returncode != 0:
            raise RuntimeError(
                f"measuring n={n} path={path!r} failed (exit {done.returncode}): "
                f"{done.stderr[-2000:]}"
            )
        return json.loads(Path(out).read_text())


def run(sizes, paths, out_dir: str | os.PathLike, repeats: int = 1, log=print) -> dict:
    """Measure every (size, path) ``repeats`` times; write and return the JSON report.

    Returns:
        ``{"machine", "versions", "records": [measure(...), ...]}``, also written to
        ``out_dir/memory-<paths>.json`` (after every measurement), where the rows of
        sizes not measured now are kept.
    """
    import torch

    report = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "versions": f"torch {torch.__version__}, Python {platform.python_version()}",
        "records": [],
    }
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    out = out_dir / f"memory-{'-'.join(paths)}.json"
    if out.exists():  # keep the other sizes' rows: a run of one size replaces only its own
        measured = {(n, path) for n in sizes for path in paths}
        kept = json.loads(out.read_text())["records"]
        report["records"] = [r for r in kept if (r["n"], r["path"]) not in measured]
    for n in sizes:
        for path in paths:
            for _ in range(repeats):
                record = measure(n, path)
                log(record)
                report["records"].append(record)
                out.write_text(json.dumps(report, indent=1))
    return report


def load(out_dir: str | os.PathLike) -> dict:
    """Every ``memory-*.json`` of ``out_dir`` as one report (the first one's machine)."""
    reports = [json.loads(p.read_text()) for p in sorted(Path(out_dir).glob("memory-*.json"))]
    if not reports:
        raise FileNotFoundError(f"No memory-*.json in {out_dir}: run the benchmark first.")
    return {**reports[0], "records": [r for report in reports for r in report["records"]]}


def render(report: dict, command: str) -> str:
    """The RESULTS.md section: mean peak RSS and wall time per (N, path)."""
    groups: dict = {}
    for record in report["records"]:
        groups.setdefault((record["n"], record["path"]), []).append(record)
    lines = [
        SECTION,
        "",
        f"`{command}`, on {report['machine']} ({report['versions']}); a 2-core machine "
        "shared with a long benchmark, so wall times are loose. Fit of "
        "`OversampledDataset` with a tiny model (hidden_channels=4, latent_dim=8, 1 epoch, "
        "FAISS neighbours, a fresh cache_dir) on N uint8 1x16x16 images made on the fly "
        "(10 classes, 0.7 ratio), each run in a fresh process; in-memory is "
        "`in_memory=True` (every image in one tensor, codes and residuals in memory), "
        "streaming `in_memory=False` (images in an HDF5 file in the cache folder, read a "
        "batch at a time; residuals written to a file batch by batch, copied into the cache "
        "block by block and read by rows per batch). `in_memory='auto'`, the default, "
        "streams only with a cache_dir and data over a quarter of the available memory. "
        "Peak RSS is the process's `ru_maxrss`, baseline its RSS after the imports and a "
        "warm-up fit on 200 images. Means of the runs listed.",
        "",
        "| N | path | runs | peak RSS MB | baseline MB | peak - baseline MB | wall s |",
        "|---:|---|---:|---:|---:|---:|---:|",
    ]
    for (n, path), records in sorted(groups.items()):
        peak = np.mean([r["peak_rss_mb"] for r in records])
        base = np.mean([r["baseline_rss_mb"] for r in records])
        wall = np.mean([r["wall_s"] for r in records])
        lines.append(
            f"| {n:,} | {path} | {len(records)} | {peak:.0f} | {base:.0f} | "
            f"{peak - base:.0f} | {wall:.1f} |"
        )
    lines += [
        "",
        "What streaming still holds per image (about 200 bytes at 1M, against about 1 KB in "
        "memory): the codes (latent_dim float32), the neighbour table (k int64), the labels, "
        "the epoch's plan of the synthetic items (base, neighbour, lam, label) and the "
        "dataset's `targets` list. The images (256 B each here) and their float16 residuals "
        "(512 B) stay on disk.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help=f"N = {QUICK_SIZES}")
    parser.add_argument("--sizes", help="comma-separated N (overrides --quick)")
    parser.add_argument("--paths", default=",".join(PATHS), help="comma-separated")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--out", default=str(HERE / "results" / "memory"))
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--render-only", action="store_true", help="table from --out only")
    parser.add_argument("--no-write", action="store_true", help="leave RESULTS.md alone")
    parser.add_argument("--child", nargs=3, metavar=("N", "PATH", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(int(args.child[0]), args.child[1], args.child[2])
        return 0
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    if args.sizes:
        sizes = tuple(int(s) for s in args.sizes.split(","))
    if not args.render_only:
        run(sizes, args.paths.split(","), args.out, args.repeats)
    command = "python -m benchmarks.memory " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(load(args.out), command.strip())
    print(text)
    if not args.no_write:
        write_section(args.results, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
