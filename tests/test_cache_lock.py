"""Several processes on one cache folder: one fits, the others wait and load; no deadlock."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import time

import pytest
import torch
from filelock import FileLock
from helpers import FIT, make_shapes
from torch.utils.data import DataLoader, TensorDataset

from torch_deepsmote import OversampledDataset
from torch_deepsmote.persistence.model_cache import CACHE_NAME, LOCK_SUFFIX

# Enough epochs that a second process starts while the first is still training.
FIT = dict(FIT, max_epochs=3)


def _base() -> TensorDataset:
    X, y = make_shapes((40, 16, 6))
    return TensorDataset(torch.from_numpy(X), torch.from_numpy(y))


def _fit_and_read(cache_dir: str, start, queue) -> None:
    """Child: count its own trainings, build the dataset, read it through 2 workers."""
    import torch_deepsmote.fitting as fitting_module

    torch.set_num_threads(1)
    trained = []
    fit = fitting_module.fit_autoencoder
    fitting_module.fit_autoencoder = lambda *a, **k: trained.append(1) or fit(*a, **k)
    start.wait()
    ds = OversampledDataset(_base(), cache_dir=cache_dir, **FIT)
    ds.set_epoch(1)
    digest = hashlib.sha256()
    for images, targets in DataLoader(ds, batch_size=16, num_workers=2):
        digest.update(images.numpy().tobytes() + targets.numpy().tobytes())
    queue.put((len(trained), digest.hexdigest()))


def _hold(lock_path: str, held) -> None:
    lock = FileLock(lock_path)
    lock.acquire()
    held.set()
    time.sleep(600)  # until killed


@pytest.fixture()
def spawn():
    return multiprocessing.get_context("spawn")


def test_two_processes_on_one_cache_train_once_and_serve_the_same_items(tmp_path, spawn):
    start, queue = spawn.Event(), spawn.Queue()
    children = [
        spawn.Process(target=_fit_and_read, args=(str(tmp_path), start, queue)) for _ in range(2)
    ]
    for child in children:
        child.start()
    start.set()
    results = [queue.get(timeout=240) for _ in children]
    for child in children:
        child.join(timeout=60)
        assert child.exitcode == 0
    assert sorted(n for n, _ in results) == [0, 1]  # one trained, the other loaded its result
    assert results[0][1] == results[1][1]  # and both served the same epoch, item for item
    # The parent, a third process, loads the same file and serves the same epoch.
    ds = OversampledDataset(_base(), cache_dir=tmp_path, **FIT)
    ds.set_epoch(1)
    digest = hashlib.sha256()
    for images, targets in DataLoader(ds, batch_size=16):
        digest.update(images.numpy().tobytes() + targets.numpy().tobytes())
    assert digest.hexdigest() == results[0][1]


def test_a_held_lock_times_out_naming_the_file_and_a_killed_holder_frees_it(tmp_path, spawn):
    lock_path = str(tmp_path / (CACHE_NAME + LOCK_SUFFIX))
    held = spawn.Event()
    holder = spawn.Process(target=_hold, args=(lock_path, held))
    holder.start()
    try:
        assert held.wait(timeout=120)
        with pytest.raises(TimeoutError, match=r"lock_timeout=0\.2 s .*deepsmote\.h5\.lock"):
            OversampledDataset(_base(), cache_dir=tmp_path, lock_timeout=0.2, **FIT)
    finally:
        os.kill(holder.pid, signal.SIGKILL)  # dies holding the lock, leaving its file behind
        holder.join()
    assert os.path.exists(lock_path)
    ds = OversampledDataset(_base(), cache_dir=tmp_path, lock_timeout=30, **FIT)
    assert len(ds) == 3 * 40 and os.path.exists(tmp_path / CACHE_NAME)


@pytest.mark.parametrize("value", [-1, "soon", float("nan")])
def test_bad_lock_timeout_is_refused(tmp_path, value):
    with pytest.raises((TypeError, ValueError), match="lock_timeout"):
        OversampledDataset(_base(), cache_dir=tmp_path, lock_timeout=value, **FIT)
