"""MONAI dict datasets: the Compose's deterministic head while fitting, its random tail for
synthetic items."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import FIT, make_shapes

monai = pytest.importorskip("monai")

from monai.data import CacheDataset, Dataset, MetaTensor, list_data_collate  # noqa: E402
from monai.transforms import (  # noqa: E402
    Compose,
    EnsureChannelFirstd,
    Lambdad,
    LoadImaged,
    RandFlipd,
    RandLambdad,
    ScaleIntensityd,
)

from torch_deepsmote import OversampledDataset  # noqa: E402

COUNTS = (40, 16, 6)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """MONAI's usual input: a list of dicts naming image files (here .npy), with labels."""
    X, y = make_shapes(COUNTS)
    root = tmp_path_factory.mktemp("monai")
    items = []
    for i, (image, label) in enumerate(zip(X, y)):
        path = root / f"{i:03d}.npy"
        np.save(path, image[0])
        items.append({"image": str(path), "label": int(label), "case": i})
    return X, items


class Counter:
    """A picklable function that counts its calls and returns its input."""

    def __init__(self):
        self.calls = 0

    def __call__(self, x):
        self.calls += 1
        return x


def pipeline(head_calls, tail_calls):
    return Compose(
        [
            LoadImaged(keys="image", reader="NumpyReader"),
            EnsureChannelFirstd(keys="image", channel_dim="no_channel"),
            ScaleIntensityd(keys="image"),
            Lambdad(keys="image", func=head_calls),
            RandLambdad(keys="image", func=tail_calls),
            RandFlipd(keys="image", prob=1.0, spatial_axis=1),  # visible on every item
        ]
    )


@pytest.mark.parametrize("kind", [Dataset, CacheDataset])
def test_a_monai_dataset_fits_on_the_deterministic_head_and_gives_synthetic_items_the_tail(
    files, kind
):
    X, items = files
    head, tail = Counter(), Counter()
    transform = pipeline(head, tail)
    extra = {"progress": False} if kind is CacheDataset else {}
    monai_ds = kind(items, transform=transform, **extra)
    # Decoded per item (no pool), the served image is bit for bit the raw one's flip.
    ds = OversampledDataset(monai_ds, pool=False, **FIT)
    assert monai_ds.transform is transform  # restored
    assert tail.calls == 0  # the random tail was set aside while fitting
    # The head ran once per item: while fitting (Dataset), or when CacheDataset filled its
    # cache, which fitting then read.
    assert head.calls == len(items)
    # Fitted on the head's output: float32 (C, H, W) scaled to [0, 1], not flipped.
    fmt = ds.model.image_format_
    assert (fmt.kind, fmt.dtype, fmt.low, fmt.high) == ("torch", "float32", 0.0, 1.0)
    assert ds.model.image_shape_ == (1, 16, 16)

    real, synthetic = ds[0], ds[len(ds) - 1]
    assert tail.calls == 2
    assert list(real) == list(synthetic) == ["image", "label", "case"]
    assert type(real["image"]) is type(synthetic["image"]) is MetaTensor
    assert synthetic["image"].shape == (1, 16, 16) and synthetic["label"] == 2
    assert synthetic["case"] == -1  # the extra key's marker
    scaled = (X[0, 0] - X[0, 0].min()) / float(X[0, 0].max() - X[0, 0].min())
    assert np.allclose(real["image"][0].numpy(), scaled[:, ::-1], atol=1e-6)  # real: flipped
    # The synthetic image is the raw decoded one, flipped by the tail.
    raw = ds.raw_items(ds.plan()[ds.n_synthetic - 1 :])[0]["image"]
    assert torch.equal(torch.as_tensor(synthetic["image"]), raw.flip(-1))
    batch = list_data_collate([ds[i] for i in (0, 1, len(ds) - 2, len(ds) - 1)])
    assert batch["image"].shape == (4, 1, 16, 16) and batch["case"].tolist() == [0, 1, -1, -1]
