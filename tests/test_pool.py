"""The synthetic pool of OversampledDataset: partial refresh, its draws and its decoding."""

from __future__ import annotations

import hashlib
import pickle

import pytest
import torch
from helpers import FIT, make_shapes
from torch.utils.data import DataLoader, TensorDataset

from torch_deepsmote import DeepSMOTE, DeepSMOTESampler, OversampledDataset
from torch_deepsmote.pool import SyntheticPool


@pytest.fixture(scope="module")
def served():
    X, y = make_shapes((40, 16, 6))
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    return base, DeepSMOTE(**FIT).fit(X, y)


def _count_decodes(monkeypatch, synthesizer):
    decoded = []
    decode = synthesizer.images
    monkeypatch.setattr(
        synthesizer, "images", lambda p, *a: decoded.append(len(p)) or decode(p, *a)
    )
    return decoded


def _old_plan(model, ds, seed, epoch):
    """The plan as the dataset drew it before the pool was an object (fresh per epoch)."""
    digest = hashlib.sha256(f"deepsmote-plan:{seed}:{epoch}".encode()).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest[:7], "little"))
    return model.synthesizer_.plan(ds.synthetic.n_new, generator)


def test_a_fresh_set_is_drawn_as_before_bit_for_bit(served):
    base, model = served
    ds = OversampledDataset(base, model, seed=3)
    for epoch in (0, 1, 4):
        ds.set_epoch(epoch)
        old = _old_plan(model, ds, 3, epoch)
        assert torch.equal(ds.plan().lam, old.lam) and torch.equal(ds.plan().base, old.base)


def test_partial_refresh_draws_a_share_anew_and_decodes_only_it(served, monkeypatch):
    base, model = served
    fresh = OversampledDataset(base, model, pool=True)
    ds = OversampledDataset(base, model, pool=True, refresh=0.25)
    decoded = _count_decodes(monkeypatch, ds.synthesizer)
    n = ds.n_synthetic
    first = ds.plan()
    assert torch.equal(first.lam, fresh.plan().lam)  # epoch 0: the fresh set's
    ds.set_epoch(1)
    changed = int((ds.plan().lam != first.lam).sum())
    assert changed == round(0.25 * n) and sum(decoded) == changed
    assert torch.equal(ds.plan().labels, first.labels)  # each position keeps its class
    # The pool serves exactly what decoding this epoch's plan gives.
    plain = OversampledDataset(base, model, pool=False, refresh=0.25)
    plain.set_epoch(1)
    got = torch.cat([x for x, _ in DataLoader(ds, batch_size=16)])
    assert torch.equal(got, torch.stack([plain[i][0] for i in range(len(plain))]))


def test_partial_refresh_is_a_function_of_seed_and_epoch_alone(served):
    base, model = served
    walked = OversampledDataset(base, model, pool=False, refresh=0.5)
    for epoch in range(1, 6):
        walked.set_epoch(epoch)
    jumped = OversampledDataset(base, model, pool=False, refresh=0.5)
    jumped.set_epoch(5)  # another rank, or a resumed run, that skipped epochs 1-4
    assert torch.equal(walked.plan().lam, jumped.plan().lam)
    copy = pickle.loads(pickle.dumps(walked))  # a worker's copy
    assert torch.equal(copy.plan().base, walked.plan().base)
    assert torch.equal(walked.plan(2).lam, jumped.plan(2).lam)  # any epoch, asked directly
    other = OversampledDataset(base, model, pool=False, refresh=0.5)
    DeepSMOTESampler(other, seed=1).set_epoch(5)
    assert not torch.equal(other.plan().lam, walked.plan().lam)  # the sampler's seed counts


def test_refresh_zero_keeps_one_set_and_refresh_is_checked(served, monkeypatch):
    base, model = served
    ds = OversampledDataset(base, model, pool=True, refresh=0.0)
    decoded = _count_decodes(monkeypatch, ds.synthesizer)
    first = ds.plan()
    ds.set_epoch(3)
    assert torch.equal(ds.plan().lam, first.lam) and decoded == []
    with pytest.raises(ValueError, match=r"`refresh` should be a number in \[0, 1\].*1.5"):
        OversampledDataset(base, model, refresh=1.5)
    with pytest.raises(TypeError, match="refresh"):
        OversampledDataset(base, model, refresh="half")


def test_repr_names_the_dataset_its_transforms_and_the_pool(served):
    from torchvision.transforms import Compose, Resize

    base, model = served
    ds = OversampledDataset(base, model, transform=Compose([Resize(8)]), refresh=0.5)
    text = repr(ds)
    assert "TensorDataset of 62 items" in text
    assert "Transform (synthetic items): Compose(" in text and "Resize(size=8" in text
    assert "SyntheticPool(" in text and "refresh=0.5" in text and "pooled" in text
    assert f"({ds.n_real} real, {ds.n_synthetic} synthetic)" in text


def test_one_memory_rule_for_the_pool_and_the_read(served, monkeypatch):
    import torch_deepsmote.reading as reading

    base, model = served
    ds = OversampledDataset(base, model)
    needed = ds.n_synthetic * 16 * 16  # uint8 images
    monkeypatch.setattr(reading, "available_memory", lambda: 4 * needed)
    assert reading.memory_allows(needed) and not reading.memory_allows(needed + 1)
    assert SyntheticPool(ds.synthesizer, ds.synthetic.n_new, (1, 16, 16)).pooled
    monkeypatch.setattr(reading, "available_memory", lambda: 4 * needed - 4)
    assert not SyntheticPool(ds.synthesizer, ds.synthetic.n_new, (1, 16, 16)).pooled
    row = torch.zeros(1, 16, 16, dtype=torch.uint8)  # images plus float16 residuals
    assert reading.fits_in_memory(10, row) == reading.memory_allows(10 * 256 * 3)
