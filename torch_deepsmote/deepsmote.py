"""The :class:`DeepSMOTE` estimator: train, encode, index, sample, save.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.
"""

from __future__ import annotations

import copy
import math
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._datasets import read_dataset
from ._format import ImageFormat, as_images, as_labels
from ._params import EstimatorParams
from ._validation import (
    check_bool,
    check_choice,
    check_positive_int,
    check_random_state,
    make_generator,
    resolve_device,
)
from .distributed import (
    Ranks,
    broadcast_object,
    check_same,
    current_ranks,
    map_row_blocks,
    rows_of,
)
from .distributed import class_neighbors as ranked_class_neighbors
from .distributed import in_danger as ranked_in_danger
from .knn import class_enemies, get_knn
from .latents import encode_images, reconstruction_residuals
from .models import Decoder, Encoder
from .smote import SMOTEPlan, resolve_sampling_strategy
from .storage.checkpoint import Checkpoint
from .storage.hdf5 import fingerprint_arrays, fingerprint_config
from .storage.image_store import H5Images, residual_store
from .synthesis import INTERPOLATIONS, Synthesizer, default_lam_range
from .training import TrainingConfig, fit_autoencoder

__all__ = ["DeepSMOTE"]

STRATEGY_STRINGS = ("auto", "minority", "not minority", "not majority", "all")
BASE_SELECTIONS = ("all", "borderline")
# Settings that change neither the trained weights nor the codes: not in the training
# fingerprint (of the cache and of a fit's checkpoint). The neighbour table has its own
# (k_neighbors, knn); residuals are rebuilt from the fitted model when asked for.
SERVING_PARAMS = (
    "sampling_strategy",
    "k_neighbors",
    "knn",
    "interpolation",
    "lam_range",
    "base_selection",
    "m_neighbors",
    "device",
    "progress",
    "residual",
    "log_dir",
    "checkpoint_dir",
    "distributed",
)


class DeepSMOTE(EstimatorParams):
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
        interpolation: Which pair a new code steps along: ``'smote'`` (a same-class
            neighbour, the paper), ``'enemy'`` (one of the ``k_neighbors`` nearest codes of
            other classes, towards the class boundary) or ``'transfer'`` (the difference of
            two neighbouring codes of a larger class, added to a code of the class). See
            :mod:`torch_deepsmote.smote`.
        lam_range: ``(low, high)`` of the uniform step ``lam``; ``None``: (0, 1), and
            (0, 0.5) for ``'enemy'`` so that a new image stays nearer its own class.
            A range beyond [0, 1] extrapolates.
        base_selection: Which codes of a class new codes start from: ``'all'`` (any of
            them, uniformly: SMOTE, the paper) or ``'borderline'`` (Borderline-SMOTE's
            base selection, Han, Wang and Mao, ICIC 2005, as imbalanced-learn's
            ``BorderlineSMOTE(kind='borderline-1')``: only the codes *in danger*, those
            of whose ``m_neighbors`` nearest codes of all classes (itself excluded) at
            least half, but not all, belong to other classes; noise, surrounded by other
            classes, and safe interior codes are not used). The pair and the step are
            drawn as with ``'all'``, for every ``interpolation``. A class with no code
            in danger uses all of its codes, with a warning (imbalanced-learn adds no
            sample to it). See :mod:`torch_deepsmote.borderline`.
        m_neighbors: The neighbourhood of the danger rule with
            ``base_selection='borderline'`` (10, as in imbalanced-learn), searched with
            ``knn`` over all the codes.
        log_dir: A folder for TensorBoard logs of the fit (``torch.utils.tensorboard``):
            the loss terms of every epoch and, every few epochs, real images beside
            synthetic ones made with the weights of that epoch. ``None`` logs nothing.
            Needs ``pip install torch-deepsmote[tensorboard]``.
        checkpoint_dir: A folder for a checkpoint written after every training epoch
            (:mod:`torch_deepsmote.storage.checkpoint`): a fit that was killed resumes there after
            its last complete epoch, with the same data and settings, and ends with the
            same weights. The file stays after the fit (a repeated fit then returns at
            once); delete it when done. ``OversampledDataset`` with ``cache_dir`` keeps it
            in the cache folder and removes it once the cache is written. ``None`` keeps none.
        distributed: Fit together with the other ranks of an initialized
            ``torch.distributed`` process group (torchrun, Lightning, Ray Train): ``'auto'``
            does so when the default group has more than one rank, ``True`` requires one,
            ``False`` fits in this process alone. Every rank must then call the fit with the
            same data and settings. Each rank trains on its share of every epoch with
            ``batch_size`` images per step (so the effective batch is ``batch_size *
            world_size``), encodes its block of rows and searches its share of the classes;
            see :mod:`torch_deepsmote.distributed` for what differs from one process.

    Attributes:
        encoder_: The trained encoder (eval mode).
        synthesizer_: The :class:`~torch_deepsmote.synthesis.Synthesizer` that makes every
            synthetic image (decoder, codes, labels, neighbour table, residuals, format).
        decoder_, latents_, labels_, neighbors_, n_neighbors_, residuals_, image_format_:
            Views of the synthesizer's parts: the decoder; (N, latent_dim) float32 codes and
            (N,) int64 labels of the training images; (N, k) int64 row indices of each
            code's same-class neighbours (-1 pads classes with fewer than k + 1 images);
            ``{class: number of valid neighbour columns}``; (N, C, H, W) float16
            reconstruction residuals on the [-1, 1] scale, or ``None`` with
            ``residual=False``; the container, dtype, layout and value range of the images.
        device_: The device the model trained on and decodes on.
        image_shape_: (C, H, W) of the training images.
        classes_: (n_classes,) sorted class labels.
        sampling_strategy_: ``{class: number of images to add}``.
        history_: One dict per training epoch (loss terms and seconds).
        data_fingerprint_: sha256 of the training labels and images, to tell the data
            this model was fitted on from other data.

    ``__init__`` only stores its arguments (after checking them), as scikit-learn's
    estimators do, so ``get_params`` / ``set_params`` / ``sklearn.base.clone`` work and
    imbalanced-learn pipelines accept the model. A fitted model keeps its fitted state when
    its parameters change; :meth:`refit_neighbors` and :meth:`refit_residuals` bring it in
    line with new ``k_neighbors`` / ``knn`` / ``base_selection`` and ``residual`` without
    training.

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
        interpolation: str = "smote",
        lam_range: tuple[float, float] | None = None,
        base_selection: str = "all",
        m_neighbors: int = 10,
        log_dir: str | os.PathLike | None = None,
        checkpoint_dir: str | os.PathLike | None = None,
        distributed: bool | str = "auto",
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
        self._check_params()  # fail now on a bad option, not after training

    # ------------------------------------------------------------------ parameters
    def _check_params(self) -> TrainingConfig:
        """Check every argument; returns the training options they make."""
        strategy = self.sampling_strategy
        if isinstance(strategy, str) and strategy not in STRATEGY_STRINGS:
            raise ValueError(
                "`sampling_strategy` should be one of "
                + ", ".join(repr(s) for s in STRATEGY_STRINGS)
                + f", a float, a dict or a callable, but got sampling_strategy={strategy!r}."
            )
        check_positive_int("k_neighbors", self.k_neighbors)
        get_knn(self.knn)
        if self.latent_dim is not None:
            check_positive_int("latent_dim", self.latent_dim)
        check_positive_int("hidden_channels", self.hidden_channels)
        resolve_device(self.device)
        check_random_state("random_state", self.random_state)
        check_bool("progress", self.progress)
        check_bool("residual", self.residual)
        check_choice("interpolation", self.interpolation, INTERPOLATIONS)
        if self.lam_range is not None:
            _check_lam_range(self.lam_range)
        check_choice("base_selection", self.base_selection, BASE_SELECTIONS)
        check_positive_int("m_neighbors", self.m_neighbors)
        if not (isinstance(self.distributed, bool) or self.distributed == "auto"):
            raise ValueError(
                "`distributed` should be 'auto', True or False, but got "
                f"distributed={self.distributed!r}."
            )
        for name in ("log_dir", "checkpoint_dir"):
            if getattr(self, name) is not None and not isinstance(
                getattr(self, name), (str, os.PathLike)
            ):
                raise TypeError(
                    f"`{name}` should be None or a folder path, but got "
                    f"{name}={getattr(self, name)!r}."
                )
        return self.training_config()

    def training_fingerprint(self) -> str:
        """Fingerprint of the settings that change the trained weights or the codes (every
        argument but :data:`SERVING_PARAMS`)."""
        params = self.get_params(deep=False)
        return fingerprint_config({k: v for k, v in params.items() if k not in SERVING_PARAMS})

    def _rank_settings(self, data_fingerprint: str) -> dict:
        """What every rank of a group must agree on before fitting together: the data and
        every setting that decides which collective steps a rank takes."""
        params = self.get_params(deep=False)
        for name in ("progress", "device", "log_dir", "sampling_strategy", "knn"):
            params.pop(name)  # per rank by nature, or not a collective choice
        params["checkpoint_dir"] = params["checkpoint_dir"] is not None
        params["knn"] = type(get_knn(self.knn)).__name__  # 'auto' resolves per machine
        return {"data (images and labels)": data_fingerprint, **params}

    def training_config(self) -> TrainingConfig:
        """The :class:`TrainingConfig` these arguments make (checked)."""
        return TrainingConfig(
            **{name: getattr(self, name) for name in TrainingConfig.__dataclass_fields__}
        )

    def __repr__(self) -> str:
        return (
            f"DeepSMOTE(k_neighbors={self.k_neighbors}, "
            f"sampling_strategy={self.sampling_strategy!r}, random_state={self.random_state})"
        )

    # ------------------------------------------------------------------ fitting
    def fit(self, X: Any, y: Any, *, image_format: ImageFormat | None = None) -> DeepSMOTE:
        """Train the autoencoder on ``X``, encode it and index each class's codes.

        Args:
            X: (N, C, H, W) or (N, H, W) images, numpy array or tensor, uint8 or float
                (any value range; it is remembered and used for the output), or an
                :class:`~torch_deepsmote.storage.image_store.H5Images` (with ``image_format``):
                training and encoding then read it a batch at a time, and the residuals
                are written to ``<X.path>.residuals.h5`` and read from there by rows.
            y: (N,) class labels (integers, bools or whole floats).
            image_format: The form new images are given back in; ``None``: ``X``'s own.
                :meth:`fit_dataset` passes the dataset items' form (PIL, numpy, tensor).

        Returns:
            ``self``.
        """
        if isinstance(X, H5Images):  # read from disk batch by batch; its form is given
            if image_format is None:
                raise ValueError(
                    "`image_format` should describe the stored images when X is an "
                    "H5Images, but got image_format=None."
                )
            images, found = X, image_format
        else:
            images, found = as_images(X, "X")
        labels = as_labels(y, "y", len(images))
        if image_format is not None and not image_format.same_values(found):
            raise ValueError(
                f"`image_format` should describe X's dtype and value range, but got "
                f"{image_format} for X of {found}."
            )
        return self._fit(images, labels, image_format or found)

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
        """Like :meth:`fit` for a map-style dataset of (image, target) items (or dicts).

        The dataset is read once, in order, with its transforms set aside (random
        augmentation stays out of the autoencoder's data), exactly as
        :class:`~torch_deepsmote.OversampledDataset` reads it. New images come back in the
        items' raw form (PIL images of the same mode, arrays or tensors of the same dtype).

        Args:
            dataset: Items are (image, target): PIL images, numpy (H, W[, C]) arrays or
                (C, H, W) tensors, all of one shape.
            labels: (N,) class of every item; ``None`` reads ``.targets`` / ``.labels`` or
                the targets.
            fit_transform: A deterministic transform applied to each raw image while
                reading, e.g. ``torchvision.transforms.Resize((64, 64))`` for an image
                folder of mixed sizes; new images are made in its output form.
            on_bad_item: ``'raise'`` stops at the first item that cannot be read or does not
                fit (named by index); ``'skip'`` leaves such items out with a warning (the
                model's rows are then the kept items, in order).
            image_key: Where dict (or tuple) items hold the image, as in
                :class:`~torch_deepsmote.OversampledDataset`; ``None`` finds it.
            label_key: Likewise for the target.
            num_workers: DataLoader worker processes that read (and decode) the items in
                parallel, in index order; 0 reads them in this process.

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
        )
        return self._fit(read.images, read.labels, read.image_format)

    def _fit(self, images: Tensor, labels: Tensor, image_format: ImageFormat) -> DeepSMOTE:
        config = self._check_params()
        device = resolve_device(self.device)
        ranks = current_ranks(self.distributed)
        # One seed fans out into independent streams: weights, training draws, SMOTE draws.
        seed = check_random_state("random_state", self.random_state)
        seeds = torch.randint(0, 2**62, (3,), generator=make_generator(seed)).tolist()
        image_shape = tuple(images.shape[1:])
        data_fingerprint = fingerprint_arrays(labels, images)  # a pass over every image: once
        if ranks is not None:
            check_same(self._rank_settings(data_fingerprint))
            # random_state=None draws fresh entropy in every process: take rank 0's draw.
            seeds = broadcast_object(seeds)
        # Resolve the strategy before training so that a bad one fails in a second, not an hour.
        strategy = resolve_sampling_strategy(self.sampling_strategy, labels)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seeds[0])
            encoder = Encoder(image_shape, self.latent_dim, self.hidden_channels)
            decoder = Decoder(image_shape, self.latent_dim, self.hidden_channels)
        logger = None
        if self.log_dir is not None and (ranks is None or ranks.is_main):
            from ._tensorboard import EpochLogger

            logger = EpochLogger(self.log_dir, encoder, decoder, images, labels, image_format)
        try:
            history = fit_autoencoder(
                encoder,
                decoder,
                images,
                labels,
                image_format.to_unit,
                config=config,
                generator=make_generator(seeds[1]),
                device=device,
                progress=self.progress,
                callback=logger,
                checkpoint=self._checkpoint(data_fingerprint, device, ranks),
                ranks=ranks,
                penalty_generator=_penalty_generator(seeds[1], ranks),
            )
        finally:
            if logger is not None:
                logger.close()
        to_unit = image_format.to_unit
        latents = map_row_blocks(
            lambda rows: encode_images(encoder, rows_of(images, rows), to_unit, device=device),
            len(images),
            ranks,
        )
        residuals = None
        if self.residual and isinstance(images, H5Images) and ranks is None:
            # Streaming: the residuals, as large as the images, go to a file beside them.
            residuals = reconstruction_residuals(
                decoder, images, latents, to_unit, device=device, store=residual_store(images)
            )
        elif self.residual:
            residuals = map_row_blocks(
                lambda rows: reconstruction_residuals(
                    decoder, rows_of(images, rows), latents[rows], to_unit, device=device
                ),
                len(images),
                ranks,
            )
        self._set_fitted(
            encoder=encoder,
            synthesizer=Synthesizer(
                decoder,
                image_format,
                latents,
                labels,
                residuals=residuals,
                **self._plan_settings(latents, labels, ranks),
            ),
            sampling_strategy=strategy,
            history=history,
            data_fingerprint=data_fingerprint,
            generator=make_generator(seeds[2]),
            device=device,
        )
        return self

    def _checkpoint(
        self, data_fingerprint: str, device: torch.device, ranks: Ranks | None
    ) -> Checkpoint | None:
        if self.checkpoint_dir is None:
            return None
        # Everything that changes the weights: the data, the settings, the device (its type
        # under ranks, which each use their own cuda:<local_rank>) and the number of ranks
        # (another split of the epochs).
        where = device if ranks is None else device.type
        key = f"{self.training_fingerprint()}:{where}:{data_fingerprint}"
        if ranks is not None:
            key += f":world_size={ranks.world_size}"
        return Checkpoint(
            self.checkpoint_dir, key, progress=self.progress and (ranks is None or ranks.is_main)
        )

    def _set_fitted(
        self,
        *,
        encoder: Encoder,
        synthesizer: Synthesizer,
        sampling_strategy: dict,
        history: list,
        data_fingerprint: str | None,
        generator: torch.Generator,
        device: torch.device,
    ) -> None:
        """The fitted state, in one place for fitting and loading."""
        self.device_ = device
        self.encoder_ = encoder.eval()
        self.synthesizer_ = synthesizer
        self.image_shape_ = tuple(encoder.image_shape)
        self.classes_ = torch.unique(synthesizer.labels)
        self.sampling_strategy_ = dict(sampling_strategy)
        self.history_ = list(history)
        self.data_fingerprint_ = data_fingerprint
        self._generator = generator

    def refit_neighbors(self) -> DeepSMOTE:
        """Build the neighbour tables again for the current ``k_neighbors``, ``knn``,
        ``interpolation``, ``lam_range``, ``base_selection`` and ``m_neighbors``.

        Nothing is trained: the tables come from the fitted codes.

        Returns:
            ``self``.
        """
        self._check_fitted()
        self._check_params()
        settings = self._plan_settings(self.latents_, self.labels_)
        self.synthesizer_ = self.synthesizer_.replace(**settings)
        return self

    def _plan_settings(self, latents: Tensor, labels: Tensor, ranks: Ranks | None = None) -> dict:
        """The neighbour tables and plan options of a Synthesizer, from these arguments
        (the classes' searches split across ``ranks``)."""
        neighbors, n_neighbors = ranked_class_neighbors(
            latents, labels, self.k_neighbors, get_knn(self.knn), ranks
        )
        enemies, n_enemies = None, None
        if self.interpolation == "enemy":
            enemies, n_enemies = class_enemies(latents, labels, self.k_neighbors)
        danger = None
        if self.base_selection == "borderline":
            danger = ranked_in_danger(latents, labels, self.m_neighbors, get_knn(self.knn), ranks)
        lam_range = None if self.lam_range is None else tuple(map(float, self.lam_range))
        return dict(
            neighbors=neighbors,
            n_neighbors=n_neighbors,
            interpolation=self.interpolation,
            lam_range=lam_range or default_lam_range(self.interpolation),
            enemies=enemies,
            n_enemies=n_enemies,
            danger=danger,
        )

    def refit_residuals(self, X: Any = None) -> DeepSMOTE:
        """Make the kept residuals follow ``residual``, without training anything.

        With ``residual=True`` they are computed from the training images ``X`` (the same
        images, in the same order, as given to :meth:`fit`; checked); with
        ``residual=False`` they are dropped.

        Args:
            X: (N, C, H, W) or (N, H, W) training images; needed with ``residual=True``.

        Returns:
            ``self``.

        Raises:
            ValueError: ``X`` missing, or not the images the model was fitted on.
        """
        self._check_fitted()
        if not check_bool("residual", self.residual):
            self.synthesizer_ = self.synthesizer_.replace(residuals=None)
            return self
        if X is None:
            raise ValueError(
                "`X` should be the training images to compute residuals from, but got X=None."
            )
        images = X if isinstance(X, H5Images) else as_images(X, "X")[0]
        self.check_fitted_on(images, self.labels_)
        store = residual_store(images) if isinstance(images, H5Images) else None
        residuals = reconstruction_residuals(
            self.decoder_,
            images,
            self.latents_,
            self.image_format_.to_unit,
            device=self.device_,
            store=store,
        )
        self.synthesizer_ = self.synthesizer_.replace(residuals=residuals)
        return self

    def check_fitted_on(self, images: Tensor, labels: Tensor) -> None:
        """Raise unless ``images`` (N, C, H, W) and ``labels`` (N,) are the training data.

        Raises:
            ValueError: Another shape, length, label or pixel than the data of :meth:`fit`.
        """
        self._check_fitted()
        if tuple(images.shape[1:]) != self.image_shape_ or len(images) != len(self.labels_):
            raise ValueError(
                f"the images should be the {len(self.labels_)} images of shape "
                f"{self.image_shape_} this model was fitted on, but got {len(images)} of shape "
                f"{tuple(images.shape[1:])}."
            )
        if not torch.equal(torch.as_tensor(labels).long(), self.labels_):
            raise ValueError(
                "the labels should be those this model was fitted on (same classes, same "
                "order), but they differ."
            )
        if self.data_fingerprint_ is not None and (
            fingerprint_arrays(labels, images) != self.data_fingerprint_
        ):
            raise ValueError(
                "the images should be those this model was fitted on, but their pixels "
                "differ (another dataset, another order, or another dtype or transform)."
            )

    def _check_fitted(self) -> None:
        if not hasattr(self, "synthesizer_"):
            raise RuntimeError(
                "This DeepSMOTE instance is not fitted yet. Call `fit(X, y)`, `fit_dataset(ds)` "
                "or `DeepSMOTE.load(path)` first."
            )

    def _generator_for(self, random_state: int | None) -> torch.Generator:
        if random_state is None:
            return self._generator
        return make_generator(check_random_state("random_state", random_state))

    # ------------------------------------------------------------------ fitted parts
    @property
    def decoder_(self) -> Decoder:
        self._check_fitted()
        return self.synthesizer_.decoder

    @property
    def latents_(self) -> Tensor:
        self._check_fitted()
        return self.synthesizer_.latents

    @property
    def labels_(self) -> Tensor:
        self._check_fitted()
        return self.synthesizer_.labels

    @property
    def neighbors_(self) -> Tensor:
        self._check_fitted()
        return self.synthesizer_.neighbors

    @property
    def n_neighbors_(self) -> dict:
        self._check_fitted()
        return self.synthesizer_.n_neighbors

    @property
    def residuals_(self) -> Tensor | None:
        self._check_fitted()
        return self.synthesizer_.residuals

    @property
    def image_format_(self) -> ImageFormat:
        self._check_fitted()
        return self.synthesizer_.image_format

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
        images, _ = as_images(X, "X")
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
            device=self.device_,
        )

    def decode(self, codes: Tensor, batch_size: int = 512) -> Any:
        """Images from codes, in the training images' container, dtype, layout and range.

        Args:
            codes: (M, latent_dim) float tensor.
            batch_size: Codes per decoder call.

        Returns:
            (M, C, H, W) or (M, H, W) images, numpy or tensor as in :meth:`fit` (a list of
            PIL images for a model fitted on a dataset of PIL images).
        """
        self._check_fitted()
        codes = torch.as_tensor(codes)
        if codes.ndim != 2 or codes.shape[1] != self.latents_.shape[1]:
            raise ValueError(
                f"`codes` should have shape (M, {self.latents_.shape[1]}), but got "
                f"{tuple(codes.shape)}."
            )
        return self.image_format_.export(self.synthesizer_.decode(codes, batch_size))

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
        return self.synthesizer_.plan(n_new, self._generator_for(random_state))

    def plan_codes(self, plan: SMOTEPlan) -> Tensor:
        """(m, latent_dim) codes of a plan: ``z = z_base + lam * (z_neighbor - z_base)``."""
        self._check_fitted()
        return self.synthesizer_.codes(plan)

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
        return self.image_format_.export(self.synthesizer_.images(plan, batch_size))

    def fit_resample(self, X: Any, y: Any) -> tuple[Any, Any]:
        """Fit, then return the originals followed by the new images (imbalanced-learn's order).

        Args:
            X: (N, C, H, W) or (N, H, W) images, numpy array or tensor.
            y: (N,) labels.

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
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        encoder = state.get("encoder_")
        if encoder is not None and next(encoder.parameters()).device.type != "cpu":
            # A pickled copy (a spawned DataLoader worker) gets a CPU encoder, moved to
            # device_ when it encodes. NOTE: kept on self, so that tensors sent through
            # shared memory outlive the pickling.
            if "_cpu_encoder" not in self.__dict__:
                self._cpu_encoder = _cpu_copy(encoder)
            state["encoder_"] = self._cpu_encoder
        state.pop("_cpu_encoder", None)
        if "_generator" in state:
            # As bytes, not as the tensor get_state() makes: a temporary tensor sent through
            # shared memory would be freed before a spawned worker maps it.
            state["_generator"] = bytes(self._generator.get_state().numpy())
        return state

    def __setstate__(self, state: dict) -> None:
        if isinstance(state.get("_generator"), bytes):
            generator = torch.Generator()
            generator.set_state(torch.frombuffer(bytearray(state["_generator"]), dtype=torch.uint8))
            state["_generator"] = generator
        self.__dict__.update(state)

    def save(self, path: str | os.PathLike) -> None:
        """Save the fitted model (weights, codes, neighbour table, settings) to one file.

        The file is written beside ``path`` first and renamed, so a crash never leaves a
        half-written file under ``path``. A ``knn`` object or a callable
        ``sampling_strategy`` is not saved: ``'auto'`` and the resolved counts stand in.
        """
        from .storage.model_file import model_state

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
        from .storage.model_file import model_from_state

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
        return model_from_state(state, device=device, source=path)


def _penalty_generator(seed: int, ranks: Ranks | None) -> torch.Generator | None:
    """The penalty's class draws: the training generator in one process (``None``), and a
    stream of its own per rank under ``ranks`` (each rank draws its own class)."""
    if ranks is None:
        return None
    seeds = torch.randint(0, 2**62, (ranks.world_size,), generator=make_generator(seed + 1))
    return make_generator(int(seeds[ranks.rank]))


def _cpu_copy(module: torch.nn.Module) -> torch.nn.Module:
    return copy.deepcopy(module).to("cpu")


def _check_lam_range(lam_range: Any) -> None:
    try:
        low, high = (float(v) for v in lam_range)
    except (TypeError, ValueError):
        low = high = float("nan")
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            "`lam_range` should be None or (low, high) with finite low < high, e.g. (0, 1), "
            f"but got lam_range={lam_range!r}."
        )
