"""The form of the user's images, and the decoder's [-1, 1] scale.

Images come in two ways: as one batch array ((N, C, H, W) or (N, H, W), numpy or torch)
given to ``DeepSMOTE.fit``, or as the items of a map-style dataset (PIL images, numpy
(H, W) / (H, W, C) arrays, (C, H, W) / (H, W) tensors). Either way they are read into one
(N, C, H, W) tensor of their own dtype (uint8 to uint32, int8 to int64, float16 to float64;
16-bit PIL images give uint16, mode ``I`` int32, mode ``F`` float32), and
``ImageFormat`` records what came in, so that synthetic images go back out in the same
container, dtype, layout and value range, and map to and from the [-1, 1] range of the
decoder (it ends in Tanh). torch computes little on uint16 and uint32 tensors: they are
kept as they are and converted to float only where they are computed on.

The value range (what maps to -1 and +1) is, in this order: the ``value_range=(low, high)``
the user declared (pixels outside it are refused, naming the image); 0..255 for uint8;
0..1 for floats that all lie in [0, 1]; otherwise the data's own minimum and maximum
(12-bit data in uint16 then uses the whole [-1, 1], not a sixteenth of it). Because one
image can stretch that last range for every synthetic image, an image whose pixels lie far
outside the others' (``range_faults``) is refused, naming it.

Labels have their own module, ``_labels``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._pixels import (
    check_image_shape,
    check_value_range,
    find_value_range,
    image_extremes,
    range_faults,
)

__all__ = [
    "ImageFormat",
    "as_images",
    "file_pixels",
    "image_to_tensor",
    "to_pil",
    "writable",
]

_SUPPORTED = (
    torch.uint8,
    torch.int8,
    torch.uint16,
    torch.int16,
    torch.uint32,
    torch.int32,
    torch.int64,
    torch.float16,
    torch.bfloat16,
    torch.float32,
    torch.float64,
)
_PIL_MODES = ("L", "RGB", "RGBA", "LA")
# PIL's one-channel modes deeper than 8 bits, and the dtype each holds.
PIL_DEEP_MODES = {"I;16": "uint16", "I;16B": "uint16", "I;16L": "uint16", "I": "int32"}
PIL_DEEP_MODES["F"] = "float32"


@dataclass(frozen=True)
class ImageFormat:
    """How the user's images look.

    Attributes:
        kind: ``"numpy"``, ``"torch"`` or ``"pil"``.
        dtype: The dtype's name, e.g. ``"uint8"`` or ``"float32"`` (``"uint8"`` for PIL).
        layout: Axes of one image: ``"chw"``, ``"hw"`` (no channel axis), ``"hwc"``
            (numpy items as PIL and OpenCV hand them out) or ``"flat"`` (one row of C*H*W
            values, the estimator's ``image_shape`` mode); ``None`` for PIL.
        low: The value that maps to -1.
        high: The value that maps to +1.
        mode: The PIL mode (``"L"``, ``"RGB"``, ...) of PIL images, else ``None``.
    """

    kind: str
    dtype: str
    layout: str | None
    low: float
    high: float
    mode: str | None = None

    # ------------------------------------------------------------------ the decoder's scale
    @property
    def torch_dtype(self) -> torch.dtype:
        return getattr(torch, self.dtype)

    def to_unit(self, images: Tensor) -> Tensor:
        """(B, C, H, W) images in this format -> float32 in [-1, 1] (same device)."""
        scale = 2.0 / (self.high - self.low)
        return (images.to(torch.float32) - self.low) * scale - 1.0

    def from_unit(self, images: Tensor) -> Tensor:
        """(B, C, H, W) float in [-1, 1] -> tensor of this format's dtype and range."""
        # float32 holds integers exactly up to 2**24 only: a 32-bit maximum would round up
        # past the dtype and wrap when cast.
        wide = self.torch_dtype.itemsize >= 4 and self.dtype != "float32"
        compute = torch.float64 if wide else torch.float32
        out = (images.to(compute).clamp(-1, 1) + 1.0) * ((self.high - self.low) / 2)
        out = out + self.low
        if not self.torch_dtype.is_floating_point:
            out = out.round_()
        return out.clamp_(self.low, self.high).to(self.torch_dtype)

    def same_values(self, other: ImageFormat) -> bool:
        """Whether ``other`` holds pixels of the same dtype and value range."""
        return (self.dtype, self.low, self.high) == (other.dtype, other.low, other.high)

    # ------------------------------------------------------------------ the user's form
    def export(self, images: Tensor) -> Any:
        """(B, C, H, W) tensor of this format's dtype -> a batch in the user's form.

        Returns:
            A numpy array or tensor shaped by ``layout`` with a leading batch axis, or a
            list of B PIL images.
        """
        if self.kind == "pil":
            return self.items(images)
        images = _to_layout(images, self.layout)
        return images.cpu().numpy() if self.kind == "numpy" else images

    def items(self, images: Tensor) -> list:
        """(B, C, H, W) tensor of this format's dtype -> B images in the user's form."""
        if self.kind == "pil":
            return [to_pil(image, self.mode) for image in images.cpu()]
        images = _to_layout(images, self.layout)
        if self.kind == "numpy":
            return list(np.ascontiguousarray(images.cpu().numpy()))
        return list(images.unbind(0))  # views of one tensor: no per-item copy

    # ------------------------------------------------------------------ persistence
    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, state: dict) -> ImageFormat:
        """Inverse of ``to_dict``; also reads the form saved before ``kind``/``layout``."""
        if "container" in state:  # model format 1: arrays only
            layout = "chw" if state["channels_dim"] else "hw"
            return cls(state["container"], state["dtype"], layout, state["low"], state["high"])
        return cls(**state)

    @classmethod
    def of_items(
        cls, item: Any, dtype: torch.dtype, value_range: tuple[float, float]
    ) -> ImageFormat:
        """The format of a dataset whose first raw image is ``item``, whose images read
        with ``image_to_tensor`` have ``dtype`` and span ``value_range``
        (``find_value_range``)."""
        if isinstance(item, Tensor):
            kind, layout, mode = "torch", "hw" if item.ndim == 2 else "chw", None
        elif isinstance(item, np.ndarray):
            kind, layout, mode = "numpy", "hw" if item.ndim == 2 else "hwc", None
        else:
            kind, layout, mode = "pil", None, getattr(item, "mode", None)
        low, high = value_range
        return cls(kind, _dtype_name(dtype), layout, low, high, mode)


# torch has no index_put / index_copy for uint16 and uint32: rows are written by index
# through a view of the same bits as the signed type of that width.
_SAME_BITS = {torch.uint16: torch.int16, torch.uint32: torch.int32}


def writable(images: Tensor) -> Tensor:
    """``images``, or a view of its bits that rows can be written into by index (uint16
    and uint32 seen as int16 and int32: the bits, not the values, are copied).

    Examples:
        >>> pool = torch.zeros(3, dtype=torch.uint16)
        >>> writable(pool)[torch.tensor([2])] = writable(torch.tensor([60000], dtype=torch.uint16))
        >>> pool.to(torch.int32).tolist()
        [0, 0, 60000]
    """
    same = _SAME_BITS.get(images.dtype)
    return images if same is None else images.view(same)


def _to_layout(images: Tensor, layout: str | None) -> Tensor:
    if layout == "flat":
        return images.reshape(len(images), -1)
    if layout == "hw":
        return images[:, 0]
    if layout == "hwc":
        return images.permute(0, 2, 3, 1)
    return images


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def image_to_tensor(image: Any) -> Tensor:
    """One image (PIL, numpy (H, W[, C]) or tensor (C, H, W)/(H, W)) -> tensor (C, H, W).

    The dtype is kept: 8-bit PIL images and uint8 arrays give uint8, 16-bit PIL images
    (``I;16``) uint16, mode ``I`` int32, mode ``F`` float32; float tensors stay float.

    Raises:
        TypeError: Not an image of these kinds.
    """
    if isinstance(image, Tensor):
        return image if image.ndim == 3 else image.unsqueeze(0)
    if isinstance(image, np.ndarray):
        tensor = torch.from_numpy(_native(image))
        # numpy images are (H, W) or (H, W, C), as PIL and OpenCV hand them out.
        return tensor.unsqueeze(0) if tensor.ndim == 2 else tensor.permute(2, 0, 1)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - torchvision depends on pillow
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        if image.mode in PIL_DEEP_MODES:  # I;16B is big-endian: torch reads native order only
            return torch.from_numpy(_native(np.array(image))).unsqueeze(0)
        from torchvision.transforms.functional import pil_to_tensor

        return pil_to_tensor(image)
    raise TypeError(
        "dataset items should be (image, target) with a PIL image, numpy array or tensor as "
        f"image, but got an image of type {type(image).__name__}."
    )


def file_pixels(image: Any) -> tuple[str, bool]:
    """``(dtype, grey)`` that an opened PIL image file's pixels need, from its header.

    ``"uint16"`` for 16-bit files, also those PIL would decode as 8 bits (16-bit colour or
    grey-with-alpha PNG and TIFF: PIL's mode says ``RGB``, its raw mode ``RGB;16B``);
    ``"int32"`` / ``"float32"`` for modes ``I`` / ``F``; else ``"uint8"``.
    """
    if image.mode in PIL_DEEP_MODES:
        return PIL_DEEP_MODES[image.mode], True
    rawmode = file_rawmode(image)
    if image.format in ("PNG", "TIFF") and ";16" in rawmode:
        return "uint16", rawmode.startswith(("L;", "LA;"))
    return "uint8", image.mode in ("1", "L", "LA")


def file_rawmode(image: Any) -> str:
    """How an opened PIL image file stores its pixels (PIL's raw mode, ``"RGB;16B"``), or
    ``""`` when PIL does not say."""
    tile = getattr(image, "tile", None)
    if not tile:
        return ""
    args = tile[0][3]
    return args if isinstance(args, str) else str(args[0]) if args else ""


def _native(array: np.ndarray) -> np.ndarray:
    """``array`` C-ordered in the machine's byte order (torch reads no other)."""
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("="))


def to_pil(image: Tensor, mode: str | None) -> Any:
    """One (C, H, W) CPU tensor -> a PIL image of ``mode`` (the user's items' mode).

    8-bit modes go through torchvision's ``to_pil_image``; one-channel uint16, int32 and
    float32 images become modes ``I;16``, ``I`` and ``F`` (never 8 bits).
    """
    if image.shape[0] == 1 and _dtype_name(image.dtype) in PIL_DEEP_MODES.values():
        from PIL import Image

        return Image.fromarray(image[0].numpy())  # uint16 -> I;16, int32 -> I, float32 -> F
    from torchvision.transforms.functional import to_pil_image

    return to_pil_image(image, mode=mode if mode in _PIL_MODES else None)


def as_images(
    images: Any,
    name: str = "X",
    value_range: tuple[float, float] | None = None,
    *,
    judge_range: bool = False,
) -> tuple[Tensor, ImageFormat]:
    """Check a batch of images and view it as a CPU tensor (N, C, H, W) with its format.

    Args:
        images: (N, C, H, W) or (N, H, W) numpy array or tensor; a list of same-shaped
            arrays is stacked.
        name: The argument's name, for error messages.
        value_range: ``(low, high)`` the pixels lie in (maps to [-1, 1]), or ``None``: found
            from the data (``find_value_range``).
        judge_range: Refuse an image outside ``value_range`` or far outside the others'
            (``range_faults``), as a fit does; images read
            against a fitted model (whose range is its own) are not judged.

    Returns:
        The images as a CPU tensor of their own dtype (N, C, H, W), and their
        ``ImageFormat``.

    Raises:
        TypeError: Not an array, or an unsupported dtype.
        ValueError: Empty, wrong number of dimensions, channels last, images smaller than
            the encoder takes, mixed shapes, NaN or infinite values, or (``judge_range``) an
            image outside the declared range or far outside the others' (its index named).
    """
    kind = "torch" if isinstance(images, Tensor) else "numpy"
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
            tensor = torch.from_numpy(_native(images))
        except TypeError as error:
            raise TypeError(_dtype_message(name, images.dtype)) from error
    elif isinstance(images, Tensor):
        tensor = images.detach().cpu()
    else:
        raise TypeError(
            f"`{name}` should be a numpy array or a torch.Tensor of images, but got "
            f"{type(images).__name__}."
        )
    if tensor.ndim not in (3, 4):
        raise ValueError(
            f"`{name}` should have shape (N, C, H, W) or (N, H, W), but got shape "
            f"{tuple(tensor.shape)}."
        )
    layout = "chw" if tensor.ndim == 4 else "hw"
    if layout == "hw":
        tensor = tensor.unsqueeze(1)
    check_pixels(tensor, name)
    check_image_shape(tuple(tensor.shape[1:]), f"`{name}`", tuple(images.shape), kind)
    declared = check_value_range("value_range", value_range)
    lows = highs = None
    if tensor.dtype != torch.uint8 or (declared is not None and judge_range):
        lows, highs = image_extremes(tensor)
    judged = judge_range and lows is not None  # uint8 without a declared range: nominal
    faults = range_faults(tensor.dtype, lows, highs, declared) if judged else []
    if faults:
        i, reason = faults[0]
        raise ValueError(f"`{name}` image {i} {reason}. Fix or drop it.")
    low, high = find_value_range(tensor.dtype, lows, highs, declared)
    return tensor, ImageFormat(kind, _dtype_name(tensor.dtype), layout, low, high)


def _dtype_message(name: str, dtype: Any) -> str:
    names = ", ".join(_dtype_name(d) for d in _SUPPORTED)
    return (
        f"`{name}` should have one of the dtypes {names}, but got dtype={dtype}. Convert "
        "it first (e.g. uint64 to int64 or float64, bool to uint8)."
    )


def check_pixels(images: Tensor, name: str) -> None:
    """Raise unless ``images`` (N, C, H, W) is a non-empty batch of finite numbers.

    Raises:
        TypeError: A dtype other than an integer or floating one.
        ValueError: No image, or an image with NaN or infinite values (its index named).
    """
    if images.dtype not in _SUPPORTED:
        raise TypeError(_dtype_message(name, images.dtype))
    if images.shape[0] == 0:
        raise ValueError(
            f"`{name}` should hold at least one image, but got shape {tuple(images.shape)}."
        )
    if images.is_floating_point():
        finite = torch.isfinite(images)
        if not bool(finite.all()):
            bad = int((~finite).flatten(1).any(1).nonzero()[0])
            raise ValueError(
                f"`{name}` should hold finite pixel values, but image {bad} has NaN or "
                "infinite values. Clean or drop it first."
            )
