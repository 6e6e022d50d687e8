"""16-bit, 32-bit and float images, end to end: read, fitted, made and written in their own
dtype and range, never clipped to 8 bits. Real PNG and TIFF files, written by PIL."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import CLI_TINY, FIT, make_shapes, run_cli
from PIL import Image
from torch.utils.data import Dataset
from torchvision.datasets import ImageFolder

from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote._format import ImageFormat
from torch_deepsmote.app.sources import read_images

NAMES = ("bars", "stripes")  # sorted, as ImageFolder numbers classes
COUNTS = (12, 5)


def deep_images(dtype, counts=COUNTS, size=12, channels=1, scale=None):
    """Shapes images in ``dtype`` over most of a 16-bit range (values far above 255)."""
    X, y = make_shapes(counts, size=size, channels=channels, seed=1, dtype=np.float64)
    if np.dtype(dtype).kind == "f":
        return (X * (scale or 5000.0) - 100).astype(dtype), y
    return np.round(X * (scale or 60000)).astype(dtype), y


def write_folder(root: Path, images, labels, suffix=".png") -> Path:
    """One file per (1, H, W) image through PIL (uint16 -> I;16, int32 -> I, float32 -> F)."""
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image[0]).save(folder / f"img{i:02d}{suffix}")
    return root


def write_png16_colour(path: Path, image: np.ndarray) -> None:
    """A 16-bit RGB PNG of (3, H, W) uint16: PIL cannot write one (nor read it in 16 bits)."""
    rows = image.transpose(1, 2, 0).astype(">u2")
    raw = b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", image.shape[2], image.shape[1], 16, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


# ---------------------------------------------------------------------- arrays
@pytest.mark.parametrize("dtype", ["uint16", "int16", "uint32", "int32", "float32"])
@pytest.mark.parametrize("channels", [1, 3])
def test_arrays_of_every_width_come_back_in_their_dtype_and_range(dtype, channels):
    X, y = deep_images(dtype, channels=channels, scale=30000 if dtype == "int16" else None)
    X_res, y_res = DeepSMOTE(**FIT).fit_resample(X, y)
    assert X_res.dtype == X.dtype and np.bincount(y_res).tolist() == [12, 12]
    assert np.array_equal(X_res[: len(X)], X)
    new = X_res[len(X) :]
    assert X.min() <= new.min() and new.max() <= X.max()
    assert new.max() > 255  # not clipped to 8 bits


def test_uint16_tensors_come_back_as_uint16_tensors():
    X, y = deep_images("uint16")
    X_res, _ = DeepSMOTE(**FIT).fit_resample(torch.from_numpy(X), torch.from_numpy(y))
    assert X_res.dtype == torch.uint16 and int(X_res[len(X) :].to(torch.int32).max()) > 255


def test_the_decoder_scale_maps_back_to_32_bit_extremes_without_wrapping():
    # float32 rounds 2**31 - 1 up to 2**31, which wraps to -2**31 when cast to int32.
    for dtype, low, high in [("int32", -(2**31), 2**31 - 1), ("uint32", 0, 2**32 - 1)]:
        fmt = ImageFormat("numpy", dtype, "chw", float(low), float(high))
        ends = fmt.from_unit(torch.tensor([-1.0, 1.0]).reshape(2, 1, 1, 1)).flatten()
        assert ends.to(torch.int64).tolist() == [low, high]


# ---------------------------------------------------------------------- datasets
class PILItems(Dataset):
    """(PIL image of ``mode``, label) items from one-channel arrays."""

    def __init__(self, images, labels):
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return Image.fromarray(self.images[i][0]), int(self.labels[i])


@pytest.mark.parametrize(("dtype", "mode"), [("uint16", "I;16"), ("int32", "I"), ("float32", "F")])
def test_pil_items_deeper_than_8_bits_give_synthetic_items_of_their_mode(dtype, mode):
    X, y = deep_images(dtype)
    ds = OversampledDataset(PILItems(X, y), **FIT)
    assert ds[0][0].mode == mode
    synthetic = [ds[i][0] for i in range(ds.n_real, len(ds))]
    assert {image.mode for image in synthetic} == {mode}
    values = np.stack([np.asarray(image) for image in synthetic])
    assert values.dtype == np.dtype(dtype) and values.max() > 255
    assert X.min() <= values.min() and values.max() <= X.max()


def test_image_folder_of_16_bit_pngs_through_torchvision(tmp_path):
    X, y = deep_images("uint16")
    root = write_folder(tmp_path / "images", X, y)
    # ImageFolder's default loader converts to 8-bit RGB, clipping: refused, with the fix.
    with pytest.raises(ValueError, match=r"uint16 image.*clips.*loader=PIL.Image.open"):
        OversampledDataset(ImageFolder(root), **FIT)
    ds = OversampledDataset(ImageFolder(root, loader=Image.open), **FIT)
    assert ds.model.image_format_.dtype == "uint16" and ds.model.image_format_.high > 255
    real = np.asarray(ds[0][0])
    assert ds[0][0].mode == "I;16" and np.array_equal(real, X[0, 0])
    synthetic = np.stack([np.asarray(ds[i][0]) for i in range(ds.n_real, len(ds))])
    assert synthetic.dtype == np.uint16 and synthetic.max() > 255


def test_an_odd_bit_depth_among_dataset_items_is_named():
    X, y = deep_images("uint16")
    items = [(torch.from_numpy(x), int(label)) for x, label in zip(X, y)]
    items[4] = (items[4][0].to(torch.uint8), items[4][1])
    with pytest.raises(ValueError, match=r"dataset item 4 .* one dtype \(bit depth\)"):
        OversampledDataset(items, **FIT)


# ---------------------------------------------------------------------- files and the CLI
def test_a_folder_of_16_bit_pngs_is_fitted_and_resampled_in_16_bits(tmp_path, capsys):
    X, y = deep_images("uint16")
    data = write_folder(tmp_path / "images", X, y)
    model = tmp_path / "model"
    code, out, err = run_cli(capsys, "fit", data, "--out", model, *CLI_TINY)
    assert code == 0, err
    assert "(1x12x12 uint16)" in out
    out_dir = tmp_path / "balanced"
    code, _, err = run_cli(capsys, "resample", model, "--out", out_dir, "--quiet")
    assert code == 0, err
    files = sorted(out_dir.glob("*/*.png"))
    assert len(files) == 24
    for file in files:
        with Image.open(file) as image:
            assert image.mode == "I;16"
    # The real images come back value for value; the synthetic ones keep values above 255.
    first = np.asarray(Image.open(out_dir / NAMES[0] / "real_000000.png"))
    assert np.array_equal(first, X[0, 0])
    synthetic = np.stack([np.asarray(Image.open(f)) for f in files if "synthetic" in f.name])
    assert synthetic.max() > 255
    # And the balanced folder reads back as 16-bit data.
    again = read_images(out_dir)
    assert again.images.dtype == torch.uint16 and again.counts() == {0: 12, 1: 12}


@pytest.mark.parametrize(("dtype", "mode"), [("uint16", "I;16"), ("int32", "I"), ("float32", "F")])
def test_a_folder_of_tiff_files_keeps_its_values(tmp_path, capsys, dtype, mode):
    X, y = deep_images(dtype)
    data = write_folder(tmp_path / "images", X, y, suffix=".tif")
    read = read_images(data)
    assert read.images.dtype == getattr(torch, dtype)
    assert torch.equal(read.images, torch.from_numpy(X))
    model = tmp_path / "model"
    assert run_cli(capsys, "fit", data, "--out", model, *CLI_TINY)[0] == 0
    code, _, err = run_cli(capsys, "resample", model, "--out", tmp_path / "out", "--quiet")
    assert code == 0, err
    suffix = ".png" if dtype == "uint16" else ".tif"  # PIL writes modes I and F as TIFF only
    files = sorted((tmp_path / "out").glob(f"*/*{suffix}"))
    assert len(files) == 24
    with Image.open(files[0]) as image:
        assert image.mode == mode and np.array_equal(np.asarray(image), X[0, 0])


def test_16_bit_colour_pngs_are_read_in_16_bits_and_written_as_arrays(tmp_path, capsys):
    X, y = deep_images("uint16", channels=3)
    X[:, 1] //= 2  # channels that differ
    for i, (image, label) in enumerate(zip(X, y)):
        folder = tmp_path / "images" / NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        write_png16_colour(folder / f"img{i:02d}.png", image)
    read = read_images(tmp_path / "images")
    assert read.images.dtype == torch.uint16 and torch.equal(read.images, torch.from_numpy(X))
    model = tmp_path / "model"
    assert run_cli(capsys, "fit", tmp_path / "images", "--out", model, *CLI_TINY)[0] == 0
    # No image file PIL writes holds 16-bit colour: refused before writing, naming .npz.
    code, _, err = run_cli(capsys, "resample", model, "--out", tmp_path / "out", "--quiet")
    assert code == 1 and "3-channel uint16" in err and "--out out.npz" in err
    assert not (tmp_path / "out").exists()
    code, _, err = run_cli(capsys, "resample", model, "--out", tmp_path / "out.npz", "--quiet")
    assert code == 0, err
    with np.load(tmp_path / "out.npz") as balanced:
        assert balanced["images"].dtype == np.uint16 and balanced["images"].max() > 255


def test_files_of_two_bit_depths_are_refused_naming_two(tmp_path):
    X, y = deep_images("uint16")
    root = write_folder(tmp_path / "images", X, y)
    Image.fromarray((X[0, 0] // 256).astype(np.uint8)).save(root / NAMES[1] / "img99.png")
    with pytest.raises(ValueError, match=r"one bit depth.*uint16 .*img99.png' uint8"):
        read_images(root)


@pytest.mark.parametrize("suffix", [".npz", ".h5"])
def test_uint16_array_files_through_the_cli(tmp_path, capsys, suffix):
    X, y = deep_images("uint16")
    path = tmp_path / f"data{suffix}"
    if suffix == ".npz":
        np.savez(path, images=X[:, 0], labels=y)
    else:
        import h5py

        with h5py.File(path, "w") as file:
            file["images"], file["labels"] = X[:, 0], y
    model = tmp_path / "model"
    code, out, err = run_cli(capsys, "fit", path, "--out", model, *CLI_TINY)
    assert code == 0, err
    assert "uint16" in out
    code, _, err = run_cli(capsys, "resample", model, "--out", tmp_path / "b.npz", "--quiet")
    assert code == 0, err
    with np.load(tmp_path / "b.npz") as balanced:
        images = balanced["images"]
    assert images.dtype == np.uint16 and np.array_equal(images[: len(X)], X[:, 0])
    assert images[len(X) :].max() > 255


def test_a_grey_folder_resized_keeps_16_bits(tmp_path):
    X, y = deep_images("uint16")
    read = read_images(write_folder(tmp_path / "images", X, y), image_size=(8, 8))
    assert read.images.shape == (17, 1, 8, 8) and read.images.dtype == torch.uint16
    assert int(read.images.to(torch.int32).max()) > 255
