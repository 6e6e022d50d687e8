"""Reading (image, target) items of map-style datasets into one tensor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["ItemForm", "image_to_tensor", "target_to_int", "read_dataset"]


def image_to_tensor(image: Any) -> Tensor:
    """One image (PIL, numpy (H, W[, C]) or tensor (C, H, W)/(H, W)) -> tensor (C, H, W).

    The dtype is kept: PIL images and uint8 arrays give uint8, float tensors stay float.
    """
    if isinstance(image, Tensor):
        return image if image.ndim == 3 else image.unsqueeze(0)
    if isinstance(image, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(image))
        # numpy images are (H, W) or (H, W, C), as PIL and OpenCV hand them out.
        return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - torchvision depends on pillow
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        from torchvision.transforms.functional import pil_to_tensor

        return pil_to_tensor(image)
    raise TypeError(
        "dataset items should be (image, target) with a PIL image, numpy array or tensor as "
        f"image, but got an image of type {type(image).__name__}."
    )


def target_to_int(target: Any) -> int:
    if isinstance(target, (Tensor, np.ndarray)) and np.prod(target.shape) == 1:
        target = target.item()
    if isinstance(target, (int, np.integer)) and not isinstance(target, bool):
        return int(target)
    raise TypeError(
        "dataset items should be (image, target) with an integer class as target, but got "
        f"target={target!r}. Pass `target_transform` or `labels=` to map it to an int."
    )


def read_dataset(
    dataset: Any, progress: bool = False, with_targets: bool = True
) -> tuple[Tensor, Tensor | None]:
    """Read every item of a map-style dataset.

    Args:
        dataset: Items are (image, target).
        progress: Show a tqdm bar.
        with_targets: Also convert the targets to labels (``None`` is returned otherwise).

    Returns:
        Images (N, C, H, W) in the items' dtype and labels (N,) int64 or ``None``.

    Raises:
        ValueError: An empty dataset or images of different shapes (the index is named).
        TypeError: Items that are not (image, target).
    """
    n = len(dataset)
    if n == 0:
        raise ValueError("`dataset` should hold at least one item, but got len(dataset)=0.")
    first = image_to_tensor(_unpack(dataset[0], 0)[0])
    images = torch.empty((n, *first.shape), dtype=first.dtype)
    labels = torch.empty(n, dtype=torch.int64)
    for i in tqdm(range(n), desc="reading dataset", disable=not progress):
        image, target = _unpack(dataset[i], i)
        tensor = first if i == 0 else image_to_tensor(image)
        if tensor.shape != first.shape:
            raise ValueError(
                f"dataset images should share one shape, but item 0 has {tuple(first.shape)} "
                f"and item {i} has {tuple(tensor.shape)}. Add a Resize/CenterCrop transform."
            )
        images[i] = tensor
        if with_targets:
            labels[i] = target_to_int(target)
    return images, labels if with_targets else None


def _unpack(item: Any, index: int) -> tuple[Any, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise TypeError(
            f"dataset items should be (image, target) pairs, but item {index} is "
            f"{type(item).__name__}."
        )
    return item[0], item[1]


@dataclass(frozen=True)
class ItemForm:
    """How a dataset's raw items look, so synthetic items can be made alike.

    Attributes:
        image: ``"pil"``, ``"tensor"`` or ``"numpy"``.
        pil_mode: The PIL mode (``"L"``, ``"RGB"``, ...) for PIL images.
        squeeze: Whether a single-channel image has no channel axis ((H, W)).
        target: ``"int"``, ``"tensor"`` or ``"numpy"``.
        target_dtype: The dtype's name of tensor or numpy targets.
    """

    image: str
    pil_mode: str | None
    squeeze: bool
    target: str
    target_dtype: str | None

    @classmethod
    def of(cls, image: Any, target: Any) -> ItemForm:
        if isinstance(image, Tensor):
            kind, mode, squeeze = "tensor", None, image.ndim == 2
        elif isinstance(image, np.ndarray):
            kind, mode, squeeze = "numpy", None, image.ndim == 2
        else:
            kind, mode, squeeze = "pil", getattr(image, "mode", None), False
        if isinstance(target, Tensor):
            target_kind, target_dtype = "tensor", str(target.dtype).removeprefix("torch.")
        elif isinstance(target, (np.ndarray, np.generic)):
            target_kind, target_dtype = "numpy", str(np.asarray(target).dtype)
        else:
            target_kind, target_dtype = "int", None
        return cls(kind, mode, squeeze, target_kind, target_dtype)

    def make_images(self, images: Tensor) -> list:
        """(m, C, H, W) tensor in the raw dtype and range -> m images of this form."""
        if self.image == "pil":
            from torchvision.transforms.functional import to_pil_image

            mode = self.pil_mode if self.pil_mode in ("L", "RGB", "RGBA", "LA") else None
            return [to_pil_image(image, mode=mode) for image in images]
        if self.squeeze:
            images = images[:, 0]
        if self.image == "numpy":  # (H, W) or (H, W, C), as PIL and OpenCV hand them out
            images = images if self.squeeze else images.permute(0, 2, 3, 1)
            return list(np.ascontiguousarray(images.numpy()))
        return list(images.unbind(0))  # views of one tensor: no per-item copy

    def make_targets(self, labels: Tensor) -> list:
        """(m,) int64 labels -> m targets of this form."""
        if self.target == "tensor":
            return list(labels.to(getattr(torch, self.target_dtype)).unbind(0))
        if self.target == "numpy":
            return list(labels.numpy().astype(self.target_dtype))
        return labels.tolist()
