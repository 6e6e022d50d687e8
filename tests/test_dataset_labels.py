"""Labels and targets of OversampledDataset: synthetic items carry the target their class's
real items carry (class names, ints, tensors, numpy), and `labels=` must agree with them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import FIT, NumpyItems, make_shapes
from sklearn.preprocessing import LabelEncoder

from torch_deepsmote import DeepSMOTE, OversampledDataset

NAMES = np.array(["digit0", "digit1", "digit2"])


@pytest.fixture(scope="module")
def data():
    return make_shapes((30, 12, 6))


def _served(ds):
    return [ds[i][1] for i in range(len(ds))]


def test_string_targets_are_classes_in_sorted_order_and_synthetic_items_carry_them(data):
    X, y = data
    names = [str(NAMES[label]) for label in y]
    ds = OversampledDataset(NumpyItems(X, names), **FIT)
    assert ds.targets[: len(y)] == y.tolist()  # encoded like LabelEncoder: sorted names
    assert ds.classes == ["digit0", "digit1", "digit2"]
    assert ds.class_to_idx == {"digit0": 0, "digit1": 1, "digit2": 2}
    served = _served(ds)
    assert all(type(t) is str for t in served)
    assert served == [str(NAMES[label]) for label in ds.targets]


def test_label_encoded_labels_serve_the_items_own_string_targets(data):
    X, y = data
    names = [str(NAMES[label]) for label in y]
    labels = LabelEncoder().fit_transform(names)  # the advice of as_labels' message
    ds = OversampledDataset(NumpyItems(X, names), labels=labels, **FIT)
    served = _served(ds)
    assert all(type(t) is str for t in served[ds.n_real :])
    assert served == [str(NAMES[label]) for label in ds.targets]


def test_one_to_one_relabelling_keeps_the_items_targets_for_both_kinds(data):
    X, y = data
    relabel = np.array([3, 7, 100])
    ds = OversampledDataset(NumpyItems(X, y), labels=relabel[y], **FIT)
    served = _served(ds)
    # .targets speak labels=, items carry their own targets: one class, one target.
    back = {3: 0, 7: 1, 100: 2}
    assert [int(t) for t in served] == [back[label] for label in ds.targets]
    assert set(ds.targets[ds.n_real :]) == {7, 100}


def test_tensor_and_numpy_targets_come_back_in_their_form(data):
    X, y = data
    for targets, kind in (
        (torch.as_tensor(y, dtype=torch.int32), torch.Tensor),
        (y.astype(np.int16), np.integer),
    ):
        ds = OversampledDataset(NumpyItems(X, list(targets)), **FIT)
        synthetic = ds[len(ds) - 1][1]
        assert isinstance(synthetic, kind) and synthetic.dtype == targets[0].dtype
        assert int(synthetic) == ds.targets[-1]


def test_labels_that_disagree_with_the_targets_are_refused_naming_the_item(data):
    X, y = data
    merged = (y == 0).astype(int)  # classes 1 and 2 share a label: two targets, one label
    with pytest.raises(ValueError, match=r"one-to-one.*item 30 .*target_transform"):
        OversampledDataset(NumpyItems(X, y), labels=merged, **FIT)
    split = y.copy()
    split[5] = 2  # one item of class 0 labelled 2: one target, two labels
    with pytest.raises(ValueError, match=r"one-to-one.*item 5 "):
        OversampledDataset(NumpyItems(X, y), labels=split, **FIT)


def test_targets_of_mixed_types_are_refused(data):
    X, y = data
    targets = [str(NAMES[label]) for label in y]
    targets[7] = 0
    with pytest.raises(TypeError, match=r"item 7 .*class names"):
        OversampledDataset(NumpyItems(X, targets), **FIT)


def test_fit_dataset_reads_string_targets(data):
    X, y = data
    names = [str(NAMES[label]) for label in y]
    model = DeepSMOTE(**FIT).fit_dataset(NumpyItems(X, names))
    ds = OversampledDataset(NumpyItems(X, names), model)
    assert ds[len(ds) - 1][1] == "digit2"


# ---------------------------------------------------------------------- indexing
@pytest.fixture(scope="module")
def balanced(data):
    X, y = data
    return OversampledDataset(NumpyItems(X, y), **FIT)


def test_index_like_a_sequence_integers_of_every_kind(balanced):
    ds = balanced
    expected = ds[5]
    for index in (np.int64(5), np.int32(5), torch.tensor(5), torch.tensor(5, dtype=torch.int16)):
        image, target = ds[index]
        assert np.array_equal(image, expected[0]) and target == expected[1]
    last = ds[len(ds) - 1]
    assert np.array_equal(ds[-1][0], last[0]) and ds.is_synthetic(np.int64(-1))
    assert ds.origin(torch.tensor(-1)) == ds.origin(len(ds) - 1)


@pytest.mark.parametrize(
    "index, kind",
    [
        (5.7, "float"),
        ([1, 2], "list"),
        (True, "bool"),
        ("5", "str"),
        (np.bool_(True), "bool"),
        (torch.tensor(1.0), "Tensor"),
        (torch.tensor([1, 2]), "Tensor"),
        (slice(0, 2), "slice"),
        (None, "NoneType"),
    ],
)
def test_other_indices_are_refused_naming_their_type(balanced, index, kind):
    with pytest.raises(TypeError, match=rf"indices should be integers.*{kind}"):
        balanced[index]
    with pytest.raises(TypeError, match=rf"indices should be integers.*{kind}"):
        balanced.is_synthetic(index)


def test_getitems_takes_a_batch_of_integers(balanced):
    ds = balanced
    batch = ds.__getitems__([1, np.int64(len(ds) - 1), torch.tensor(-1)])
    assert batch[0][1] == ds[1][1] and np.array_equal(batch[1][0], batch[2][0])
    with pytest.raises(TypeError, match=r"indices should be integers.*float"):
        ds.__getitems__([1, 2.5])
    with pytest.raises(IndexError, match="out of range"):
        ds.__getitems__([len(ds)])


# ---------------------------------------------------------------------- seeds
def _synthetic(ds):
    return torch.stack([torch.as_tensor(ds[i][0]) for i in range(ds.n_real, len(ds))])


def test_the_sampler_seed_draws_the_synthetic_set_of_a_dataset_without_one(data):
    from torch_deepsmote import DeepSMOTESampler

    X, y = data
    model = DeepSMOTE(**FIT).fit_dataset(NumpyItems(X, y))
    ds = OversampledDataset(NumpyItems(X, y), model)  # no seed of its own
    own = OversampledDataset(NumpyItems(X, y), model, seed=0)
    assert torch.equal(_synthetic(ds), _synthetic(own))  # alone: seed 0, as before
    DeepSMOTESampler(ds, seed=1)
    one = _synthetic(ds)
    assert not torch.equal(one, _synthetic(own))  # the sampler's seed picks the draw
    DeepSMOTESampler(ds, seed=0)
    assert torch.equal(_synthetic(ds), _synthetic(own))  # and reproduces it
    sampler = DeepSMOTESampler(ds, seed=1)
    sampler.set_epoch(3)
    own.set_epoch(3)
    assert not torch.equal(_synthetic(ds), one) and not torch.equal(_synthetic(ds), _synthetic(own))
    # A dataset seed of its own wins over the sampler's.
    DeepSMOTESampler(own, seed=1).set_epoch(3)
    fixed = OversampledDataset(NumpyItems(X, y), model, seed=0)
    fixed.set_epoch(3)
    assert torch.equal(_synthetic(own), _synthetic(fixed))


def test_every_rank_draws_the_same_synthetic_set_from_the_sampler_seed(data):
    import pickle

    from torch_deepsmote import ClassPriorSampler, DeepSMOTESampler, MinoritySampler

    X, y = data
    model = DeepSMOTE(**FIT).fit_dataset(NumpyItems(X, y))
    ds = OversampledDataset(NumpyItems(X, y), model)
    for make in (
        lambda d, r: DeepSMOTESampler(d, num_replicas=2, rank=r, seed=5),
        lambda d, r: ClassPriorSampler(d, num_replicas=2, rank=r, seed=5),
        lambda d, r: MinoritySampler(d, num_replicas=2, rank=r, seed=5),
    ):
        ranks = [pickle.loads(pickle.dumps(ds)) for _ in range(2)]
        samplers = [make(d, r) for r, d in enumerate(ranks)]
        for sampler in samplers:
            sampler.set_epoch(2)
        assert torch.equal(ranks[0].plan().base, ranks[1].plan().base)
        assert ranks[0].draw_seed == 5
