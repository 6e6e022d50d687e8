"""Fitting DeepSMOTE: images and labels in, a ``FittedDeepSMOTE`` value out.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.

A fit trains the encoder/decoder (``fit_autoencoder``),
encodes every training image, optionally keeps the reconstruction residuals, and builds
each class's neighbour table. Nothing here holds or changes an estimator: the functions
take the estimator's checked parameters (a plain mapping, see ``FitRequest``) and
return values, which ``DeepSMOTE`` keeps and
``torch_deepsmote.persistence.model_file`` writes and reads.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import torch
from torch import Tensor

from ._format import ImageFormat, as_images
from ._seeding import fan_out, make_generator
from ._validation import resolve_device, seed_of
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
from .inputs import Targets, check_image_array, read_rows, read_targets
from .knn import class_enemies, get_knn
from .latents import encode_images, reconstruction_residuals
from .models import Decoder, Encoder, build_autoencoder
from .smote import resolve_sampling_strategy
from .storage.checkpoint import Checkpoint
from .storage.fingerprint import fingerprint_arrays
from .storage.image_store import H5Images, residual_store
from .synthesis import Synthesizer, default_lam_range
from .training import TrainingConfig, fit_autoencoder

__all__ = ["FitRequest", "FittedDeepSMOTE", "fit", "neighbor_tables", "refit_neighbors"]
__all__ += ["align", "refit_residuals", "training_data"]


class FitRequest(NamedTuple):
    """What a fit needs from the estimator, as values.

    Attributes:
        params: Every constructor argument, checked (``DeepSMOTE.get_params(deep=False)``).
        weights_key: Fingerprint of the arguments that change the trained weights and codes.
        index_key: Fingerprint of the arguments that shape the neighbour tables.
        rank_settings: What every rank of a process group must agree on (the data aside).
    """

    params: Mapping[str, Any]
    weights_key: str
    index_key: str
    rank_settings: Mapping[str, Any]

    def with_params(self, **changes: Any) -> FitRequest:
        """A copy whose ``params`` has ``changes`` (the estimator is left alone)."""
        return self._replace(params={**self.params, **changes})


@dataclass
class FittedDeepSMOTE:
    """A fitted model: what ``fit`` returns and what persistence writes.

    Attributes:
        encoder: The trained encoder (eval mode), (B, C, H, W) in [-1, 1] -> (B, D).
        synthesizer: The [`Synthesizer`][torch_deepsmote.synthesis.Synthesizer] that makes every
            synthetic image (decoder, codes, labels, neighbour tables, residuals, format).
        sampling_strategy: ``{class: number of images to add}``.
        history: One dict per training epoch (loss terms and seconds).
        data_fingerprint: sha256 of the training labels and images, or ``None``.
        generator: The SMOTE draws' generator (continued by unseeded draws).
        device: Where the model trained, encodes and decodes.
        class_names: The user's class labels by label when they were strings (numbered in
            sorted order), else ``None``.
    """

    encoder: Encoder
    synthesizer: Synthesizer
    sampling_strategy: dict
    history: list = field(default_factory=list)
    data_fingerprint: str | None = None
    generator: torch.Generator = field(default_factory=torch.Generator)
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    class_names: tuple | None = None

    # What an estimator shows of it (DeepSMOTE.encoder_, ...).
    PARTS = ("encoder", "synthesizer", "sampling_strategy", "history", "data_fingerprint")
    PARTS += ("device", "image_shape", "classes")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.encoder.image_shape)

    @property
    def classes(self) -> Tensor:
        """(n_classes,) int64 sorted class labels."""
        return torch.unique(self.synthesizer.labels)

    def replace(self, **changes: Any) -> FittedDeepSMOTE:
        return replace(self, **changes)

    def check_data(self, images: Any, labels: Any) -> None:
        """Raise unless ``images`` (N, C, H, W) and ``labels`` (N,) are the training data.

        Raises:
            ValueError: Another shape, length, label or pixel than the fitted data's.
        """
        own = self.synthesizer.labels
        if tuple(images.shape[1:]) != self.image_shape or len(images) != len(own):
            raise ValueError(
                f"the images should be the {len(own)} images of shape {self.image_shape} this "
                f"model was fitted on, but got {len(images)} of shape {tuple(images.shape[1:])}."
            )
        if not torch.equal(torch.as_tensor(labels).long(), own):
            raise ValueError(
                "the labels should be those this model was fitted on (same classes, same "
                "order), but they differ."
            )
        if self.data_fingerprint is not None and (
            fingerprint_arrays(labels, images) != self.data_fingerprint
        ):
            raise ValueError(
                "the images should be those this model was fitted on, but their pixels "
                "differ (another dataset, another order, or another dtype or transform)."
            )

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        if next(self.encoder.parameters()).device.type != "cpu":
            # A pickled copy (a spawned DataLoader worker) gets a CPU encoder, moved to
            # `device` when it encodes. NOTE: kept on self, so that tensors sent through
            # shared memory outlive the pickling.
            if "_cpu_encoder" not in self.__dict__:
                self._cpu_encoder = copy.deepcopy(self.encoder).to("cpu")
            state["encoder"] = self._cpu_encoder
        state.pop("_cpu_encoder", None)
        # As bytes, not as the tensor get_state() makes: a temporary tensor sent through
        # shared memory would be freed before a spawned worker maps it.
        state["generator"] = bytes(self.generator.get_state().numpy())
        return state

    def __setstate__(self, state: dict) -> None:
        generator = torch.Generator()
        generator.set_state(torch.frombuffer(bytearray(state["generator"]), dtype=torch.uint8))
        self.__dict__.update({**state, "generator": generator})


# ---------------------------------------------------------------------- fitting
def training_data(
    X: Any,
    y: Any,
    image_format: ImageFormat | None = None,
    image_shape: tuple[int, int, int] | None = None,
    value_range: tuple[float, float] | None = None,
) -> tuple[Tensor | H5Images, Tensor, ImageFormat, Targets]:
    """``(images, labels, image_format, targets)`` of a fit's input, checked (``y`` first:
    its errors do not depend on ``X``).

    Args:
        X: (N, C, H, W) or (N, H, W) images, numpy or tensor; (N, C*H*W) rows with
            ``image_shape``; or an ``H5Images`` (with ``image_format``).
        y: (N,) class labels (integers or strings), an (N, 1) column or one-hot rows.
        image_format: The form new images are given back in; ``None``: ``X``'s own.
        image_shape: (C, H, W) of the images when ``X`` holds them as rows.
        value_range: The declared ``(low, high)`` of ``X``'s pixels, or ``None``
            (``torch_deepsmote._format.as_images``).

    Returns:
        (N, C, H, W) images, (N,) int64 labels, their format and ``y``'s
        ``torch_deepsmote.inputs.Targets``.

    Raises:
        ValueError: An ``H5Images`` without ``image_format``, an ``image_format`` of
            another dtype or value range than ``X``, an image outside the declared range
            or far outside the others', rows of another length than ``image_shape``,
            another number of labels than images, or a ``y`` that holds no classes
            (continuous, multilabel).
    """
    labels, targets = read_targets(y, "y")
    if isinstance(X, H5Images):  # read from disk batch by batch; its form is given
        if image_format is None:
            raise ValueError(
                "`image_format` should describe the stored images when X is an "
                "H5Images, but got image_format=None."
            )
        images, found = X, image_format
    elif image_shape is not None:
        images, found = read_rows(X, image_shape, "X", value_range, judge_range=True)
    else:
        check_image_array(X, "X")
        images, found = as_images(X, "X", value_range, judge_range=True)
    if len(labels) != len(images):
        raise ValueError(
            f"`y` should have one label per image, but got {len(labels)} labels for "
            f"{len(images)} images."
        )
    classes = torch.unique(labels)
    if len(classes) == 1:
        one = targets.classes[0] if targets.classes else int(classes[0])
        raise ValueError(
            f"`y` should hold at least two classes to over-sample, but got one class, {one!r}."
        )
    if image_format is not None and not image_format.same_values(found):
        raise ValueError(
            f"`image_format` should describe X's dtype and value range, but got "
            f"{image_format} for X of {found}."
        )
    return images, labels, image_format or found, targets


def fit(
    images: Tensor | H5Images, labels: Tensor, image_format: ImageFormat, request: FitRequest
) -> FittedDeepSMOTE:
    """Train, encode, keep the residuals (``residual=True``) and index every class.

    Under an initialised process group (``distributed``), every rank calls this with the
    same data and settings; each trains on its share, encodes its block of rows and
    searches its share of the classes (``torch_deepsmote.distributed``).

    Args:
        images: (N, C, H, W) training images in ``image_format``, or an ``H5Images``.
        labels: (N,) int64 classes.
        image_format: The images' dtype and value range (their map to [-1, 1]).
        request: The estimator's parameters and fingerprints.

    Returns:
        The ``FittedDeepSMOTE``.
    """
    params = request.params
    device = resolve_device(params["device"])
    ranks = current_ranks(params["distributed"])
    # One seed fans out into independent streams: weights, training draws, SMOTE draws.
    seed = seed_of("random_state", params["random_state"])
    seeds = fan_out(seed, 3)
    data_fingerprint = fingerprint_arrays(labels, images)  # a pass over every image: once
    if ranks is not None:
        check_same({"data (images and labels)": data_fingerprint, **request.rank_settings})
        # random_state=None draws fresh entropy in every process: take rank 0's draw.
        seeds = broadcast_object(seeds)
    # Resolve the strategy before training so that a bad one fails in a second, not an hour.
    strategy = resolve_sampling_strategy(params["sampling_strategy"], labels)
    encoder, decoder, history = _train(
        images, labels, image_format, request, seeds, device, ranks, data_fingerprint
    )
    to_unit = image_format.to_unit
    latents = map_row_blocks(
        lambda rows: encode_images(encoder, rows_of(images, rows), to_unit, device=device),
        len(images),
        ranks,
    )
    residuals = None
    if params["residual"]:
        residuals = _residuals(decoder, images, latents, to_unit, device, ranks)
    synthesizer = Synthesizer(
        decoder,
        image_format,
        latents,
        labels,
        residuals=residuals,
        **neighbor_tables(latents, labels, params, ranks),
    )
    return FittedDeepSMOTE(
        encoder.eval(),
        synthesizer,
        strategy,
        history,
        data_fingerprint,
        make_generator(seeds[2]),
        device,
    )


def _train(
    images: Any,
    labels: Tensor,
    image_format: ImageFormat,
    request: FitRequest,
    seeds: list[int],
    device: torch.device,
    ranks: Ranks | None,
    data_fingerprint: str,
) -> tuple[Encoder, Decoder, list]:
    """A new encoder and decoder, trained (with TensorBoard logging and a checkpoint when
    the parameters ask for them)."""
    params = request.params
    shape = tuple(images.shape[1:])
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seeds[0])
        encoder, decoder = build_autoencoder(shape, params["latent_dim"], params["hidden_channels"])
    logger = None
    if params["log_dir"] is not None and (ranks is None or ranks.is_main):
        from ._tensorboard import EpochLogger  # imports tensorboard: only when asked for

        logger = EpochLogger(params["log_dir"], encoder, decoder, images, labels, image_format)
    config = TrainingConfig(**{name: params[name] for name in TrainingConfig.__dataclass_fields__})
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
            progress=params["progress"],
            callback=logger,
            checkpoint=_checkpoint(request, data_fingerprint, device, ranks),
            ranks=ranks,
            penalty_generator=_penalty_generator(seeds[1], ranks),
        )
    finally:
        if logger is not None:
            logger.close()
    return encoder, decoder, history


def _checkpoint(
    request: FitRequest, data_fingerprint: str, device: torch.device, ranks: Ranks | None
) -> Checkpoint | None:
    folder = request.params["checkpoint_dir"]
    if folder is None:
        return None
    # Everything that changes the weights: the data, the settings, the device (its type
    # under ranks, which each use their own cuda:<local_rank>) and the number of ranks
    # (another split of the epochs).
    where = device if ranks is None else device.type
    key = f"{request.weights_key}:{where}:{data_fingerprint}"
    if ranks is not None:
        key += f":world_size={ranks.world_size}"
    progress = request.params["progress"] and (ranks is None or ranks.is_main)
    return Checkpoint(folder, key, progress=progress)


def _penalty_generator(seed: int, ranks: Ranks | None) -> torch.Generator | None:
    """The penalty's class draws: the training generator in one process (``None``), and a
    stream of its own per rank under ``ranks`` (each rank draws its own class)."""
    if ranks is None:
        return None
    return make_generator(fan_out(seed + 1, ranks.world_size)[ranks.rank])


def _residuals(
    decoder: Decoder,
    images: Any,
    latents: Tensor,
    to_unit: Any,
    device: torch.device,
    ranks: Ranks | None,
) -> Any:
    """(N, C, H, W) float16 ``x - decode(encode(x))``, in memory or beside streamed images."""
    if isinstance(images, H5Images) and ranks is None:
        # Streaming: the residuals, as large as the images, go to a file beside them.
        store = residual_store(images)
        return reconstruction_residuals(
            decoder, images, latents, to_unit, device=device, store=store
        )
    return map_row_blocks(
        lambda rows: reconstruction_residuals(
            decoder, rows_of(images, rows), latents[rows], to_unit, device=device
        ),
        len(images),
        ranks,
    )


# ---------------------------------------------------------------------- refitting parts
def neighbor_tables(
    latents: Tensor, labels: Tensor, params: Mapping[str, Any], ranks: Ranks | None = None
) -> dict:
    """The neighbour tables and plan options of a Synthesizer (the classes' searches split
    across ``ranks``), from ``k_neighbors``, ``knn``, ``interpolation``, ``lam_range``,
    ``base_selection`` and ``m_neighbors``."""
    knn = get_knn(params["knn"])
    neighbors, n_neighbors = ranked_class_neighbors(
        latents, labels, params["k_neighbors"], knn, ranks
    )
    enemies, n_enemies = None, None
    if params["interpolation"] == "enemy":
        enemies, n_enemies = class_enemies(latents, labels, params["k_neighbors"])
    danger = None
    if params["base_selection"] == "borderline":
        danger = ranked_in_danger(latents, labels, params["m_neighbors"], knn, ranks)
    return dict(
        neighbors=neighbors,
        n_neighbors=n_neighbors,
        interpolation=params["interpolation"],
        lam_range=params["lam_range"] or default_lam_range(params["interpolation"]),
        enemies=enemies,
        n_enemies=n_enemies,
        danger=danger,
    )


def refit_neighbors(fitted: FittedDeepSMOTE, params: Mapping[str, Any]) -> FittedDeepSMOTE:
    """``fitted`` with neighbour tables built anew for ``params`` (nothing is trained)."""
    synthesizer = fitted.synthesizer
    tables = neighbor_tables(synthesizer.latents, synthesizer.labels, params)
    return fitted.replace(synthesizer=synthesizer.replace(**tables))


def refit_residuals(
    fitted: FittedDeepSMOTE, images: Tensor | H5Images | None, residual: bool
) -> FittedDeepSMOTE:
    """``fitted`` with residuals computed from its training ``images`` (checked), or
    dropped when ``residual`` is False (nothing is trained)."""
    synthesizer = fitted.synthesizer
    if not residual:
        return fitted.replace(synthesizer=synthesizer.replace(residuals=None))
    if images is None:
        raise ValueError(
            "`X` should be the training images to compute residuals from, but got X=None."
        )
    fitted.check_data(images, synthesizer.labels)
    store = residual_store(images) if isinstance(images, H5Images) else None
    residuals = reconstruction_residuals(
        synthesizer.decoder,
        images,
        synthesizer.latents,
        synthesizer.image_format.to_unit,
        device=fitted.device,
        store=store,
    )
    return fitted.replace(synthesizer=synthesizer.replace(residuals=residuals))


def align(
    fitted: FittedDeepSMOTE,
    params: Mapping[str, Any],
    images: Tensor | H5Images,
    labels: Tensor,
    *,
    reindex: bool,
) -> tuple[FittedDeepSMOTE, bool]:
    """A loaded model brought in line with ``params`` without training: its neighbour
    tables built anew (``reindex``), its residuals computed or dropped to follow
    ``residual``, its sampling strategy resolved anew.

    Returns:
        ``(fitted, changed)``: ``changed`` when what a cache stores differs now (new tables
        or new residuals; dropped residuals stay stored for a later run).
    """
    changed = reindex
    if reindex:
        fitted = refit_neighbors(fitted, params)
    has_residuals = fitted.synthesizer.residuals is not None
    if params["residual"] != has_residuals:
        fitted = refit_residuals(fitted, images, params["residual"])
        changed = changed or params["residual"]
    strategy = resolve_sampling_strategy(params["sampling_strategy"], labels)
    return fitted.replace(sampling_strategy=strategy), changed
