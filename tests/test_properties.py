"""Properties over many inputs (hypothesis): the SMOTE plan and the cache under damage."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from imblearn.utils import check_sampling_strategy

from torch_deepsmote.knn import class_neighbors
from torch_deepsmote.smote import plan_synthetic, resolve_sampling_strategy
from torch_deepsmote.storage.hdf5 import CacheError, CacheFile, write_cache

NAMED = ["auto", "minority", "not minority", "not majority", "all"]


@st.composite
def problems(draw):
    """Class counts (absent classes, classes of 1 and 2 samples included), k, a strategy."""
    counts = draw(st.lists(st.sampled_from([0, 1, 2, 3, 5, 9, 14]), min_size=2, max_size=6))
    present = [c for c, n in enumerate(counts) if n > 0]
    if len(present) < 2:
        counts = [*counts, 4, 1]
        present = [c for c, n in enumerate(counts) if n > 0]
    sizes = sorted(counts[c] for c in present)
    # A ratio only for two classes of different sizes (one that adds no sample is refused).
    ratio = len(present) == 2 and sizes[0] < sizes[1]
    kind = draw(st.sampled_from(["name", "dict", "float"] if ratio else ["name", "dict"]))
    top = max(counts)
    if kind == "name":
        strategy = draw(st.sampled_from(NAMED))
    elif kind == "dict":
        chosen = draw(st.lists(st.sampled_from(present), min_size=1, unique=True))
        strategy = {c: counts[c] + draw(st.integers(0, 2 * top)) for c in chosen}
    else:
        small = min(counts[c] for c in present)
        strategy = draw(st.floats(min(1.0, (small + 1) / top), 1.0))
    return counts, draw(st.integers(1, 6)), strategy


@settings(max_examples=150, deadline=None)
@given(problem=problems(), seed=st.integers(0, 2**31 - 1))
def test_the_plan_has_the_requested_counts_same_class_neighbours_and_steps_in_0_1(problem, seed):
    counts, k, strategy = problem
    labels = torch.tensor([c for c, n in enumerate(counts) for _ in range(n)])
    generator = torch.Generator().manual_seed(seed)
    latents = torch.randn(len(labels), 3, generator=generator)
    n_new = resolve_sampling_strategy(strategy, labels)
    # The same counts as imbalanced-learn's own reading of the strategy.
    reference = check_sampling_strategy(strategy, labels.numpy(), "over-sampling")
    assert {c: n for c, n in n_new.items() if n} == {c: n for c, n in reference.items() if n}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # classes of <= k samples warn, as documented
        neighbors, n_neighbors = class_neighbors(latents, labels, k, knn="torch")
    plan = plan_synthetic(n_new, labels, neighbors, n_neighbors, generator)
    assert Counter(plan.labels.tolist()) == Counter({c: n for c, n in n_new.items() if n})
    assert torch.equal(labels[plan.base], plan.labels)
    assert torch.equal(labels[plan.neighbor], plan.labels)  # never another class
    single = torch.tensor([counts[c] == 1 for c in plan.labels.tolist()], dtype=torch.bool)
    assert torch.equal(plan.neighbor[single], plan.base[single])  # no neighbour: a copy
    assert bool(((plan.lam >= 0) & (plan.lam <= 1)).all())


@pytest.fixture(scope="module")
def cache_bytes(tmp_path_factory):
    path = tmp_path_factory.mktemp("cache") / "c.h5"
    arrays = {
        "latents": np.random.default_rng(0).normal(size=(64, 8)).astype(np.float32),
        "labels": np.arange(64) % 3,
    }
    blobs = {"model": bytes(range(256)) * 8}
    attrs = {"dataset_fingerprint": "f" * 64, "config_fingerprint": "c" * 64}
    write_cache(path, arrays=arrays, blobs=blobs, attrs=attrs)
    return _Written(path.read_bytes(), arrays, blobs, attrs)


class _Written(tuple):
    """(file bytes, arrays, blobs, attrs) of one cache; a short repr for hypothesis' report."""

    def __new__(cls, *parts):
        return super().__new__(cls, parts)

    def __repr__(self) -> str:
        return f"<cache of {len(self[0])} bytes>"


@settings(
    max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_any_flipped_byte_range_is_detected_or_harmless(cache_bytes, tmp_path, data):
    raw, arrays, blobs, attrs = cache_bytes
    start = data.draw(st.integers(0, len(raw) - 1))
    length = data.draw(st.integers(1, 64))
    mask = data.draw(st.integers(1, 255))
    damaged = bytearray(raw)
    for i in range(start, min(start + length, len(raw))):
        damaged[i] ^= mask
    path = tmp_path / "damaged.h5"
    path.write_bytes(bytes(damaged))
    cache = CacheFile(path)
    try:  # everything a loading run reads and checks
        cache.verify()
        cache.check(attrs)
        read_arrays = {name: cache.array(name).numpy() for name in arrays}
        read_blobs = {name: cache.blob(name) for name in blobs}
    except CacheError:
        return  # detected, with the file named
    finally:
        cache.close()
    # Not detected: then it must not matter.
    assert all(np.array_equal(read_arrays[n], arrays[n]) for n in arrays)
    assert all(read_arrays[n].dtype == arrays[n].dtype for n in arrays)
    assert read_blobs == blobs
