"""The form of the user's images and labels, and the decoder's [-1, 1] scale.

Images come in two ways: as one batch array ((N, C, H, W) or (N, H, W), numpy or torch)
given to :meth:`DeepSMOTE.fit`, or as the items of a map-style dataset (PIL images, numpy
(H, W) / (H, W, C) arrays, (C, H, W) / (H, W) tensors). Either way they are read into one
(N, C, H, W) tensor of their own dtype (uint8 to uint32, int8 to int64, float16 to float64;
16-bit PIL images give uint16, mode ``I`` int32, mode ``F`` float32), and
:class:`ImageFormat` records what came in, so that synthetic images go back out in the same
container, dtype, layout and value range, and map to and from the [-1, 1] range of the
decoder (it ends in Tanh). torch computes little on uint16 and uint32 tensors: they are
kept as they are and converted to float only where they are computed on.

The value range (what maps to -1 and +1) is, in this order: the ``value_range=(low, high)``
the user declared (pixels outside it are refused, naming the image); 0..255 for uint8;
0..1 for floats that all lie in [0, 1]; otherwise the data's own minimum and maximum
(12-bit data in uint16 then uses the whole [-1, 1], not a sixteenth of it). Because one
image can stretch that last range for every synthetic image, an image whose pixels lie far
outside the others' (:func:`range_faults`) is refused, naming it.

Labels have one rule, :func:`as_labels`, used wherever labels enter the library.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["ImageFormat", "TargetFormat", "as_images", "as_labels", "check_value_range"]
__all__ += ["file_pixels", "find_value_range", "image_extremes", "image_to_tensor"]
__all__ += ["range_faults", "to_pil"]

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

# The outlier rule of range_faults: an image is refused when its pixels lie more than
# OUTLIER_FACTOR times the others' span beyond the others' extremes, "the others" being
# the set without its OUTLIER_SHARE most extreme images (at least one).
OUTLIER_SHARE = 0.01
OUTLIER_FACTOR = 10.0


@dataclass(frozen=True)
class ImageFormat:
    """How the user's images look.

    Attributes:
        kind: ``"numpy"``, ``"torch"`` or ``"pil"``.
        dtype: The dtype's name, e.g. ``"uint8"`` or ``"float32"`` (``"uint8"`` for PIL).
        layout: Axes of one image: ``"chw"``, ``"hw"`` (no channel axis) or ``"hwc"``
            (numpy items as PIL and OpenCV hand them out); ``None`` for PIL.
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
        """Inverse of :meth:`to_dict`; also reads the form saved before ``kind``/``layout``."""
        if "container" in state:  # model format 1: arrays only
            layout = "chw" if state["channels_dim"] else "hw"
            return cls(state["container"], state["dtype"], layout, state["low"], state["high"])
        return cls(**state)

    @classmethod
    def of_items(
        cls, item: Any, dtype: torch.dtype, value_range: tuple[float, float]
    ) -> ImageFormat:
        """The format of a dataset whose first raw image is ``item``, whose images read
        with :func:`image_to_tensor` have ``dtype`` and span ``value_range``
        (:func:`find_value_range`)."""
        if isinstance(item, Tensor):
            kind, layout, mode = "torch", "hw" if item.ndim == 2 else "chw", None
        elif isinstance(item, np.ndarray):
            kind, layout, mode = "numpy", "hw" if item.ndim == 2 else "hwc", None
        else:
            kind, layout, mode = "pil", None, getattr(item, "mode", None)
        low, high = value_range
        return cls(kind, _dtype_name(dtype), layout, low, high, mode)


def _to_layout(images: Tensor, layout: str | None) -> Tensor:
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
            from the data (:func:`find_value_range`).
        judge_range: Refuse an image outside ``value_range`` or far outside the others'
            (:func:`range_faults`), as a fit does; images checked against a fitted model
            (whose range is its own) are not judged.

    Returns:
        The images as a CPU tensor of their own dtype (N, C, H, W), and their
        :class:`ImageFormat`.

    Raises:
        TypeError: Not an array, or an unsupported dtype.
        ValueError: Empty, wrong number of dimensions, channels last, images smaller than
            the encoder takes, mixed shapes, NaN or infinite values, or an image outside the
            declared range or far outside the others' (:func:`range_faults`; its index named).
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


# ---------------------------------------------------------------------- shapes
MIN_SIDE = 8  # the encoder halves each side three times
MAX_SIDE = 4096


def check_image_shape(
    shape: tuple[int, ...],
    what: str,
    given: tuple[int, ...] | None = None,
    kind: str = "",
    hint: str = "",
) -> None:
    """Raise unless one image's (C, H, W) ``shape`` is one the encoder takes: 1 to 4
    channels, sides of 8 to 4096.

    Args:
        shape: (C, H, W) of one image, as read.
        what: What the images are called in the message (```X```, ``dataset item 0``).
        given: The shape as the user gave it (a batch's, with N), for the message.
        kind: ``"numpy"`` or ``"torch"``: which permute call the message shows.
        hint: Said after the fix (where the fix goes for a dataset).

    Raises:
        ValueError: Saying what was received and the fix (permute channels-last arrays,
            resize small or large images).
    """
    channels, height, width = shape
    got = f"shape {given if given is not None else shape}"
    if not 1 <= channels <= 4:
        batch = given is not None and len(given) == 4
        if width <= 4 and min(channels, height) >= MIN_SIDE:
            call = "X.permute(0, 3, 1, 2)" if kind == "torch" else "X.transpose(0, 3, 1, 2)"
            fix = (
                f"Its last axis looks like the channels: permute to (N, C, H, W) first, {call}."
                if batch
                else "Its last axis looks like the channels: permute it to (C, H, W) first "
                "(a tensor's image.permute(2, 0, 1); numpy (H, W, C) images are read as such)."
            )
        else:
            fix = "Convert the images to grey or RGB(A) first."
        layout = "(N, C, H, W)" if batch else "(C, H, W)"
        raise ValueError(
            f"{what} should be images of layout {layout} with 1 to 4 channels, but got {got} "
            f"({channels} channels). {fix}{hint}"
        )
    if min(height, width) < MIN_SIDE or max(height, width) > MAX_SIDE:
        side = MIN_SIDE if min(height, width) < MIN_SIDE else MAX_SIDE
        bound = "at least" if side == MIN_SIDE else "at most"
        raise ValueError(
            f"{what} should be images of {bound} {side}x{side} pixels (the encoder halves each "
            f"side three times), but got {got}: {height}x{width} images. Resize them to "
            f"{bound} {side}x{side} first (torchvision.transforms.Resize; the command line's "
            f"--image-size H W).{hint}"
        )


# ---------------------------------------------------------------------- value range
def check_value_range(name: str, value: Any) -> tuple[float, float] | None:
    """``None``, or ``(low, high)``: two finite numbers with ``low < high``.

    Raises:
        TypeError: Not a pair of numbers.
        ValueError: Not finite, or ``low >= high``.
    """
    if value is None:
        return None
    numbers = (int, float, np.integer, np.floating)
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, numbers) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(
            f"`{name}` should be None or (low, high), two numbers, but got {name}={value!r}."
        )
    low, high = float(value[0]), float(value[1])
    if not (np.isfinite(low) and np.isfinite(high) and low < high):
        raise ValueError(
            f"`{name}` should be (low, high) with finite low < high, but got {name}={value!r}."
        )
    return low, high


def image_extremes(images: Any, block: int = 256) -> tuple[Tensor, Tensor]:
    """(N,) float64 minimum and maximum pixel of every image of (N, C, H, W) ``images``
    (a tensor, or anything sliced into tensors by rows, such as ``H5Images``)."""
    lows, highs = [], []
    for start in range(0, len(images), block):
        rows = images[start : start + block].flatten(1)
        # uint16/uint32 have no min/max in torch; float64 holds them (and int64) well
        # enough for a range.
        rows = rows.to(torch.float64)
        lows.append(rows.amin(1))
        highs.append(rows.amax(1))
    return torch.cat(lows), torch.cat(highs)


def range_faults(
    dtype: torch.dtype,
    lows: Tensor,
    highs: Tensor,
    declared: tuple[float, float] | None = None,
) -> list[tuple[int, str]]:
    """The images whose pixels cannot share one value range with the others, and why.

    With ``declared`` ``(low, high)``: every image with a pixel outside it. Otherwise an
    image is an outlier when its pixels reach more than :data:`OUTLIER_FACTOR` (10) times
    the others' span beyond the others' extremes, "the others" being the images left when
    the :data:`OUTLIER_SHARE` (1 %, at least one) with the highest maxima (and, for the
    low side, the lowest minima) are set aside. A long tail (CT numbers up to 3071 where
    most images stop at 1500, microscopy saturating at 65535 where most stay below 30000)
    stays well inside that; one 0..255 image among 0..1 floats, or one pixel of 1e30, does
    not. uint8 images and floats within [0, 1] have a nominal range and no outliers.

    Args:
        dtype: The images' dtype.
        lows, highs: (N,) every image's minimum and maximum pixel (:func:`image_extremes`).
        declared: The user's ``value_range``, or ``None``.

    Returns:
        ``(row, reason)`` per refused image, in row order; the reason completes
        "image 3 ...".

    Example:
        >>> lows, highs = torch.zeros(5, dtype=torch.float64), torch.ones(5, dtype=torch.float64)
        >>> highs[3] = 255
        >>> range_faults(torch.float32, lows, highs)[0][0]
        3
    """
    if declared is not None:
        low, high = declared
        bad = ((lows < low) | (highs > high)).nonzero().flatten().tolist()
        return [
            (
                i,
                f"has pixel values in [{float(lows[i]):g}, {float(highs[i]):g}], outside "
                f"value_range=({low:g}, {high:g}) (widen it if they are real)",
            )
            for i in bad
        ]
    n = len(lows)
    nominal = dtype == torch.uint8 or (float(lows.min()) >= 0 and float(highs.max()) <= 1)
    if n < 2 or nominal:
        return []
    k = max(1, int(n * OUTLIER_SHARE))
    # The others' extremes: the (k+1)-th highest maximum and (k+1)-th lowest minimum.
    ref_high = float(highs.kthvalue(n - k).values)
    ref_low = float(lows.kthvalue(k + 1).values)
    span = ref_high - ref_low
    if span <= 0:
        return []
    reach = OUTLIER_FACTOR * span
    bad = ((highs > ref_high + reach) | (lows < ref_low - reach)).nonzero().flatten().tolist()
    return [
        (
            i,
            f"has pixel values in [{float(lows[i]):g}, {float(highs[i]):g}], far outside the "
            f"other images' [{ref_low:g}, {ref_high:g}] (one such image sets the value range "
            "of every synthetic image; if its values are real, declare "
            "value_range=(low, high))",
        )
        for i in bad
    ]


def find_value_range(
    dtype: torch.dtype,
    lows: Tensor | None,
    highs: Tensor | None,
    declared: tuple[float, float] | None = None,
) -> tuple[float, float]:
    """``(low, high)`` that map to -1 and +1: ``declared``; 0..255 for uint8; 0..1 for
    floats all within [0, 1]; else the images' own minimum and maximum (``lows`` and
    ``highs``, every image's; needed only for these last two).

    Raises:
        ValueError: Every pixel has one value (nothing to learn).
    """
    if declared is not None:
        return declared
    if dtype == torch.uint8:
        return 0.0, 255.0
    low, high = float(lows.min()), float(highs.max())
    if dtype.is_floating_point and low >= 0 and high <= 1:
        # The common case: floats in [0, 1] (ToTensor). Use the nominal range, not the data's,
        # so that a set without pure white still maps 1.0 to +1.
        return 0.0, 1.0
    if low == high:
        raise ValueError(
            f"images should vary, but every pixel equals {low}. There is nothing to learn."
        )
    return low, high


# ---------------------------------------------------------------------- labels
def as_labels(labels: Any, name: str = "y", n: int | None = None) -> Tensor:
    """Class labels of any form -> a 1-D int64 CPU tensor; the library's one label rule.

    Accepted: integers and bools (False -> 0, True -> 1), and floats with whole values,
    as a tensor, a numpy array or a sequence of scalars (Python, numpy or one-element
    tensors). Refused: strings, objects and fractional floats.

    Args:
        labels: The labels.
        name: The argument's name, for error messages.
        n: The number of images they label; ``None`` skips the length check.

    Raises:
        TypeError: Labels that are not whole numbers.
        ValueError: Not 1-D, or not ``n`` of them.

    Example:
        >>> as_labels([True, False, True]).tolist(), as_labels(np.array([2.0, 7.0])).tolist()
        ([1, 0, 1], [2, 7])
    """
    if isinstance(labels, Tensor):
        tensor = labels.detach().cpu()
    else:
        if isinstance(labels, Sequence) and not isinstance(labels, (str, bytes)):
            labels = [_scalar(value) for value in labels]
        array = np.asarray(labels)
        if array.dtype.kind not in "biuf":
            raise TypeError(
                f"`{name}` should hold integer class labels, but got dtype={array.dtype}. "
                "Encode string labels first, e.g. with sklearn's LabelEncoder."
            )
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex() or (
        tensor.is_floating_point()
        and not bool((torch.isfinite(tensor) & (tensor == tensor.round())).all())
    ):
        raise TypeError(
            f"`{name}` should hold integer class labels, but got dtype={tensor.dtype} with "
            "values that are not whole numbers."
        )
    tensor = tensor.to(torch.int64)
    if tensor.ndim != 1:
        raise ValueError(f"`{name}` should be 1-D, but got shape {tuple(tensor.shape)}.")
    if n is not None and len(tensor) != n:
        raise ValueError(
            f"`{name}` should have one label per image, but got {len(tensor)} labels for "
            f"{n} images."
        )
    return tensor


def _scalar(value: Any) -> Any:
    # A one-element tensor or array (a dataset's target) stands for its value.
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, np.ndarray) and value.size == 1:
        return value.item()
    return value


@dataclass(frozen=True)
class TargetFormat:
    """How a dataset's raw targets look, so that synthetic items carry targets alike.

    Attributes:
        kind: ``"int"`` (a Python int), ``"bool"``, ``"tensor"`` or ``"numpy"``.
        dtype: The dtype's name of tensor or numpy targets, else ``None``.
    """

    kind: str
    dtype: str | None = None

    @classmethod
    def of(cls, target: Any) -> TargetFormat:
        if isinstance(target, Tensor):
            return cls("tensor", _dtype_name(target.dtype))
        if isinstance(target, (np.ndarray, np.generic)):
            return cls("numpy", str(np.asarray(target).dtype))
        return cls("bool" if isinstance(target, bool) else "int")

    def make(self, labels: Tensor) -> list:
        """(m,) int64 labels -> m targets of this form."""
        if self.kind == "tensor":
            return list(labels.to(getattr(torch, self.dtype)).unbind(0))
        if self.kind == "numpy":
            return list(labels.numpy().astype(self.dtype))
        if self.kind == "bool":
            return [bool(label) for label in labels.tolist()]
        return labels.tolist()
