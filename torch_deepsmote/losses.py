"""Losses: the DeepSMOTE training loss, and a logit-adjusted loss for the classifier.

``DeepSMOTELoss`` trains the autoencoder: reconstruction plus the paper's penalty term
(D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and SMOTE for
Imbalanced Data", IEEE TNNLS, 2022). ``LogitAdjustedLoss`` trains a classifier on
batches of a known class prior (A. K. Menon, S. Jayasumana, A. S. Rawat, H. Jain, A. Veit
and S. Kumar, "Long-tail learning via logit adjustment", ICLR 2021).

The published penalty draws one class uniformly at random, takes up to one batch of its
images, encodes them, permutes the codes, decodes them and takes the MSE against the images
permuted the same way. Codes and targets are permuted alike, so the permutation cancels in a
mean squared error (and BatchNorm's batch statistics do not depend on order): the term is a
reconstruction loss on a single-class batch drawn with uniform class probability, which
up-weights minority classes for the decoder. The published code detaches the codes, so only
the decoder learns from it. ``penalty_loss`` computes exactly that, without the
permutation and without building a graph through an encoder pass whose gradient is dropped.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._validation import check_bool, check_choice, check_positive_float

__all__ = ["DeepSMOTELoss", "LogitAdjustedLoss", "LossTerms", "reconstruction_loss", "penalty_loss"]


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

    Examples:
        >>> from torch_deepsmote.models import Encoder, Decoder
        >>> enc = Encoder((1, 8, 8), 4, hidden=2)
        >>> dec = Decoder((1, 8, 8), 4, hidden=2)
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
            ``LossTerms`` of scalar tensors.
        """
        reconstruction = reconstruction_loss(encoder, decoder, images)
        if class_images is None or self.penalty_weight == 0:
            penalty = reconstruction.new_zeros(())
            return LossTerms(reconstruction, reconstruction, penalty)
        penalty = penalty_loss(encoder, decoder, class_images, self.penalty_encoder_grad)
        return LossTerms(reconstruction + self.penalty_weight * penalty, reconstruction, penalty)


class LogitAdjustedLoss(nn.Module):
    """Cross-entropy on ``logits + tau * log(prior)``: a classifier for the balanced error.

    For a batch drawn with class prior ``pi`` (the training set's frequencies, or what a
    sampler such as [`ClassPriorSampler`][torch_deepsmote.samplers.prior.ClassPriorSampler]
    produces),

        loss(x, y) = -log softmax(f(x) + tau * log(pi))_y

    (Menon et al., "Long-tail learning via logit adjustment", ICLR 2021, Eq. 10). At
    ``tau = 1`` this is Balanced Softmax (Ren et al., NeurIPS 2020). Predict with the raw
    logits ``f(x).argmax(1)``: the adjustment is applied in training only, so the model
    learns scores for a balanced prior.

    Args:
        prior: (C,) class probabilities or counts (normalised here); classes with prior 0
            get a very negative offset instead of ``-inf``.
        tau: Strength of the adjustment; 0 is plain cross-entropy.
        reduction: ``'mean'``, ``'sum'`` or ``'none'``, as in ``F.cross_entropy``.

    Shape:
        logits (B, C); targets (B,) class indices or (B, C) class probabilities (mixup and
        CutMix targets); output a scalar, or (B,) with ``reduction='none'``.

    Examples:
        >>> loss = LogitAdjustedLoss(torch.tensor([900.0, 100.0]))
        >>> logits, targets = torch.zeros(2, 2), torch.tensor([0, 1])
        >>> round(float(loss(logits, targets)), 4)  # (-log 0.9 - log 0.1) / 2
        1.204
    """

    def __init__(self, prior: Tensor, tau: float = 1.0, reduction: str = "mean") -> None:
        super().__init__()
        self.tau = check_positive_float("tau", tau, allow_zero=True)
        self.reduction = check_choice("reduction", reduction, ("mean", "sum", "none"))
        self.register_buffer("log_prior", torch.empty(0))
        self.set_prior(prior)

    def set_prior(self, prior: Tensor) -> None:
        """Use a new class prior (e.g. a sampler's, after a deferred schedule changes it)."""
        prior = torch.as_tensor(prior, dtype=torch.float64)
        if prior.ndim != 1 or not bool((prior >= 0).all()) or not float(prior.sum()) > 0:
            raise ValueError(
                "`prior` should be a 1-D tensor of non-negative class probabilities or counts "
                f"with a positive sum, but got prior={prior.tolist()!r}."
            )
        log_prior = torch.log((prior / prior.sum()).clamp(min=1e-12)).float()
        self.log_prior = log_prior.to(self.log_prior.device)

    def forward(self, logits: Tensor, targets: Tensor) -> Tensor:
        if logits.shape[-1] != len(self.log_prior):
            raise ValueError(
                f"`logits` should have one column per class of the prior ({len(self.log_prior)}), "
                f"but got logits of shape {tuple(logits.shape)}."
            )
        adjusted = logits + self.tau * self.log_prior.to(logits.dtype)
        return F.cross_entropy(adjusted, targets, reduction=self.reduction)
