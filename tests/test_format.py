"""One image format and one label rule, the same in every path that takes them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from helpers import FIT, NumpyItems, make_shapes
from PIL import Image
from torch.utils.data import TensorDataset

from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote._format import ImageFormat, as_images
from torch_deepsmote._labels import as_labels
from torch_deepsmote.knn import class_neighbors
from torch_deepsmote.smote import resolve_sampling_strategy

COUNTS = (30, 10)


def label_forms(y):
    """The same labels as Python ints, numpy, tensors and bools (y holds 0 and 1)."""
    return {
        "int": [int(v) for v in y],
        "numpy_int32": y.astype(np.int32),
        "tensor": torch.from_numpy(y),
        "float_whole": y.astype(np.float32),
        "bool_numpy": y.astype(bool),
        "bool_list": [bool(v) for v in y],
        "bool_tensor": torch.from_numpy(y.astype(bool)),
    }


@pytest.mark.parametrize("form", list(label_forms(np.array([0, 1]))))
def test_every_label_form_is_read_the_same_way_in_every_path(form):
    X, y = make_shapes(COUNTS)
    labels = label_forms(y)[form]
    expected = torch.from_numpy(y)
    assert torch.equal(as_labels(labels), expected)
    assert resolve_sampling_strategy("auto", labels) == {0: 0, 1: 20}
    latents = torch.arange(len(y), dtype=torch.float32)[:, None]
    neighbors, _ = class_neighbors(latents, labels, 2, knn="torch")
    assert neighbors.shape == (len(y), 2)
    model = DeepSMOTE(**FIT).fit(X, labels)
    assert torch.equal(model.labels_, expected)
    # labels= must map one-to-one onto the items' targets (here float copies of y).
    given = OversampledDataset(
        TensorDataset(torch.from_numpy(X)[:, 0], torch.from_numpy(y).float()),
        labels=labels,
        **FIT,
    )
    assert Counter(given.targets) == {0: 30, 1: 30}
    # The same labels as the dataset's own targets, read item by item.
    targets = list(labels) if isinstance(labels, (list, np.ndarray)) else list(labels.unbind())
    read = OversampledDataset(NumpyItems(X, targets), **FIT)
    assert torch.equal(read.model.labels_, expected)


def test_bool_targets_come_back_as_bools_on_synthetic_items():
    X, y = make_shapes(COUNTS)
    ds = OversampledDataset(NumpyItems(X, [bool(v) for v in y]), **FIT)
    target = ds[len(ds) - 1][1]
    assert type(target) is bool and target is True


@pytest.mark.parametrize(
    "labels",
    [["a", "b"] * 20, np.array([0.5, 1.0] * 20), torch.tensor([0.0, 1.5] * 20), [object()] * 40],
)
def test_labels_that_are_not_whole_numbers_are_refused_everywhere(labels):
    # DeepSMOTE.fit takes y as scikit-learn does: string labels kept, continuous values an
    # "Unknown label type" ValueError (tests/test_sklearn_contract.py).
    X, _ = make_shapes(COUNTS)
    with pytest.raises(TypeError, match="integer class labels"):
        as_labels(labels)
    with pytest.raises(TypeError, match="integer class labels"):
        OversampledDataset(TensorDataset(torch.from_numpy(X)), labels=labels, **FIT)


def test_image_format_round_trips_items_and_batches():
    X, _ = make_shapes((4,), channels=3)
    images = torch.from_numpy(X)
    pil = ImageFormat("pil", "uint8", None, 0.0, 255.0, "RGB").items(images)
    assert all(isinstance(p, Image.Image) and p.mode == "RGB" for p in pil)
    assert np.array_equal(np.asarray(pil[1]), X[1].transpose(1, 2, 0))
    hwc = ImageFormat("numpy", "uint8", "hwc", 0.0, 255.0).items(images)
    assert hwc[2].shape == (16, 16, 3) and np.array_equal(hwc[2], X[2].transpose(1, 2, 0))
    batch, fmt = as_images(X[:, 0])
    assert fmt.layout == "hw" and batch.shape == (4, 1, 16, 16)
    assert np.array_equal(fmt.export(batch), X[:, 0])
    old = {"container": "numpy", "dtype": "uint8", "channels_dim": False, "low": 0, "high": 255}
    assert ImageFormat.from_dict(old) == ImageFormat("numpy", "uint8", "hw", 0, 255)
    assert ImageFormat.from_dict(fmt.to_dict()) == fmt
