"""CMO as a batch transform: the box, the paste, the draws, the prior and a training loop."""

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from torch_deepsmote import LogitAdjustedLoss
from torch_deepsmote.cmo import CMO, box, minority_sampler, paste


def _batches(value, label, n=4, side=8):
    return [(torch.full((n, 1, side, side), float(value)), torch.full((n,), label))]


def test_the_box_is_sqrt_of_one_minus_lam_per_side_clipped_at_the_border():
    assert box(8, 8, 0.75, 4, 4) == (2, 6, 2, 6)  # sides 4 = sqrt(0.25) * 8
    assert box(8, 8, 0.75, 0, 7) == (0, 2, 5, 8)  # clipped: a smaller area
    assert box(10, 6, 0.0, 5, 3) == (0, 10, 0, 6)  # lam 0: the whole image
    top, bottom, left, right = box(28, 28, 0.5, 14, 14)
    assert (bottom - top, right - left) == (18, 18)  # int(sqrt(0.5) * 28) = 19 -> 2 * 9


def test_paste_replaces_exactly_the_box_and_leaves_its_inputs_alone():
    background, foreground = torch.zeros(2, 3, 6, 6), torch.ones(2, 3, 6, 6)
    out = paste(background, foreground, (1, 4, 2, 5))
    assert int(out.sum()) == 2 * 3 * 3 * 3 and bool(out[..., 1:4, 2:5].eq(1).all())
    assert int(background.sum()) == 0 and int(foreground.sum()) == 2 * 3 * 36


def test_the_background_weight_is_the_area_not_pasted():
    cmo = CMO(_batches(1, 7), prob=1.0, seed=3)
    for _ in range(20):
        batch = cmo(*_batches(0, 1)[0])
        pasted_share = float(batch.images.mean())  # ones where pasted
        assert batch.lam == pytest.approx(1 - pasted_share)
        assert batch.targets.tolist() == [1] * 4 and batch.pasted.tolist() == [7] * 4


def test_draws_follow_the_seed_and_prob():
    def run(seed, prob):
        cmo = CMO(_batches(1, 2), prob=prob, seed=seed)
        return [cmo(*_batches(0, 0)[0]).lam for _ in range(200)]

    assert run(0, 0.5) == run(0, 0.5) and run(0, 0.5) != run(1, 0.5)
    pasted = sum(lam < 1 for lam in run(0, 0.5))
    assert 70 <= pasted <= 130  # about half the batches
    assert run(0, 0.0) == [1.0] * 200  # prob 0: every batch as it is
    untouched = CMO(_batches(1, 2), prob=0.0)(*_batches(0, 0)[0])
    assert int(untouched.images.sum()) == 0 and untouched.pasted.tolist() == [0] * 4


def test_the_minority_sampler_draws_classes_at_n_c_to_the_minus_power():
    labels = torch.tensor([0] * 800 + [1] * 150 + [2] * 50)
    generator = torch.Generator().manual_seed(0)
    drawn = labels[list(minority_sampler(labels, 1.0, 30000, generator))]
    rates = torch.bincount(drawn, minlength=3).double() / len(drawn)
    torch.testing.assert_close(
        rates, torch.full((3,), 1 / 3, dtype=torch.float64), atol=0.02, rtol=0
    )
    natural = labels[list(minority_sampler(labels, 0.0, 30000, generator))]
    rates = torch.bincount(natural, minlength=3).double() / len(natural)
    torch.testing.assert_close(
        rates, torch.tensor([0.8, 0.15, 0.05], dtype=torch.float64), atol=0.02, rtol=0
    )


def test_the_stated_prior_is_the_natural_one():
    labels = [0] * 6 + [1] * 3 + [2]
    torch.testing.assert_close(
        CMO.class_prior(labels), torch.tensor([0.6, 0.3, 0.1], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"prob": 1.5}, ValueError, r"`prob` should be in \[0, 1\], but got prob=1.5"),
        ({"prob": "half"}, TypeError, r"`prob` should be a number"),
        ({"seed": -1}, ValueError, r"`seed` should be"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, error, message):
    with pytest.raises(error, match=message):
        CMO(_batches(1, 2), **kwargs)


def test_a_minority_batch_smaller_than_the_natural_one_is_refused():
    cmo = CMO(_batches(1, 2, n=2), prob=1.0)
    with pytest.raises(ValueError, match=r"`minority` should give batches of at least 4"):
        cmo(*_batches(0, 0)[0])


def test_a_training_loop_with_cmo_and_the_matched_loss_learns():
    torch.manual_seed(0)
    counts = (120, 30, 10)
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    x = (y.float()[:, None, None, None] + 0.3 * torch.randn(len(y), 1, 8, 8)) / 2
    train = TensorDataset(x, y)
    natural = DataLoader(train, batch_size=16, shuffle=True, drop_last=True)
    sampler = minority_sampler(y, generator=torch.Generator().manual_seed(1))
    minority = DataLoader(train, batch_size=16, sampler=sampler, drop_last=True)
    cmo = CMO(minority, prob=0.5, seed=0)
    criterion = LogitAdjustedLoss(CMO.class_prior(y))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(15):
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
