"""A fitted DeepSMOTE kept in an HDF5 cache: fingerprinted, checked, loaded or refitted.

The cache holds the model's arrays (codes, labels, neighbours, residuals), its weights as a
``torch.save`` blob and three fingerprints: one of every image and label, one of the
settings that change the weights or codes, one of the settings of the neighbour table. A
file whose data or training fingerprint differs is stale; one that fails its checksums is
damaged. Neither is ever read as good. A changed neighbour setting (``k_neighbors``,
``knn``, ``interpolation``, ``base_selection``, ...) or ``residual`` trains nothing: that
part is rebuilt (``refit_neighbors``,
``refit_residuals``) and the file is written again. It works
on values (``FitRequest`` in,
``FittedDeepSMOTE`` out) and never on an estimator.

One process at a time checks, fits or rewrites a cache: the others wait on a file lock
(``deepsmote.h5.lock``, ``filelock``) and then load what the first one stored. The lock
is an ``flock`` on that file, which the kernel releases when its holder dies, so a lock
file left by a killed run never blocks the next one.

A folder this process cannot write (a read-only mount, a shared cache of another user)
cannot hold a lock file, and needs none to be read: the cache is written atomically, so a
reader sees the whole old file or the whole new one. Its cache is read and verified
without the lock; only when it would have to be fitted or rebuilt does that fail, with a
``PermissionError`` that says so.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock, Timeout
from torch import Tensor
from tqdm.auto import tqdm

from .._format import ImageFormat
from .._validation import writable_folder
from ..distributed import Ranks, agree, broadcast_object, check_same, current_ranks
from ..fitting import FitRequest, FittedDeepSMOTE, align, fit
from ..storage.checkpoint import Checkpoint
from ..storage.fingerprint import fingerprint_arrays
from ..storage.hdf5 import (
    CachedArray,
    CacheError,
    CacheFile,
    StaleCacheError,
    write_cache,
)
from ..storage.image_store import H5Images
from .model_file import ARRAY_KEYS, model_arrays, model_from_state, model_state

__all__ = ["CACHE_NAME", "LOCK_SUFFIX", "cache_lock", "fit_or_load", "locked"]

CACHE_NAME = "deepsmote.h5"
LOCK_SUFFIX = ".lock"


def fit_or_load(
    images: Tensor | H5Images,
    labels: Tensor,
    image_format: ImageFormat,
    request: FitRequest,
    cache_dir: str | os.PathLike,
    on_mismatch: str = "refit",
    lock_timeout: float | None = None,
) -> FittedDeepSMOTE:
    """The model cached in ``cache_dir`` for these images and settings, else a new fit,
    stored there.

    The returned model's synthesizer reads its codes and residuals from the cache file in
    pickled copies (DataLoader workers); with streamed images (an ``H5Images``) this
    process reads them from the file too, so memory does not grow with N.

    Args:
        images: (N, C, H, W) every training image, hashed in full: an edited image must not
            pass for the old one.
        labels: (N,) int64 classes.
        image_format: The form of the images.
        request: The estimator's parameters and fingerprints.
        cache_dir: Folder of the cache file (created when missing). A folder this process
            cannot write is read without the lock, and must hold a valid cache.
        on_mismatch: ``'refit'`` rebuilds a stale or damaged cache with a warning, ``'raise'``
            raises its ``CacheError``.
        lock_timeout: Seconds to wait for another process that holds the cache's lock
            (fitting or rewriting it); ``None`` waits as long as it takes.

    Raises:
        TimeoutError: The lock was not free within ``lock_timeout`` seconds.
        PermissionError: ``cache_dir`` is not writable here and holds no valid cache for
            these images and settings.
    """
    path = str(Path(cache_dir) / CACHE_NAME)
    job = _Job(images, labels, image_format, request, path, on_mismatch)
    ranks = current_ranks(request.params["distributed"])
    read_only = not _can_lock(path + LOCK_SUFFIX)
    if ranks is not None:
        read_only = broadcast_object(read_only)  # rank 0's word: it alone would write
    if read_only:
        fitted = _load_read_only(job, cache_dir, ranks)
    elif ranks is not None:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        fitted = _fit_or_load_ranks(ranks, job, lock_timeout)
    else:
        Path(cache_dir).mkdir(parents=True, exist_ok=True)
        with locked(path + LOCK_SUFFIX, lock_timeout, request.params["progress"]):
            fitted = job.load_valid()
            if fitted is None:
                fitted = job.fit_and_store()
    with CacheFile(path) as cache:
        fitted.synthesizer.use_cache(cache, in_memory=job.in_memory)
    return fitted


class _Job:
    """One lookup: the data, the request, the file and what to do with a bad one."""

    def __init__(
        self,
        images: Any,
        labels: Tensor,
        image_format: ImageFormat,
        request: FitRequest,
        path: str,
        on_mismatch: str,
    ) -> None:
        self.images, self.labels, self.image_format = images, labels, image_format
        self.request, self.path, self.on_mismatch = request, path, on_mismatch
        self.in_memory = not isinstance(images, H5Images)
        self._expected: dict | None = None

    def expected(self, data_fingerprint: str | None = None) -> dict:
        """The fingerprints a cache of these images and settings holds (one pass over the
        images, once; ``data_fingerprint``: one a fit already computed)."""
        if self._expected is None:
            self._expected = {
                "dataset_fingerprint": data_fingerprint
                or fingerprint_arrays(self.labels, self.images),
                "config_fingerprint": self.request.weights_key,
            }
        return self._expected

    def load_valid(self) -> FittedDeepSMOTE | None:
        """The cached model, or ``None`` when there is none or (with a warning) it is stale
        or damaged and ``on_mismatch='refit'``."""
        if not os.path.exists(self.path):
            return None
        try:
            return self.load()
        except CacheError as error:
            if self.on_mismatch == "raise":
                raise
            kind = "stale" if isinstance(error, StaleCacheError) else "damaged"
            warnings.warn(
                f"Rebuilding the {kind} DeepSMOTE cache: {error}", UserWarning, stacklevel=6
            )
        return None

    def fit_and_store(self) -> FittedDeepSMOTE:
        """Fit (on every rank of a group: a collective fit) and write the cache (rank 0)."""
        params = self.request.params
        ranks = current_ranks(params["distributed"])
        # A fit killed before its cache was written resumes from the epoch checkpoint kept in
        # the cache folder (unless the user chose another), which the written cache replaces.
        own_checkpoint = params["checkpoint_dir"] is None
        request = self.request
        if own_checkpoint:
            request = request.with_params(checkpoint_dir=os.path.dirname(self.path))
        fitted = fit(self.images, self.labels, self.image_format, request)
        if ranks is None or ranks.is_main:
            self.store(fitted, self.expected(fitted.data_fingerprint))
            if own_checkpoint:
                Checkpoint(os.path.dirname(self.path), key="").remove()
        return fitted

    def load(self, rewrite: bool = True) -> FittedDeepSMOTE:
        """The cached model, brought in line with this request's neighbour, residual and
        sampling settings (rebuilt without training, and stored again when ``rewrite``)."""
        params = self.request.params
        with CacheFile(self.path) as cache:
            cache.verify()  # before anything else reads the file (see hdf5.py)
            cache.check(self.expected())
            state = torch.load(io.BytesIO(cache.blob("model")), weights_only=True)
            arrays = {key: cache.array(key) for key in ARRAY_KEYS}
            for key in ("enemies", "danger"):
                if cache.has(key):
                    arrays[key] = cache.array(key)
            kept = None
            if cache.has("residuals"):
                kept = (
                    cache.array("residuals")
                    if self.in_memory
                    else CachedArray(self.path, "residuals")
                )
            stored_index = cache.attrs.get("index_fingerprint")
        if kept is not None:
            arrays["residuals"] = kept
        # Load as stored, then bring it in line with this run's serving settings.
        state["params"] = {**state["params"], "residual": kept is not None}
        fitted, _ = model_from_state(state, params["device"], arrays, source=self.path)
        reindex = stored_index != self.request.index_key
        fitted, changed = align(fitted, params, self.images, self.labels, reindex=reindex)
        if changed and rewrite:
            self.store(fitted, self.expected(), kept_residuals=kept)
        return fitted

    def store(self, fitted: FittedDeepSMOTE, attrs: dict, kept_residuals: Any = None) -> None:
        blob = io.BytesIO()
        torch.save(model_state(fitted, self.request.params, arrays=False), blob)
        arrays = model_arrays(fitted)
        if "residuals" not in arrays and kept_residuals is not None:
            arrays["residuals"] = kept_residuals  # residual=False now: keep them for later runs
        attrs = {**attrs, "index_fingerprint": self.request.index_key}
        write_cache(self.path, arrays=arrays, blobs={"model": blob.getvalue()}, attrs=attrs)


def _fit_or_load_ranks(ranks: Ranks, job: _Job, lock_timeout: float | None) -> FittedDeepSMOTE:
    """``fit_or_load`` on every rank of a process group: rank 0 holds the lock and
    decides; when the cache must be (re)built, all ranks fit together and rank 0 writes it;
    the others then load what it wrote."""
    lock_path = job.path + LOCK_SUFFIX
    progress = job.request.params["progress"]
    # On every rank (one pass over its images): a rank with other data would load (or fit)
    # something else than rank 0, so stop them all.
    check_same({"data (images and labels)": job.expected()["dataset_fingerprint"]})
    with contextlib.ExitStack() as held:
        loaded, error = None, None
        if ranks.is_main:
            try:
                held.enter_context(locked(lock_path, lock_timeout, progress))
                loaded = job.load_valid()
            except BaseException as caught:  # a lock timeout, a mismatch with 'raise'
                error = caught
        agree(error)
        if broadcast_object(loaded is None):
            try:
                loaded = job.fit_and_store()
            except BaseException as caught:  # e.g. rank 0 could not write the file
                error = caught
        agree(error)  # the barrier: the others read the file once rank 0 has written it
    if ranks.is_main:
        return loaded
    with locked(lock_path, lock_timeout, progress=False):
        try:
            # Read-only: rank 0 alone writes, and it stored this run's settings.
            return job.load(rewrite=False)
        except (CacheError, FileNotFoundError) as error:
            raise RuntimeError(
                f"Rank {ranks.rank} could not load the DeepSMOTE cache that rank 0 wrote to "
                f"{job.path}: {error} Give all ranks one `cache_dir` on a file system they "
                "share."
            ) from error


def _can_lock(lock_path: str) -> bool:
    """Whether this process can take the lock (create or open its file for writing)."""
    if not writable_folder(os.path.dirname(lock_path)):
        return False
    return not os.path.exists(lock_path) or os.access(lock_path, os.W_OK)


def _load_read_only(job: _Job, cache_dir: Any, ranks: Ranks | None) -> FittedDeepSMOTE:
    """The valid cache of a folder this process cannot write, read without the lock (on
    every rank of a group alike); a ``PermissionError`` when it would have to be written."""
    error = None
    try:
        fitted = _read_only(job, cache_dir)
    except BaseException as caught:
        if ranks is None:
            raise
        error = caught
    if ranks is not None:
        agree(error)  # a rank that failed alone would leave the others waiting
    return fitted


def _read_only(job: _Job, cache_dir: Any) -> FittedDeepSMOTE:
    if not os.path.exists(job.path):
        problem = f"holds no DeepSMOTE cache ({CACHE_NAME})"
    else:
        try:
            # Verified in full before use, and not rewritten: changed neighbour or residual
            # settings are rebuilt in memory only.
            return job.load(rewrite=False)
        except CacheError as error:
            if job.on_mismatch == "raise":
                raise
            kind = "stale" if isinstance(error, StaleCacheError) else "damaged"
            problem = f"holds a {kind} cache that would have to be fitted again ({error})"
    raise PermissionError(
        f"`cache_dir` should be a folder this process can write to when its model must be "
        f"fitted, but cache_dir={os.fspath(cache_dir)!r} is not writable here (its "
        f"permissions, or a read-only file system) and {problem}. Pass a writable "
        "cache_dir, or fit once where the folder is writable: the same data and settings "
        "then load its cache read-only."
    )


def cache_lock(lock_path: str) -> FileLock:
    """The lock of one cache: a single instance per file in a process, so that a holder
    who asks again (a model folder's fit around its cache's) re-enters it instead of
    waiting on itself."""
    return FileLock(lock_path, is_singleton=True)


@contextlib.contextmanager
def locked(
    lock_path: str,
    timeout: float | None,
    progress: bool,
    waiting: str = "another process is fitting this cache",
) -> Iterator[None]:
    """Hold ``cache_lock``, saying ``waiting`` (with ``progress``) when another
    process holds it."""
    lock = cache_lock(lock_path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if progress:
            tqdm.write(f"waiting for {lock_path}: {waiting}")
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
