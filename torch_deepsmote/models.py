"""DCGAN-style encoder and decoder built from the image shape.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

The rule that builds them (``hidden`` is the hidden width, 64 in the paper):

* Encoder: stride-2 convolutions (kernel 4, padding 1, no bias) halve each side with
  ``floor(s / 2)``. Layer ``i`` has ``hidden * 2**min(i, 3)`` channels; every layer but the
  first has BatchNorm; all use LeakyReLU(0.2). There are 4 of them, as published, plus one
  more while the smaller side is still above 4 (large images), minus one while the smaller
  side would reach 0 (small images). A linear layer maps the flattened feature map to the
  latent code.
* Decoder for 28x28 (any channel count): the published decoder exactly, Linear(latent ->
  8*hidden*7*7) + ReLU, two ConvTranspose(k4, s1) + BN + ReLU (7 -> 10 -> 13), then
  ConvTranspose(k4, s2) + Tanh (13 -> 28).
* Decoder for every other size (3x32x32 included): the mirror of the encoder. A linear layer
  + ReLU to the encoder's last feature map, then one transposed convolution per encoder layer,
  each doubling a side exactly (kernel 4, stride 2, padding 1) or to ``2s + 1`` when the
  target side is odd (kernel 5), so the output is exactly (C, H, W). BatchNorm + ReLU between,
  Tanh at the end.

With ``hidden=64`` and ``latent_dim=300`` the 1x28x28 encoder has 2,909,228 parameters and
the decoder 10,176,129, the counts of the published code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch  # noqa: F401  (used by the doctests)
import torch.nn.functional as F
from torch import Tensor, nn

from ._pixels import MAX_SIDE, MIN_SIDE
from ._validation import check_positive_int

__all__ = [
    "Encoder",
    "Decoder",
    "DownConv2d",
    "build_autoencoder",
    "default_latent_dim",
    "encoder_sides",
]


def check_image_shape(image_shape: Sequence[int]) -> tuple[int, int, int]:
    """Validate a (C, H, W) shape: 1 to 4 channels, sides of at least 8."""
    shape = tuple(int(s) for s in image_shape)
    if len(shape) != 3 or not 1 <= shape[0] <= 4 or min(shape[1:]) < MIN_SIDE:
        raise ValueError(
            "`image_shape` should be (C, H, W) with 1 to 4 channels and sides of at least "
            f"{MIN_SIDE}, but got image_shape={tuple(image_shape)!r}."
        )
    if max(shape[1:]) > MAX_SIDE:
        raise ValueError(
            f"`image_shape` should have sides of at most {MAX_SIDE}, but got "
            f"image_shape={shape!r}. Resize the images first."
        )
    return shape  # type: ignore[return-value]


def _check_sizes(
    image_shape: Sequence[int], latent_dim: int | None, hidden: int
) -> tuple[tuple[int, int, int], int]:
    """Validated (C, H, W) and latent size (the paper's default when ``None``)."""
    shape = check_image_shape(image_shape)
    check_positive_int("hidden", hidden)
    if latent_dim is None:
        return shape, default_latent_dim(shape)
    return shape, check_positive_int("latent_dim", latent_dim)


def default_latent_dim(image_shape: Sequence[int]) -> int:
    """The paper's latent size: 300 for single-channel images, 600 for colour."""
    return 300 if int(image_shape[0]) == 1 else 600


def encoder_sides(height: int, width: int) -> list[tuple[int, int]]:
    """Spatial sizes after each encoder convolution.

    Examples:
        >>> encoder_sides(28, 28)
        [(14, 14), (7, 7), (3, 3), (1, 1)]
        >>> encoder_sides(32, 32)
        [(16, 16), (8, 8), (4, 4), (2, 2)]
    """
    side = min(height, width)
    n_down = 4
    while side >> n_down > 4:
        n_down += 1
    while side >> n_down < 1:
        n_down -= 1
    return [(height >> i, width >> i) for i in range(1, n_down + 1)]


def _channels(hidden: int, layer: int) -> int:
    return hidden * 2 ** min(layer, 3)


def _is_published_28(height: int, width: int) -> bool:
    return (height, width) == (28, 28)


class DownConv2d(nn.Conv2d):
    """``nn.Conv2d(in, out, 4, 2, 1, bias=False)`` that computes a 1x1 output as a matrix product.

    Same parameters, state-dict keys and results (up to float rounding) as the plain layer.
    On a 2x2 or 3x3 input the 4x4 window, padded by 1, covers the whole input once, so the
    convolution is ``F.linear`` with the kernel's taps ``[1 : 1 + H, 1 : 1 + W]``.

    Note:
        Measured on 2 CPU cores (torch 2.14, oneDNN 3.12), the 1x28x28 encoder's last layer
        (256 -> 512 on 3x3, batch 100) took 225 ms forward + backward through oneDNN and 22
        ms as a matrix product: oneDNN's kernels for a 1x1 output are far from peak, and
        that one layer cost 15% of a training step.
    """

    def forward(self, x: Tensor) -> Tensor:
        height, width = x.shape[-2:]
        if not (2 <= height <= 3 and 2 <= width <= 3) or not self._covers_input_once():
            return super().forward(x)
        weight = self.weight[:, :, 1 : 1 + height, 1 : 1 + width].flatten(1)
        return F.linear(x.flatten(1), weight, self.bias)[:, :, None, None]

    def _covers_input_once(self) -> bool:
        return (
            self.kernel_size == (4, 4)
            and self.stride == (2, 2)
            and self.padding == (1, 1)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding_mode == "zeros"
        )


class Encoder(nn.Module):
    """Image -> latent code.

    Args:
        image_shape: (C, H, W) of the images.
        latent_dim: Size of the code. Defaults to ``default_latent_dim``.
        hidden: Width of the first convolution (64 in the paper).

    Shape:
        input (N, C, H, W) in [-1, 1]; output (N, latent_dim).

    Examples:
        >>> enc = Encoder((1, 28, 28))
        >>> sum(p.numel() for p in enc.parameters())
        2909228
        >>> enc(torch.zeros(2, 1, 28, 28)).shape
        torch.Size([2, 300])
    """

    def __init__(
        self, image_shape: Sequence[int], latent_dim: int | None = None, hidden: int = 64
    ) -> None:
        super().__init__()
        (channels, height, width), latent_dim = _check_sizes(image_shape, latent_dim, hidden)
        layers: list[nn.Module] = []
        sides = encoder_sides(height, width)
        in_ch = channels
        for i in range(len(sides)):
            out_ch = _channels(hidden, i)
            layers.append(DownConv2d(in_ch, out_ch, 4, 2, 1, bias=False))
            if i > 0:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            in_ch = out_ch
        self.conv = nn.Sequential(*layers)
        last_h, last_w = sides[-1]
        self.fc = nn.Linear(in_ch * last_h * last_w, latent_dim)
        self.image_shape = (channels, height, width)
        self.latent_dim = latent_dim

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.conv(x).flatten(1))


def _up_kernel(src: int, dst: int) -> int:
    # With stride 2 and padding 1 a transposed convolution gives 2s - 4 + kernel: kernel 4
    # undoes an encoder halving of an even side, kernel 5 of an odd one (floor(s / 2)).
    return 4 if dst == 2 * src else 5


class Decoder(nn.Module):
    """Latent code -> image in [-1, 1] (Tanh output).

    Args:
        image_shape: (C, H, W) of the images to produce.
        latent_dim: Size of the code. Defaults to ``default_latent_dim``.
        hidden: Width of the last hidden layer (64 in the paper).

    Shape:
        input (N, latent_dim); output (N, C, H, W).

    Examples:
        >>> dec = Decoder((1, 28, 28))
        >>> sum(p.numel() for p in dec.parameters())
        10176129
        >>> dec(torch.zeros(2, 300)).shape
        torch.Size([2, 1, 28, 28])
    """

    def __init__(
        self, image_shape: Sequence[int], latent_dim: int | None = None, hidden: int = 64
    ) -> None:
        super().__init__()
        (channels, height, width), latent_dim = _check_sizes(image_shape, latent_dim, hidden)
        self.image_shape = (channels, height, width)
        self.latent_dim = latent_dim
        if _is_published_28(height, width):
            self._start = (hidden * 8, 7, 7)
            ups: list[nn.Module] = [
                nn.ConvTranspose2d(hidden * 8, hidden * 4, 4),
                nn.BatchNorm2d(hidden * 4),
                nn.ReLU(True),
                nn.ConvTranspose2d(hidden * 4, hidden * 2, 4),
                nn.BatchNorm2d(hidden * 2),
                nn.ReLU(True),
                nn.ConvTranspose2d(hidden * 2, channels, 4, stride=2),
            ]
        else:
            sides = [(height, width), *encoder_sides(height, width)]
            n_up = len(sides) - 1
            self._start = (_channels(hidden, n_up - 1), *sides[-1])
            ups = []
            for i in range(n_up - 1, -1, -1):
                (src_h, src_w), (dst_h, dst_w) = sides[i + 1], sides[i]
                in_ch = _channels(hidden, i)
                out_ch = channels if i == 0 else _channels(hidden, i - 1)
                kernel = (_up_kernel(src_h, dst_h), _up_kernel(src_w, dst_w))
                ups.append(nn.ConvTranspose2d(in_ch, out_ch, kernel, 2, 1))
                if i > 0:
                    ups += [nn.BatchNorm2d(out_ch), nn.ReLU(True)]
        start_ch, start_h, start_w = self._start
        self.fc = nn.Sequential(nn.Linear(latent_dim, start_ch * start_h * start_w), nn.ReLU())
        self.deconv = nn.Sequential(*ups, nn.Tanh())

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.fc(z).view(-1, *self._start))


def build_autoencoder(
    image_shape: Sequence[int], latent_dim: int | None = None, hidden: int = 64
) -> tuple[Encoder, Decoder]:
    """The encoder and decoder of one DeepSMOTE model, the one place both are built.

    Fitting builds them before training and loading builds them before reading the saved
    weights: both must make the same modules from the same parameters.

    Args:
        image_shape: (C, H, W) of the images.
        latent_dim: Size of the code. Defaults to ``default_latent_dim``.
        hidden: Width of the encoder's first and the decoder's last hidden layer.

    Returns:
        ``(encoder, decoder)``: (N, C, H, W) -> (N, latent_dim) and back.
    """
    return Encoder(image_shape, latent_dim, hidden), Decoder(image_shape, latent_dim, hidden)
