"""The :class:`DeepSMOTE` estimator: train, encode, index, sample, save.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._images import ImageFormat, as_image_tensor, as_label_tensor
from ._items import read_dataset
from ._persistence import model_from_state, model_state
from ._validation import (
    check_bool,
    check_non_negative_int,
    check_positive_int,
    check_random_state,
    make_generator,
    resolve_device,
)
from .knn import class_neighbors, get_knn
from .latents import (
    decode_codes,
    decode_interpolated,
    encode_images,
    reconstruction_residuals,
)
from .models import Decoder, Encoder
from .smote import SMOTEPlan, interpolate, plan_synthetic, resolve_sampling_strategy
from .training import TrainingConfig, fit_autoencoder

__all__ = ["DeepSMOTE"]

STRATEGY_STRINGS = ("auto", "minority", "not minority", "not majority", "all")


class DeepSMOTE:
    """SMOTE in the latent space of an autoencoder trained on the imbalanced images.

    ``fit`` trains a DCGAN-style encoder/decoder (:mod:`.models`) with reconstruction loss
    plus the paper's penalty term, encodes every training image and finds each code's
    ``k_neighbors`` nearest codes of the same class. New images of class ``c`` are decoded
    from ``z = z_base + lam * (z_neighbor - z_base)``, with a base code of class ``c``, one of
    its neighbours and ``lam ~ U(0, 1)`` drawn at random. By default (``residual=True``)
    the parents' reconstruction residuals ``x - decode(encode(x))``, interpolated with the
    same ``lam``, are added to the decoded image, so that new images keep the detail that
    the decoder cannot reproduce; ``residual=False`` decodes the code alone, as published.
    (Measured in ``benchmarks/RESULTS.md``: on Fashion-MNIST the residuals lift a small CNN's
    balanced accuracy by about 10 points over the published decoding.)

    Args:
        sampling_strategy: How many images to add per class, in imbalanced-learn's forms:
            ``'auto'`` (= ``'not majority'``), ``'minority'``, ``'not minority'``, ``'all'``, a
            float (two classes only), a dict ``{class: total count}`` or a callable of the
            labels returning such a dict.
        k_neighbors: Neighbours per code for the interpolation (5 in the paper). A class with
            ``k_neighbors`` or fewer images uses all of its other images, with a warning.
        knn: Neighbour search: ``'auto'`` (FAISS when installed, else torch), ``'faiss'``,
            ``'torch'``, or an object with a ``kneighbors`` method.
        latent_dim: Code size; ``None`` is the paper's 300 for grey and 600 for colour.
        hidden_channels: Width of the first convolution (64 in the paper).
        batch_size: Training batch size (100 in the paper).
        lr: Adam's learning rate (2e-4 in the paper).
        max_epochs: Upper bound on training epochs.
        patience: Epochs without relative improvement ``min_delta`` before stopping (0: never).
        min_delta: Relative improvement of the epoch loss that counts as progress.
        penalty_weight: Weight of the penalty term (1 as published; 0 turns it off).
        penalty_encoder_grad: Whether the encoder learns from the penalty (``False`` as published).
        precision: ``'auto'``, ``'fp32'``, ``'bf16'`` or ``'fp16'`` (see :class:`TrainingConfig`).
        channels_last: Train with the channels-last memory format.
        device: Where to train, encode and decode; ``None``: CUDA when available, else CPU.
        random_state: Seed for weights, training order and SMOTE draws; a fixed seed makes a
            CPU run reproducible bit for bit.
        progress: Show tqdm progress bars.
        residual: Add the parents' interpolated reconstruction residuals to every new image
            (``False``: the decoded code alone, as published). Costs one more decoder pass
            over the training images when fitting and a float16 copy of them.

    Attributes:
        encoder_, decoder_: The trained models (eval mode).
        image_shape_: (C, H, W) of the training images.
        image_format_: Container, dtype, layout and value range of the training images.
        classes_: (n_classes,) sorted class labels.
        latents_: (N, latent_dim) float32 codes of the training images.
        labels_: (N,) int64 labels of the training images.
        residuals_: (N, C, H, W) float16 reconstruction residuals on the [-1, 1] scale
            with ``residual=True``, else ``None``.
        neighbors_: (N, k) int64 row indices of each code's same-class neighbours (-1 pads
            classes with fewer than k + 1 images).
        n_neighbors_: ``{class: number of valid neighbour columns}``.
        sampling_strategy_: ``{class: number of images to add}``.
        history_: One dict per training epoch (loss terms and seconds).

    Example:
        >>> rng = np.random.default_rng(0)
        >>> X = (rng.random((40, 1, 8, 8)) * 255).astype(np.uint8)
        >>> y = np.array([0] * 30 + [1] * 10)
        >>> model = DeepSMOTE(latent_dim=4, hidden_channels=4, max_epochs=1, progress=False,
        ...                   random_state=0)
        >>> X_res, y_res = model.fit_resample(X, y)
        >>> X_res.shape, X_res.dtype, np.bincount(y_res).tolist()
        ((60, 1, 8, 8), dtype('uint8'), [30, 30])
    """

    def __init__(
        self,
        *,
        sampling_strategy: Any = "auto",
        k_neighbors: int = 5,
        knn: Any = "auto",
        latent_dim: int | None = None,
        hidden_channels: int = 64,
        batch_size: int = 100,
        lr: float = 2e-4,
        max_epochs: int = 50,
        patience: int = 5,
        min_delta: float = 1e-3,
        penalty_weight: float = 1.0,
        penalty_encoder_grad: bool = False,
        precision: str = "auto",
        channels_last: bool = False,
        device: Any = None,
        random_state: int | None = None,
        progress: bool = True,
        residual: bool = True,
    ) -> None:
        if isinstance(sampling_strategy, str) and sampling_strategy not in STRATEGY_STRINGS:
            raise ValueError(
                "`sampling_strategy` should be one of "
                + ", ".join(repr(s) for s in STRATEGY_STRINGS)
                + ", a float, a dict or a callable, but got "
                + f"sampling_strategy={sampling_strategy!r}."
            )
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = check_positive_int("k_neighbors", k_neighbors)
        get_knn(knn)  # fail now on a bad name, not after training
        self.knn = knn
        self.latent_dim = (
            None if latent_dim is None else check_positive_int("latent_dim", latent_dim)
        )
        self.hidden_channels = check_positive_int("hidden_channels", hidden_channels)
        self.training_config = TrainingConfig(
            batch_size=batch_size,
            lr=lr,
            max_epochs=max_epochs,
            patience=patience,
            min_delta=min_delta,
            penalty_weight=penalty_weight,
            penalty_encoder_grad=penalty_encoder_grad,
            precision=precision,
            channels_last=channels_last,
        )
        self.device = resolve_device(device)
        self.random_state = check_random_state("random_state", random_state)
        self.progress = check_bool("progress", progress)
        self.residual = check_bool("residual", residual)

    # ------------------------------------------------------------------ parameters
    def get_params(self) -> dict:
        """The constructor's arguments (``knn`` as given; an object is kept as is)."""
        return {
            "sampling_strategy": self.sampling_strategy,
            "k_neighbors": self.k_neighbors,
            "knn": self.knn,
            "latent_dim": self.latent_dim,
            "hidden_channels": self.hidden_channels,
            **self.training_config.to_dict(),
            "device": str(self.device),
            "random_state": self.random_state,
            "progress": self.progress,
            "residual": self.residual,
        }

    def __repr__(self) -> str:
        return (
            f"DeepSMOTE(k_neighbors={self.k_neighbors}, "
            f"sampling_strategy={self.sampling_strategy!r}, random_state={self.random_state})"
        )

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any) -> DeepSMOTE:
        """Train the autoencoder on ``X``, encode it and index each class's codes.

        Args:
            X: (N, C, H, W) or (N, H, W) images, numpy array or tensor, uint8 or float
                (any value range; it is remembered and used for the output).
            y: (N,) integer class labels.

        Returns:
            ``self``.
        """
        images, image_format = as_image_tensor(X, "X")
        labels = as_label_tensor(y, len(images), "y")
        return self._fit(images, labels, image_format)

    def fit_dataset(self, dataset: Any) -> DeepSMOTE:
        """Like :meth:`fit` for a map-style dataset of (image, target) items.

        Images may be PIL images, numpy (H, W[, C]) arrays or (C, H, W) tensors; they are
        read once, in order, and must share one shape. Random augmentations in the dataset's
        transform are read as they come: set them aside for fitting.

        Returns:
            ``self``.
        """
        images, labels = read_dataset(dataset, progress=self.progress)
        images, image_format = as_image_tensor(images, "dataset images")
        labels = as_label_tensor(labels, len(images), "dataset targets")
        return self._fit(images, labels, image_format)

    def _fit(self, images: Tensor, labels: Tensor, image_format: ImageFormat) -> DeepSMOTE:
        # One seed fans out into independent streams: weights, training draws, SMOTE draws.
        seeds = torch.randint(0, 2**62, (3,), generator=make_generator(self.random_state)).tolist()
        self.image_shape_ = tuple(images.shape[1:])
        self.image_format_ = image_format
        # Resolve the strategy before training so that a bad one fails in a second, not an hour.
        self.sampling_strategy_ = resolve_sampling_strategy(self.sampling_strategy, labels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds[0])
            self.encoder_ = Encoder(self.image_shape_, self.latent_dim, self.hidden_channels)
            self.decoder_ = Decoder(self.image_shape_, self.latent_dim, self.hidden_channels)
        self.history_ = fit_autoencoder(
            self.encoder_,
            self.decoder_,
            images,
            labels,
            image_format.to_unit,
            config=self.training_config,
            generator=make_generator(seeds[1]),
            device=self.device,
            progress=self.progress,
        )
        self.latents_ = encode_images(
            self.encoder_, images, image_format.to_unit, device=self.device
        )
        self.residuals_ = None
        if self.residual:
            self._keep_residuals(images)
        self.labels_ = labels
        self._index()
        self._generator = make_generator(seeds[2])
        return self

    def _keep_residuals(self, images: Tensor) -> None:
        """Store ``x - decode(encode(x))`` of the training ``images`` (in fit's order)."""
        self.residuals_ = reconstruction_residuals(
            self.decoder_, images, self.latents_, self.image_format_.to_unit, device=self.device
        )

    def _index(self) -> None:
        self.classes_ = torch.unique(self.labels_)
        self.neighbors_, self.n_neighbors_ = class_neighbors(
            self.latents_, self.labels_, self.k_neighbors, knn=get_knn(self.knn)
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "latents_"):
            raise RuntimeError(
                "This DeepSMOTE instance is not fitted yet. Call `fit(X, y)`, `fit_dataset(ds)` "
                "or `DeepSMOTE.load(path)` first."
            )

    def _generator_for(self, random_state: int | None) -> torch.Generator:
        if random_state is None:
            return self._generator
        return make_generator(check_random_state("random_state", random_state))

    # ------------------------------------------------------------------ codes and images
    def encode(self, X: Any, batch_size: int = 512) -> Tensor:
        """Codes of images given in the training images' format.

        Args:
            X: (N, C, H, W) or (N, H, W) images like those given to :meth:`fit`.
            batch_size: Images per encoder call.

        Returns:
            (N, latent_dim) float32 CPU tensor.
        """
        self._check_fitted()
        images, _ = as_image_tensor(X, "X")
        if tuple(images.shape[1:]) != self.image_shape_:
            raise ValueError(
                f"`X` should hold images of shape {self.image_shape_} like the training set, "
                f"but got {tuple(images.shape[1:])}."
            )
        return encode_images(
            self.encoder_,
            images,
            self.image_format_.to_unit,
            batch_size=batch_size,
            device=self.device,
        )

    def decode(self, codes: Tensor, batch_size: int = 512) -> Any:
        """Images from codes, in the training images' container, dtype, layout and range.

        Args:
            codes: (M, latent_dim) float tensor.
            batch_size: Codes per decoder call.

        Returns:
            (M, C, H, W) or (M, H, W) images, numpy or tensor as in :meth:`fit`.
        """
        return self.image_format_.export(self._decode(codes, batch_size))

    def _decode(self, codes: Tensor, batch_size: int = 512) -> Tensor:
        self._check_fitted()
        codes = torch.as_tensor(codes)
        if codes.ndim != 2 or codes.shape[1] != self.latents_.shape[1]:
            raise ValueError(
                f"`codes` should have shape (M, {self.latents_.shape[1]}), but got "
                f"{tuple(codes.shape)}."
            )
        unit = decode_codes(self.decoder_, codes, batch_size=batch_size, device=self.device)
        return self.image_format_.from_unit(unit)

    # ------------------------------------------------------------------ SMOTE
    def plan(self, n_new: dict | None = None, random_state: int | None = None) -> SMOTEPlan:
        """Draw which codes to interpolate: base, neighbour and ``lam`` per new image.

        Args:
            n_new: ``{class: number of images}``; defaults to ``sampling_strategy_``.
            random_state: Seed for this draw; ``None`` continues the fitted generator.

        Returns:
            A :class:`SMOTEPlan`, grouped by class in sorted order.
        """
        self._check_fitted()
        n_new = self.sampling_strategy_ if n_new is None else n_new
        known = set(self.classes_.tolist())
        for label, count in n_new.items():
            if label not in known:
                raise ValueError(
                    f"`label` should be one of the fitted classes {sorted(known)}, but got "
                    f"label={label!r}."
                )
            check_non_negative_int(f"n_new[{label}]", count)
        return plan_synthetic(
            n_new,
            self.labels_,
            self.neighbors_,
            self.n_neighbors_,
            self._generator_for(random_state),
        )

    def plan_codes(self, plan: SMOTEPlan) -> Tensor:
        """(m, latent_dim) codes of a plan: ``z = z_base + lam * (z_neighbor - z_base)``."""
        return interpolate(self.latents_, plan.base, plan.neighbor, plan.lam)

    def sample(self, n: int, label: int, random_state: int | None = None) -> Any:
        """``n`` new images of class ``label``.

        Args:
            n: Number of images.
            label: A class seen in :meth:`fit`.
            random_state: Seed for this draw; ``None`` continues the fitted generator.

        Returns:
            (n, C, H, W) or (n, H, W) images in the training images' format.
        """
        check_positive_int("n", n)
        return self.synthesize(self.plan({int(label): n}, random_state))

    def synthesize(self, plan: SMOTEPlan, batch_size: int = 512) -> Any:
        """The images of a plan (decoded codes, plus the residuals with ``residual=True``).

        Args:
            plan: From :meth:`plan`.
            batch_size: Codes per decoder call.

        Returns:
            (m, C, H, W) or (m, H, W) images in the training images' format.
        """
        self._check_fitted()
        unit = decode_interpolated(
            self.decoder_,
            self.latents_,
            plan.base,
            plan.neighbor,
            plan.lam,
            residuals=self.residuals_ if self.residual else None,
            batch_size=batch_size,
            device=self.device,
        )
        return self.image_format_.export(self.image_format_.from_unit(unit))

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Fit, then return the originals followed by the new images (imbalanced-learn's order).

        Args:
            X: (N, C, H, W) or (N, H, W) images, numpy array or tensor.
            y: (N,) integer labels.

        Returns:
            ``(X_resampled, y_resampled)`` in ``X``'s and ``y``'s container, ``X``'s dtype,
            layout and value range; the first N rows are ``X`` and ``y`` unchanged.
        """
        self.fit(X, y)
        plan = self.plan()
        new_images = self.synthesize(plan)
        if isinstance(X, Tensor):
            X_res = torch.cat([X.detach().cpu(), new_images])
        else:
            X_res = np.concatenate([np.asarray(X), new_images])
        if isinstance(y, Tensor):
            y_res = torch.cat([y.detach().cpu(), plan.labels.to(y.dtype)])
        else:
            y_arr = np.asarray(y)
            y_res = np.concatenate([y_arr, plan.labels.numpy().astype(y_arr.dtype)])
        return X_res, y_res

    # ------------------------------------------------------------------ persistence
    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted model (weights, codes, neighbour table, settings) to one file.

        The file is written beside ``path`` first and renamed, so a crash never leaves a
        half-written file under ``path``. A ``knn`` object or a callable
        ``sampling_strategy`` is not saved: ``'auto'`` and the resolved counts stand in.
        """
        self._check_fitted()
        path = os.fspath(path)
        tmp = f"{path}.tmp-{os.getpid()}"
        try:
            torch.save(model_state(self), tmp)
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)

    @classmethod
    def load(cls, path: str | os.PathLike, device: Any = None) -> DeepSMOTE:
        """Load a model written by :meth:`save`.

        Args:
            path: The file.
            device: Where to encode and decode; ``None``: CUDA when available, else CPU.

        Raises:
            FileNotFoundError: No such file.
            RuntimeError: A file that is not a DeepSMOTE model, or of another format version.
        """
        path = os.fspath(path)
        if not os.path.exists(path):
            raise FileNotFoundError(f"No DeepSMOTE model at {path!r}.")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:
            raise RuntimeError(
                f"Could not read a DeepSMOTE model from {path!r}: the file is damaged or not "
                f"a DeepSMOTE model ({error})."
            ) from error
        return model_from_state(cls, state, device=device, source=path)
