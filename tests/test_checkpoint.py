"""Interrupted fits resume: a fit killed mid-epoch ends with the weights of one never stopped."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest
import torch
from helpers import FIT, make_shapes
from torch.utils.data import TensorDataset

from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.storage.checkpoint import CHECKPOINT_NAME, Checkpoint

FIT = dict(FIT, max_epochs=6, patience=0)


def _data(seed=0):
    X, y = make_shapes((240, 80, 40), seed=seed)
    return torch.from_numpy(X), torch.from_numpy(y)


def _weights(model):
    return [
        t.clone()
        for t in (*model.encoder_.state_dict().values(), *model.decoder_.state_dict().values())
    ]


def _same_weights(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b))


def _fit_in_child(folder: str, threads: int) -> None:
    torch.set_num_threads(threads)  # as in the parent: float sums depend on the split
    X, y = _data()
    DeepSMOTE(checkpoint_dir=folder, **FIT).fit(X, y)


def _stored_epoch(path) -> int:
    try:  # the file is replaced by a rename: it is the old one or the new one, whole
        return int(torch.load(path, weights_only=True)["epoch"])
    except FileNotFoundError:
        return -1


@pytest.fixture(scope="module")
def uninterrupted():
    X, y = _data()
    model = DeepSMOTE(**FIT).fit(X, y)
    return _weights(model), [h["loss"] for h in model.history_]


def test_a_fit_killed_mid_epoch_resumes_and_ends_bit_for_bit_the_same(
    tmp_path, uninterrupted, capsys
):
    context = multiprocessing.get_context("spawn")
    child = context.Process(target=_fit_in_child, args=(str(tmp_path), torch.get_num_threads()))
    child.start()
    path = tmp_path / CHECKPOINT_NAME
    deadline = time.monotonic() + 300
    while _stored_epoch(path) < 1 and child.is_alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)  # somewhere in epoch 2 (or writing its checkpoint)
    child.join()
    killed_after = _stored_epoch(path)
    assert 1 <= killed_after < FIT["max_epochs"] - 1, "the child was not killed mid-fit"

    X, y = _data()
    resumed = DeepSMOTE(checkpoint_dir=tmp_path, **{**FIT, "progress": True}).fit(X, y)
    assert f"resuming the fit after epoch {killed_after}" in capsys.readouterr().err
    weights, losses = uninterrupted
    assert _same_weights(_weights(resumed), weights)
    assert [h["loss"] for h in resumed.history_] == losses
    assert [h["epoch"] for h in resumed.history_] == list(range(FIT["max_epochs"]))


def test_a_finished_fit_returns_at_once_and_another_fit_ignores_its_checkpoint(
    tmp_path, uninterrupted, monkeypatch
):
    X, y = _data()
    DeepSMOTE(checkpoint_dir=tmp_path, **FIT).fit(X, y)
    import torch_deepsmote.training as training

    calls = []
    criterion = training.DeepSMOTELoss
    monkeypatch.setattr(training, "DeepSMOTELoss", lambda *a: calls.append(1) or criterion(*a))
    again = DeepSMOTE(checkpoint_dir=tmp_path, **FIT).fit(X, y)
    assert _same_weights(_weights(again), uninterrupted[0])
    # Other data, same folder: a fresh fit (its own weights), which then owns the file.
    X2, y2 = _data(seed=1)
    other = DeepSMOTE(checkpoint_dir=tmp_path, **FIT).fit(X2, y2)
    fresh = DeepSMOTE(**FIT).fit(X2, y2)
    assert _same_weights(_weights(other), _weights(fresh))
    assert len(other.history_) == FIT["max_epochs"]


def test_an_unreadable_checkpoint_warns_and_the_fit_starts_over(tmp_path, uninterrupted):
    (tmp_path / CHECKPOINT_NAME).write_bytes(b"not a checkpoint")
    X, y = _data()
    with pytest.warns(UserWarning, match="unreadable fit checkpoint .*starts from the first"):
        model = DeepSMOTE(checkpoint_dir=tmp_path, **FIT).fit(X, y)
    assert _same_weights(_weights(model), uninterrupted[0])


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    checkpoint = Checkpoint(tmp_path, key="k", progress=False)
    checkpoint.save({"epoch": 0})

    def broken_replace(*args):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save({"epoch": 1})
    monkeypatch.undo()
    assert checkpoint.load()["epoch"] == 0
    assert os.listdir(tmp_path) == [CHECKPOINT_NAME]  # no temporary file left


def test_the_cache_folder_keeps_the_checkpoint_only_until_the_cache_is_written(tmp_path):
    X, y = _data()
    ds = OversampledDataset(TensorDataset(X, y), cache_dir=tmp_path, **{**FIT, "max_epochs": 2})
    assert not (tmp_path / CHECKPOINT_NAME).exists()
    assert ds.model.checkpoint_dir is None  # the folder was the cache's, not the user's


def test_checkpoint_dir_is_checked():
    with pytest.raises(TypeError, match="checkpoint_dir"):
        DeepSMOTE(checkpoint_dir=3)
