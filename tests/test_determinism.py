"""Same seed, same data: same weights, plan and images, with any number of workers; and
the library never reads or moves the global random generators (torch, numpy, random)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from helpers import TINY, make_shapes
from torch.utils.data import DataLoader, TensorDataset

from torch_deepsmote import (
    ClassPriorSampler,
    DeepSMOTE,
    DeepSMOTESampler,
    OversampledDataset,
)

# The usual FIT less its random_state (each test gives its own), for two epochs.
UNSEEDED = dict(TINY, max_epochs=2, knn="torch")


@pytest.fixture(scope="module")
def base():
    X, y = make_shapes((40, 16, 6))
    return TensorDataset(torch.from_numpy(X), torch.from_numpy(y))


def _global_states():
    return torch.get_rng_state(), np.random.get_state()[1].copy(), random.getstate()  # noqa: NPY002


def _same_states(a, b) -> bool:
    return torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1]) and a[2] == b[2]


def _epoch(ds, sampler, workers: int, epoch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Every item of one epoch, in the sampler's order, through a DataLoader."""
    ds.set_epoch(epoch)
    sampler.set_epoch(epoch)
    loader = DataLoader(
        ds,
        batch_size=16,
        sampler=sampler,
        num_workers=workers,
        multiprocessing_context="fork" if workers else None,
        generator=torch.Generator(),  # DataLoader's own worker seeds: not the global RNG
    )
    images, targets = zip(*loader)
    return torch.cat(images), torch.cat(targets)


def _run(base, seed: int, workers: int):
    ds = OversampledDataset(base, seed=seed, random_state=seed, **UNSEEDED)
    sampler = DeepSMOTESampler(ds, seed=seed)
    epochs = [_epoch(ds, sampler, workers, e) for e in (0, 1)]
    prior = list(ClassPriorSampler(ds, class_power=0.5, synthetic_share=0.3, seed=seed))
    model = ds.model
    sampled = model.sample(8, 2, random_state=seed)
    weights = torch.cat([p.detach().flatten() for p in model.decoder_.parameters()])
    return weights, epochs, prior, torch.as_tensor(sampled)


def test_same_seed_same_everything_with_any_number_of_workers(base):
    before = _global_states()
    weights, epochs, prior, sampled = _run(base, seed=0, workers=0)
    assert _same_states(before, _global_states())  # nothing moved the global generators
    # Other global states in between: nothing reads them either.
    torch.manual_seed(123)
    np.random.seed(123)  # noqa: NPY002 (the legacy global state is what is checked)
    random.seed(123)
    again = _run(base, seed=0, workers=2)
    assert torch.equal(again[0], weights)  # bit for bit, on the CPU
    for (images, targets), (images2, targets2) in zip(epochs, again[1]):
        assert torch.equal(images, images2) and torch.equal(targets, targets2)
    assert again[2] == prior and torch.equal(again[3], sampled)
    # Epochs differ from each other, and another seed gives other samples.
    assert not torch.equal(epochs[0][0], epochs[1][0])
    other = _run(base, seed=1, workers=0)
    assert not torch.equal(other[0], weights) and not torch.equal(other[3], sampled)


def test_fit_resample_leaves_the_global_generators_alone(base):
    X, y = base.tensors
    before = _global_states()
    first = DeepSMOTE(random_state=3, **UNSEEDED).fit_resample(X.numpy(), y.numpy())
    assert _same_states(before, _global_states())
    torch.manual_seed(7)
    second = DeepSMOTE(random_state=3, **UNSEEDED).fit_resample(X.numpy(), y.numpy())
    assert all(np.array_equal(a, b) for a, b in zip(first, second))
