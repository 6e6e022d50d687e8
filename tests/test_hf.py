"""Hugging Face ``datasets``: labels from Arrow, ClassLabel names, formats, the export."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from helpers import FIT, make_shapes
from PIL import Image
from torch.utils.data import DataLoader

datasets = pytest.importorskip("datasets")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")  # nothing here may reach the network

from torch_deepsmote import DeepSMOTE, OversampledDataset  # noqa: E402
from torch_deepsmote.adapters import find_classes, find_labels  # noqa: E402
from torch_deepsmote.integrations.hf import to_hf_dataset  # noqa: E402

COUNTS = (40, 16, 6)
NAMES = ["stripes", "columns", "square"]


def over(dataset, model=None, **kwargs):
    return OversampledDataset(dataset, model, **{"progress": False, **kwargs})


@pytest.fixture(scope="module")
def data():
    return make_shapes(COUNTS)


def make_hf(X, y, **extra):
    features = datasets.Features(
        image=datasets.Image(),
        label=datasets.ClassLabel(names=NAMES),
        file=datasets.Value("string"),
        **{k: datasets.Value("int64") for k in extra},
    )
    columns = {
        "image": [Image.fromarray(x[0]) for x in X],
        "label": y.tolist(),
        "file": [f"f{i}.png" for i in range(len(y))],
        **extra,
    }
    return datasets.Dataset.from_dict(columns, features=features)


@pytest.fixture(scope="module")
def source(data):
    """The rows in a shuffled order: an indices mapping over the Arrow table, as after
    ``shuffle``, ``select`` or ``train_test_split``."""
    return make_hf(*data).shuffle(seed=0)


@pytest.fixture(scope="module")
def order(source):
    return np.array([int(f[1:-4]) for f in source["file"]])  # row -> original image


@pytest.fixture(scope="module")
def model(source):
    return DeepSMOTE(**FIT).fit_dataset(source)


@pytest.fixture
def decodes(monkeypatch):
    """How many images HF decodes from here on."""
    count = [0]
    decode = datasets.Image.decode_example

    def counting(self, *args, **kwargs):
        count[0] += 1
        return decode(self, *args, **kwargs)

    monkeypatch.setattr(datasets.Image, "decode_example", counting)
    return count


def to_pixels(batch):
    """An HF-style batch transform: PIL images -> float (1, H, W) tensors in [0, 1]."""
    pixels = [
        torch.from_numpy(np.asarray(im, dtype=np.float32))[None] / 255 for im in batch["image"]
    ]
    return {"pixel_values": pixels, "label": batch["label"]}


def test_labels_and_class_names_come_from_the_label_column_without_decoding(
    source, order, data, decodes
):
    labels = find_labels(source)
    assert decodes[0] == 0
    assert labels.tolist() == data[1][order].tolist()
    assert find_classes(source) == NAMES and decodes[0] == 0
    ds = over(source, **FIT)
    assert decodes[0] == len(source)  # the one reading pass, nothing more
    assert ds.classes == NAMES and ds.class_to_idx == {n: i for i, n in enumerate(NAMES)}
    assert ds.targets[: ds.n_real] == labels.tolist()


def test_set_transform_is_set_aside_while_fitting_restored_and_formats_synthetic_rows(
    source, order, data, model
):
    calls = []

    def transform(batch):
        calls.append(len(batch["image"]))
        return to_pixels(batch)

    hf = source.with_transform(transform)
    before = hf.format
    ds = over(hf, model)  # checked: the same raw images and labels as the model's
    assert calls == [] and hf.format == before
    real, synthetic = ds[0], ds[len(ds) - 1]
    assert calls == [1, 1]
    assert list(real) == list(synthetic) == ["pixel_values", "label"]
    assert {k: type(v) for k, v in synthetic.items()} == {k: type(v) for k, v in real.items()}
    assert torch.equal(real["pixel_values"], torch.from_numpy(data[0][order[0]]).float() / 255)
    image = synthetic["pixel_values"]
    assert image.shape == (1, 16, 16) and image.dtype == torch.float32
    assert 0 <= image.min() and image.max() <= 1 and synthetic["label"] == 2
    batch = next(iter(DataLoader(ds, batch_size=len(ds))))  # one transform call per batch
    assert batch["pixel_values"].shape == (len(ds), 1, 16, 16)
    assert batch["label"].tolist() == ds.targets


def test_torch_format_rows_come_back_as_torch_tensors_for_synthetic_rows_too(source, model):
    ds = over(source.with_format("torch", columns=["image", "label"]), model)
    real, synthetic = ds[0], ds[len(ds) - 1]
    assert list(real) == list(synthetic) == ["image", "label"]
    for key in real:
        assert type(synthetic[key]) is type(real[key]) is torch.Tensor
        assert synthetic[key].dtype == real[key].dtype and synthetic[key].shape == real[key].shape
    assert synthetic["image"].shape == (1, 16, 16) and int(synthetic["label"]) == 2


def test_plain_rows_keep_every_column_and_fill_the_others(source, model):
    ds = over(source, model)
    real, synthetic = ds[1], ds[len(ds) - 1]
    assert list(real) == list(synthetic) == ["image", "label", "file"]
    assert isinstance(synthetic["image"], Image.Image) and synthetic["image"].mode == "L"
    assert real["file"] == source[1]["file"] and synthetic["file"] == ""
    # A column selection, and a transform of some columns with the others passed along.
    chosen = over(source.with_format(None, columns=["label", "image"]), model)
    assert list(chosen[0]) == list(chosen[len(ds) - 1]) == ["image", "label"]
    mixed = source.with_transform(to_pixels, columns=["image", "label"], output_all_columns=True)
    mixed = over(mixed, model)
    assert list(mixed[0]) == list(mixed[len(ds) - 1]) == ["pixel_values", "label", "file"]
    assert mixed[len(ds) - 1]["file"] == "" and mixed[0]["file"] == source[0]["file"]


def test_export_has_originals_first_a_synthetic_flag_and_provenance(source, model):
    ds = over(source, model)
    ds.set_epoch(1)
    export = to_hf_dataset(ds, batch_size=16)
    n = ds.n_real
    assert len(export) == len(ds)
    assert export.column_names == ["image", "label", "file", "synthetic", "base", "neighbor",
                                   "anchor", "lam"]  # fmt: skip
    assert export.features["label"].names == NAMES
    assert export["synthetic"][:] == [False] * n + [True] * ds.n_synthetic
    assert export["file"][:n] == source["file"][:]  # originals first, in the source's order
    assert export["label"][:] == ds.targets
    assert export["base"][:n] == [-1] * n and all(math.isnan(v) for v in export["lam"][:n])
    for i in (n, n + 7, len(ds) - 1):
        row, origin = export[i], ds.origin(i)
        assert {k: row[k] for k in ("base", "neighbor", "anchor")} == {
            k: origin[k] for k in ("base", "neighbor", "anchor")
        }
        assert row["lam"] == pytest.approx(origin["lam"]) and row["file"] == ""
        assert export[row["base"]]["label"] == row["label"]  # base names an original row
        assert np.array_equal(np.asarray(row["image"]), np.asarray(ds[i]["image"]))
    assert np.array_equal(np.asarray(export[3]["image"]), np.asarray(source[3]["image"]))
    other = to_hf_dataset(ds, epoch=0)
    assert other["base"][n:] != export["base"][n:]  # another epoch, another synthetic set


def test_export_refuses_other_datasets_and_clashing_columns(source, model):
    with pytest.raises(TypeError, match="OversampledDataset over a datasets.Dataset"):
        to_hf_dataset(source)
    clash = source.add_column("synthetic", [0] * len(source))  # the model's rows, in order
    ds = over(clash, model)
    with pytest.raises(ValueError, match=r"has \['synthetic'\]"):
        to_hf_dataset(ds)


def test_label_columns_that_are_not_classes_say_how_to_fix_them(data):
    X, y = data
    names = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(x[0]) for x in X[:4]], "label": ["a", "b", "a", "b"]},
        features=datasets.Features(image=datasets.Image(), label=datasets.Value("string")),
    )
    with pytest.raises(TypeError, match=r"class_encode_column\('label'\)"):
        find_labels(names)
    unlabeled = make_hf(X[:4], np.array([0, 1, -1, 2]))
    with pytest.raises(ValueError, match=r"1 rows have label -1.*dataset.filter"):
        find_labels(unlabeled)


def test_two_label_columns_need_label_key(data):
    X, y = data
    hf = datasets.Dataset.from_dict(
        {"img": [Image.fromarray(x[0]) for x in X], "fine": y.tolist(), "coarse": (y > 0).tolist()},
        features=datasets.Features(
            img=datasets.Image(),
            fine=datasets.ClassLabel(names=NAMES),
            coarse=datasets.ClassLabel(names=["stripes", "shapes"]),
        ),
    )
    assert find_labels(hf) is None
    with pytest.raises(TypeError, match=r"keys \['img', 'fine', 'coarse'\].*Pass label_key="):
        over(hf, **FIT)
    assert find_labels(hf, "coarse").tolist() == (y > 0).astype(int).tolist()
    assert find_classes(hf, "coarse") == ["stripes", "shapes"]


def test_array_columns_are_read_as_chw_tensors(data):
    X, y = data
    hf = datasets.Dataset.from_dict(
        {"pixel_values": X.astype(np.float32) / 255, "label": y.tolist()},
        features=datasets.Features(
            pixel_values=datasets.Array3D((1, 16, 16), "float32"),
            label=datasets.ClassLabel(names=NAMES),
        ),
    ).with_format("numpy")
    ds = over(hf, **FIT)
    assert ds.model.image_shape_ == (1, 16, 16) and hf.format["type"] == "numpy"
    real, synthetic = ds[0], ds[len(ds) - 1]
    assert type(synthetic["pixel_values"]) is type(real["pixel_values"]) is np.ndarray
    assert synthetic["pixel_values"].shape == (1, 16, 16)
    assert synthetic["pixel_values"].dtype == np.float32 and int(synthetic["label"]) == 2
