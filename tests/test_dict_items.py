"""Dict items and longer tuples: keys found or given, synthetic items of the same form."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch
from helpers import FIT, make_shapes
from torch.utils.data import DataLoader, Dataset, TensorDataset

from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote._items import find_layout

COUNTS = (40, 16, 6)


def over(dataset, model=None, **kwargs):
    return OversampledDataset(dataset, model, **{"progress": False, **kwargs})


@pytest.fixture(scope="module")
def tensors():
    """(images, labels) as torch tensors: the items' own form here (not numpy arrays)."""
    X, y = make_shapes(COUNTS)
    return torch.from_numpy(X), torch.from_numpy(y)


@pytest.fixture(scope="module")
def model(tensors):
    """One model for every form of the same images (each form is checked against it)."""
    return DeepSMOTE(**FIT).fit_dataset(TensorDataset(*tensors))


class DictItems(Dataset):
    """A user's dataset of dict items: image and label under ``keys``, and extra fields."""

    def __init__(self, data, keys=("image", "label"), transform=None, extras=True):
        self.X, self.y = data
        self.keys, self.transform, self.extras = keys, transform, extras

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        image = self.X[i] if self.transform is None else self.transform(self.X[i])
        item = {"id": i, self.keys[0]: image, "path": f"img{i}.png", self.keys[1]: int(self.y[i])}
        if self.extras:
            item.update(weight=0.5, mask=torch.ones(2, 3, dtype=torch.int16), ok=True)
        else:
            del item["id"], item["path"]
        return item


class TupleItems(Dataset):
    """``(path, image, label)`` or ``(image, label, path)`` items."""

    def __init__(self, data, path_first=False):
        self.X, self.y, self.path_first = *data, path_first

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        if self.path_first:
            return f"img{i}.png", self.X[i], int(self.y[i])
        return self.X[i], int(self.y[i]), f"img{i}.png"


@pytest.mark.parametrize("image_key", ["image", "img", "pixel_values"])
@pytest.mark.parametrize("label_key", ["label", "labels", "target"])
def test_dict_items_by_common_keys_give_synthetic_dicts_of_the_same_keys_and_types(
    tensors, model, image_key, label_key
):
    ds = over(DictItems(tensors, (image_key, label_key)), model)
    real, synthetic = ds[3], ds[len(ds) - 1]
    expected = DictItems(tensors, (image_key, label_key))[3]  # real items come back unchanged
    assert list(real) == list(expected) and torch.equal(real[image_key], expected[image_key])
    assert list(synthetic) == list(real)  # same keys, same order
    assert {k: type(v) for k, v in synthetic.items()} == {k: type(v) for k, v in real.items()}
    image = synthetic[image_key]
    assert image.shape == real[image_key].shape and image.dtype == torch.uint8
    assert synthetic[label_key] == ds.targets[-1] == 2
    # The extra fields hold markers of the real values' types.
    assert synthetic["id"] == -1 and synthetic["path"] == "" and synthetic["ok"] is False
    assert math.isnan(synthetic["weight"])
    assert synthetic["mask"].dtype == torch.int16 and torch.equal(
        synthetic["mask"], torch.full((2, 3), -1, dtype=torch.int16)
    )


def test_given_keys_override_the_conventions(tensors, model):
    ds = over(DictItems(tensors, ("x", "y"), extras=False), model, image_key="x", label_key="y")
    assert list(ds[len(ds) - 1]) == ["x", "y"] and ds[len(ds) - 1]["y"] == 2
    assert ds.classes == [0, 1, 2]


def test_a_real_and_synthetic_batch_collates_with_the_default_collate(tensors, model):
    ds = over(DictItems(tensors), model)
    batch = next(iter(DataLoader(ds, batch_size=len(ds))))
    assert batch["image"].shape == (len(ds), 1, 16, 16)
    assert batch["label"].tolist() == ds.targets
    assert batch["id"][: ds.n_real].tolist() == list(range(ds.n_real))
    assert (batch["id"][ds.n_real :] == -1).all() and batch["path"][-1] == ""
    assert batch["mask"].shape == (len(ds), 2, 3)


def test_extra_keys_drop_removes_them_from_real_and_synthetic_items(tensors, model):
    ds = over(DictItems(tensors, ("img", "target")), model, extra_keys="drop")
    assert list(ds[0]) == ["img", "target"] == list(ds[len(ds) - 1])
    assert torch.equal(ds[0]["img"], tensors[0][0])
    batch = next(iter(DataLoader(ds, batch_size=len(ds))))
    assert set(batch) == {"img", "target"} and batch["target"].tolist() == ds.targets


def test_longer_tuples_keep_their_length_and_order(tensors, model):
    ds = over(TupleItems(tensors), model)
    image, target, path = ds[len(ds) - 1]
    assert ds[0][2] == "img0.png" and path == "" and target == 2
    assert image.shape == (1, 16, 16) and image.dtype == torch.uint8
    first = over(TupleItems(tensors, path_first=True), model, image_key=1, label_key=2)
    path, image, target = first[len(first) - 1]
    assert (path, target, image.shape) == ("", 2, (1, 16, 16))
    dropped = over(TupleItems(tensors, path_first=True), model, image_key=1,
                                 label_key=2, extra_keys="drop")  # fmt: skip
    assert len(dropped[0]) == len(dropped[len(dropped) - 1]) == 2
    assert torch.equal(dropped[0][0], tensors[0][0]) and dropped[0][1] == int(tensors[1][0])


def test_the_datasets_transform_is_set_aside_while_fitting_and_applied_to_synthetic_images(
    tensors, model
):
    calls = []

    def scale(image):  # a visible, countable transform of the image (torchvision's rule)
        calls.append(1)
        return image.float() / 255

    # The model was fitted on the raw uint8 images: it is refused unless those are read.
    ds = over(DictItems(tensors, transform=scale), model)
    assert calls == []
    synthetic = ds[len(ds) - 1]
    assert len(calls) == 1 and synthetic["image"].dtype == torch.float32
    assert 0 <= synthetic["image"].min() and synthetic["image"].max() <= 1
    # The wrapper's own transform applies to the image under the same key.
    flipped = over(
        DictItems(tensors), ds.model, transform=lambda image: image.flip(-1), transform_real=True
    )
    assert torch.equal(flipped[0]["image"], tensors[0][0].flip(-1))


def test_copies_serve_the_same_dict_items(tensors, model):
    ds = over(DictItems(tensors), model)
    copy = pickle.loads(pickle.dumps(ds))
    for i in (0, len(ds) - 1):
        a, b = ds[i], copy[i]
        assert list(a) == list(b) and torch.equal(a["image"], b["image"])


def test_an_item_of_another_form_is_a_bad_item_named_by_index(tensors, model):
    class Mixed(DictItems):
        def __getitem__(self, i):
            item = super().__getitem__(i)
            return {k: v for k, v in item.items() if k != "path"} if i == 5 else item

    with pytest.raises(
        ValueError,
        match=r"item 5 is a dict with keys \['id', 'image', 'label'.* first good item is a dict",
    ):
        over(Mixed(tensors), model)
    with pytest.warns(UserWarning, match="Skipped 1 bad dataset item"):
        ds = over(Mixed(tensors), **FIT, on_bad_item="skip")
    assert ds.n_real == sum(COUNTS) - 1 and ds.origin(len(ds) - 1)["base"] != 5


@pytest.mark.parametrize(
    ("item", "kwargs", "error", "match"),
    [
        ({"x": 0, "label": 1}, {}, TypeError, r"keys \['x', 'label'\].*Pass image_key="),
        ({"image": 0, "y": 1}, {}, TypeError, r"keys \['image', 'y'\].*Pass label_key="),
        ({"image": 0, "img": 0, "label": 1}, {}, ValueError, r"\['image', 'img'\].*image_key="),
        ({"image": 0, "label": 1}, {"image_key": "pic"}, ValueError, r"image_key='pic'.*keys"),
        ((0, 1, 2), {"label_key": "label"}, TypeError, r"`label_key` should be a position"),
        ((0, 1, 2), {"image_key": 3}, ValueError, r"position in dataset item 0.*length 3"),
        ((0, 1), {"image_key": 1}, ValueError, r"should differ"),
        ("an image", {}, TypeError, r"pairs, longer tuples or dicts, but item 0 is str"),
    ],
)
def test_unsupported_items_say_what_was_found_and_which_argument_to_pass(
    item, kwargs, error, match
):
    with pytest.raises(error, match=match):
        find_layout(item, 0, **kwargs)


def test_an_image_that_is_a_path_says_why(tensors):
    class Paths(DictItems):
        def __getitem__(self, i):
            return {"image": f"img{i}.png", "label": int(self.y[i])}

    with pytest.raises(TypeError, match=r"holds str\. A file path: the transform that loads"):
        over(Paths(tensors), **FIT)
    with pytest.raises(ValueError, match=r"`extra_keys` should be one of 'fill', 'drop'"):
        over(DictItems(tensors), **FIT, extra_keys="keep")


def test_a_marker_has_the_real_values_type_shape_and_dtype():
    item = {
        "image": 0,
        "label": 1,
        "u8": np.uint8(7),
        "f32": np.float32(0.5),
        "array": np.ones((2, 2), dtype=np.uint8),
        "flags": torch.ones(3, dtype=torch.bool),
        "meta": {"affine": 1},
    }
    layout = find_layout(item, 0)
    built = layout.build("IMAGE", 2)
    assert list(built) == list(item) and built["image"] == "IMAGE" and built["label"] == 2
    assert type(built["u8"]) is np.uint8 and built["u8"] == 0
    assert type(built["f32"]) is np.float32 and np.isnan(built["f32"])
    assert built["array"].dtype == np.uint8 and (built["array"] == 0).all()
    assert built["array"].shape == (2, 2)
    assert built["flags"].dtype == torch.bool and not built["flags"].any()
    assert built["meta"] is None
