"""Bad items while reading a dataset: named by index, or skipped and kept out of everything."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import FIT, make_shapes
from torch.utils.data import Dataset

from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.reading import read_dataset


class Items(Dataset):
    """float images in [0, 1] with a ``classes`` list; ``bad`` maps an index to a fault."""

    def __init__(self, bad=None, counts=(30, 12)):
        X, y = make_shapes(counts, size=16)
        self.images = torch.from_numpy(X).float() / 255
        # No .targets / .labels: labels are read from the items, so a bad one is seen.
        self._labels = y.tolist()
        self.classes = ["stripes", "columns"]
        self.bad = bad or {}

    def __len__(self):
        return len(self._labels)

    def __getitem__(self, i):
        image, label = self.images[i], self._labels[i]
        fault = self.bad.get(i)
        if fault == "raise":
            raise OSError(f"cannot identify image file 'img_{i}.png'")
        if fault == "size":
            image = torch.zeros(1, 8, 8)
        if fault == "grey":  # a 3-channel image among 1-channel ones
            image = image.expand(3, -1, -1).clone()
        if fault == "nan":
            image = image.clone()
            image[0, 3, 3] = float("nan")
        if fault == "inf":
            image = image.clone()
            image[0, 0, 0] = float("inf")
        if fault == "label":
            label = 7
        return image, label


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("raise", r"dataset item 5 could not be read: OSError: cannot identify image .*img_5"),
        ("size", r"dataset item 5 is \(1, 8, 8\) .* first good item is \(1, 16, 16\).*Resize"),
        (
            "grey",
            r"dataset item 5 is \(3, 16, 16\).* one number of channels .*"
            r"Grayscale\(num_output_channels=3\)",
        ),
        ("nan", r"dataset item 5 has NaN or infinite pixel values"),
        ("inf", r"dataset item 5 has NaN or infinite pixel values"),
        ("label", r"dataset item 5 has label 7, outside the dataset's 2 classes"),
    ],
)
def test_a_bad_item_is_named_by_index_with_the_fix(fault, message):
    with pytest.raises(ValueError, match=message) as info:
        read_dataset(Items({5: fault}))
    assert "on_bad_item='skip'" in str(info.value)
    if fault == "raise":  # the original exception is kept
        assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(ValueError, match=message):
        OversampledDataset(Items({5: fault}), **FIT)


def test_skipped_items_stay_out_of_the_fit_the_plan_and_the_epoch():
    bad = {0: "raise", 3: "size", 8: "nan", 31: "label", 35: "grey"}
    base = Items(bad)
    with pytest.warns(
        UserWarning, match=r"Skipped 5 bad dataset item\(s\) of 42 \(indices 0, 3, 8, 31, 35\)"
    ):
        ds = OversampledDataset(base, on_bad_item="skip", **FIT)
    kept = [i for i in range(len(base)) if i not in bad]
    assert ds.n_real == len(kept) == len(ds.model.latents_)
    assert ds.real_indices.tolist() == kept
    # Real positions serve the kept items, in order; balanced over the kept labels.
    for p in (0, 5, ds.n_real - 1):
        image, label = ds[p]
        assert torch.equal(image, base.images[kept[p]]) and label == base._labels[kept[p]]
    counts = np.bincount(ds.targets)
    assert counts.tolist() == [27, 27]  # 27 of 30 and 10 of 12 kept, then balanced
    for index in range(ds.n_real, len(ds)):
        info = ds.origin(index)
        for key in ("base", "neighbor", "anchor"):
            assert info[key] not in bad and base._labels[info[key]] == info["label"]
    assert torch.isfinite(torch.stack([ds[i][0] for i in range(len(ds))])).all()


def test_fit_dataset_skips_the_same_items():
    bad = {2: "nan", 33: "raise"}
    with pytest.warns(UserWarning, match=r"Skipped 2 bad dataset item\(s\)"):
        model = DeepSMOTE(**FIT).fit_dataset(Items(bad), on_bad_item="skip")
    kept = [i for i in range(42) if i not in bad]
    assert torch.equal(model.labels_, torch.tensor(Items()._labels)[kept])


def test_skipping_more_than_half_of_the_items_is_refused():
    # The first item is the odd one out: every other item would be skipped for its shape.
    with pytest.raises(ValueError, match=r"more than half.*first good item is likely the odd"):
        read_dataset(Items({0: "grey"}, counts=(6, 4)), on_bad_item="skip")


def test_a_dataset_of_bad_items_only_is_refused():
    with pytest.raises(ValueError, match="at least one good item, but all 3 are bad"):
        read_dataset(Items({0: "raise", 1: "raise", 2: "raise"}, counts=(2, 1)), on_bad_item="skip")


def test_on_bad_item_is_checked():
    with pytest.raises(ValueError, match="on_bad_item"):
        OversampledDataset(Items(), on_bad_item="ignore", **FIT)


@pytest.mark.parametrize(
    ("images", "message"),
    [
        # Channels-last tensors: say what came, and permute, not a parameter never passed.
        (torch.zeros(4, 16, 16, 3), r"dataset item 0 .* got shape \(16, 16, 3\).*permute it"),
        (torch.zeros(4, 1, 4, 4), r"dataset item 0 .* at least 8x8 .* got shape \(1, 4, 4\)"),
    ],
)
def test_images_the_encoder_cannot_take_are_named_with_what_came_and_the_fix(images, message):
    dataset = torch.utils.data.TensorDataset(images, torch.tensor([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=message + ".*fit_transform=") as info:
        read_dataset(dataset)
    assert "image_shape" not in str(info.value)
