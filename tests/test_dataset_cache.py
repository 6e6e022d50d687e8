"""OversampledDataset's HDF5 cache: reuse, invalidation, corruption, per-process reads."""

from __future__ import annotations

import pickle
import warnings

import pytest
import torch
from helpers import FIT, make_shapes
from torch.utils.data import DataLoader, TensorDataset

import torch_deepsmote.fitting as fitting_module
from torch_deepsmote import OversampledDataset
from torch_deepsmote.storage.hdf5 import StaleCacheError


@pytest.fixture()
def base():
    X, y = make_shapes((40, 16, 6))
    return TensorDataset(torch.from_numpy(X), torch.from_numpy(y))


def items(ds):
    return torch.stack([ds[i][0] for i in range(len(ds))])


def test_second_run_loads_the_cache_and_trains_nothing(base, tmp_path, monkeypatch):
    first = OversampledDataset(base, cache_dir=tmp_path, **FIT)
    assert (tmp_path / "deepsmote.h5").exists()
    calls = []
    monkeypatch.setattr(fitting_module, "fit_autoencoder", lambda *a, **k: calls.append(1) or [])
    second = OversampledDataset(base, cache_dir=tmp_path, **FIT)
    assert calls == []
    assert torch.equal(items(first), items(second))
    assert torch.equal(second.model.latents_, first.model.latents_)


def test_a_changed_image_is_noticed_and_refitted(base, tmp_path, monkeypatch):
    first = OversampledDataset(base, cache_dir=tmp_path, **FIT)
    X, y = base.tensors
    X = X.clone()
    X[33, 0, 5, 5] ^= 1  # one pixel of one image
    trained = []
    fit_autoencoder = fitting_module.fit_autoencoder
    monkeypatch.setattr(
        fitting_module,
        "fit_autoencoder",
        lambda *a, **k: trained.append(1) or fit_autoencoder(*a, **k),
    )
    with pytest.warns(UserWarning, match="stale"):
        refit = OversampledDataset(TensorDataset(X, y), cache_dir=tmp_path, **FIT)
    # Refitted on the changed images: trained once, and the model knows the new data.
    assert trained == [1]
    assert refit.model.data_fingerprint_ != first.model.data_fingerprint_
    assert not torch.equal(refit.model.latents_, first.model.latents_)
    # ... and the cache now holds that model: the changed data reads it, with no warning
    # and no training.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = OversampledDataset(TensorDataset(X, y), cache_dir=tmp_path, **FIT)
    assert trained == [1]
    assert again.model.data_fingerprint_ == refit.model.data_fingerprint_
    assert torch.equal(again.model.latents_, refit.model.latents_)
    assert torch.equal(items(again), items(refit))


def test_a_changed_setting_is_noticed_and_refitted(base, tmp_path):
    OversampledDataset(base, cache_dir=tmp_path, **FIT)
    with pytest.warns(UserWarning, match="stale"):
        refit = OversampledDataset(base, cache_dir=tmp_path, **{**FIT, "penalty_weight": 0.5})
    assert refit.model.get_params()["penalty_weight"] == 0.5


def test_changing_k_neighbors_rebuilds_the_neighbours_only(base, tmp_path, monkeypatch):
    first = OversampledDataset(base, cache_dir=tmp_path, **{**FIT, "k_neighbors": 5})
    monkeypatch.setattr(
        fitting_module, "fit_autoencoder", lambda *a, **k: pytest.fail("trained again")
    )
    fewer = OversampledDataset(base, cache_dir=tmp_path, **{**FIT, "k_neighbors": 2})
    assert torch.equal(fewer.model.latents_, first.model.latents_)
    assert fewer.model.k_neighbors == 2 and fewer.model.neighbors_.shape[1] == 2
    # The first two neighbours of every code are the same; the table was rebuilt, not cut.
    assert torch.equal(fewer.model.neighbors_, first.model.neighbors_[:, :2])
    plan = fewer.plan()
    assert (plan.neighbor != first.plan().neighbor).any()
    # Stored with the model: a worker reading the cache sees the new table too.
    clone = pickle.loads(pickle.dumps(fewer))
    assert torch.equal(items(clone), items(fewer))
    again = OversampledDataset(base, cache_dir=tmp_path, **{**FIT, "k_neighbors": 2})
    assert torch.equal(again.model.neighbors_, fewer.model.neighbors_)


def test_changed_setting_raises_when_asked(base, tmp_path):
    OversampledDataset(base, cache_dir=tmp_path, **FIT)
    with pytest.raises(StaleCacheError, match="config_fingerprint"):
        OversampledDataset(
            base, cache_dir=tmp_path, on_mismatch="raise", **{**FIT, "latent_dim": 6}
        )
    # Settings that change neither weights nor codes do not invalidate it.
    OversampledDataset(
        base, cache_dir=tmp_path, on_mismatch="raise", sampling_strategy="minority", **FIT
    )


def test_a_truncated_cache_is_detected_and_rebuilt(base, tmp_path):
    OversampledDataset(base, cache_dir=tmp_path, **FIT)
    path = tmp_path / "deepsmote.h5"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.warns(UserWarning, match="deepsmote.h5"):
        rebuilt = OversampledDataset(base, cache_dir=tmp_path, **FIT)
    assert len(rebuilt) == 120
    OversampledDataset(base, cache_dir=tmp_path, on_mismatch="raise", **FIT)  # good again


def test_a_corrupted_cache_raises_with_the_file_name_when_asked(base, tmp_path):
    OversampledDataset(base, cache_dir=tmp_path, **FIT)
    path = tmp_path / "deepsmote.h5"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)
    path.write_bytes(bytes(data))
    with pytest.raises(Exception, match="deepsmote.h5"):
        OversampledDataset(base, cache_dir=tmp_path, on_mismatch="raise", **FIT)


def test_cached_dataset_pickles_without_its_arrays_and_reads_rows_lazily(base, tmp_path):
    ds = OversampledDataset(base, cache_dir=tmp_path, **FIT)
    assert ds.synthesizer.in_memory
    clone = pickle.loads(pickle.dumps(ds))
    assert not clone.synthesizer.in_memory  # codes stayed in the HDF5 file
    assert torch.equal(items(clone), items(ds))
    assert not clone.synthesizer.in_memory  # ... and were read per batch, by rows
    # The copy still has its model, whose codes come from the file when asked for.
    assert torch.equal(clone.model.latents_, ds.model.latents_)


@pytest.mark.parametrize("context", ["fork", "spawn"])
def test_workers_read_the_cache_in_their_own_process(base, tmp_path, context):
    ds = OversampledDataset(base, cache_dir=tmp_path, **FIT)
    loader = DataLoader(ds, batch_size=32, num_workers=2, multiprocessing_context=context)
    assert torch.equal(torch.cat([x for x, _ in loader]), items(ds))


def test_residuals_are_cached_and_read_per_row_after_pickling(base, tmp_path):
    ds = OversampledDataset(base, cache_dir=tmp_path, residual=True, **FIT)
    expected = torch.as_tensor(ds.model.synthesize(ds.plan()))
    assert torch.equal(items(ds)[ds.n_real :], expected)
    clone = pickle.loads(pickle.dumps(ds))
    assert clone.synthesizer.has_residuals and not clone.synthesizer.in_memory
    assert torch.equal(items(clone), items(ds))  # residual rows came from HDF5


def test_switching_residual_on_or_off_trains_nothing(base, tmp_path, monkeypatch):
    plain = OversampledDataset(base, cache_dir=tmp_path, residual=False, **FIT)
    monkeypatch.setattr(
        fitting_module, "fit_autoencoder", lambda *a, **k: pytest.fail("trained again")
    )
    # Asked for later, the residuals come from the cached model and join the cache.
    with_residual = OversampledDataset(base, cache_dir=tmp_path, **FIT)  # residual=True
    assert with_residual.model.residuals_ is not None
    assert torch.equal(with_residual.model.latents_, plain.model.latents_)
    again = OversampledDataset(base, cache_dir=tmp_path, residual=True, **FIT)
    assert torch.equal(again.model.residuals_, with_residual.model.residuals_)
    # Off again: the same images as without them, although the cache now holds them.
    off = OversampledDataset(base, cache_dir=tmp_path, residual=False, **FIT)
    assert off.model.residuals_ is None
    assert torch.equal(items(pickle.loads(pickle.dumps(off))), items(plain))
    assert not torch.equal(items(again), items(plain))


class FarthestKNN:
    """A valid backend that answers differently from exact search: the farthest rows."""

    def kneighbors(self, x, k):
        distances = torch.cdist(x, x)
        distances.fill_diagonal_(-1.0)
        return torch.topk(distances, k, dim=1).indices


def test_changing_knn_rebuilds_the_neighbours_only(base, tmp_path, monkeypatch):
    first = OversampledDataset(base, cache_dir=tmp_path, **FIT)  # knn="torch"
    monkeypatch.setattr(
        fitting_module, "fit_autoencoder", lambda *a, **k: pytest.fail("trained again")
    )
    farthest = OversampledDataset(base, cache_dir=tmp_path, **{**FIT, "knn": FarthestKNN()})
    assert torch.equal(farthest.model.latents_, first.model.latents_)
    assert not torch.equal(farthest.model.neighbors_, first.model.neighbors_)
    z = first.model.latents_
    row = 0
    assert torch.cdist(z[row : row + 1], z[farthest.model.neighbors_[row]]).min() >= (
        torch.cdist(z[row : row + 1], z[first.model.neighbors_[row]]).max()
    )
    back = OversampledDataset(base, cache_dir=tmp_path, **FIT)
    assert torch.equal(back.model.neighbors_, first.model.neighbors_)


def test_a_worker_refuses_a_cache_rewritten_by_another_run(base, tmp_path):
    # Decoding per batch (no pool), a worker reads the codes from the cache file.
    ds = OversampledDataset(base, cache_dir=tmp_path, pool=False, **FIT)
    clone = pickle.loads(pickle.dumps(ds))  # what a spawned DataLoader worker receives
    # A run that only rebuilds the neighbour table rewrites the file with the same codes:
    # the copy's own plan still matches them.
    OversampledDataset(base, cache_dir=tmp_path, **{**FIT, "k_neighbors": 2})
    assert torch.equal(pickle.loads(pickle.dumps(ds))[len(ds) - 1][0], ds[len(ds) - 1][0])
    X, y = base.tensors
    with pytest.warns(UserWarning, match="stale"):  # another run, other data, same folder
        OversampledDataset(TensorDataset(255 - X, y), cache_dir=tmp_path, **FIT)
    with pytest.raises(RuntimeError, match="rewritten after this dataset was built"):
        clone[len(clone) - 1]
    assert torch.equal(items(ds)[: ds.n_real], X)  # the main process holds its own arrays


def test_changing_the_interpolation_rebuilds_the_tables_only(base, tmp_path, monkeypatch):
    first = OversampledDataset(base, cache_dir=tmp_path, **FIT)
    monkeypatch.setattr(
        fitting_module, "fit_autoencoder", lambda *a, **k: pytest.fail("trained again")
    )
    enemy = OversampledDataset(base, cache_dir=tmp_path, interpolation="enemy", **FIT)
    info = enemy.origin(len(enemy) - 1)
    assert enemy.targets[info["neighbor"]] != info["label"] == enemy.targets[info["base"]]
    assert info["anchor"] == info["base"] and info["lam"] < 0.5
    assert torch.equal(enemy.model.latents_, first.model.latents_)
    again = OversampledDataset(base, cache_dir=tmp_path, interpolation="enemy", **FIT)
    assert torch.equal(again.synthesizer.enemies, enemy.synthesizer.enemies)  # stored
    clone = pickle.loads(pickle.dumps(again))
    assert torch.equal(items(clone), items(again))
    transfer = OversampledDataset(base, cache_dir=tmp_path, interpolation="transfer", **FIT)
    info = transfer.origin(len(transfer) - 1)
    assert transfer.targets[info["anchor"]] == transfer.targets[info["neighbor"]] == 0
