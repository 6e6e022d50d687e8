"""The ``DeepSMOTE`` estimator: parameters, fit, sample, fit_resample, save and load.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

The estimator holds its parameters and the fitted value
(``FittedDeepSMOTE``) that ``torch_deepsmote.fitting``
returns; persistence (``torch_deepsmote.persistence``) reads and writes that value.
"""

from __future__ import annotations

import math
import operator
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from . import fitting
from ._format import ImageFormat, as_images
from ._params import EstimatorParams, NotFittedError, rank_settings, sampler_tags
from ._seeding import make_generator
from ._validation import (
    check_bool,
    check_choice,
    check_folder,
    check_lam_range,
    check_positive_int,
    seed_of,
)
from .inputs import Targets, check_image_array, join_images, read_rows
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
        image_shape: ``(C, H, W)`` of the images when ``X`` comes as 2-D rows
            ``(N, C*H*W)`` (each row one image flattened in C, H, W order), the form a
            scikit-learn pipeline passes; new images then come back as rows too.
            ``None``: ``X`` holds (N, C, H, W) or (N, H, W) images.
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
        random_state: Seed of the weights, training order and SMOTE draws: ``None``
            (fresh entropy), an integer, or a numpy ``RandomState``, from which each fit
            draws its seed (scikit-learn's rule: the ``RandomState`` moves on).
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
    With string labels, ``classes_`` holds them (an array) and ``sampling_strategy_`` is keyed by
    them, while ``labels_`` holds their positions in ``classes_``. After a fit on rows
    (``image_shape``), ``n_features_in_`` is ``C*H*W``.

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
        image_shape: tuple[int, int, int] | None = None,
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
        random_state: Any = None,
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
        self.image_shape = image_shape
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

    def _params_of(self, role: str, params: dict | None = None) -> dict:
        params = self.get_params(deep=False) if params is None else params
        return {name: params[name] for name, p in PARAMETERS.items() if p.role == role}

    def training_fingerprint(self, params: dict | None = None) -> str:
        """Fingerprint of the arguments that change the trained weights or the codes
        (of ``params`` when given: the checked ones of a fit, a seed in place of a
        ``RandomState``)."""
        config = self._params_of("weights", params)
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
        """The checked parameters and their fingerprints, as the fitting path takes them:
        ``lam_range`` as two floats, a ``RandomState`` as the seed drawn from it now."""
        self._check_params()
        params = self.get_params(deep=False)
        if params["lam_range"] is not None:
            params["lam_range"] = check_lam_range("lam_range", params["lam_range"])
        params["random_state"] = seed_of("random_state", params["random_state"])
        ranks = rank_settings(PARAMETERS, params)
        return fitting.FitRequest(
            params, self.training_fingerprint(params), self.index_fingerprint(), ranks
        )

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags (``sklearn.utils.get_tags``): a sampler of 2-D rows (the
        ``image_shape`` mode) that needs ``y``."""
        return sampler_tags()

    def __sklearn_is_fitted__(self) -> bool:
        """Whether the estimator is fitted (``sklearn.utils.validation.check_is_fitted``)."""
        return self.__dict__.get("_fitted") is not None

    # ------------------------------------------------------------------ fitted state
    def __getattr__(self, name: str) -> Any:
        # Only reached for names not set on the instance: ``fitted_`` (the fitted value) and
        # the views of its parts. NOTE: not properties: an AttributeError (NotFittedError is
        # one, so that hasattr() is False before fit) raised in a property would make Python
        # retry __getattr__ and lose the message.
        if name not in ("fitted_", "n_features_in_") and name not in _FITTED:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        fitted = self.__dict__.get("_fitted")
        if fitted is None:
            raise NotFittedError(
                "This DeepSMOTE instance is not fitted yet. Call `fit(X, y)`, `fit_dataset(ds)` "
                "or `DeepSMOTE.load(path)` first."
            )
        if name == "fitted_":
            return fitted
        if name == "sampling_strategy_":  # keyed by the user's classes
            return self._targets().from_labels(fitted.sampling_strategy)
        if name == "classes_" and fitted.class_names is not None:
            return np.asarray(fitted.class_names)
        if name == "n_features_in_":  # scikit-learn's: the length of X's rows (2-D mode)
            if fitted.synthesizer.image_format.layout != "flat":
                raise AttributeError("`n_features_in_` is set by a fit on 2-D rows of X only.")
            return math.prod(fitted.image_shape)
        return operator.attrgetter(_FITTED[name])(fitted)

    def _targets(self) -> Targets:
        """The fitted classes' form: the user's class labels by the library's labels."""
        return Targets(self.fitted_.class_names)

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
                ``H5Images`` (with ``image_format``), read a batch at a time; with
                ``image_shape``, (N, C*H*W) rows.
            y: (N,) class labels: integers (bools, whole floats) or strings (kept: new
                labels, ``classes_`` and ``sample(label=...)`` use them); an (N, 1)
                column is used as 1-D (with a warning), one-hot rows as their classes.
            image_format: The form new images are given back in; ``None``: ``X``'s own.
            cache_dir: A folder whose HDF5 cache holds the model fitted on this data with
                these settings: loaded instead of training, else fitted and stored there.
                Changed neighbour or residual settings are rebuilt without training.
            on_mismatch: ``'refit'`` rebuilds a stale or damaged cache (warning), or ``'raise'``.
            lock_timeout: Seconds to wait for another process fitting the same cache.

        Returns:
            ``self``.
        """
        self._fit(X, y, image_format, cache_dir, on_mismatch, lock_timeout)
        return self

    def _fit(
        self,
        X: Any,
        y: Any,
        image_format: ImageFormat | None = None,
        cache_dir: str | os.PathLike | None = None,
        on_mismatch: str = "refit",
        lock_timeout: float | None = None,
    ) -> Targets:
        """``fit``; returns ``y``'s form (for ``y_res``)."""
        check_choice("on_mismatch", on_mismatch, ("refit", "raise"))
        check_folder("cache_dir", cache_dir)
        images, labels, image_format, targets = fitting.training_data(
            X, y, image_format, self.image_shape, self.value_range
        )
        request = self._request()
        if targets.classes is not None:  # a strategy that names the user's classes
            strategy = targets.strategy(request.params["sampling_strategy"])
            request = request.with_params(sampling_strategy=strategy)
        if cache_dir is None:
            fitted = fitting.fit(images, labels, image_format, request)
        else:
            fitted = fit_or_load(
                images, labels, image_format, request, cache_dir, on_mismatch, lock_timeout
            )
        synthesizer = fitted.synthesizer
        if synthesizer.image_format != image_format:
            # A cache fitted on the same pixels given in another form (a tensor, rows)
            # gives new images in the form of this X.
            fitted = fitted.replace(synthesizer=synthesizer.replace(image_format=image_format))
        self._set_fitted(fitted.replace(class_names=targets.classes))
        return targets

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

        Raises:
            ValueError: ``image_shape`` is set (it describes rows of ``X``; a dataset's
                items are images).
        """
        if self.image_shape is not None:
            raise ValueError(
                "`image_shape` should be None to fit a dataset (its items are images; "
                f"image_shape describes 2-D rows of X), but got image_shape={self.image_shape!r}."
            )
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
        images = X if X is None or isinstance(X, H5Images) else self._images(X)
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
        images = self._images(X)
        if tuple(images.shape[1:]) != fitted.image_shape:
            raise ValueError(
                f"`X` should hold images of shape {fitted.image_shape} like the training set, "
                f"but got {tuple(images.shape[1:])}."
            )
        to_unit = fitted.synthesizer.image_format.to_unit
        return encode_images(
            fitted.encoder, images, to_unit, batch_size=batch_size, device=fitted.device
        )

    def _images(self, X: Any) -> Tensor:
        """(N, C, H, W) images of ``X`` given as the training images were (rows of a
        model fitted on rows)."""
        fitted = self.fitted_
        if fitted.synthesizer.image_format.layout == "flat":
            return read_rows(X, fitted.image_shape, "X")[0]
        check_image_array(X, "X")
        return as_images(X, "X")[0]

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
            n_new: ``{class: number of images}`` (the user's classes); defaults to
                ``sampling_strategy_``.
            random_state: Seed for this draw (an integer or a numpy ``RandomState``);
                ``None`` continues the fitted generator.

        Returns:
            A [`SMOTEPlan`][torch_deepsmote.smote.SMOTEPlan], grouped by class in sorted order.
        """
        fitted = self.fitted_
        n_new = fitted.sampling_strategy if n_new is None else self._targets().to_labels(n_new)
        return self._plan(n_new, random_state)

    def _plan(self, n_new: dict, random_state: Any) -> SMOTEPlan:
        """``plan`` of ``{library's label: number}``."""
        fitted = self.fitted_
        generator = fitted.generator
        if random_state is not None:
            generator = make_generator(seed_of("random_state", random_state))
        return fitted.synthesizer.plan(n_new, generator)

    def plan_codes(self, plan: SMOTEPlan) -> Tensor:
        """(m, latent_dim) codes of a plan: ``z = z_base + lam * (z_neighbor - z_base)``."""
        return self.fitted_.synthesizer.codes(plan)

    def sample(self, n: int, label: Any, random_state: Any = None) -> Any:
        """``n`` new images of class ``label`` (an integer, or a string of string labels),
        in the training images' format."""
        check_positive_int("n", n)
        label = self._targets().to_label(label)
        return self.synthesize(self._plan({int(label): n}, random_state))

    def synthesize(self, plan: SMOTEPlan, batch_size: int = 512) -> Any:
        """The (m, C, H, W) or (m, H, W) images of a plan, in the training images' format."""
        synthesizer = self.fitted_.synthesizer
        return synthesizer.image_format.export(synthesizer.images(plan, batch_size))

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Fit, then return the originals followed by the new images (imbalanced-learn's
        order), in ``X``'s and ``y``'s containers, dtype, layout and value range.

        Args:
            X: As in [`fit`][torch_deepsmote.deepsmote.DeepSMOTE.fit] (rows with ``image_shape``).
            y: As in [`fit`][torch_deepsmote.deepsmote.DeepSMOTE.fit].

        Returns:
            ``(X_res, y_res)``: ``X`` then ``m`` new images ((N + m, ...) like ``X``; a list
            for a list), and ``y`` then their labels (the user's class labels, one-hot
            rows for one-hot ``y``; 1-D for a column ``y``).
        """
        targets = self._fit(X, y)
        plan = self._plan(self.fitted_.sampling_strategy, None)
        new_images = self.synthesize(plan)
        return join_images(X, new_images), targets.join(y, plan.labels)

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
