"""A fitted DeepSMOTE kept in an HDF5 cache: fingerprinted, checked, loaded or refitted.

The cache holds the model's arrays (codes, labels, neighbours, residuals), its weights as a
``torch.save`` blob and three fingerprints: one of every image and label, one of the
settings that change the weights or codes, one of the settings of the neighbour table. A
file whose data or training fingerprint differs is stale; one that fails its checksums is
damaged. Neither is ever read as good. A changed neighbour setting (``k_neighbors``,
``knn``, ``interpolation``, ``base_selection``, ...) or ``residual`` trains nothing: the
estimator rebuilds that part (:meth:`DeepSMOTE.refit_neighbors`,
:meth:`DeepSMOTE.refit_residuals`) and the file is written again.

One process at a time checks, fits or rewrites a cache: the others wait on a file lock
(``deepsmote.h5.lock``, :mod:`filelock`) and then load what the first one stored. The lock
is an ``flock`` on that file, which the kernel releases when its holder dies, so a lock
file left by a killed run never blocks the next one.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from filelock import FileLock, Timeout
from torch import Tensor
from tqdm.auto import tqdm

from .._format import ImageFormat
from ..deepsmote import SERVING_PARAMS, DeepSMOTE
from ..distributed import Ranks, agree, broadcast_object, check_same, current_ranks
from ..knn import get_knn
from .checkpoint import Checkpoint
from .hdf5 import (
    CachedArray,
    CacheError,
    CacheFile,
    StaleCacheError,
    fingerprint_arrays,
    fingerprint_config,
    write_cache,
)
from .model_file import ARRAY_KEYS, model_arrays, model_from_state, model_state

__all__ = ["CACHE_NAME", "fit_or_load"]

CACHE_NAME = "deepsmote.h5"
LOCK_SUFFIX = ".lock"
_INDEX_PARAMS = ("k_neighbors", "interpolation", "lam_range", "base_selection", "m_neighbors")


def index_fingerprint(model: DeepSMOTE) -> str:
    """Fingerprint of the settings that shape the neighbour table.

    NOTE: ``knn`` enters as the repr of its backend; a user's object whose repr holds a
    memory address rebuilds the table in every run (cheap next to training).
    """
    config = {name: getattr(model, name) for name in _INDEX_PARAMS}
    config["lam_range"] = None if model.lam_range is None else [float(v) for v in model.lam_range]
    if model.base_selection == "all":  # m_neighbors unused; the fingerprint of earlier caches
        del config["base_selection"], config["m_neighbors"]
    return fingerprint_config({**config, "knn": repr(get_knn(model.knn))})


def fit_or_load(
    model: DeepSMOTE,
    images: Tensor,
    labels: Tensor,
    image_format: ImageFormat,
    cache_dir: str | os.PathLike,
    on_mismatch: str,
    lock_timeout: float | None = None,
    in_memory: bool = True,
) -> tuple[DeepSMOTE, CacheFile]:
    """The model cached in ``cache_dir`` for these images and settings, else ``model`` fitted.

    Args:
        model: An unfitted DeepSMOTE with the wanted settings.
        images: (N, C, H, W) every training image, hashed in full: an edited image must not
            pass for the old one.
        labels: (N,) int64 classes.
        image_format: The form of the images (see :meth:`DeepSMOTE.fit`).
        cache_dir: Folder of the cache file (created when missing).
        on_mismatch: ``'refit'`` rebuilds a stale or damaged cache with a warning, ``'raise'``
            raises its :class:`CacheError`.
        lock_timeout: Seconds to wait for another process that holds the cache's lock
            (fitting or rewriting it); ``None`` waits as long as it takes.
        in_memory: Read the cached residuals into memory; ``False`` leaves them in the
            file, read by rows where used (:class:`~torch_deepsmote.storage.hdf5.CachedArray`).

    Returns:
        The fitted model and the cache file it is stored in.

    Raises:
        TimeoutError: The lock was not free within ``lock_timeout`` seconds.
    """
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    path = str(Path(cache_dir) / CACHE_NAME)
    ranks = current_ranks(model.distributed)
    if ranks is not None:
        return _fit_or_load_ranks(
            ranks, model, images, labels, image_format, path, on_mismatch, lock_timeout, in_memory
        )
    with _locked(path + LOCK_SUFFIX, lock_timeout, model.progress):
        loaded = _load_valid(model, images, labels, path, on_mismatch, in_memory)
        if loaded is None:
            loaded = _fit_and_store(model, images, labels, image_format, path)
        return loaded, CacheFile(path)


def _fit_or_load_ranks(
    ranks: Ranks,
    model: DeepSMOTE,
    images: Tensor,
    labels: Tensor,
    image_format: ImageFormat,
    path: str,
    on_mismatch: str,
    lock_timeout: float | None,
    in_memory: bool,
) -> tuple[DeepSMOTE, CacheFile]:
    """:func:`fit_or_load` on every rank of a process group: rank 0 holds the lock and
    decides; when the cache must be (re)built, all ranks fit together and rank 0 writes it;
    the others then load what it wrote."""
    lock_path = path + LOCK_SUFFIX
    expected = _expected(model, images, labels)  # on every rank: one pass over its images
    # A rank with other data would load (or fit) something else than rank 0: stop them all.
    check_same({"data (images and labels)": expected["dataset_fingerprint"]})
    with contextlib.ExitStack() as held:
        loaded, error = None, None
        if ranks.is_main:
            try:
                held.enter_context(_locked(lock_path, lock_timeout, model.progress))
                loaded = _load_valid(model, images, labels, path, on_mismatch, in_memory, expected)
            except BaseException as caught:  # a lock timeout, a mismatch with 'raise'
                error = caught
        agree(error)
        if broadcast_object(loaded is None):
            try:
                loaded = _fit_and_store(model, images, labels, image_format, path)
            except BaseException as caught:  # e.g. rank 0 could not write the file
                error = caught
        agree(error)  # the barrier: the others read the file once rank 0 has written it
    if ranks.is_main:
        return loaded, CacheFile(path)
    with _locked(lock_path, lock_timeout, progress=False):
        try:
            # Read-only: rank 0 alone writes, and it stored this run's settings.
            loaded = _load(path, expected, model, images, in_memory, rewrite=False)
        except (CacheError, FileNotFoundError) as error:
            raise RuntimeError(
                f"Rank {ranks.rank} could not load the DeepSMOTE cache that rank 0 wrote to "
                f"{path}: {error} Give all ranks one `cache_dir` on a file system they share."
            ) from error
    return loaded, CacheFile(path)


@contextlib.contextmanager
def _locked(lock_path: str, timeout: float | None, progress: bool) -> Iterator[None]:
    lock = FileLock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            tqdm.write(f"waiting for {lock_path}: another process is fitting this cache")
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise TimeoutError(
                f"Waited lock_timeout={timeout} s for the cache lock {lock_path}, held by "
                "another process that is fitting or rewriting this cache. Wait for it to "
                "finish, pass a larger `lock_timeout` (None waits as long as it takes), or "
                "use another `cache_dir`."
            ) from None
    try:
        yield
    finally:
        lock.release()


def _expected(model: DeepSMOTE, images: Tensor, labels: Tensor, data_fingerprint=None) -> dict:
    """The fingerprints a cache of these images and settings holds (``data_fingerprint``:
    one already computed over ``labels`` and ``images``, e.g. by the fit)."""
    return {
        "dataset_fingerprint": data_fingerprint or fingerprint_arrays(labels, images),
        "config_fingerprint": model.training_fingerprint(),
    }


def _load_valid(
    model: DeepSMOTE,
    images: Tensor,
    labels: Tensor,
    path: str,
    on_mismatch: str,
    in_memory: bool = True,
    expected: dict | None = None,
) -> DeepSMOTE | None:
    """The cached model, or ``None`` when there is none or (with a warning) it is stale
    or damaged and ``on_mismatch='refit'``."""
    if not os.path.exists(path):
        return None
    try:
        expected = expected or _expected(model, images, labels)
        return _load(path, expected, model, images, in_memory)
    except CacheError as error:
        if on_mismatch == "raise":
            raise
        kind = "stale" if isinstance(error, StaleCacheError) else "damaged"
        warnings.warn(f"Rebuilding the {kind} DeepSMOTE cache: {error}", UserWarning, stacklevel=6)
    return None


def _fit_and_store(
    model: DeepSMOTE, images: Tensor, labels: Tensor, image_format: ImageFormat, path: str
) -> DeepSMOTE:
    """Fit ``model`` (on every rank of a group: a collective fit) and write the cache (on
    rank 0)."""
    ranks = current_ranks(model.distributed)
    # A fit killed before its cache was written resumes from the epoch checkpoint kept in
    # the cache folder (unless the user chose another), which the written cache replaces.
    own_checkpoint = model.checkpoint_dir is None
    if own_checkpoint:
        model.set_params(checkpoint_dir=os.path.dirname(path))
    model.fit(images, labels, image_format=image_format)
    if own_checkpoint:
        model.set_params(checkpoint_dir=None)
    if ranks is None or ranks.is_main:
        _store(path, model, _expected(model, images, labels, model.data_fingerprint_))
        if own_checkpoint:
            Checkpoint(os.path.dirname(path), key="").remove()
    return model


def _load(
    path: str,
    expected: dict,
    model: DeepSMOTE,
    images: Tensor,
    in_memory: bool = True,
    rewrite: bool = True,
) -> DeepSMOTE:
    with CacheFile(path) as cache:
        cache.verify()  # before anything else reads the file (see cache.py)
        cache.check(expected)
        state = torch.load(io.BytesIO(cache.blob("model")), weights_only=True)
        arrays = {key: cache.array(key) for key in ARRAY_KEYS}
        for key in ("enemies", "danger"):
            if cache.has(key):
                arrays[key] = cache.array(key)
        kept = None
        if cache.has("residuals"):
            kept = cache.array("residuals") if in_memory else CachedArray(path, "residuals")
        stored_index = cache.attrs.get("index_fingerprint")
    if model.residual and kept is not None:
        arrays["residuals"] = kept
    # Load as stored, then take this run's serving settings and rebuild what they change.
    state["params"] = {**state["params"], "residual": "residuals" in arrays}
    loaded = model_from_state(state, model.device, arrays, source=path)
    loaded.set_params(**{name: getattr(model, name) for name in SERVING_PARAMS})
    changed = False
    if stored_index != index_fingerprint(loaded):
        loaded.refit_neighbors()
        changed = True
    if loaded.residual != (loaded.residuals_ is not None):
        loaded.refit_residuals(images)
        changed = loaded.residual  # dropping them leaves the file as it is
    if changed and rewrite:
        _store(path, loaded, expected, kept_residuals=kept)
    return loaded


def _store(path: str, model: DeepSMOTE, attrs: dict, kept_residuals: Tensor | None = None) -> None:
    blob = io.BytesIO()
    torch.save(model_state(model, arrays=False), blob)
    arrays = model_arrays(model)
    if "residuals" not in arrays and kept_residuals is not None:
        arrays["residuals"] = kept_residuals  # residual=False now: keep them for later runs
    attrs = {**attrs, "index_fingerprint": index_fingerprint(model)}
    write_cache(path, arrays=arrays, blobs={"model": blob.getvalue()}, attrs=attrs)
