"""Reading (image, target) items of map-style datasets into one tensor."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

__all__ = ["image_to_tensor", "target_to_int", "read_dataset"]


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


def read_dataset(dataset: Any, progress: bool = False) -> tuple[Tensor, Tensor]:
    """Read every item of a map-style dataset.

    Args:
        dataset: Items are (image, target).
        progress: Show a tqdm bar.

    Returns:
        Images (N, C, H, W) in the items' dtype and labels (N,) int64.

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
        labels[i] = target_to_int(target)
    return images, labels


def _unpack(item: Any, index: int) -> tuple[Any, Any]:
    if not isinstance(item, (tuple, list)) or len(item) != 2:
        raise TypeError(
            f"dataset items should be (image, target) pairs, but item {index} is "
            f"{type(item).__name__}."
        )
    return item[0], item[1]
