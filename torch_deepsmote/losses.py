"""The DeepSMOTE training loss: reconstruction plus the paper's penalty term.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

The published penalty draws one class uniformly at random, takes up to one batch of its
images, encodes them, permutes the codes, decodes them and takes the MSE against the images
permuted the same way. Codes and targets are permuted alike, so the permutation cancels in a
mean squared error (and BatchNorm's batch statistics do not depend on order): the term is a
reconstruction loss on a single-class batch drawn with uniform class probability, which
up-weights minority classes for the decoder. The published code detaches the codes, so only
the decoder learns from it. :func:`penalty_loss` computes exactly that, without the
permutation and without building a graph through an encoder pass whose gradient is dropped.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import check_bool, check_positive_float

__all__ = ["DeepSMOTELoss", "LossTerms", "reconstruction_loss", "penalty_loss"]


def reconstruction_loss(encoder: nn.Module, decoder: nn.Module, images: Tensor) -> Tensor:
    """Mean squared error of ``decoder(encoder(images))`` against ``images``.

    Args:
        encoder: Maps (B, C, H, W) to (B, D).
        decoder: Maps (B, D) to (B, C, H, W).
        images: (B, C, H, W) float images in the decoder's output range.

    Returns:
        A scalar tensor.
    """
    return F.mse_loss(decoder(encoder(images)), images)


def penalty_loss(
    encoder: nn.Module, decoder: nn.Module, class_images: Tensor, encoder_grad: bool = False
) -> Tensor:
    """The paper's penalty: reconstruction of a batch drawn from a single class.

    Args:
        encoder: Maps (B, C, H, W) to (B, D).
        decoder: Maps (B, D) to (B, C, H, W).
        class_images: (B, C, H, W) images, all of one class.
        encoder_grad: Whether the encoder also learns from this term. ``False`` (the
            published behaviour) runs the encoder without building a graph.

    Returns:
        A scalar tensor.
    """
    # The encoder still runs in training mode, as published: its BatchNorm statistics see
    # the single-class batch too.
    with torch.set_grad_enabled(encoder_grad and torch.is_grad_enabled()):
        codes = encoder(class_images)
    return F.mse_loss(decoder(codes), class_images)


class LossTerms(NamedTuple):
    """The total loss and its two terms (scalar tensors; ``penalty`` is 0 when disabled)."""

    total: Tensor
    reconstruction: Tensor
    penalty: Tensor


class DeepSMOTELoss(nn.Module):
    """``reconstruction + penalty_weight * penalty``.

    Args:
        penalty_weight: Weight of the penalty term; 1.0 as published, 0 turns it off.
        penalty_encoder_grad: Whether the encoder learns from the penalty term too;
            ``False`` as published.

    Example:
        >>> from torch_deepsmote.models import Encoder, Decoder
        >>> enc, dec = Encoder((1, 8, 8), 4, hidden=2), Decoder((1, 8, 8), 4, hidden=2)
        >>> x = torch.rand(6, 1, 8, 8) * 2 - 1
        >>> terms = DeepSMOTELoss()(enc, dec, x, x[:3])
        >>> bool(terms.total > 0)
        True
    """

    def __init__(self, penalty_weight: float = 1.0, penalty_encoder_grad: bool = False) -> None:
        super().__init__()
        self.penalty_weight = check_positive_float(
            "penalty_weight", penalty_weight, allow_zero=True
        )
        self.penalty_encoder_grad = check_bool("penalty_encoder_grad", penalty_encoder_grad)

    def forward(
        self,
        encoder: nn.Module,
        decoder: nn.Module,
        images: Tensor,
        class_images: Tensor | None = None,
    ) -> LossTerms:
        """Compute the loss.

        Args:
            encoder: The encoder being trained.
            decoder: The decoder being trained.
            images: (B, C, H, W) a batch of the (imbalanced) training set.
            class_images: (B', C, H, W) a batch of one class for the penalty, or ``None``.

        Returns:
            :class:`LossTerms` of scalar tensors.
        """
        reconstruction = reconstruction_loss(encoder, decoder, images)
        if class_images is None or self.penalty_weight == 0:
            penalty = reconstruction.new_zeros(())
            return LossTerms(reconstruction, reconstruction, penalty)
        penalty = penalty_loss(encoder, decoder, class_images, self.penalty_encoder_grad)
        return LossTerms(reconstruction + self.penalty_weight * penalty, reconstruction, penalty)
