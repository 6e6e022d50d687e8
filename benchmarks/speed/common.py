"""What every section shares: timing on CPU or CUDA, the [-1, 1] scale, Fashion-MNIST."""

from __future__ import annotations

import time
from pathlib import Path
from statistics import median

import torch

from torch_deepsmote.data import fashion_mnist

__all__ = ["fmt", "load_fashion_mnist", "sync", "time_it", "to_unit"]


def sync(device):
    """Wait for queued CUDA kernels, so that a timer around them measures them."""
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def time_it(fn, reps, device=None):
    """Median seconds of ``fn()``; on CUDA, waits for the queued kernels at both ends."""
    times = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return median(times)


def to_unit(x):
    """uint8 images to the decoder's [-1, 1] scale."""
    return x.float() / 127.5 - 1


def fmt(v, digits=0):
    return f"{v:,.{digits}f}"


def load_fashion_mnist(train: bool):
    """torchvision's FashionMNIST through the library's reader (``.data`` uint8 (N, 28, 28),
    ``.targets`` int64 (N,)).

    NOTE: benchmarks/device_check.sh copies the IDX .gz files into ``FashionMNIST/raw`` of
    the checkout, because the device machine has no /usr/share/datasets; that folder is
    torchvision's layout under the root ``.``. Elsewhere the library's default root is used.
    """
    root = "." if Path("FashionMNIST", "raw").is_dir() else None
    return fashion_mnist(root, train=train)
