"""Streaming fit (issue 14 item 4): images read by DataLoader workers into an HDF5 store."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import pytest
import torch
from torch.utils.data import Dataset, TensorDataset

from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.reading import read_dataset
from torch_deepsmote.storage.fingerprint import fingerprint_arrays
from torch_deepsmote.storage.image_store import H5Images, H5ImagesWriter

FIT = dict(latent_dim=4, hidden_channels=4, max_epochs=2, batch_size=16, knn="torch")


def _images(n=90, seed=0):
    generator = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 256, (n, 1, 8, 8), dtype=torch.uint8, generator=generator)
    labels = torch.tensor([0] * (n - n // 3) + [1] * (n // 3))
    return images, labels


def _store(tmp_path, images):
    writer = H5ImagesWriter(tmp_path / "images.h5", len(images) + 5, images[0])
    for row in images:
        writer.append(row)
    return writer.close()


def test_store_rows_read_like_tensor_rows_in_any_order_with_repeats(tmp_path):
    images, _ = _images(50)
    store = _store(tmp_path, images)
    rows = torch.tensor([[49, 0], [7, 7], [3, 48]])
    assert store.shape == images.shape and store.dtype == images.dtype and len(store) == 50
    assert torch.equal(store[rows], images[rows]) and torch.equal(store[10:20], images[10:20])
    assert torch.equal(store[-1], images[-1])
    assert fingerprint_arrays(torch.arange(3), store) == fingerprint_arrays(torch.arange(3), images)
    with pytest.raises(IndexError, match="should lie in"):
        store[torch.tensor([50])]


def test_streamed_fit_gives_the_same_model_as_the_in_memory_fit(tmp_path):
    images, labels = _images()
    dataset = TensorDataset(images, labels)
    kwargs = dict(random_state=3, progress=False, device="cpu", **FIT)
    memory = OversampledDataset(dataset, cache_dir=tmp_path / "a", **kwargs)
    streamed = OversampledDataset(
        dataset, cache_dir=tmp_path / "b", in_memory=False, num_workers=2, **kwargs
    )
    a, b = memory.model, streamed.model
    # The streamed dataset keeps no codes or residuals in memory: batches read their rows.
    assert memory.synthesizer.in_memory and not streamed.synthesizer.in_memory
    synthetic = list(range(memory.n_real, len(memory)))
    for x, y in zip(memory.__getitems__(synthetic), streamed.__getitems__(synthetic)):
        assert torch.equal(x[0], y[0]) and torch.equal(x[1], y[1])
    # Loaded from its cache, it reads the residuals by rows too, and serves the same items.
    again = OversampledDataset(
        dataset, cache_dir=tmp_path / "b", in_memory=False, on_mismatch="raise", **kwargs
    )
    assert not again.synthesizer.in_memory
    assert torch.equal(again[len(again) - 1][0], streamed[len(streamed) - 1][0])
    assert a.data_fingerprint_ == b.data_fingerprint_
    for key, value in a.decoder_.state_dict().items():
        assert torch.equal(value, b.decoder_.state_dict()[key]), key
    assert torch.equal(a.latents_, b.latents_) and torch.equal(a.residuals_, b.residuals_)
    assert torch.equal(memory[len(memory) - 1][0], streamed[len(streamed) - 1][0])
    assert not [name for name in os.listdir(tmp_path / "b") if name.startswith("images-")]


class _Raising(Dataset):
    def __init__(self, bad):
        self.images, self.labels = _images(40)
        self.bad = bad

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        if i in self.bad:
            raise OSError(f"cannot decode item {i}")
        return self.images[i], int(self.labels[i])


def test_workers_name_the_bad_item_and_chain_its_error():
    with pytest.raises(ValueError, match="dataset item 17 could not be read") as info:
        read_dataset(_Raising({17}), num_workers=2)
    assert isinstance(info.value.__cause__, OSError)
    # The workers are shut down with the error, not left to the collection of its traceback.
    assert multiprocessing.active_children() == []


def test_workers_and_the_store_skip_bad_items_like_the_in_process_read(tmp_path):
    dataset = _Raising({3, 30})
    with pytest.warns(UserWarning, match="Skipped 2"):
        plain = read_dataset(dataset, on_bad_item="skip")
    with pytest.warns(UserWarning, match="Skipped 2"):
        streamed = read_dataset(dataset, on_bad_item="skip", num_workers=2, store=tmp_path / "s.h5")
    assert isinstance(streamed.images, H5Images) and len(streamed.images) == 38
    assert torch.equal(streamed.images[0:38], plain.images)
    assert torch.equal(streamed.indices, plain.indices) and streamed.skipped == plain.skipped
    assert streamed.image_format == plain.image_format


def test_in_memory_false_needs_a_cache_dir():
    images, labels = _images()
    with pytest.raises(ValueError, match="in_memory=False"):
        OversampledDataset(TensorDataset(images, labels), in_memory=False, progress=False, **FIT)


def test_in_memory_auto_streams_only_what_would_not_fit(tmp_path):
    from torch_deepsmote.reading import available_memory, fits_in_memory

    row = torch.zeros(1, 16, 16, dtype=torch.uint8)
    assert available_memory() > 0
    assert fits_in_memory(1000, row) and not fits_in_memory(10**13, row)
    images, labels = _images()
    small = OversampledDataset(
        TensorDataset(images, labels), cache_dir=tmp_path, progress=False, **FIT
    )
    assert small.synthesizer.in_memory  # the default, 'auto', keeps small data in memory
    assert sorted(os.listdir(tmp_path)) == ["deepsmote.h5", "deepsmote.h5.lock"]
    with pytest.raises(ValueError, match="True, False or 'auto', but got in_memory='yes'"):
        OversampledDataset(TensorDataset(images, labels), in_memory="yes", **FIT)


def test_fit_dataset_reads_with_workers_like_in_process():
    images, labels = _images(40)
    dataset = TensorDataset(images, labels)
    a = DeepSMOTE(random_state=0, progress=False, **FIT).fit_dataset(dataset)
    b = DeepSMOTE(random_state=0, progress=False, **FIT).fit_dataset(dataset, num_workers=2)
    assert a.data_fingerprint_ == b.data_fingerprint_ and torch.equal(a.latents_, b.latents_)


def test_fits_on_one_store_keep_their_own_residuals_and_save_whole(tmp_path):
    images, labels = _images(40)
    writer = H5ImagesWriter(tmp_path / "images.h5", n=40, row=images[0])
    writer.extend(images)
    store = writer.close()
    form = read_dataset(TensorDataset(images, labels)).image_format
    a = DeepSMOTE(random_state=0, progress=False, **FIT).fit(store, labels, image_format=form)
    first = a.residuals_[torch.arange(5)].clone()
    b = DeepSMOTE(random_state=1, progress=False, **FIT).fit(store, labels, image_format=form)
    assert torch.equal(a.residuals_[torch.arange(5)], first)
    assert not torch.equal(b.residuals_[torch.arange(5)], first)
    a.save(tmp_path / "a.pt")  # the residuals kept on disk are read into the one file
    loaded = DeepSMOTE.load(tmp_path / "a.pt")
    assert torch.equal(loaded.residuals_[:5], first)
    assert torch.equal(
        loaded.synthesize(loaded.plan(random_state=0)), a.synthesize(a.plan(random_state=0))
    )


def test_a_new_store_sweeps_the_stores_of_dead_processes_of_this_machine(tmp_path):
    import socket

    from torch_deepsmote.storage.image_store import new_store

    host = socket.gethostname().replace("-", "_")
    dead = tmp_path / f"images-{host}-999999999-abcd.h5"
    other_host = tmp_path / "images-elsewhere-999999999-abcd.h5"
    for path in (dead, Path(f"{dead}.residuals-0123.h5"), other_host):
        path.write_bytes(b"x")
    path = new_store(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [other_host.name]
    assert f"-{os.getpid()}-" in path and path != new_store(tmp_path)


def test_a_store_refuses_rows_beyond_its_size(tmp_path):
    writer = H5ImagesWriter(tmp_path / "s.h5", n=2, row=torch.zeros(1, 2, 2))
    writer.extend(torch.zeros(2, 1, 2, 2))
    with pytest.raises(ValueError, match="holds n=2 rows, but got 3"):
        writer.append(torch.zeros(1, 2, 2))
