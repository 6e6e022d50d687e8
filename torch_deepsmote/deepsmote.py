"""The ``DeepSMOTE`` estimator: parameters, fit, sample, fit_resample, save and load.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

The estimator holds its parameters and the fitted value
(``FittedDeepSMOTE``) that ``torch_deepsmote.fitting``
returns; persistence (``torch_deepsmote.storage``) reads and writes that value.
"""

from __future__ import annotations

import operator
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import fitting
from ._format import ImageFormat, as_images
from ._params import EstimatorParams, NotFittedError, rank_settings
from ._seeding import make_generator
from ._validation import (
    check_bool,
    check_choice,
    check_lam_range,
    check_positive_int,
    check_random_state,
)
from .knn import get_knn
from .latents import encode_images
from .parameters import PARAMETERS
from .persistence.model_cache import fit_or_load
from .persistence.model_file import load_model, save_model
from .reading import read_dataset
from .smote import SMOTEPlan
from .storage.fingerprint import fingerprint_config
from .storage.image_store import H5Images
from .synthesis import Synthesizer
from .training import TrainingConfig

__all__ = ["DeepSMOTE", "NotFittedError"]

# The fitted attributes (scikit-learn's trailing underscore): parts of the fitted value and
# of its synthesizer.
_FITTED = {
    **{f"{name}_": name for name in fitting.FittedDeepSMOTE.PARTS},
    **{f"{name}_": f"synthesizer.{name}" for name in Synthesizer.PARTS},
}


class DeepSMOTE(EstimatorParams):
    """SMOTE in the latent space of an autoencoder trained on the imbalanced images.

    ``fit`` trains a DCGAN-style encoder/decoder with reconstruction loss plus the paper's
    penalty term, encodes every training image and finds each code's ``k_neighbors``
    nearest codes of its class. A new image of class ``c`` is decoded from
    ``z = z_base + lam * (z_neighbor - z_base)`` (base and neighbour of class ``c``,
    ``lam ~ U(0, 1)``), plus, with ``residual=True`` (the default; ``False`` is the paper),
    the parents' reconstruction residuals interpolated with the same ``lam``. The
    parameters are scikit-learn's contract: ``__init__`` stores them, so ``get_params``,
    ``set_params`` and ``sklearn.base.clone`` work. The user guide explains every option.

    Args:
        sampling_strategy: Images to add per class, in imbalanced-learn's forms (``'auto'``,
            ``'minority'``, ``'not minority'``, ``'not majority'``, ``'all'``, a float, a
            dict ``{class: total}`` or a callable of the labels).
        k_neighbors: Same-class neighbours per code (5 in the paper).
        knn: ``'auto'`` (FAISS when installed, else torch), ``'faiss'``, ``'torch'``, or an
            object with ``kneighbors``.
        latent_dim: Code size; ``None``: 300 for grey, 600 for colour images (the paper).
        hidden_channels: Width of the first convolution (64 in the paper).
        batch_size: Training batch size (100 in the paper).
        lr: Adam's learning rate (2e-4 in the paper).
        max_epochs: Upper bound on training epochs.
        patience: Epochs without progress before stopping (0: never).
        min_delta: Relative improvement of the epoch loss that counts as progress.
        penalty_weight: Weight of the penalty term (1 as published; 0 turns it off).
        penalty_encoder_grad: Whether the encoder learns from the penalty (no, as published).
        precision: ``'auto'``, ``'fp32'``, ``'bf16'`` or ``'fp16'`` (``TrainingConfig``).
        channels_last: Train with the channels-last memory format.
        device: Where to train, encode and decode; ``None``: CUDA when available, else CPU.
        random_state: Seed of the weights, training order and SMOTE draws.
        progress: Show progress bars.
        residual: Add the parents' interpolated reconstruction residuals to new images.
        interpolation: ``'smote'`` (a same-class neighbour, the paper), ``'enemy'`` (towards
            the nearest codes of other classes) or ``'transfer'`` (a larger class's
            neighbour difference added to a code of the class).
        lam_range: ``(low, high)`` of the step; ``None``: (0, 1), (0, 0.5) for ``'enemy'``.
        base_selection: ``'all'`` (SMOTE) or ``'borderline'`` (Borderline-SMOTE's codes in
            danger as bases).
        m_neighbors: Neighbourhood of the danger rule of ``'borderline'`` (10).
        log_dir: TensorBoard folder for the fit's loss and images, or ``None``.
        checkpoint_dir: Folder of a per-epoch checkpoint a killed fit resumes from.
        distributed: Fit with the ranks of a ``torch.distributed`` group: ``'auto'``,
            ``True`` or ``False``.
        value_range: ``(low, high)`` of the pixels (what maps to the decoder's -1 and +1),
            e.g. ``(0, 4095)`` for 12-bit data; an image with a pixel outside it is refused
            (a bad item of a dataset). ``None``: 0..255 for uint8, 0..1 for floats within it,
            else the data's own minimum and maximum, an image far outside the others refused.

    Fitted attributes: ``fitted_`` (the
    [`FittedDeepSMOTE`][torch_deepsmote.fitting.FittedDeepSMOTE]), its parts ``encoder_``,
    ``synthesizer_``, ``device_``, ``image_shape_``, ``classes_``, ``sampling_strategy_``,
    ``history_``, ``data_fingerprint_``, and the synthesizer's ``decoder_``, ``latents_`` (N, D),
    ``labels_`` (N,), ``neighbors_`` (N, k), ``n_neighbors_``, ``residuals_`` and ``image_format_``.

    Examples:
        >>> rng = np.random.default_rng(0)
        >>> X = (rng.random((40, 1, 8, 8)) * 255).astype(np.uint8)
        >>> y = np.array([0] * 30 + [1] * 10)
        >>> model = DeepSMOTE(latent_dim=4, hidden_channels=4, max_epochs=1,
        ...                   progress=False, random_state=0)
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
        interpolation: str = "smote",
        lam_range: tuple[float, float] | None = None,
        base_selection: str = "all",
        m_neighbors: int = 10,
        log_dir: str | os.PathLike | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        distributed: bool | str = "auto",
        value_range: tuple[float, float] | None = None,
    ) -> None:
        self.sampling_strategy = sampling_strategy
        self.k_neighbors = k_neighbors
        self.knn = knn
        self.latent_dim = latent_dim
        self.hidden_channels = hidden_channels
        self.batch_size = batch_size
        self.lr = lr
        self.max_epochs = max_epochs
        self.patience = patience
        self.min_delta = min_delta
        self.penalty_weight = penalty_weight
        self.penalty_encoder_grad = penalty_encoder_grad
        self.precision = precision
        self.channels_last = channels_last
        self.device = device
        self.random_state = random_state
        self.progress = progress
        self.residual = residual
        self.interpolation = interpolation
        self.lam_range = lam_range
        self.base_selection = base_selection
        self.m_neighbors = m_neighbors
        self.log_dir = log_dir
        self.checkpoint_dir = checkpoint_dir
        self.distributed = distributed
        self.value_range = value_range
        self._check_params()  # fail now on a bad option, not after training

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> TrainingConfig:
        """Check every argument (the table's checks); returns the training options."""
        for name, param in PARAMETERS.items():
            if param.check is not None:
                param.check(name, getattr(self, name))
        return self.training_config()

    def training_config(self) -> TrainingConfig:
        """The ``TrainingConfig`` these arguments make (checked)."""
        return TrainingConfig(
            **{name: getattr(self, name) for name in TrainingConfig.__dataclass_fields__}
        )

    def _params_of(self, role: str) -> dict:
        return {name: getattr(self, name) for name, p in PARAMETERS.items() if p.role == role}

    def training_fingerprint(self) -> str:
        """Fingerprint of the arguments that change the trained weights or the codes."""
        config = self._params_of("weights")
        if config["value_range"] is None:  # the key of caches written before it existed
            del config["value_range"]
        else:
            config["value_range"] = [float(v) for v in config["value_range"]]
        return fingerprint_config(config)

    def index_fingerprint(self) -> str:
        """Fingerprint of the arguments that shape the neighbour tables.

        Note:
            ``knn`` enters as the repr of its backend; a user's object whose repr holds a
            memory address rebuilds the table in every run (cheap next to training).
        """
        config = self._params_of("index")
        if config["lam_range"] is not None:
            config["lam_range"] = list(check_lam_range("lam_range", config["lam_range"]))
        if config["base_selection"] == "all":  # m_neighbors unused: earlier caches' key
            del config["base_selection"], config["m_neighbors"]
        return fingerprint_config({**config, "knn": repr(get_knn(self.knn))})

    def _request(self) -> fitting.FitRequest:
        """The checked parameters and their fingerprints, as the fitting path takes them."""
        self._check_params()
        params = self.get_params(deep=False)
        if params["lam_range"] is not None:  # two floats from here on
            params["lam_range"] = check_lam_range("lam_range", params["lam_range"])
        ranks = rank_settings(PARAMETERS, params)
        return fitting.FitRequest(
            params, self.training_fingerprint(), self.index_fingerprint(), ranks
        )

    def __repr__(self) -> str:
        return (
            f"DeepSMOTE(k_neighbors={self.k_neighbors}, "
            f"sampling_strategy={self.sampling_strategy!r}, random_state={self.random_state})"
        )

    # ------------------------------------------------------------------ fitted state
    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set on the instance: ``fitted_`` (the fitted value) and
        # the views of its parts. NOTE: not properties: an AttributeError (NotFittedError is
        # one, so that hasattr() is False before fit) raised in a property would make Python
        # retry __getattr__ and lose the message.
        if name != "fitted_" and name not in _FITTED:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        fitted = self.__dict__.get("_fitted")
        if fitted is None:
            raise NotFittedError(
                "This DeepSMOTE instance is not fitted yet. Call `fit(X, y)`, `fit_dataset(ds)` "
                "or `DeepSMOTE.load(path)` first."
            )
        return fitted if name == "fitted_" else operator.attrgetter(_FITTED[name])(fitted)

    def _set_fitted(self, fitted: fitting.FittedDeepSMOTE) -> DeepSMOTE:
        self._fitted = fitted
        return self

    # ------------------------------------------------------------------ fitting
    def fit(
        self,
        X: Any,
        y: Any,
        *,
        image_format: ImageFormat | None = None,
        cache_dir: str | os.PathLike | None = None,
        on_mismatch: str = "refit",
        lock_timeout: float | None = None,
    ) -> DeepSMOTE:
        """Train the autoencoder on ``X``, encode it and index each class's codes.

        Args:
            X: (N, C, H, W) or (N, H, W) images, numpy or tensor, of any integer or float
                dtype and value range (both kept for the output; see ``value_range``), or an
                ``H5Images`` (with ``image_format``), read a batch at a time.
            y: (N,) class labels (integers, bools or whole floats).
            image_format: The form new images are given back in; ``None``: ``X``'s own.
            cache_dir: A folder whose HDF5 cache holds the model fitted on this data with
                these settings: loaded instead of training, else fitted and stored there.
                Changed neighbour or residual settings are rebuilt without training.
            on_mismatch: ``'refit'`` rebuilds a stale or damaged cache (warning), or ``'raise'``.
            lock_timeout: Seconds to wait for another process fitting the same cache.

        Returns:
            ``self``.
        """
        check_choice("on_mismatch", on_mismatch, ("refit", "raise"))
        images, labels, image_format = fitting.training_data(X, y, image_format, self.value_range)
        request = self._request()
        if cache_dir is None:
            fitted = fitting.fit(images, labels, image_format, request)
        else:
            fitted = fit_or_load(
                images, labels, image_format, request, cache_dir, on_mismatch, lock_timeout
            )
        return self._set_fitted(fitted)

    def fit_dataset(
        self,
        dataset: Any,
        labels: Any = None,
        fit_transform: Any = None,
        on_bad_item: str = "raise",
        image_key: Any = None,
        label_key: Any = None,
        num_workers: int = 0,
    ) -> DeepSMOTE:
        """Like ``fit`` for a map-style dataset of (image, target) items (or dicts).

        The dataset is read once, in order, with its transforms set aside, exactly as
        [`OversampledDataset`][torch_deepsmote.dataset.OversampledDataset] reads it; new images come
        back in the items' raw form (PIL images of the same mode, arrays or tensors of the same
        dtype).

        Args:
            dataset: Items are (image, target) pairs, longer tuples or dicts.
            labels: (N,) class of every item; ``None`` reads the metadata or the targets.
            fit_transform: A deterministic transform of each raw image while reading
                (``Resize((64, 64))`` for an image folder of mixed sizes).
            on_bad_item: ``'raise'`` at the first unreadable or odd item, or ``'skip'`` it.
            image_key: Where dict (or tuple) items hold the image.
            label_key: Where they hold the target.
            num_workers: DataLoader workers that read the items (0: this process).

        Returns:
            ``self``.
        """
        read = read_dataset(
            dataset,
            labels,
            fit_transform,
            self.progress,
            on_bad_item,
            num_workers,
            image_key=image_key,
            label_key=label_key,
            value_range=self.value_range,
        )
        return self.fit(read.images, read.labels, image_format=read.image_format)

    def refit_neighbors(self) -> DeepSMOTE:
        """Build the neighbour tables anew for the current ``k_neighbors``, ``knn``,
        ``interpolation``, ``lam_range``, ``base_selection`` and ``m_neighbors``, from the
        fitted codes (nothing is trained).

        Returns:
            ``self``.
        """
        fitted = self.fitted_
        return self._set_fitted(fitting.refit_neighbors(fitted, self._request().params))

    def refit_residuals(self, X: Any = None) -> DeepSMOTE:
        """Make the kept residuals follow ``residual`` without training: computed from the
        training images ``X`` (checked) with ``residual=True``, dropped with ``False``.

        Raises:
            ValueError: ``X`` missing, or not the images the model was fitted on.
        """
        fitted = self.fitted_
        residual = check_bool("residual", self.residual)
        images = X if X is None or isinstance(X, H5Images) else as_images(X, "X")[0]
        return self._set_fitted(fitting.refit_residuals(fitted, images, residual))

    def check_fitted_on(self, images: Tensor, labels: Tensor) -> None:
        """Raise unless ``images`` (N, C, H, W) and ``labels`` (N,) are the training data.

        Raises:
            ValueError: Another shape, length, label or pixel than the data of
                [`fit`][torch_deepsmote.deepsmote.DeepSMOTE.fit].
        """
        self.fitted_.check_data(images, labels)

    # ------------------------------------------------------------------ codes and images
    def encode(self, X: Any, batch_size: int = 512) -> Tensor:
        """(N, latent_dim) float32 CPU codes of (N, C, H, W) or (N, H, W) images given in
        the training images' format."""
        fitted = self.fitted_
        images, _ = as_images(X, "X")
        if tuple(images.shape[1:]) != fitted.image_shape:
            raise ValueError(
                f"`X` should hold images of shape {fitted.image_shape} like the training set, "
                f"but got {tuple(images.shape[1:])}."
            )
        to_unit = fitted.synthesizer.image_format.to_unit
        return encode_images(
            fitted.encoder, images, to_unit, batch_size=batch_size, device=fitted.device
        )

    def decode(self, codes: Tensor, batch_size: int = 512) -> Any:
        """Images of (M, latent_dim) codes in the training images' container, dtype,
        layout and range ((M, C, H, W) or (M, H, W); a list of PIL images for PIL data)."""
        synthesizer = self.fitted_.synthesizer
        codes = torch.as_tensor(codes)
        dim = synthesizer.latents.shape[1]
        if codes.ndim != 2 or codes.shape[1] != dim:
            raise ValueError(f"`codes` should have shape (M, {dim}), but got {tuple(codes.shape)}.")
        return synthesizer.image_format.export(synthesizer.decode(codes, batch_size))

    # ------------------------------------------------------------------ SMOTE
    def plan(self, n_new: dict | None = None, random_state: int | None = None) -> SMOTEPlan:
        """Draw base, neighbour and ``lam`` of each new image.

        Args:
            n_new: ``{class: number of images}``; defaults to ``sampling_strategy_``.
            random_state: Seed for this draw; ``None`` continues the fitted generator.

        Returns:
            A [`SMOTEPlan`][torch_deepsmote.smote.SMOTEPlan], grouped by class in sorted order.
        """
        fitted = self.fitted_
        n_new = fitted.sampling_strategy if n_new is None else n_new
        generator = fitted.generator
        if random_state is not None:
            generator = make_generator(check_random_state("random_state", random_state))
        return fitted.synthesizer.plan(n_new, generator)

    def plan_codes(self, plan: SMOTEPlan) -> Tensor:
        """(m, latent_dim) codes of a plan: ``z = z_base + lam * (z_neighbor - z_base)``."""
        return self.fitted_.synthesizer.codes(plan)

    def sample(self, n: int, label: int, random_state: int | None = None) -> Any:
        """``n`` new images of class ``label``, in the training images' format."""
        check_positive_int("n", n)
        return self.synthesize(self.plan({int(label): n}, random_state))

    def synthesize(self, plan: SMOTEPlan, batch_size: int = 512) -> Any:
        """The (m, C, H, W) or (m, H, W) images of a plan, in the training images' format."""
        synthesizer = self.fitted_.synthesizer
        return synthesizer.image_format.export(synthesizer.images(plan, batch_size))

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Fit, then return the originals followed by the new images (imbalanced-learn's
        order), in ``X``'s and ``y``'s containers, dtype, layout and value range."""
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
        """Save the fitted model (weights, codes, neighbour tables, settings) to one file,
        atomically. A ``knn`` object or a callable ``sampling_strategy`` is not saved:
        ``'auto'`` and the resolved counts stand in."""
        save_model(path, self.fitted_, self.get_params(deep=False))

    @classmethod
    def load(cls, path: str | os.PathLike, device: Any = None) -> DeepSMOTE:
        """Load a model written by ``save`` (``device``: where to encode and decode;
        ``None``: CUDA when available, else CPU).

        Raises:
            FileNotFoundError: No such file.
            RuntimeError: A file that is not a DeepSMOTE model, or of another format version.
        """
        fitted, params = load_model(path, device=device)
        params = {k: v for k, v in params.items() if k in PARAMETERS}
        return cls(**{**params, "device": device})._set_fitted(fitted)
