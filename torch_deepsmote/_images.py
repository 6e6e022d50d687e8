"""Checking image arrays and mapping them to and from the decoder's [-1, 1] range.

The autoencoder works in [-1, 1] (its decoder ends in Tanh). Users hand over uint8 images,
floats in [0, 1], or normalised floats in any range, as numpy arrays or tensors, shaped
(N, C, H, W) or (N, H, W). :class:`ImageFormat` records what came in, so that synthetic
images go back out in the same container, dtype, layout and value range.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["ImageFormat", "as_image_tensor", "as_label_tensor"]


@dataclass(frozen=True)
class ImageFormat:
    """How the user's images look.

    Attributes:
        container: ``"numpy"`` or ``"torch"``.
        dtype: The dtype's name, e.g. ``"uint8"`` or ``"float32"``.
        channels_dim: Whether the images had a channel axis ((N, C, H, W) rather than (N, H, W)).
        low: The value that maps to -1.
        high: The value that maps to +1.
    """

    container: str
    dtype: str
    channels_dim: bool
    low: float
    high: float

    @property
    def is_integer(self) -> bool:
        return not torch.empty((), dtype=getattr(torch, self.dtype)).is_floating_point()

    def to_unit(self, images: Tensor) -> Tensor:
        """(B, C, H, W) images in this format -> float32 in [-1, 1] (same device)."""
        scale = 2.0 / (self.high - self.low)
        return (images.to(torch.float32) - self.low) * scale - 1.0

    def from_unit(self, images: Tensor) -> Tensor:
        """(B, C, H, W) float in [-1, 1] -> tensor of this format's dtype and range."""
        out = (images.to(torch.float32).clamp(-1, 1) + 1.0) * ((self.high - self.low) / 2)
        out = out + self.low
        if self.is_integer:
            out = out.round_()
        return out.clamp_(self.low, self.high).to(getattr(torch, self.dtype))

    def export(self, images: Tensor) -> Any:
        """(B, C, H, W) tensor of this format -> the user's container and layout."""
        if not self.channels_dim:
            images = images.squeeze(1)
        if self.container == "numpy":
            return images.cpu().numpy()
        return images

    def to_dict(self) -> dict:
        return asdict(self)


_SUPPORTED = (
    torch.uint8,
    torch.int8,
    torch.int16,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
)


def as_image_tensor(images: Any, name: str = "X") -> tuple[Tensor, ImageFormat]:
    """Check images and view them as a CPU tensor (N, C, H, W) with their format.

    Args:
        images: (N, C, H, W) or (N, H, W) numpy array or tensor; a list of same-shaped
            arrays is stacked.
        name: The argument's name, for error messages.

    Returns:
        The images as a CPU tensor of their own dtype (N, C, H, W), and their
        :class:`ImageFormat`.

    Raises:
        TypeError: Not an array, or an unsupported dtype.
        ValueError: Empty, wrong number of dimensions, mixed shapes, NaN or infinite values.
    """
    container = "torch" if isinstance(images, Tensor) else "numpy"
    if isinstance(images, (list, tuple)):
        if len(images) == 0:
            raise ValueError(f"`{name}` should hold at least one image, but got {name}=[].")
        shapes = {tuple(np.shape(img)) for img in images}
        if len(shapes) > 1:
            raise ValueError(
                f"`{name}` should hold images of one shape, but got shapes {sorted(shapes)}. "
                "Resize or crop them to a common shape first."
            )
        images = np.stack([np.asarray(img) for img in images])
    if isinstance(images, np.ndarray):
        if images.dtype == object:
            raise ValueError(
                f"`{name}` should hold images of one shape, but got an object array "
                "(usually images of different shapes). Resize them to a common shape first."
            )
        try:
            tensor = torch.from_numpy(np.ascontiguousarray(images))
        except TypeError as error:
            raise TypeError(
                f"`{name}` should have an integer or floating dtype, but got dtype={images.dtype}."
            ) from error
    elif isinstance(images, Tensor):
        tensor = images.detach().cpu()
    else:
        raise TypeError(
            f"`{name}` should be a numpy array or a torch.Tensor of images, but got "
            f"{type(images).__name__}."
        )
    if tensor.dtype == torch.bool or tensor.dtype not in _SUPPORTED:
        raise TypeError(
            f"`{name}` should have an integer or floating dtype, but got dtype={tensor.dtype}."
        )
    if tensor.ndim not in (3, 4):
        raise ValueError(
            f"`{name}` should have shape (N, C, H, W) or (N, H, W), but got shape "
            f"{tuple(tensor.shape)}."
        )
    if tensor.shape[0] == 0:
        raise ValueError(
            f"`{name}` should hold at least one image, but got shape {tuple(tensor.shape)}."
        )
    channels_dim = tensor.ndim == 4
    if not channels_dim:
        tensor = tensor.unsqueeze(1)
    if tensor.is_floating_point():
        finite = torch.isfinite(tensor)
        if not bool(finite.all()):
            bad = int((~finite).flatten(1).any(1).nonzero()[0])
            raise ValueError(
                f"`{name}` should hold finite pixel values, but image {bad} has NaN or "
                "infinite values. Clean or drop it first."
            )
    low, high = _value_range(tensor)
    fmt = ImageFormat(container, str(tensor.dtype).removeprefix("torch."), channels_dim, low, high)
    return tensor, fmt


def _value_range(tensor: Tensor) -> tuple[float, float]:
    if tensor.dtype == torch.uint8:
        return 0.0, 255.0
    low, high = float(tensor.min()), float(tensor.max())
    if tensor.is_floating_point() and low >= 0 and high <= 1:
        # The common case: floats in [0, 1] (ToTensor). Use the nominal range, not the data's,
        # so that a set without pure white still maps 1.0 to +1.
        return 0.0, 1.0
    if low == high:
        raise ValueError(
            f"images should vary, but every pixel equals {low}. There is nothing to learn."
        )
    return low, high


def as_label_tensor(labels: Any, n_images: int, name: str = "y") -> Tensor:
    """Check labels against the images and return them as a 1-D int64 CPU tensor.

    Raises:
        TypeError: Labels that are not integers.
        ValueError: Wrong shape or length, fewer than two classes.
    """
    if isinstance(labels, Tensor):
        tensor = labels.detach().cpu()
    else:
        array = np.asarray(labels)
        if array.dtype == object or array.dtype.kind not in "iub":
            raise TypeError(
                f"`{name}` should hold integer class labels, but got dtype={array.dtype}. "
                "Encode string labels first, e.g. with sklearn's LabelEncoder."
            )
        tensor = torch.from_numpy(array.astype(np.int64))
    if tensor.is_floating_point() or tensor.is_complex():
        if not bool((tensor == tensor.round()).all()):
            raise TypeError(
                f"`{name}` should hold integer class labels, but got dtype={tensor.dtype}."
            )
    tensor = tensor.to(torch.int64)
    if tensor.ndim != 1:
        raise ValueError(f"`{name}` should be 1-D, but got shape {tuple(tensor.shape)}.")
    if len(tensor) != n_images:
        raise ValueError(
            f"`{name}` should have one label per image, but got {len(tensor)} labels for "
            f"{n_images} images."
        )
    n_classes = int(torch.unique(tensor).numel())
    if n_classes < 2:
        raise ValueError(
            f"`{name}` should hold at least two classes, but got a single class "
            f"({int(tensor[0]) if len(tensor) else 'none'}). Over-sampling needs a majority "
            "and a minority."
        )
    return tensor
