"""Tests of the samplers: coverage, determinism, rank splits, epochs, balance, DataLoader use."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, Dataset

from torch_deepsmote.samplers import ClassBalancedBatchSampler, DeepSMOTESampler


class FakeOversampled(Dataset):
    """Stands in for OversampledDataset: real items, then synthetic ones redrawn per epoch."""

    def __init__(self, targets, n_real=None):
        self.targets = torch.as_tensor(targets)
        self.n_real = len(self.targets) if n_real is None else n_real
        self.length = len(self.targets)
        self.epochs = []

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        return index, self.targets[index]

    def set_epoch(self, epoch):
        self.epochs.append(epoch)


def imbalanced(n=None):
    """60, 24 and 8 items of classes 0, 1, 2 (or the first n of them)."""
    return FakeOversampled(([0] * 60 + [1] * 24 + [2] * 8)[:n])


def balanced(per_class=20, n_classes=3):
    return FakeOversampled([c for c in range(n_classes) for _ in range(per_class)])


def ranks(make, num_replicas, **kwargs):
    return [list(make(num_replicas=num_replicas, rank=r, **kwargs)) for r in range(num_replicas)]


# --- DeepSMOTESampler -----------------------------------------------------------------------


@pytest.mark.parametrize("shuffle", [True, False])
def test_sampler_covers_every_index_once_per_epoch(shuffle):
    sampler = DeepSMOTESampler(imbalanced(), shuffle=shuffle)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        assert sorted(sampler) == list(range(92))
        assert len(sampler) == 92
    assert list(DeepSMOTESampler(imbalanced(), shuffle=False)) == list(range(92))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(0, 40),
    num_replicas=st.integers(1, 5),
    drop_last=st.booleans(),
    shuffle=st.booleans(),
    epoch=st.integers(0, 3),
)
def test_sampler_is_a_distributed_sampler_and_yields_what_it_yields(
    n, num_replicas, drop_last, shuffle, epoch
):
    from torch.utils.data import DistributedSampler

    for rank in range(num_replicas):
        ours = DeepSMOTESampler(range(n), num_replicas, rank, shuffle, 3, drop_last)
        theirs = DistributedSampler(range(n), num_replicas, rank, shuffle, 3, drop_last)
        assert isinstance(ours, DistributedSampler)
        ours.set_epoch(epoch)
        theirs.set_epoch(epoch)
        assert list(ours) == list(theirs) and len(ours) == len(theirs)


def test_sampler_is_deterministic_per_epoch_and_changes_across_epochs():
    a, b = DeepSMOTESampler(imbalanced(), seed=3), DeepSMOTESampler(imbalanced(), seed=3)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b) == list(a)
    b.set_epoch(3)
    assert list(a) != list(b)
    assert list(a) != list(DeepSMOTESampler(imbalanced(), seed=4, rank=0, num_replicas=1))


def test_sampler_leaves_the_global_rng_untouched():
    torch.manual_seed(123)
    state = torch.get_rng_state()
    list(DeepSMOTESampler(imbalanced()))
    list(ClassBalancedBatchSampler(imbalanced(), batch_size=9))
    assert torch.equal(torch.get_rng_state(), state)


@pytest.mark.parametrize(("n", "drop_last", "per_rank"), [(91, False, 46), (91, True, 45)])
def test_two_ranks_get_disjoint_equal_slices_of_the_plan(n, drop_last, per_rank):
    def make(**kw):
        return DeepSMOTESampler(imbalanced(n), seed=1, drop_last=drop_last, **kw)

    first, second = ranks(make, 2)
    assert len(first) == len(second) == per_rank == len(make(num_replicas=2, rank=0))
    plan = list(DeepSMOTESampler(imbalanced(n), seed=1))
    expected = plan[:90] if drop_last else plan + plan[:1]  # padded from the start
    assert [i for pair in zip(first, second) for i in pair] == expected
    if drop_last:
        assert not set(first) & set(second)


def test_sampler_is_identical_across_ranks_for_same_epoch():
    samplers = [DeepSMOTESampler(imbalanced(), num_replicas=4, rank=r, seed=7) for r in range(4)]
    for sampler in samplers:
        sampler.set_epoch(5)
    interleaved = [i for group in zip(*samplers) for i in group]
    reference = DeepSMOTESampler(imbalanced(), seed=7)
    reference.set_epoch(5)
    assert interleaved == list(reference)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(0, 40),
    num_replicas=st.integers(1, 9),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**32),
)
def test_rank_slices_partition_the_padded_plan(n, num_replicas, drop_last, seed):
    def make(**kw):
        return DeepSMOTESampler(range(n), seed=seed, drop_last=drop_last, **kw)

    slices = ranks(make, num_replicas)
    lengths = {len(s) for s in slices}
    assert lengths == {len(make(num_replicas=num_replicas, rank=0))}
    plan = list(make())
    total = lengths.pop() * num_replicas
    padded = (plan * (total // max(n, 1) + 1))[:total]
    assert [i for group in zip(*slices) for i in group] == padded
    assert total >= n if not drop_last else n - num_replicas < total <= n


@pytest.mark.parametrize("cls", [DeepSMOTESampler, ClassBalancedBatchSampler])
def test_set_epoch_propagates_to_the_dataset(cls):
    dataset = imbalanced()
    sampler = cls(dataset, **({"batch_size": 4} if cls is ClassBalancedBatchSampler else {}))
    sampler.set_epoch(4)
    sampler.set_epoch(5)
    assert sampler.epoch == 5 and dataset.epochs == [4, 5]
    DeepSMOTESampler(range(5)).set_epoch(1)  # a dataset without set_epoch is fine


def test_defaults_come_from_an_initialized_process_group(monkeypatch):
    assert (DeepSMOTESampler(range(5)).num_replicas, DeepSMOTESampler(range(5)).rank) == (1, 0)
    monkeypatch.setattr(torch.distributed, "is_available", lambda: True)
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: True)
    monkeypatch.setattr(torch.distributed, "get_world_size", lambda *a, **k: 4)
    monkeypatch.setattr(torch.distributed, "get_rank", lambda *a, **k: 3)
    sampler = DeepSMOTESampler(range(10))
    assert (sampler.num_replicas, sampler.rank, len(sampler)) == (4, 3, 3)
    batches = ClassBalancedBatchSampler(imbalanced(), batch_size=4)
    assert (batches.num_replicas, batches.rank) == (4, 3)
    assert DeepSMOTESampler(range(10), num_replicas=2, rank=1).num_replicas == 2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_replicas": 0}, ValueError, "num_replicas=0"),
        ({"num_replicas": 2.0}, TypeError, "num_replicas=2.0"),
        ({"num_replicas": 2, "rank": 2}, ValueError, r"\[0, 1\], but got rank=2"),
        ({"rank": -1}, ValueError, "rank=-1"),
        ({"rank": True}, TypeError, "rank=True"),
        ({"seed": -1}, ValueError, "seed=-1"),
        ({"shuffle": 1}, TypeError, "shuffle=1"),
        ({"drop_last": "no"}, TypeError, "drop_last='no'"),
    ],
)
def test_bad_arguments_raise_errors_naming_them(kwargs, error, match):
    with pytest.raises(error, match=match):
        DeepSMOTESampler(range(5), **kwargs)


def test_bad_datasets_and_epochs_are_rejected():
    with pytest.raises(TypeError, match="`dataset` should .* __len__.*generator"):
        DeepSMOTESampler(i for i in range(3))
    with pytest.raises(TypeError, match="`targets`.*range"):
        ClassBalancedBatchSampler(range(5), batch_size=2)
    with pytest.raises(ValueError, match="batch_size=0"):
        ClassBalancedBatchSampler(imbalanced(), batch_size=0)
    with pytest.raises(ValueError, match="epoch=-2"):
        DeepSMOTESampler(range(5)).set_epoch(-2)
    dataset = imbalanced()
    dataset.targets = dataset.targets[:10]
    with pytest.raises(ValueError, match="length len\\(dataset\\)=92.*shape \\(10,\\)"):
        list(ClassBalancedBatchSampler(dataset, batch_size=4))


# --- ClassBalancedBatchSampler --------------------------------------------------------------


@pytest.mark.parametrize("batch_size", [1, 2, 3, 7, 16])
def test_balanced_batches_have_class_counts_within_one(batch_size):
    dataset = imbalanced()
    sampler = ClassBalancedBatchSampler(dataset, batch_size=batch_size, seed=2)
    batches = list(sampler)
    assert len(batches) == len(sampler) == -(-92 // batch_size)
    for batch in batches:
        counts = Counter(int(dataset.targets[i]) for i in batch)
        full = [counts.get(c, 0) for c in range(3)]
        assert len(batch) == batch_size and max(full) - min(full) <= 1
        if batch_size <= 8:  # every class has at least that many items: no repeat in a batch
            assert len(set(batch)) == batch_size


def test_minority_class_is_reshuffled_when_exhausted_and_majority_is_not_repeated():
    dataset = imbalanced()
    batches = list(ClassBalancedBatchSampler(dataset, batch_size=6))  # 16 batches, 2 per class
    drawn = [i for batch in batches for i in batch]
    by_class = {c: [i for i in drawn if int(dataset.targets[i]) == c] for c in range(3)}
    assert len(set(by_class[0])) == 32  # 32 of 60: none twice
    assert Counter(Counter(by_class[2]).values()) == {4: 8}  # 8 items, each 4 times
    assert sorted(by_class[2][:8]) == list(range(84, 92))  # without replacement until exhausted


def test_balanced_batches_across_ranks_are_disjoint_and_cover_a_balanced_dataset():
    def make(**kw):
        return ClassBalancedBatchSampler(balanced(), batch_size=6, seed=5, **kw)

    per_rank = ranks(make, 2)
    assert len(per_rank[0]) == len(per_rank[1]) == 5
    everything = [i for batches in per_rank for batch in batches for i in batch]
    assert sorted(everything) == list(range(60))
    assert [b for pair in zip(*per_rank) for b in pair] == list(make())


@pytest.mark.parametrize(("drop_last", "expected"), [(False, 4), (True, 3)])
def test_balanced_batch_count_rounds_per_drop_last(drop_last, expected):
    dataset = imbalanced()  # 92 items, batch 10: 10 batches (9 with drop_last), 3 ranks
    sampler = ClassBalancedBatchSampler(
        dataset, batch_size=10, num_replicas=3, rank=2, drop_last=drop_last
    )
    assert len(sampler) == len(list(sampler)) == expected


def test_balanced_batches_are_deterministic_per_epoch():
    a, b = (ClassBalancedBatchSampler(imbalanced(), batch_size=5, seed=1) for _ in range(2))
    a.set_epoch(3)
    b.set_epoch(3)
    assert list(a) == list(b)
    b.set_epoch(4)
    assert list(a) != list(b)


def test_samplers_drive_a_real_dataloader():
    dataset = imbalanced()
    sampler = DeepSMOTESampler(dataset, seed=0)
    loader = DataLoader(dataset, sampler=sampler, batch_size=10)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        seen = torch.cat([index for index, _ in loader])
        assert sorted(seen.tolist()) == list(range(92))
    assert dataset.epochs == [0, 1]

    batch_sampler = ClassBalancedBatchSampler(dataset, batch_size=9, num_replicas=2, rank=1)
    loader = DataLoader(dataset, batch_sampler=batch_sampler)
    batches = [labels for _, labels in loader]
    assert len(batches) == len(loader) == 6  # ceil(ceil(92 / 9) / 2)
    assert all(torch.bincount(labels, minlength=3).tolist() == [3, 3, 3] for labels in batches)
