"""A user's labelled images, from wherever they are, as one (N, C, H, W) tensor with labels.

Three kinds of source, told apart by what ``data`` names (``read_images``):

- an image folder in torchvision's ``ImageFolder`` layout (one sub-folder per class, the
  folder name is the class name); images of different sizes are refused, naming two
  files, unless ``image_size`` makes them alike; grey images among colour ones become
  colour unless ``grayscale``. Bit depth is kept: 16-bit PNG and TIFF files (PIL mode
  ``I;16``; 16-bit colour PNG through torchvision's decoder, as PIL reads those as 8 bits)
  give uint16, 32-bit TIFF int32 (mode ``I``) or float32 (mode ``F``); files of two bit
  depths are refused, naming two files, since either conversion would clip or rescale;
- an ``.npz`` or ``.h5`` / ``.hdf5`` file holding an image array under ``images_key``
  ((N, H, W), (N, C, H, W) or (N, H, W, C)), labels under ``labels_key`` (integers or
  strings) and, optionally, class names under ``classes_key`` (``classes[i]`` names label
  ``i``, torchvision's convention);
- a torchvision dataset name (``DATASETS``) read from ``root``; Fashion-MNIST also
  from the IDX files of ``apt-get install dataset-fashion-mnist``
  (``torch_deepsmote.data.fashion_mnist``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from .._format import PIL_DEEP_MODES, file_pixels, file_rawmode, image_to_tensor
from .._labels import as_labels
from ..adapters import find_classes
from ..reading import read_dataset

__all__ = [
    "ARRAY_SUFFIXES",
    "DATASETS",
    "LabelledImages",
    "read_images",
]

DATASETS = ("mnist", "fashion-mnist", "cifar10", "svhn")
ARRAY_SUFFIXES = (".npz", ".h5", ".hdf5")
LAYOUTS = ("nhw", "nchw", "nhwc")
_CHANNELS = (1, 3, 4)
_GREY_MODES = ("1", "L", "LA", *PIL_DEEP_MODES)


@dataclass
class LabelledImages:
    """Images and labels read from a source, with the names of their classes.

    Attributes:
        images: (N, C, H, W) tensor in the source's dtype (for image files: uint8, or
            uint16 / int32 / float32 for 16-bit and 32-bit files).
        labels: (N,) int64 class labels.
        names: ``{label: class name}`` for every label, in label order.
        source: What was read and how (JSON-ready), e.g. ``{"kind": "folder", "path": ...}``.
        layout: The axes of the source's arrays, ``"nhw"``, ``"nchw"`` or ``"nhwc"``;
            outputs written as arrays use it too.
        files: (N,) the file of every image (relative to the folder) for an image folder,
            else ``None``.
    """

    images: Tensor
    labels: Tensor
    names: dict[int, str]
    source: dict
    layout: str = "nchw"
    files: list[str] | None = field(default=None, repr=False)

    def counts(self) -> dict[int, int]:
        """``{label: number of images}`` in label order."""
        return {label: int((self.labels == label).sum()) for label in self.names}

    def label_of(self, name: str) -> int:
        """The label of a class given by its name or by its label written as a number.

        Raises:
            ValueError: Neither a class name nor a label (the known classes listed).
        """
        for label, known in self.names.items():
            if known == name:
                return label
        try:
            label = int(name)
        except ValueError:
            label = None
        if label in self.names:
            return label
        known = ", ".join(f"{label} ({name!r})" for label, name in self.names.items())
        raise ValueError(
            f"`class` should be a class name or label, one of {known}, but got {name!r}."
        )


def read_images(
    data: str | os.PathLike,
    *,
    image_size: tuple[int, int] | None = None,
    grayscale: bool = False,
    images_key: str = "images",
    labels_key: str = "labels",
    classes_key: str = "classes",
    root: str | os.PathLike | None = None,
    split: str = "train",
    download: bool = False,
    class_counts: list[int] | None = None,
    seed: int = 0,
    progress: bool = False,
) -> LabelledImages:
    """Read labelled images from an image folder, an array file or a torchvision dataset.

    Args:
        data: A folder of class sub-folders, an ``.npz`` / ``.h5`` / ``.hdf5`` file, or one
            of ``DATASETS``.
        image_size: ``(H, W)`` to resize every image to (folders and datasets; the aspect
            ratio is not kept), or ``None`` to require one size.
        grayscale: Convert every image to one grey channel (folders and datasets).
        images_key, labels_key, classes_key: The array names in an ``.npz`` / ``.h5`` file;
            ``classes_key`` is optional in the file.
        root: The folder of a torchvision dataset (torchvision's layout).
        split: ``"train"`` or ``"test"`` for a torchvision dataset.
        download: Let torchvision download a dataset that ``root`` lacks.
        class_counts: Keep this many images of class 0, 1, ... of a torchvision dataset,
            drawn at random with ``seed`` (an imbalanced subset, as in the paper's Table I).
        seed: Seed of that draw.
        progress: Show a progress bar while reading.

    Returns:
        ``LabelledImages``.

    Raises:
        FileNotFoundError: ``data`` is no file, folder or known dataset name (the known
            names listed), or the dataset is not under ``root``.
        ValueError: Fewer than two classes, an empty class, an unreadable image (named),
            images of different sizes without ``image_size`` (two files named), or arrays
            of the wrong shape or keys.

    Examples:
        >>> import tempfile
        >>> path = os.path.join(tempfile.mkdtemp(), "toy.npz")
        >>> np.savez(path, images=np.zeros((5, 8, 8), np.uint8), labels=[0, 0, 0, 1, 1])
        >>> read = read_images(path)
        >>> tuple(read.images.shape), read.counts(), read.layout
        ((5, 1, 8, 8), {0: 3, 1: 2}, 'nhw')
    """
    path = Path(data)
    if path.is_dir():
        read = _read_folder(path, image_size, grayscale, progress)
    elif path.is_file():
        if path.suffix.lower() not in ARRAY_SUFFIXES:
            raise ValueError(
                f"`data` should be an image folder, an {', '.join(ARRAY_SUFFIXES)} file or a "
                f"dataset name, but got the file {str(path)!r}."
            )
        if image_size is not None or grayscale:
            raise ValueError(
                "`image_size` and `grayscale` apply to image folders and datasets, but got "
                f"them for the array file {str(path)!r}. Resize the arrays before, or write "
                "them as an image folder."
            )
        read = _read_arrays(path, images_key, labels_key, classes_key)
    elif str(data) in DATASETS:
        read = _read_torchvision(
            str(data), root, split, download, image_size, grayscale, class_counts, seed, progress
        )
    else:
        raise FileNotFoundError(
            f"`data` should be an image folder, an {', '.join(ARRAY_SUFFIXES)} file or one of "
            f"the dataset names {', '.join(DATASETS)}, but got {str(data)!r}: no such file, "
            "folder or dataset."
        )
    if class_counts is not None and read.source["kind"] != "torchvision":
        raise ValueError(
            "`class_counts` applies to torchvision datasets, but got it for "
            f"{str(data)!r}. Cut the subset before writing the file."
        )
    _check_classes(read, str(data))
    return read


def _check_classes(read: LabelledImages, data: str) -> None:
    if len(read.names) < 2:
        names = ", ".join(repr(n) for n in read.names.values()) or "none"
        raise ValueError(
            f"`data` should hold at least two classes to balance, but {data!r} has "
            f"{len(read.names)} ({names}). Add a folder (or labels) per class."
        )


# ---------------------------------------------------------------------- image folders
def _convert(image: Any, mode: str, size: tuple[int, int] | None) -> Any:
    """A PIL image in ``mode`` and, with ``size`` (H, W), resized (bilinear, antialiased)."""
    from PIL import Image

    if image.mode != mode:
        image = image.convert(mode)
    if size is not None and image.size != (size[1], size[0]):
        image = image.resize((size[1], size[0]), Image.Resampling.BILINEAR)
    return image


def _folder_files(root: Path) -> tuple[list[str], list[tuple[str, int]]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

    try:
        classes, class_to_idx = find_classes(str(root))
    except FileNotFoundError:
        classes = []
    if len(classes) < 2:
        found = ", ".join(repr(c) for c in classes) or "none"
        raise ValueError(
            f"`data` should be a folder with one sub-folder of images per class, at least two, "
            f"but {str(root)!r} has {len(classes)} ({found}). Put each class's images in a "
            "folder of its own, named after the class."
        )
    samples = make_dataset(str(root), class_to_idx, IMG_EXTENSIONS, allow_empty=True)
    present = {label for _, label in samples}
    empty = [name for name in classes if class_to_idx[name] not in present]
    if empty:
        raise ValueError(
            f"every class folder should hold at least one image ({', '.join(IMG_EXTENSIONS)}), "
            f"but {', '.join(repr(str(root / name)) for name in empty)} holds none. Add images "
            "or remove the folder."
        )
    return classes, samples


def _open(path: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    try:
        return Image.open(path)
    except (UnidentifiedImageError, OSError) as error:
        raise ValueError(
            f"could not read the image {path!r} ({error}). Replace or remove the file."
        ) from None


def _read_folder(
    root: Path, image_size: tuple[int, int] | None, grayscale: bool, progress: bool
) -> LabelledImages:
    classes, samples = _folder_files(root)
    # First pass, headers only: fail on a bad file, a second size or a second bit depth
    # before decoding anything.
    first: dict[tuple[int, int], str] = {}
    depths: dict[str, str] = {}
    grey = True
    for path, _ in tqdm(samples, desc="checking images", disable=not progress, unit="file"):
        with _open(path) as image:
            first.setdefault(image.size, path)
            dtype, is_grey = file_pixels(image)
            depths.setdefault(dtype, path)
            grey = grey and is_grey
        if image_size is None and len(first) > 1:
            (size_a, file_a), (size_b, file_b) = list(first.items())[:2]
            raise ValueError(
                f"images should share one size, but {file_a!r} is {size_a[1]}x{size_a[0]} "
                f"and {file_b!r} is {size_b[1]}x{size_b[0]} (height x width). Pass "
                "--image-size H W (image_size=(H, W)) to resize them all."
            )
        if len(depths) > 1:
            (dtype_a, file_a), (dtype_b, file_b) = list(depths.items())[:2]
            raise ValueError(
                f"images should share one bit depth, but {file_a!r} holds {dtype_a} pixels "
                f"and {file_b!r} {dtype_b}: converting one to the other would clip or "
                "rescale it. Convert the files to one bit depth first."
            )
    (dtype,) = depths
    (width, height), _ = next(iter(first.items()))
    size = image_size or (height, width)
    channels = 1 if grayscale or grey else 3
    read = _read_8bit if dtype == "uint8" else _read_deep
    images = torch.empty((len(samples), channels, *size), dtype=getattr(torch, dtype))
    for i, (path, _) in enumerate(
        tqdm(samples, desc="reading images", disable=not progress, unit="file")
    ):
        with _open(path) as image:
            try:
                images[i] = read(path, image, channels, size)
            except OSError as error:  # a truncated or damaged file fails when decoded
                raise ValueError(
                    f"could not read the image {path!r} ({error}). Replace or remove the file."
                ) from None
    labels = torch.tensor([label for _, label in samples], dtype=torch.int64)
    return LabelledImages(
        images,
        labels,
        dict(enumerate(classes)),
        _source("folder", path=str(root.resolve()), image_size=image_size, grayscale=grayscale),
        layout="nhw" if channels == 1 else "nhwc",
        files=[os.path.relpath(path, root) for path, _ in samples],
    )


def _read_8bit(path: str, image: Any, channels: int, size: tuple[int, int]) -> Tensor:
    """An 8-bit image file as uint8 (channels, H, W), through PIL's conversions."""
    from torchvision.transforms.functional import pil_to_tensor

    return pil_to_tensor(_convert(image, "L" if channels == 1 else "RGB", size))


def _read_deep(path: str, image: Any, channels: int, size: tuple[int, int]) -> Tensor:
    """A 16- or 32-bit image file as (channels, H, W) of its own dtype: never through an
    8-bit PIL mode. Grey becomes colour by repeating it; colour becomes grey through
    libpng's weights; a new size is interpolated (bilinear, antialiased) and rounded."""
    if image.mode in PIL_DEEP_MODES:
        tensor = image_to_tensor(image)  # I;16 -> uint16, I -> int32, F -> float32
    elif image.format == "PNG":
        from torchvision.io import ImageReadMode, decode_png, read_file

        mode = ImageReadMode.GRAY if channels == 1 else ImageReadMode.RGB
        tensor = decode_png(read_file(path), mode=mode)
    else:
        raise ValueError(
            f"could not read {path!r} without losing bits: PIL reads {file_rawmode(image)} "
            f"{image.format} files as 8 bits per channel. Convert it to a 16-bit PNG, or "
            "write the images into an .npz file."
        )
    if tensor.shape[0] != channels:
        tensor = tensor.expand(channels, -1, -1)  # grey among colour images
    if tuple(tensor.shape[1:]) != tuple(size):
        tensor = _resize(tensor, size)
    return tensor


def _resize(image: Tensor, size: tuple[int, int]) -> Tensor:
    """(C, H, W) of any dtype resized (bilinear, antialiased) to ``size``, same dtype."""
    from torchvision.transforms.v2.functional import resize

    out = resize(image[None].to(torch.float64), list(size), antialias=True)[0]
    if image.dtype.is_floating_point:
        return out.to(image.dtype)
    info = torch.iinfo(image.dtype)
    return out.round_().clamp_(info.min, info.max).to(image.dtype)


def _source(kind: str, **options: Any) -> dict:
    return {"kind": kind, **{k: list(v) if isinstance(v, tuple) else v for k, v in options.items()}}


# ---------------------------------------------------------------------- array files
def _load_arrays(path: Path, keys: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays of ``keys`` present in an ``.npz`` or HDF5 file, and the file's key list."""
    try:
        if path.suffix.lower() == ".npz":
            with np.load(path, allow_pickle=False) as file:
                found = list(file.files)
                arrays = {key: file[key] for key in keys if key in found}
        else:
            import h5py

            with h5py.File(path, "r") as file:
                found = list(file.keys())
                arrays = {key: file[key][()] for key in keys if key in found}
    except (OSError, ValueError) as error:
        raise ValueError(f"could not read {str(path)!r} ({error}).") from None
    arrays["__keys__"] = np.array(found)
    return arrays


def _read_arrays(path: Path, images_key: str, labels_key: str, classes_key: str) -> LabelledImages:
    arrays = _load_arrays(path, (images_key, labels_key, classes_key))
    found = ", ".join(arrays.pop("__keys__").tolist()) or "none"
    for option, key in (("images_key", images_key), ("labels_key", labels_key)):
        if key not in arrays:
            raise ValueError(
                f"`{option}` should name an array of {str(path)!r} (it holds {found}), but got "
                f"{option}={key!r}. Pass --{option.replace('_', '-')} NAME."
            )
    images, layout = _nchw(arrays[images_key], f"{path.name}[{images_key!r}]")
    labels, names = _labels_and_names(arrays[labels_key], arrays.get(classes_key), len(images))
    return LabelledImages(
        images,
        labels,
        names,
        _source("arrays", path=str(path.resolve()), images_key=images_key, labels_key=labels_key),
        layout=layout,
    )


def _nchw(array: np.ndarray, name: str) -> tuple[Tensor, str]:
    """An image array as an (N, C, H, W) tensor, and the layout it came in."""
    if array.dtype.kind not in "biuf" or array.ndim not in (3, 4):
        raise ValueError(
            f"`{name}` should be a numeric array of shape (N, H, W), (N, C, H, W) or "
            f"(N, H, W, C) with C in 1, 3, 4, but got shape {array.shape} of {array.dtype}."
        )
    tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.dtype == torch.bool:
        tensor = tensor.to(torch.uint8) * 255
    if array.ndim == 3:
        return tensor.unsqueeze(1), "nhw"
    # NOTE: (N, 3, 32, 3) reads as channels first; channels last only when axis 1 cannot be.
    if array.shape[1] in _CHANNELS:
        return tensor, "nchw"
    if array.shape[3] in _CHANNELS:
        return tensor.permute(0, 3, 1, 2).contiguous(), "nhwc"
    raise ValueError(
        f"`{name}` should have 1, 3 or 4 channels on axis 1 or 3, but got shape {array.shape}."
    )


def _labels_and_names(
    values: np.ndarray, classes: np.ndarray | None, n: int
) -> tuple[Tensor, dict[int, str]]:
    """Labels (strings become 0..K-1 in sorted order) and ``{label: name}``."""
    values = np.asarray(values)
    if values.dtype.kind in "SUO":
        texts = np.array([v.decode() if isinstance(v, bytes) else str(v) for v in values])
        unique, labels = np.unique(texts, return_inverse=True)
        return as_labels(labels, "labels", n), dict(enumerate(unique.tolist()))
    labels = as_labels(values, "labels", n)
    names = None
    if classes is not None:
        names = [c.decode() if isinstance(c, bytes) else str(c) for c in np.asarray(classes)]
    found = torch.unique(labels).tolist()
    if names is not None and not all(0 <= label < len(names) for label in found):
        raise ValueError(
            f"`classes` should name every label (classes[i] names label i), but got "
            f"{len(names)} names for labels {found}."
        )
    return labels, {label: names[label] if names else str(label) for label in found}


# ---------------------------------------------------------------------- torchvision
def _torchvision(name: str, root: Path, train: bool, download: bool) -> Any:
    from torchvision import datasets

    if name == "fashion-mnist":
        from ..data import fashion_mnist

        return fashion_mnist(root, train=train, download=download)
    if name == "svhn":
        return datasets.SVHN(str(root), split="train" if train else "test", download=download)
    factory = {"mnist": datasets.MNIST, "cifar10": datasets.CIFAR10}[name]
    return factory(str(root), train=train, download=download)


def _read_torchvision(
    name: str,
    root: str | os.PathLike | None,
    split: str,
    download: bool,
    image_size: tuple[int, int] | None,
    grayscale: bool,
    class_counts: list[int] | None,
    seed: int,
    progress: bool,
) -> LabelledImages:
    from ..data import default_root, imbalanced_subset

    if split not in ("train", "test"):
        raise ValueError(f"`split` should be 'train' or 'test', but got split={split!r}.")
    folder = Path(root) if root is not None else default_root()
    try:
        dataset = _torchvision(name, folder, split == "train", download)
    except (RuntimeError, FileNotFoundError) as error:
        raise FileNotFoundError(
            f"the {name} dataset was not found under {str(folder)!r} ({error}). Pass --root "
            "to the folder that holds it in torchvision's layout, or --download."
        ) from None
    if class_counts is not None:
        dataset = imbalanced_subset(dataset, class_counts, seed=seed)
    transform: Callable | None = None
    if image_size is not None or grayscale:
        transform = _ModeAndSize("L" if grayscale else None, image_size)
    read = read_dataset(dataset, fit_transform=transform, progress=progress)
    classes = find_classes(dataset) or [str(c) for c in range(10)]
    names = {label: str(classes[label]) for label in torch.unique(read.labels).tolist()}
    grey = read.images.shape[1] == 1
    return LabelledImages(
        read.images,
        read.labels,
        names,
        _source(
            "torchvision",
            name=name,
            root=str(folder),
            split=split,
            image_size=image_size,
            grayscale=grayscale,
            class_counts=class_counts,
            seed=seed,
        ),
        layout="nhw" if grey else "nhwc",
    )


class _ModeAndSize:
    """PIL image -> the same in ``mode`` (``None``: its own, RGB for a palette) at ``size``."""

    def __init__(self, mode: str | None, size: tuple[int, int] | None) -> None:
        self.mode, self.size = mode, size

    def __call__(self, image: Any) -> Any:
        mode = self.mode or ("L" if image.mode in _GREY_MODES else "RGB")
        return _convert(image, mode, self.size)
