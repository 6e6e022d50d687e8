"""ClassPriorSampler (class prior, synthetic share, deferred start, ranks) and LogitAdjustedLoss."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY, make_shapes
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.utils.data import DataLoader, TensorDataset

from torch_deepsmote import ClassPriorSampler, LogitAdjustedLoss, OversampledDataset, class_prior

COUNTS = (400, 100, 25)  # real items per class
POOL = (0, 300, 375)  # synthetic items per class (filled to the majority)


class Toy(torch.utils.data.Dataset):
    """What the sampler reads of an OversampledDataset: n_real, targets, set_epoch."""

    def __init__(self, counts=COUNTS, pool=POOL):
        self.n_real = sum(counts)
        real = [c for c, n in enumerate(counts) for _ in range(n)]
        self.targets = real + [c for c, n in enumerate(pool) for _ in range(n)]
        self.epochs = []

    def __len__(self):
        return len(self.targets)

    def set_epoch(self, epoch):
        self.epochs.append(epoch)


def tally(ds, indices):
    """{(class, synthetic?): count} of a list of indices."""
    return Counter((ds.targets[i], i >= ds.n_real) for i in indices)


@pytest.mark.parametrize("power", [1.0, 0.5, 0.0])
def test_draws_follow_the_class_prior_it_reports(power):
    ds = Toy()
    sampler = ClassPriorSampler(ds, class_power=power, num_samples=1050)
    draws = list(sampler)
    expected = class_prior(torch.tensor(COUNTS), power)
    counts = torch.bincount(torch.tensor([ds.targets[i] for i in draws]), minlength=3)
    assert len(draws) == len(sampler) == 1050
    assert torch.allclose(sampler.class_prior, counts / 1050.0)
    assert (counts - 1050 * expected).abs().max() <= 1  # rounding only
    weights = torch.tensor(COUNTS, dtype=torch.float64) ** power
    assert torch.allclose(class_prior(torch.tensor(COUNTS), power), weights / weights.sum())


def test_the_natural_prior_without_synthetic_items_is_a_shuffle_of_the_real_items():
    ds = Toy()
    draws = list(ClassPriorSampler(ds, seed=3))
    assert sorted(draws) == list(range(ds.n_real))
    assert draws != sorted(draws)


@pytest.mark.parametrize("share", [0.25, 0.5, 1.0])
def test_a_share_of_each_class_is_synthetic_where_the_class_has_synthetic_items(share):
    ds = Toy()
    sampler = ClassPriorSampler(ds, class_power=0.0, synthetic_share=share, num_samples=900)
    counts = tally(ds, list(sampler))
    assert counts[(0, True)] == 0 and counts[(0, False)] == 300  # no synthetic items of 0
    for c in (1, 2):
        assert counts[(c, True)] == round(300 * share) and counts[(c, False)] == 300 - round(
            300 * share
        )
    assert sampler.synthetic_fraction.tolist() == [0.0, share, share]


def test_rest_keeps_real_items_at_their_natural_rate():
    ds = Toy()
    sampler = ClassPriorSampler(ds, class_power=0.5, synthetic_share="rest")
    counts = tally(ds, list(sampler))
    total = len(sampler)  # n_real
    prior = class_prior(torch.tensor(COUNTS), 0.5)
    for c, n in enumerate(COUNTS):
        drawn = counts[(c, False)] + counts[(c, True)]
        assert abs(drawn - total * float(prior[c])) <= 1
        if c > 0:  # the minorities: their real items at the natural rate, synthetic the rest
            assert abs(counts[(c, False)] - n) <= 1 and counts[(c, True)] > 0
    # The majority is drawn less than its natural rate and has no synthetic items.
    assert counts[(0, True)] == 0 and counts[(0, False)] < COUNTS[0]


def test_a_callable_share_sees_each_class_count():
    ds = Toy()
    seen = []

    def share(n):
        seen.append(n)
        return 0.0 if n >= 100 else 0.8

    sampler = ClassPriorSampler(ds, class_power=0.0, synthetic_share=share, num_samples=300)
    counts = tally(ds, list(sampler))
    assert set(seen) == set(COUNTS)
    assert counts[(1, True)] == 0 and counts[(2, True)] == 80


def test_start_epoch_defers_the_prior_and_the_synthetic_items():
    ds = Toy()
    sampler = ClassPriorSampler(ds, class_power=0.0, synthetic_share=0.5, start_epoch=2)
    natural = class_prior(torch.tensor(COUNTS), 1.0).float()
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        assert torch.allclose(sampler.class_prior, natural)
        assert sorted(sampler) == list(range(ds.n_real))
    sampler.set_epoch(2)
    assert torch.allclose(sampler.class_prior, torch.full((3,), 1 / 3), atol=1e-3)
    assert any(i >= ds.n_real for i in sampler)
    assert ds.epochs == [0, 1, 2]  # forwarded: the dataset draws fresh synthetic items


def test_epochs_are_seeded_and_leave_the_global_rng_alone():
    ds = Toy()
    a = ClassPriorSampler(ds, class_power=0.5, synthetic_share=0.5, seed=1)
    b = ClassPriorSampler(ds, class_power=0.5, synthetic_share=0.5, seed=1)
    torch.manual_seed(0)
    expected = torch.rand(2)
    torch.manual_seed(0)
    first = list(a)
    assert torch.equal(torch.rand(2), expected)
    assert first == list(b)
    a.set_epoch(1)
    assert list(a) != first


@settings(max_examples=25, deadline=None)
@given(replicas=st.integers(1, 4), n=st.integers(1, 700), power=st.sampled_from([0.0, 0.5, 1]))
def test_ranks_take_disjoint_equal_shares_of_the_same_epoch(replicas, n, power):
    ds = Toy()
    whole = ClassPriorSampler(ds, power, 0.5, num_samples=n, num_replicas=1, rank=0)
    shares = [
        list(ClassPriorSampler(ds, power, 0.5, num_samples=n, num_replicas=replicas, rank=r))
        for r in range(replicas)
    ]
    assert len({len(s) for s in shares}) == 1
    padded = ClassPriorSampler(ds, power, 0.5, num_samples=len(shares[0]) * replicas)
    merged = [shares[k % replicas][k // replicas] for k in range(len(shares[0]) * replicas)]
    assert merged == list(padded)
    assert len(list(whole)) == n


def test_a_real_dataset_serves_fresh_synthetic_items_at_the_reported_prior():
    X, y = make_shapes((60, 20, 8))
    ds = OversampledDataset(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y)),
        **TINY,
        random_state=0,
        knn="torch",
    )
    sampler = ClassPriorSampler(ds, class_power=0.5, synthetic_share=0.5)
    loader = DataLoader(ds, batch_size=22, sampler=sampler)
    epochs = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        images, targets = map(torch.cat, zip(*loader))
        assert torch.allclose(
            torch.bincount(targets, minlength=3) / len(targets), sampler.class_prior
        )
        epochs.append(images)
    assert ds.epoch == 1
    assert not torch.equal(epochs[0], epochs[1])


def test_bad_arguments_name_themselves():
    ds = Toy()
    with pytest.raises(TypeError, match="OversampledDataset"):
        ClassPriorSampler(TensorDataset(torch.zeros(3)))
    with pytest.raises(TypeError, match="class_power"):
        ClassPriorSampler(ds, class_power="balanced")
    with pytest.raises(ValueError, match="synthetic_share=1.5"):
        ClassPriorSampler(ds, synthetic_share=1.5)
    with pytest.raises(ValueError, match="num_samples"):
        ClassPriorSampler(ds, num_samples=0)
    with pytest.raises(ValueError, match="shares in"):
        list(ClassPriorSampler(ds, synthetic_share=lambda n: 2.0))


# ---------------------------------------------------------------------- LogitAdjustedLoss
def test_logit_adjusted_loss_is_cross_entropy_on_shifted_logits():
    torch.manual_seed(0)
    logits, targets = torch.randn(8, 3), torch.randint(0, 3, (8,))
    prior = torch.tensor([0.7, 0.2, 0.1])
    shifted = logits + 0.5 * prior.log()
    assert torch.allclose(
        LogitAdjustedLoss(prior * 10, tau=0.5)(logits, targets), F.cross_entropy(shifted, targets)
    )
    assert torch.allclose(
        LogitAdjustedLoss(prior, tau=0.0)(logits, targets), F.cross_entropy(logits, targets)
    )
    soft = F.one_hot(targets, 3).float() * 0.6 + 0.4 / 3  # mixup-style targets
    assert torch.allclose(
        LogitAdjustedLoss(prior, reduction="none")(logits, soft),
        F.cross_entropy(logits + prior.log(), soft, reduction="none"),
    )
    loss = LogitAdjustedLoss(prior)
    loss.set_prior(torch.tensor([1.0, 1.0, 1.0]))  # a balanced prior: plain cross-entropy
    assert torch.allclose(loss(logits, targets), F.cross_entropy(logits, targets))
    with pytest.raises(ValueError, match="one column per class"):
        loss(torch.randn(4, 5), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="non-negative"):
        LogitAdjustedLoss(torch.tensor([0.5, -0.5]))


def test_logit_adjustment_moves_the_decision_boundary_to_the_balanced_one():
    # Two unit Gaussians at -1 and +1, 9:1: cross-entropy's boundary moves into the rare
    # class (about +1.1); the balanced error's optimum, which the adjusted loss targets, is 0.
    generator = torch.Generator().manual_seed(0)
    x = torch.cat(
        [torch.randn(1800, generator=generator) - 1, torch.randn(200, generator=generator) + 1]
    )
    y = torch.cat([torch.zeros(1800, dtype=torch.long), torch.ones(200, dtype=torch.long)])

    def boundary(criterion):
        w = torch.zeros(2, requires_grad=True)
        b = torch.zeros(2, requires_grad=True)
        optimizer = torch.optim.LBFGS([w, b], max_iter=200)

        def closure():
            optimizer.zero_grad()
            loss = criterion(x[:, None] * w + b, y)
            loss.backward()
            return loss

        optimizer.step(closure)
        return float(-(b[1] - b[0]).detach() / (w[1] - w[0]).detach())

    assert boundary(F.cross_entropy) > 0.8
    assert abs(boundary(LogitAdjustedLoss(torch.tensor([1800.0, 200.0])))) < 0.2
