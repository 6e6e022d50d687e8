"""Writing images and balanced datasets for tools outside PyTorch: PNG files, grids, arrays.

Every writer goes through the library's one atomic write
(``atomic_write``): the output, a file or a folder, is
written beside its path and renamed into place at the end, so an interrupted run leaves
either the old output or the whole new one. The format writers (``_write_image``,
``_write_arrays``, ...) write only into the temporary path it gives; for a folder the
folder's rename is the atomic step (every file in it is fsync'ed before), not one rename
per file. An existing output is replaced only when asked
(``check_output``), and a folder only when torch-deepsmote wrote it (it holds the
marker file the writer leaves).

Image files keep the images' values: uint8 images become 8-bit PNG files, one-channel uint16
images 16-bit PNG files (PIL mode ``I;16``), one-channel int32 and float32 images 32-bit TIFF
files (modes ``I`` and ``F``; PIL cannot write those modes as PNG). Images no such file holds
unchanged (colour beyond 8 bits, int16, uint32, float64, ...) are refused before anything is
written, with the way out: an ``.npz`` / ``.h5`` file, which keeps every dtype. Only a grid
(``write_samples`` to one ``.png``), a picture for the eye, is scaled to 8 bits over the
value range.

Provenance: every synthetic image gets a row (``PROVENANCE_FIELDS``) naming its
class, the rows of its base and neighbour images among the originals (which come first, in
order, in every balanced output), the anchor and the step ``lam`` of its code
``z_base + lam (z_neighbor - z_anchor)`` (the anchor is the base in SMOTE).
"""

from __future__ import annotations

import csv
import math
import os
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._format import ImageFormat
from .._validation import check_positive_int
from ..deepsmote import DeepSMOTE
from ..smote import SMOTEPlan
from ..storage.atomic import atomic_write
from .sources import LabelledImages

__all__ = [
    "ARRAY_FORMATS",
    "PROVENANCE_FIELDS",
    "PROVENANCE_NAME",
    "check_output",
    "folder_name",
    "grid_scale",
    "image_suffix",
    "provenance_rows",
    "provenance_path",
    "to_uint8",
    "write_balanced",
    "write_samples",
]

ARRAY_FORMATS = (".npz", ".h5", ".hdf5")
PROVENANCE_NAME = "provenance.csv"
MODEL_INFO = "deepsmote.json"  # what marks a model folder (torch_deepsmote.app.model_dir)
PROVENANCE_FIELDS = (
    "index",
    "file",
    "label",
    "class",
    "base",
    "neighbor",
    "anchor",
    "lam",
    "base_file",
    "neighbor_file",
)


def provenance_path(path: Path) -> Path:
    """Where the provenance of an output goes: inside a folder, beside a file."""
    if path.suffix.lower() in ARRAY_FORMATS + (".png",):
        return path.with_name(f"{path.stem}.{PROVENANCE_NAME}")
    return path / PROVENANCE_NAME


def check_output(path: Path, overwrite: bool, marker: str) -> None:
    """Refuse an existing output unless ``overwrite``, and a foreign folder always.

    Args:
        path: The output file or folder.
        overwrite: Whether an existing output may be replaced.
        marker: The file a folder written by torch-deepsmote holds.

    Raises:
        FileExistsError: ``path`` (or its provenance file) exists and ``overwrite`` is False,
            ``path`` is a non-empty folder without ``marker``, or a model folder.
    """
    if (path / MODEL_INFO).exists():
        raise FileExistsError(
            f"`out` {str(path)!r} is a model folder; it is never replaced by an output. Choose "
            "another path."
        )
    taken = [p for p in (path, provenance_path(path)) if p.exists() and p.parent != path]
    if not taken:
        return
    if not overwrite:
        raise FileExistsError(
            f"`out` {str(taken[0])!r} exists. Pass --overwrite (overwrite=True) to replace "
            "it, or choose another path."
        )
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise FileExistsError(
            f"`out` {str(path)!r} is a folder that torch-deepsmote did not write (no "
            f"{marker}); it is not replaced even with --overwrite. Remove it yourself or "
            "choose another path."
        )


def folder_name(name: str) -> str:
    """A class name as a folder name: path separators and control characters replaced.

    Examples:
        >>> folder_name("T-shirt/top")
        'T-shirt_top'
    """
    cleaned = re.sub(r"[\\/\x00-\x1f:*?\"<>|]", "_", str(name)).strip().strip(".")
    return cleaned or "_"


# ---------------------------------------------------------------------- images
def to_uint8(images: Tensor, image_format: ImageFormat) -> Tensor:
    """(N, C, H, W) images in ``image_format`` -> uint8 (N, C, H, W) over their value range
    (for pictures to look at: grids; image files keep the images' own values)."""
    if image_format.dtype == "uint8" and (image_format.low, image_format.high) == (0.0, 255.0):
        return images
    unit = (image_format.to_unit(images) + 1) / 2
    return (unit * 255).round().clamp(0, 255).to(torch.uint8)


# One-channel images deeper than 8 bits, and the file that holds them unchanged.
_DEEP_FILES = {"uint16": ".png", "int32": ".tif", "float32": ".tif"}


def image_suffix(dtype: str, channels: int, out: Path | None = None) -> str:
    """The file type (``".png"`` or ``".tif"``) that holds images of ``dtype`` and
    ``channels`` without changing a value.

    Raises:
        ValueError: No image file PIL writes holds them unchanged (the message names the
            array file that does, ``out`` with ``.npz``).
    """
    if dtype == "uint8" and 1 <= channels <= 4:
        return ".png"
    if channels == 1 and dtype in _DEEP_FILES:
        return _DEEP_FILES[dtype]
    name = "balanced.npz" if out is None else f"{out.name}.npz"
    raise ValueError(
        f"the images are {channels}-channel {dtype}, which no PNG or TIFF file written here "
        "holds without changing their values (8-bit PNG for uint8; 16-bit PNG for grey "
        "uint16; 32-bit TIFF for grey int32 and float32). Write an array file instead, which "
        f"keeps {dtype}: --out {name} (or .h5)."
    )


def _write_image(path: Path, image: Tensor) -> None:
    """Write one (C, H, W) image as the file ``path`` names (see ``image_suffix``)."""
    from PIL import Image

    if image.dtype == torch.uint8:
        from torchvision.transforms.functional import to_pil_image

        to_pil_image(image).save(path, format="PNG")
        return
    # uint16 -> mode I;16 (a 16-bit PNG), int32 -> I, float32 -> F (32-bit TIFF).
    file = Image.fromarray(image[0].numpy())
    file.save(path, format="PNG" if path.suffix == ".png" else "TIFF")


GRID_WIDTH = 512  # the least width of a grid scaled automatically (``scale=None``), in px


def grid_scale(images: Tensor, nrow: int, min_width: int = GRID_WIDTH) -> int:
    """The whole factor that makes the grid of ``images`` (N, C, H, W), ``nrow`` per row,
    at least ``min_width`` pixels wide (1 when it already is).

    Examples:
        >>> grid_scale(torch.zeros(16, 1, 28, 28), nrow=4)  # 122 px -> 610 px
        5
    """
    width = nrow * (images.shape[-1] + 2) + 2  # make_grid's padding of 2 around every cell
    return max(1, math.ceil(min_width / width))


def _write_grid(path: Path, images: Tensor, nrow: int, scale: int = 1) -> None:
    """Write uint8 (N, C, H, W) images as one PNG grid (torchvision's ``make_grid``), every
    pixel repeated ``scale`` times in each direction (nearest neighbour: pixels stay crisp)."""
    from torchvision.utils import make_grid, save_image

    grid = make_grid(images.float() / 255, nrow=nrow, padding=2, pad_value=1.0)
    grid = grid.repeat_interleave(scale, dim=1).repeat_interleave(scale, dim=2)
    save_image(grid, path, format="png")


# ---------------------------------------------------------------------- arrays
def _to_layout(images: Tensor, layout: str) -> np.ndarray:
    """(N, C, H, W) -> a numpy array in ``layout`` (``"nhw"``, ``"nchw"``, ``"nhwc"``)."""
    if layout == "nhw" and images.shape[1] == 1:
        images = images[:, 0]
    elif layout in ("nhwc", "nhw"):
        images = images.permute(0, 2, 3, 1)
    return np.ascontiguousarray(images.numpy())


def _write_arrays(
    path: Path,
    images: Tensor,
    labels: Tensor,
    names: dict[int, str],
    layout: str,
    synthetic: Tensor,
) -> None:
    """Write a dataset as ``.npz`` or HDF5 with the keys that ``read_images`` reads.

    Keys: ``images`` (in ``layout``, the source's dtype), ``labels`` (N,) int64,
    ``classes`` (class names, ``classes[i]`` naming label ``i`` where labels are
    0..K-1; else ``class_labels`` beside them) and ``synthetic`` (N,) bool.
    """
    arrays = {
        "images": _to_layout(images, layout),
        "labels": labels.numpy(),
        "synthetic": synthetic.numpy(),
    }
    if list(names) == list(range(len(names))):
        arrays["classes"] = np.array(list(names.values()))
    else:
        arrays["class_labels"] = np.array(list(names), dtype=np.int64)
        arrays["class_names"] = np.array(list(names.values()))
    if path.suffix.lower() == ".npz":
        with open(path, "wb") as file:
            np.savez(file, **arrays)
        return
    import h5py

    with h5py.File(path, "w") as file:
        for key, value in arrays.items():
            if value.dtype.kind == "U":
                value = value.astype(h5py.string_dtype())
            file.create_dataset(key, data=value)


# ---------------------------------------------------------------------- provenance
def provenance_rows(
    plan: SMOTEPlan,
    names: dict[int, str],
    *,
    first_index: int = 0,
    files: Sequence[str] | None = None,
    sources: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """One row per synthetic image of ``plan``.

    Args:
        plan: The images' plan.
        names: ``{label: class name}``.
        first_index: The index of the plan's first image in the output.
        files: (m,) the output file of every image, or ``None``.
        sources: (N,) the source file of every original image, or ``None``.

    Returns:
        Dicts with the keys of ``PROVENANCE_FIELDS``.
    """
    rows = []
    anchors = plan.anchors.tolist()
    for j, (label, base, neighbor, lam) in enumerate(
        zip(plan.labels.tolist(), plan.base.tolist(), plan.neighbor.tolist(), plan.lam.tolist())
    ):
        rows.append(
            {
                "index": first_index + j,
                "file": files[j] if files is not None else "",
                "label": label,
                "class": names.get(label, str(label)),
                "base": base,
                "neighbor": neighbor,
                "anchor": anchors[j],
                "lam": round(lam, 6),
                "base_file": sources[base] if sources is not None else "",
                "neighbor_file": sources[neighbor] if sources is not None else "",
            }
        )
    return rows


def _write_provenance(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """Write provenance rows as CSV with the header ``PROVENANCE_FIELDS``."""
    with open(path, "w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=PROVENANCE_FIELDS)
        writer.writeheader()
        writer.writerows(rows)


# ---------------------------------------------------------------------- whole outputs
_CHUNK = 1024  # synthetic images decoded per call while writing


def _synthetic_chunks(
    model: DeepSMOTE, plan: SMOTEPlan, progress: bool
) -> Iterator[tuple[int, Tensor]]:
    """(first position, (b, C, H, W) images) of the plan, chunk by chunk, in the training
    images' dtype and range."""
    from tqdm.auto import tqdm

    starts = range(0, len(plan), _CHUNK)
    for start in tqdm(starts, desc="synthetic images", unit="chunk", disable=not progress):
        yield start, model.synthesizer_.images(plan[start : start + _CHUNK])


def _class_folders(names: dict[int, str]) -> dict[int, str]:
    folders = {label: folder_name(name) for label, name in names.items()}
    if len(set(folders.values())) < len(folders):  # two names alike once cleaned
        folders = {label: f"{label}_{folder}" for label, folder in folders.items()}
    return folders


def write_balanced(
    path: str | os.PathLike,
    model: DeepSMOTE,
    data: LabelledImages,
    plan: SMOTEPlan,
    *,
    progress: bool = False,
) -> dict:
    """Write the originals, then the plan's synthetic images, and their provenance.

    Args:
        path: ``.npz``, ``.h5`` or ``.hdf5`` for one array file (keys ``images``,
            ``labels``, ``classes`` and ``synthetic``, as ``read_images`` reads them;
            provenance in ``<stem>.provenance.csv`` beside it), any
            other path for an image folder (``<class>/real_000000.png``,
            ``<class>/synthetic_000123.png``, numbered by row of the balanced set, and
            ``provenance.csv``; ``.tif`` files for grey int32 and float32 images, see
            ``image_suffix``).
        model: The model fitted on ``data``.
        data: The originals.
        plan: The synthetic images to add.
        progress: Show a progress bar.

    Returns:
        ``{"images": total, "synthetic": m, "provenance": path of the CSV}``.

    Raises:
        ValueError: An image folder of images no image file holds unchanged
            (``image_suffix``), before anything is written.
    """
    path = Path(path)
    n, m = len(data.labels), len(plan)
    if path.suffix.lower() in ARRAY_FORMATS:
        synthetic = [chunk for _, chunk in _synthetic_chunks(model, plan, progress)]
        with atomic_write(path) as temporary:
            _write_arrays(
                temporary,
                torch.cat([data.images, *synthetic]),
                torch.cat([data.labels, plan.labels]),
                data.names,
                data.layout,
                torch.arange(n + m) >= n,
            )
        rows = provenance_rows(plan, data.names, first_index=n, sources=data.files)
        provenance = provenance_path(path)
        with atomic_write(provenance) as temporary:
            _write_provenance(temporary, rows)
        return {"images": n + m, "synthetic": m, "provenance": str(provenance)}
    suffix = image_suffix(model.image_format_.dtype, data.images.shape[1], path)
    folders = _class_folders(data.names)
    digits = max(6, len(str(n + m)))
    with atomic_write(path) as temporary:
        for folder in folders.values():
            (temporary / folder).mkdir(parents=True)
        for i, label in enumerate(data.labels.tolist()):
            name = f"real_{i:0{digits}d}{suffix}"
            _write_image(temporary / folders[label] / name, data.images[i])
        files = []
        for start, chunk in _synthetic_chunks(model, plan, progress):
            for j, image in enumerate(chunk):
                label = int(plan.labels[start + j])
                name = f"{folders[label]}/synthetic_{n + start + j:0{digits}d}{suffix}"
                _write_image(temporary / name, image)
                files.append(name)
        rows = provenance_rows(plan, data.names, first_index=n, files=files, sources=data.files)
        _write_provenance(temporary / PROVENANCE_NAME, rows)
    return {"images": n + m, "synthetic": m, "provenance": str(path / PROVENANCE_NAME)}


def write_samples(
    path: str | os.PathLike,
    model: DeepSMOTE,
    data: LabelledImages,
    plan: SMOTEPlan,
    *,
    scale: int | None = 1,
) -> dict:
    """Write the plan's synthetic images as one PNG grid (``path`` ends in ``.png``; 8 bits
    over the value range, a picture) or as image files in the folder ``path`` (their own
    values, ``image_suffix``), with their provenance.

    Args:
        path: A ``.png`` file (one grid) or a folder (one image file per image).
        model: The fitted model that decodes the plan.
        data: The training images (class names, source files for the provenance).
        plan: The synthetic images to make.
        scale: The grid's enlargement, a whole factor (nearest neighbour); ``None``: enough
            for a grid at least ``GRID_WIDTH`` (512) pixels wide. Files in a folder keep
            the images' own size.

    Returns:
        ``{"images": m, "provenance": path of the CSV}``.

    Raises:
        ValueError: A folder of images no image file holds unchanged, before anything is
            written.
    """
    path = Path(path)
    if scale is not None:
        check_positive_int("scale", scale)
    grid = path.suffix.lower() == ".png"
    if not grid:
        suffix = image_suffix(model.image_format_.dtype, data.images.shape[1], path)
    images = torch.cat([chunk for _, chunk in _synthetic_chunks(model, plan, False)])
    digits = max(5, len(str(len(plan))))
    if grid:
        nrow = math.ceil(math.sqrt(len(images)))
        scale = grid_scale(images, nrow) if scale is None else scale
        with atomic_write(path) as temporary:
            picture = to_uint8(images, model.image_format_)
            _write_grid(temporary, picture, nrow=nrow, scale=scale)
        provenance = provenance_path(path)
        with atomic_write(provenance) as temporary:
            _write_provenance(temporary, provenance_rows(plan, data.names, sources=data.files))
        return {"images": len(images), "provenance": str(provenance)}
    folders = _class_folders(data.names)
    with atomic_write(path) as temporary:
        temporary.mkdir()
        files = []
        for j, image in enumerate(images):
            name = f"{folders[int(plan.labels[j])]}_{j:0{digits}d}{suffix}"
            _write_image(temporary / name, image)
            files.append(name)
        rows = provenance_rows(plan, data.names, files=files, sources=data.files)
        _write_provenance(temporary / PROVENANCE_NAME, rows)
    return {"images": len(images), "provenance": str(path / PROVENANCE_NAME)}
