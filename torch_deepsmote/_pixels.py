"""What pixel values and image shapes the model takes: the value range and the shape rule.

The decoder ends in Tanh, so every image maps to [-1, 1] from a value range ``(low,
high)``: the one the user declared (``value_range=``; an image with a pixel outside it is
refused), 0..255 for uint8, 0..1 for floats within it, else the data's own minimum and
maximum (``find_value_range``). That last range can be set by one odd image for every
synthetic image, so a fit refuses an image far outside the others' (``range_faults``).
The encoder halves each side three times: images are (C, H, W) with 1 to 4 channels and
sides of 8 to 4096 (``check_image_shape``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["MAX_SIDE", "MIN_SIDE", "OUTLIER_FACTOR", "OUTLIER_SHARE", "check_image_shape"]
__all__ += ["check_value_range", "find_value_range", "image_extremes", "range_faults"]

# The outlier rule of range_faults: an image is refused when its pixels lie more than
# OUTLIER_FACTOR times the others' span beyond the others' extremes, "the others" being
# the set without its OUTLIER_SHARE most extreme images (at least one).
OUTLIER_SHARE = 0.01
OUTLIER_FACTOR = 10.0


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
    image is an outlier when its pixels reach more than ``OUTLIER_FACTOR`` (10) times
    the others' span beyond the others' extremes, "the others" being the images left when
    the ``OUTLIER_SHARE`` (1 %, at least one) with the highest maxima (and, for the
    low side, the lowest minima) are set aside. A long tail (CT numbers up to 3071 where
    most images stop at 1500, microscopy saturating at 65535 where most stay below 30000)
    stays well inside that; one 0..255 image among 0..1 floats, or one pixel of 1e30, does
    not. uint8 images and floats within [0, 1] have a nominal range and no outliers.

    Args:
        dtype: The images' dtype.
        lows, highs: (N,) every image's minimum and maximum pixel (``image_extremes``).
        declared: The user's ``value_range``, or ``None``.

    Returns:
        ``(row, reason)`` per refused image, in row order; the reason completes
        "image 3 ...".

    Examples:
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
