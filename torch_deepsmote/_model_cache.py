"""A fitted DeepSMOTE kept in an HDF5 cache: fingerprinted, checked, loaded or refitted.

The cache holds the model's arrays (codes, labels, neighbours, residuals), its weights as a
``torch.save`` blob and two fingerprints: one of every image and label, one of the settings
that change the weights or codes. A file whose fingerprints differ is stale; one that fails
its checksums is damaged. Neither is ever read as good.
"""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path

import torch
from torch import Tensor

from ._images import ImageFormat
from ._persistence import (
    ARRAY_KEYS,
    OPTIONAL_ARRAY_KEYS,
    model_arrays,
    model_from_state,
    model_state,
)
from .cache import (
    CacheError,
    CacheFile,
    StaleCacheError,
    fingerprint_arrays,
    fingerprint_config,
    write_cache,
)
from .deepsmote import DeepSMOTE

__all__ = ["CACHE_NAME", "fit_or_load", "read_state"]

CACHE_NAME = "deepsmote.h5"
# Settings that change neither the trained weights nor the codes: not in the fingerprint.
# ``residual`` and ``k_neighbors`` only add or rebuild arrays, from the cached model.
_NOT_FINGERPRINTED = ("progress", "device", "knn", "sampling_strategy", "residual", "k_neighbors")


def fit_or_load(
    model: DeepSMOTE,
    images: Tensor,
    labels: Tensor,
    image_format: ImageFormat,
    cache_dir: str | os.PathLike,
    on_mismatch: str,
) -> tuple[DeepSMOTE, str]:
    """The model cached in ``cache_dir`` for these images and settings, else ``model`` fitted.

    Args:
        model: An unfitted DeepSMOTE with the wanted settings.
        images: (N, C, H, W) every training image, hashed in full: an edited image must not
            pass for the old one.
        labels: (N,) int64 classes.
        image_format: How ``images`` map to [0, 1].
        cache_dir: Folder of the cache file (created when missing).
        on_mismatch: ``'refit'`` rebuilds a stale or damaged cache with a warning, ``'raise'``
            raises its :class:`CacheError`.

    Returns:
        The fitted model and the cache file's path.
    """
    path = str(Path(cache_dir) / CACHE_NAME)
    config = {k: v for k, v in model.get_params().items() if k not in _NOT_FINGERPRINTED}
    expected = {
        "dataset_fingerprint": fingerprint_arrays(labels, images),
        "config_fingerprint": fingerprint_config(config),
    }
    if os.path.exists(path):
        try:
            return _load(path, expected, model, images), path
        except CacheError as error:
            if on_mismatch == "raise":
                raise
            kind = "stale" if isinstance(error, StaleCacheError) else "damaged"
            warnings.warn(
                f"Rebuilding the {kind} DeepSMOTE cache: {error}", UserWarning, stacklevel=4
            )
    model._fit(images, labels, image_format)
    _store(path, model, expected)
    return model, path


def read_state(cache: CacheFile) -> dict:
    """The model's settings and weights (no arrays) from an open cache."""
    return torch.load(io.BytesIO(cache.blob("model")), weights_only=True)


def _load(path: str, expected: dict, model: DeepSMOTE, images: Tensor) -> DeepSMOTE:
    with CacheFile(path) as cache:
        cache.open()
        cache.check(expected)
        cache.verify()
        state = read_state(cache)
        wanted = OPTIONAL_ARRAY_KEYS if model.residual else ()
        keys = ARRAY_KEYS + tuple(k for k in wanted if cache.has(k))
        arrays = {key: cache.array(key) for key in keys}
    state["params"] = {**state["params"], "residual": False}
    loaded = model_from_state(DeepSMOTE, state, model.device, arrays, source=path)
    loaded.residual, loaded.knn = model.residual, model.knn
    changed = False
    if loaded.k_neighbors != model.k_neighbors:
        # k only shapes the neighbour table: rebuilt from the cached codes, nothing trained.
        loaded.k_neighbors = model.k_neighbors
        loaded._index()
        changed = True
    if model.residual and loaded.residuals_ is None:
        # Switching residuals on trains nothing either: they come from the cached model.
        loaded._keep_residuals(images)
        changed = True
    if changed:
        _store(path, loaded, expected)
    return loaded


def _store(path: str, model: DeepSMOTE, attrs: dict) -> None:
    blob = io.BytesIO()
    torch.save(model_state(model, arrays=False), blob)
    write_cache(path, arrays=model_arrays(model), blobs={"model": blob.getvalue()}, attrs=attrs)
