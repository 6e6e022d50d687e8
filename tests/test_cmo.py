"""CMO as a batch transform: the box, the paste, the draws, the minority sampler, the prior
and a training loop."""

import pytest
import torch
import torch.nn.functional as F
from helpers import TINY, make_shapes
from torch.utils.data import DataLoader, TensorDataset

from torch_deepsmote import (
    ClassPriorSampler,
    LogitAdjustedLoss,
    MinoritySampler,
    OversampledDataset,
)
from torch_deepsmote.cmo import CMO, CMOBatch, box, paste

COUNTS = (800, 150, 50)


def _batches(value, label, n=4, side=8):
    return [(torch.full((n, 1, side, side), float(value)), torch.full((n,), label))]


def _labels(counts=COUNTS):
    return torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])


class Toy(torch.utils.data.Dataset):
    """What the sampler reads of an OversampledDataset: targets, set_epoch; items too."""

    def __init__(self, counts=COUNTS):
        self.targets = _labels(counts)
        self.epochs = []

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        return torch.full((1, 8, 8), float(self.targets[i])), int(self.targets[i])

    def set_epoch(self, epoch):
        self.epochs.append(epoch)


# ---------------------------------------------------------------------- box and paste
def test_the_box_is_sqrt_of_one_minus_lam_per_side_clipped_at_the_border():
    assert box(8, 8, 0.75, 4, 4) == (2, 6, 2, 6)  # sides 4 = sqrt(0.25) * 8
    assert box(8, 8, 0.75, 0, 7) == (0, 2, 5, 8)  # clipped: a smaller area
    assert box(10, 6, 0.0, 5, 3) == (0, 10, 0, 6)  # lam 0: the whole image
    assert box(8, 8, 1.0, 4, 4) == (4, 4, 4, 4)  # lam 1: nothing
    top, bottom, left, right = box(28, 28, 0.5, 14, 14)
    assert (bottom - top, right - left) == (18, 18)  # int(sqrt(0.5) * 28) = 19 -> 2 * 9


def test_paste_replaces_exactly_the_box_and_leaves_its_inputs_alone():
    background = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    foreground = -background
    out = paste(background, foreground, (1, 3, 0, 2))
    expected = background.clone()
    expected[:, :, 1:3, 0:2] = -background[:, :, 1:3, 0:2]
    assert torch.equal(out, expected)
    assert out[0, 0].tolist() == [
        [0.0, 1.0, 2.0, 3.0],
        [-4.0, -5.0, 6.0, 7.0],
        [-8.0, -9.0, 10.0, 11.0],
        [12.0, 13.0, 14.0, 15.0],
    ]
    assert torch.equal(background, -foreground)  # inputs untouched


def test_a_cmo_batch_is_the_paste_of_the_drawn_box_and_lam_is_the_area_left():
    cmo, twin = CMO(_batches(1, 7), prob=1.0, seed=3), CMO(_batches(1, 7), prob=1.0, seed=3)
    for _ in range(20):
        where = twin.draw(8, 8)
        batch = cmo(*_batches(0, 1)[0])
        top, bottom, left, right = where
        area = (bottom - top) * (right - left) / 64
        assert torch.equal(
            batch.images, paste(torch.zeros(4, 1, 8, 8), torch.ones(4, 1, 8, 8), where)
        )
        assert batch.lam == pytest.approx(1 - area) and float(batch.images.mean()) == area
        assert batch.targets.tolist() == [1] * 4 and batch.pasted.tolist() == [7] * 4


def test_the_foreground_takes_the_backgrounds_dtype_and_a_larger_batch_is_cut():
    minority = [(torch.ones(6, 1, 8, 8, dtype=torch.float64), torch.full((6,), 2))]
    batch = CMO(minority, prob=1.0)(torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long))
    assert batch.images.dtype == torch.float32 and len(batch.pasted) == 4
    assert batch.pasted.dtype == torch.long


# ---------------------------------------------------------------------- draws
def test_draws_follow_the_seed_and_prob():
    def run(seed, prob):
        cmo = CMO(_batches(1, 2), prob=prob, seed=seed)
        return [cmo(*_batches(0, 0)[0]).lam for _ in range(200)]

    assert run(0, 0.5) == run(0, 0.5) and run(0, 0.5) != run(1, 0.5)
    pasted = sum(lam < 1 for lam in run(0, 0.5))
    assert 70 <= pasted <= 130  # about half the batches


def test_prob_zero_leaves_every_batch_as_it_is():
    cmo = CMO(_batches(1, 2), prob=0.0)
    for _ in range(50):
        images, targets = _batches(0, 0)[0]
        batch = cmo(images, targets)
        assert batch.images is images and batch.lam == 1.0
        assert batch.targets is targets and batch.pasted is targets


def test_the_global_rng_is_neither_used_nor_moved():
    def run():
        sampler = MinoritySampler(Toy(), seed=1)
        minority = DataLoader(Toy(), batch_size=4, sampler=sampler, drop_last=True)
        cmo = CMO(minority, prob=0.5, seed=2)
        return torch.stack([cmo(*_batches(0, 0)[0]).images for _ in range(30)])

    torch.manual_seed(0)
    first, state = run(), torch.get_rng_state()
    assert torch.equal(state, torch.get_rng_state())
    torch.manual_seed(123)
    assert torch.equal(first, run())


def test_set_epoch_replays_an_epoch_from_its_number():
    def epoch(cmo, sampler, e):
        sampler.set_epoch(e)
        cmo.set_epoch(e)
        return torch.stack([cmo(*_batches(0, 0)[0]).images for _ in range(10)])

    def fresh():
        sampler = MinoritySampler(Toy(), seed=0)
        return CMO(DataLoader(Toy(), batch_size=4, sampler=sampler), prob=0.5), sampler

    cmo, sampler = fresh()
    seen = [epoch(cmo, sampler, e) for e in range(3)]
    cmo, sampler = fresh()
    assert torch.equal(epoch(cmo, sampler, 2), seen[2])
    assert not torch.equal(seen[0], seen[1])


# ---------------------------------------------------------------------- the minority stream
@pytest.mark.parametrize("power", [1.0, 0.5, 0.0, 2.0])
def test_the_minority_sampler_draws_items_at_n_c_to_the_minus_power(power):
    labels = _labels()
    sampler = MinoritySampler(labels, power=power, num_samples=30000, seed=0)
    drawn = labels[list(sampler)]
    rates = torch.bincount(drawn, minlength=3).double() / len(drawn)
    counts = torch.tensor(COUNTS, dtype=torch.float64)
    expected = counts * counts**-power  # class rate = n_c items times weight n_c ** -power
    expected = expected / expected.sum()
    torch.testing.assert_close(sampler.class_prior, expected)
    # Four standard deviations of a binomial share of 30,000 draws: at most 0.012.
    torch.testing.assert_close(rates, expected, atol=0.012, rtol=0)


def test_the_minority_sampler_continues_its_stream_until_set_epoch():
    ds = Toy()
    sampler = MinoritySampler(ds, num_samples=50, seed=4)
    first, second = list(sampler), list(sampler)
    assert first != second  # a second pass is new draws, not a repeat
    sampler.set_epoch(0)
    assert list(sampler) == first and ds.epochs == [0]
    sampler.set_epoch(1)
    assert list(sampler) != first and ds.epochs == [0, 1]


def test_the_minority_sampler_gives_ranks_disjoint_shares_of_one_draw():
    def draws(n, **ranks):
        return list(MinoritySampler(Toy(), num_samples=n, seed=5, **ranks))

    shares = [draws(99, num_replicas=4, rank=r) for r in range(4)]
    assert [len(s) for s in shares] == [25] * 4  # ceil(99 / 4) each
    assert all(shares[r] == draws(100)[r::4] for r in range(4))  # one draw, split


# ---------------------------------------------------------------------- the prior and the loss
def test_the_stated_prior_is_the_background_streams_natural_one():
    labels = [0] * 6 + [1] * 3 + [2]
    torch.testing.assert_close(
        CMO.class_prior(labels), torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    )
    criterion = LogitAdjustedLoss(CMO.class_prior(labels))
    torch.testing.assert_close(
        criterion.log_prior.exp().double(), torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    )


def test_the_mixed_loss_weights_the_two_targets_by_area():
    logits = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    targets, pasted = torch.tensor([0, 0, 1, 2]), torch.tensor([2, 1, 2, 2])
    batch = CMOBatch(torch.zeros(4, 1, 2, 2), targets, pasted, 0.75)
    expected = 0.75 * F.cross_entropy(logits, targets) + 0.25 * F.cross_entropy(logits, pasted)
    torch.testing.assert_close(batch.loss(F.cross_entropy, logits), expected)
    torch.testing.assert_close(F.cross_entropy(logits, batch.soft_targets(3)), expected)
    criterion = LogitAdjustedLoss(torch.tensor([0.7, 0.2, 0.1]))
    torch.testing.assert_close(
        batch.loss(criterion, logits), criterion(logits, batch.soft_targets(3))
    )
    untouched = CMOBatch(torch.zeros(4, 1, 2, 2), targets, targets, 1.0)
    torch.testing.assert_close(
        untouched.loss(F.cross_entropy, logits), F.cross_entropy(logits, targets)
    )


# ---------------------------------------------------------------------- bad arguments
@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"prob": 1.5}, ValueError, r"`prob` should be in \[0, 1\], but got prob=1.5"),
        ({"prob": -0.1}, ValueError, r"`prob` should be in \[0, 1\], but got prob=-0.1"),
        ({"prob": "half"}, TypeError, r"`prob` should be a number"),
        ({"prob": True}, TypeError, r"`prob` should be a number"),
        ({"seed": -1}, ValueError, r"`seed` should be a non-negative integer"),
        ({"minority": 3}, TypeError, r"`minority` should be an iterable"),
        ({"augment": "flip"}, TypeError, r"`augment` should be None or callable"),
    ],
)
def test_bad_cmo_arguments_name_themselves(kwargs, error, message):
    kwargs = {"minority": _batches(1, 2), **kwargs}
    with pytest.raises(error, match=message):
        CMO(**kwargs)


@pytest.mark.parametrize(
    ("args", "kwargs", "error", "message"),
    [
        ((_labels(),), {"power": -1}, ValueError, r"`power` should be a non-negative number"),
        ((_labels(),), {"power": "1"}, TypeError, r"`power` should be"),
        ((_labels(),), {"num_samples": 0}, ValueError, r"`num_samples` should be a positive"),
        ((_labels(),), {"seed": -2}, ValueError, r"`seed` should be"),
        ((_labels(),), {"num_replicas": 2, "rank": 2}, ValueError, r"`rank` should be"),
        (([0, 1.5],), {}, TypeError, r"`dataset` should hold integer class labels"),
        (([0, -1],), {}, ValueError, r"`dataset` should hold at least one item"),
        ((TensorDataset(torch.zeros(3, 2)),), {}, TypeError, r"`dataset` should be a dataset"),
    ],
)
def test_bad_sampler_arguments_name_themselves(args, kwargs, error, message):
    with pytest.raises(error, match=message):
        MinoritySampler(*args, **kwargs)


def test_a_minority_batch_smaller_than_the_natural_one_is_refused():
    cmo = CMO(_batches(1, 2, n=2), prob=1.0)
    with pytest.raises(ValueError, match=r"`minority` should give batches of at least 4"):
        cmo(*_batches(0, 0)[0])


# ---------------------------------------------------------------------- a training loop
def test_a_training_loop_with_cmo_and_the_matched_loss_learns():
    torch.manual_seed(0)
    counts = (120, 30, 10)
    y = _labels(counts)
    x = (y.float()[:, None, None, None] + 0.3 * torch.randn(len(y), 1, 8, 8)) / 2
    train = TensorDataset(x, y)
    natural = DataLoader(train, batch_size=16, shuffle=True, drop_last=True)
    sampler = MinoritySampler(y, seed=1)
    minority = DataLoader(train, batch_size=16, sampler=sampler, drop_last=True)
    cmo, criterion = CMO(minority, prob=0.5, seed=0), LogitAdjustedLoss(CMO.class_prior(y))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for epoch in range(15):
        sampler.set_epoch(epoch)
        for images, targets in natural:
            batch = cmo(images, targets)
            loss = batch.loss(criterion, model(batch.images))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5
    predicted = model(x).argmax(1)
    recall = [float((predicted[y == c] == c).float().mean()) for c in range(3)]
    assert min(recall) > 0.8  # the smallest class too


def test_deepsmote_images_feed_the_minority_stream_through_a_plain_sampler_choice():
    X, y = make_shapes((60, 20, 8))
    train = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    balanced = OversampledDataset(train, **TINY, random_state=0, knn="torch")
    natural = DataLoader(train, batch_size=8, shuffle=True, drop_last=True)
    criterion = LogitAdjustedLoss(CMO.class_prior(y))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(256, 3))
    both = MinoritySampler(balanced, seed=0)  # real and DeepSMOTE images, balanced
    synthetic = ClassPriorSampler(balanced, class_power=0.0, synthetic_share=1.0)
    for sampler in (both, synthetic):
        minority = DataLoader(balanced, batch_size=8, sampler=sampler, drop_last=True)
        cmo = CMO(minority, prob=1.0, seed=0)
        sampler.set_epoch(1)
        assert balanced.epoch == 1
        for images, targets in natural:
            batch = cmo(images, targets)  # uint8 both: same form, as from one transform
            batch.loss(criterion, model(batch.images.float() / 255)).backward()
    drawn = list(synthetic)
    minority_draws = [i for i in drawn if balanced.targets[i] != 0]
    assert minority_draws and all(balanced.is_synthetic(i) for i in minority_draws)
