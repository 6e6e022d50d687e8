"""Batched encoding of images and decoding of codes.

Decoding is the expensive half of serving synthetic images (about 0.33 GFLOP per 28x28 image
with the paper's decoder), so it always runs in large batches, never one image per call.
"""

from __future__ import annotations

import os
from typing import Callable

import torch
from torch import Tensor, nn

from .storage.image_store import H5Images, H5ImagesWriter

__all__ = ["encode_images", "decode_codes", "reconstruction_residuals"]


@torch.inference_mode()
def encode_images(
    encoder: nn.Module,
    images: Tensor,
    to_unit: Callable[[Tensor], Tensor],
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Encode images in batches.

    Args:
        encoder: Maps (B, C, H, W) in [-1, 1] to (B, D); put in eval mode here.
        images: (N, C, H, W) images in the user's dtype, on any device, or an
            ``H5Images`` (read a batch at a time).
        to_unit: Maps a batch of ``images`` to float32 in [-1, 1].
        batch_size: Images per encoder call.
        device: Where the encoder runs.

    Returns:
        (N, D) float32 codes on the CPU.
    """
    encoder.eval().to(device)
    out = None  # filled in place: a list of batches and its cat would hold two copies
    for i in range(0, len(images), batch_size):
        codes = encoder(to_unit(images[i : i + batch_size].to(device))).float().cpu()
        if out is None:
            out = torch.empty(len(images), *codes.shape[1:])
        out[i : i + len(codes)] = codes
    if out is None:
        raise ValueError("`images` should hold at least one image, but got 0.")
    return out


@torch.inference_mode()
def decode_codes(
    decoder: nn.Module,
    codes: Tensor,
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Decode latent codes in batches.

    Args:
        decoder: Maps (B, D) to (B, C, H, W) in [-1, 1]; put in eval mode here.
        codes: (M, D) float codes.
        batch_size: Codes per decoder call.
        device: Where the decoder runs.

    Returns:
        (M, C, H, W) float32 images in [-1, 1] on the CPU.
    """
    decoder.eval().to(device)
    if len(codes) == 0:
        shape = getattr(decoder, "image_shape", None)
        if shape is None:
            raise ValueError("`codes` should hold at least one code, but got 0 rows.")
        return torch.empty(0, *shape)
    out = [
        decoder(codes[i : i + batch_size].to(device, torch.float32)).float().cpu()
        for i in range(0, len(codes), batch_size)
    ]
    return torch.cat(out)


@torch.inference_mode()
def reconstruction_residuals(
    decoder: nn.Module,
    images: Tensor,
    latents: Tensor,
    to_unit: Callable[[Tensor], Tensor],
    *,
    batch_size: int = 512,
    device: torch.device | str = "cpu",
    store: str | os.PathLike | None = None,
) -> Tensor | H5Images:
    """What the autoencoder loses of each image: ``x - decode(encode(x))`` on the [-1, 1] scale.

    Args:
        decoder: Maps (B, D) to (B, C, H, W) in [-1, 1].
        images: (N, C, H, W) images in the user's dtype, or an
            ``H5Images``.
        latents: (N, D) their codes.
        to_unit: Maps a batch of ``images`` to float32 in [-1, 1].
        batch_size: Images per decoder call.
        device: Where the decoder runs.
        store: An HDF5 file to write them to, batch by batch, instead of memory (created
            or replaced).

    Returns:
        (N, C, H, W) float16 residuals on the CPU, or an ``H5Images`` of them in ``store``.

    Note:
        float16 halves the memory of a kept copy the size of the image set; its rounding
        (about 1e-3 at |r| <= 2) is far below one step of an 8-bit image (2/255 on this
        scale).
    """
    row = torch.empty(images.shape[1:], dtype=torch.float16)
    writer = None if store is None else H5ImagesWriter(store, len(images), row)
    # Filled in place: a list of batches and its cat would hold two copies of a set the
    # size of the images (at 1M 16x16 images, 0.5 GB each).
    out = None if writer else torch.empty(len(images), *images.shape[1:], dtype=torch.float16)
    for i in range(0, len(images), batch_size):
        recon = decode_codes(decoder, latents[i : i + batch_size], device=device)
        residual = to_unit(images[i : i + batch_size].cpu()) - recon
        if writer is None:
            out[i : i + len(recon)] = residual
        else:
            writer.extend(residual.half())
    return out if writer is None else writer.close()
