"""Speed of torch_deepsmote against the published design (issue 4).

Every figure is a ratio of two things timed in the same run (median of several repetitions,
interleaved so that a neighbour's load hits both alike). Sections, one module each in
``benchmarks/speed/`` (its run and its table):

1. train    training throughput of ``fit_autoencoder`` against a re-implementation of the
            published step (numpy class sampling every step, penalty codes through numpy),
            at 1x28x28 and 3x32x32; bf16 + channels_last; GFLOP/s against a large matmul.
2. quality  held-out reconstruction loss against training seconds, published recipe vs
            the library's loop with its plateau stop.
3. serve    images/s a DataLoader gets from OversampledDataset (real, synthetic, balanced
            mix; workers 0 and 2) against in-memory real images, the decoder alone (batch
            256) and a one-image-per-decoder-call loader; and from ``pool=True`` (each
            epoch's synthetic set decoded once into shared memory).
4. knn      per-class neighbour table + SMOTE plan for Table I counts (FAISS, torch,
            scikit-learn), and one class of 200,000 codes of size 600.
5. cache    latents/s from the HDF5 cache: whole-class reads and random batches of 256 in a
            DataLoader with 2 workers.

Run (writes the "## How fast is it, against what?" section of benchmarks/RESULTS.md):

    flock /tmp/deepsmote-cpu.lock python -m benchmarks.bench_speed          # ~15 min, 2 cores
    flock /tmp/deepsmote-cpu.lock python -m benchmarks.bench_speed --quick  # ~2-3 min

The section is rewritten with the sections of this run only: to rerun one, add
``--sections knn --no-write --json /tmp/speed.json`` and copy its part into RESULTS.md.
The device is CUDA when available, else CPU; FAISS-GPU is used only when FAISS sees a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from benchmarks.results_md import write_section
from benchmarks.speed.report import SECTIONS, render

HERE = Path(__file__).resolve().parent
DEFAULT_SECTIONS = ",".join(SECTIONS)


def environment(device):
    """The ``machine`` and ``versions`` lines of the report."""
    machine = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
    if device.type == "cuda":
        machine += f", {torch.cuda.get_device_name()}"
    versions = (
        f"torch {torch.__version__}, numpy {np.__version__}, Python {platform.python_version()}"
    )
    try:
        import faiss
        import h5py
        import sklearn

        versions += (
            f", faiss {faiss.__version__}, scikit-learn {sklearn.__version__}, "
            f"h5py {h5py.__version__}"
        )
    except ImportError:
        pass
    return {"machine": machine, "versions": versions}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, ~2-3 minutes")
    parser.add_argument("--sections", default=DEFAULT_SECTIONS, help="comma-separated subset")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--json", default=str(HERE / "out" / "speed.json"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    out = environment(device)
    json_path = Path(args.json)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    for name in args.sections.split(","):
        t = time.perf_counter()
        try:
            out[name] = SECTIONS[name].run(args.quick, device)
            print(out[name], flush=True)
        except Exception as error:  # report the other sections all the same
            traceback.print_exc()
            out.setdefault("errors", {})[name] = repr(error)
        print(f"[{name}] {time.perf_counter() - t:.0f} s", flush=True)
        out["wall_s"] = time.perf_counter() - start
        json_path.write_text(json.dumps(out, indent=1, default=str))  # partial, so far
    flags = " --quick" if args.quick else ""
    if args.sections != DEFAULT_SECTIONS:
        flags += f" --sections {args.sections}"
    text = render(out, flags, device)
    print(text)
    if not args.no_write:
        write_section(args.results, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
