"""Exact k-nearest-neighbour search in latent space, behind one small interface.

A backend is any object with ``kneighbors(x, k) -> LongTensor (n, k)`` that returns, for
every row of ``x``, the indices of its ``k`` nearest *other* rows (squared L2), nearest
first. Two backends ship here: ``TorchKNN`` (pure torch, any device, chunked) and
``FaissKNN`` (``faiss.IndexFlatL2``, optional dependency; opt-in approximate search
with ``nlist`` for classes of hundreds of thousands of codes). ``get_knn`` turns the
user's ``knn`` argument (a name or an object, as imbalanced-learn's ``k_neighbors``) into a
backend, and ``class_neighbors`` builds the per-class neighbour table that SMOTE draws
from.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from ._labels import as_labels
from ._validation import check_bool, check_positive_int

__all__ = [
    "KNNBackend",
    "TorchKNN",
    "FaissKNN",
    "SklearnKNN",
    "get_knn",
    "class_neighbors",
    "class_enemies",
    "check_neighbor_table",
]

_KNN_NAMES = ("auto", "faiss", "torch")

# NOTE: FAISS's GPU flat search supports at most this many neighbours; beyond it we search
# on the CPU rather than fail (SMOTE uses k=5, so this only guards odd configurations).
_FAISS_GPU_MAX_K = 2048
# FAISS's own lower bound on training points per k-means cell (it warns below it).
_FAISS_MIN_PER_CELL = 39
_FAISS_TRAIN_PER_CELL = 64


@runtime_checkable
class KNNBackend(Protocol):
    """What ``class_neighbors`` needs from a neighbour-search backend."""

    def kneighbors(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Indices (n, k) int64 of each row's ``k`` nearest other rows, nearest first."""
        ...


def _check_points(x: Any, k: Any) -> tuple[torch.Tensor, int]:
    """Validate ``x`` (n, d) and ``k`` (1 <= k <= n - 1) for a ``kneighbors`` call."""
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(np.asarray(x))
    if x.ndim != 2:
        raise ValueError(
            f"`x` should be a 2-D tensor of shape (n, d), but got x with shape {tuple(x.shape)}."
        )
    if x.dtype == torch.bool or x.is_complex():
        raise TypeError(f"`x` should hold real numbers, but got x with dtype {x.dtype}.")
    k = check_positive_int("k", k)
    n = x.shape[0]
    if k > n - 1:
        raise ValueError(
            f"`k` should be at most n - 1 = {n - 1} (a row is never its own neighbour), "
            f"but got k={k}."
        )
    x = x.detach()
    if not torch.is_floating_point(x):
        x = x.float()
    if not bool(torch.isfinite(x).all()):
        # NaN distances would sort unpredictably; a diverged encoder is the usual cause.
        raise ValueError("`x` should contain only finite values, but got x with NaN or inf.")
    return x, k


def _drop_self(indices: np.ndarray | torch.Tensor, k: int) -> torch.Tensor:
    """Turn a (n, k + 1) search result that may contain the query itself into (n, k).

    Removes the query's own index from its row where present, otherwise the last column:
    with exact duplicates, a search may rank other copies ahead of the query itself.
    """
    indices = torch.as_tensor(indices, dtype=torch.long)
    n = indices.shape[0]
    rows = torch.arange(n, device=indices.device)
    is_self = indices == rows[:, None]
    drop = torch.where(
        is_self.any(dim=1),
        is_self.int().argmax(dim=1),
        torch.full((n,), k, device=indices.device, dtype=torch.long),
    )
    keep = torch.ones_like(indices, dtype=torch.bool)
    keep[rows, drop] = False
    return indices[keep].reshape(n, k)


class TorchKNN:
    """Exact k-NN in pure torch, on whatever device the points live.

    Squared distances are ``||a||^2 - 2 a.b + ||b||^2`` for a chunk of query rows against all
    rows, so memory is O(chunk_size * n). Exact up to floating-point rounding.

    Args:
        chunk_size: Query rows per chunk.

    Examples:
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
        >>> TorchKNN().kneighbors(x, k=2)
        tensor([[1, 2],
                [0, 2],
                [1, 0],
                [2, 1]])
    """

    def __init__(self, chunk_size: int = 2048) -> None:
        self.chunk_size = check_positive_int("chunk_size", chunk_size)

    def __repr__(self) -> str:
        return f"TorchKNN(chunk_size={self.chunk_size})"

    @torch.no_grad()
    def kneighbors(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Find each row's ``k`` nearest other rows.

        Args:
            x: Points, shape (n, d), any real dtype (half precision is computed in float32).
            k: Neighbours per row, ``1 <= k <= n - 1``.

        Returns:
            LongTensor (n, k) on ``x``'s device: indices into ``x``, nearest first, never
            the row itself (other exact copies of it may appear).

        Raises:
            ValueError: ``x`` is not 2-D or not finite, or ``k`` is out of range.
            TypeError: ``k`` is not an integer.
        """
        x, k = _check_points(x, k)
        if x.dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        n = x.shape[0]
        squared_norms = (x * x).sum(dim=1)
        out = torch.empty((n, k), dtype=torch.long, device=x.device)
        for start in range(0, n, self.chunk_size):
            stop = min(start + self.chunk_size, n)
            query = x[start:stop]
            # ||b||^2 - 2 a.b in one fused call, then + ||a||^2 in place: one (chunk, n) buffer.
            distances = torch.addmm(squared_norms[None, :], query, x.T, alpha=-2.0)
            distances += squared_norms[start:stop, None]
            # Mask the query itself only (not its duplicates), so copies stay neighbours.
            local = torch.arange(stop - start, device=x.device)
            distances[local, local + start] = float("inf")
            out[start:stop] = torch.topk(distances, k, dim=1, largest=False, sorted=True).indices
        return out


def _fill_missing(found: np.ndarray, points: np.ndarray, k: int, faiss: Any) -> np.ndarray:
    """Redo, exactly, the rows of an approximate search that came back short (-1 entries)."""
    short = np.flatnonzero((found < 0).any(axis=1))
    exact = faiss.IndexFlatL2(points.shape[1])
    exact.add(points)
    found = found.copy()
    found[short] = exact.search(points[short], k)[1]
    return found


def _search_by_cell(index: Any, points: np.ndarray, k: int) -> np.ndarray:
    """Add ``points`` to a trained, empty CPU ``IndexIVFFlat`` and search them all.

    The same cells are probed and the same candidates ranked as by ``index.search``, but
    through FAISS's ``big_batch_search`` where the installed FAISS has it (1.7.4 and
    later): for each cell, all the queries that probe it are compared with its codes in
    one matrix product.
    """
    try:
        from faiss.contrib.big_batch_search import big_batch_search
        from faiss.contrib.ivf_tools import add_preassigned
    except ImportError:
        index.add(points)
        return index.search(points, k)[1]
    # NOTE: FAISS's own IVF search scans each query's cells one code at a time: about
    # 4 GFLOP/s on 2 cores for 200,000 codes of size 600. With every code a query, one
    # matrix product per cell ran at about 30 GFLOP/s, 8-9x faster for the same result.
    # The cells of each point are found once, for both the add and the search.
    _, cells = index.quantizer.search(points, min(index.nprobe, index.nlist))
    add_preassigned(index, points, np.ascontiguousarray(cells[:, 0]))
    with contextlib.redirect_stdout(io.StringIO()):  # it prints progress for every cell
        _, found = big_batch_search(index, points, k, q_assign=cells)
    return found


def _import_faiss() -> Any:
    try:
        import faiss
    except ImportError as error:
        raise ImportError(
            "The FAISS k-NN backend needs the `faiss` package: "
            'pip install "torch-deepsmote[cpu]" (or "torch-deepsmote[gpu]" for faiss-gpu), '
            'or pass knn="torch" for the pure-torch backend.'
        ) from error
    return faiss


class FaissKNN:
    """k-NN with FAISS: exact (``faiss.IndexFlatL2``) by default, on GPU when it can be.

    Args:
        use_gpu: ``None`` searches on a FAISS GPU index when FAISS reports a GPU and ``x``
            is on CUDA, else on the CPU; ``True`` always uses a GPU index; ``False`` never.
        nlist: ``None`` (default) for exact search. An integer opts in to *approximate*
            search with an inverted-file index (``faiss.IndexIVFFlat``) of ``nlist`` k-means
            cells, for classes of at least ``39 * nlist`` codes (smaller ones stay exact):
            each code is compared only with the codes of its ``nprobe`` nearest cells, so
            the cost falls from ``n**2 * d`` to about ``n**2 * d * nprobe / nlist`` plus
            the k-means training and ``n * nlist * d`` to place the codes in cells. A
            neighbour may be missed. Around ``sqrt(nprobe * n)`` cells balances placing
            against comparing: for one class of 200,000 codes of size 600 on 2 CPU cores,
            ``nlist=1024, nprobe=8`` took 22 s at recall@5 0.999 (exact: about 415 s);
            measure the recall on your codes (``benchmarks/bench_speed.py`` shows how).
        nprobe: Cells searched per code with ``nlist`` (at most ``nlist`` are used). More
            cells, better recall, slower.

    Raises:
        ImportError: ``faiss`` is not installed (names the install command).
        TypeError: ``use_gpu`` is not None or a bool, or ``nlist`` / ``nprobe`` not integers.
        ValueError: ``nlist`` or ``nprobe`` is not positive.

    Examples:
        >>> x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
        >>> FaissKNN().kneighbors(x, k=2)  # doctest: +SKIP
        tensor([[1, 2],
                [0, 2],
                [1, 0],
                [2, 1]])
        >>> # approximate, for classes of 40,000 codes and up
        >>> FaissKNN(nlist=1024, nprobe=8)
        FaissKNN(use_gpu=None, nlist=1024, nprobe=8)
    """

    def __init__(
        self, use_gpu: bool | None = None, nlist: int | None = None, nprobe: int = 16
    ) -> None:
        if use_gpu is not None:
            check_bool("use_gpu", use_gpu)
        self.use_gpu = use_gpu
        self.nlist = None if nlist is None else check_positive_int("nlist", nlist)
        self.nprobe = check_positive_int("nprobe", nprobe)
        _import_faiss()  # fail here, at configuration time, rather than mid-fit

    def __repr__(self) -> str:
        if self.nlist is None:
            return f"FaissKNN(use_gpu={self.use_gpu})"
        return f"FaissKNN(use_gpu={self.use_gpu}, nlist={self.nlist}, nprobe={self.nprobe})"

    def kneighbors(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Find each row's ``k`` nearest other rows (same contract as ``TorchKNN``).

        Args:
            x: Points, shape (n, d); searched in float32, as FAISS requires.
            k: Neighbours per row, ``1 <= k <= n - 1``.

        Returns:
            LongTensor (n, k) on ``x``'s device, nearest first, never the row itself.

        Raises:
            ValueError: ``x`` is not 2-D or not finite, or ``k`` is out of range.
            RuntimeError: ``use_gpu=True`` but the installed FAISS has no GPU support.
        """
        faiss = _import_faiss()
        x, k = _check_points(x, k)
        points = np.ascontiguousarray(x.cpu().numpy(), dtype=np.float32)
        n, d = points.shape
        approximate = self.nlist is not None and n >= _FAISS_MIN_PER_CELL * self.nlist
        if approximate:
            quantizer = faiss.IndexFlatL2(d)
            index = faiss.IndexIVFFlat(quantizer, d, self.nlist)
            # NOTE: k-means on FAISS's default 256 points per cell dominated the time for
            # 200,000 codes of size 600 on 2 cores; 64 per cell places the cells about as well.
            index.cp.max_points_per_centroid = _FAISS_TRAIN_PER_CELL
        else:
            index = faiss.IndexFlatL2(d)
        on_gpu = self._wants_gpu(faiss, x) and k + 1 <= _FAISS_GPU_MAX_K
        if on_gpu:
            resources = faiss.StandardGpuResources()  # must outlive the search below
            device_id = x.device.index if x.is_cuda and x.device.index is not None else 0
            index = faiss.index_cpu_to_gpu(resources, device_id, index)
        if approximate:
            index.train(points)
            index.nprobe = self.nprobe
        # Search one extra neighbour, since the query itself is (usually) among the results.
        if approximate and not on_gpu:
            found = _search_by_cell(index, points, k + 1)
        else:
            index.add(points)
            _, found = index.search(points, k + 1)
        if approximate and (found < 0).any():  # a probed region held fewer than k + 1 codes
            found = _fill_missing(found, points, k + 1, faiss)
        return _drop_self(found, k).to(x.device)

    def _wants_gpu(self, faiss: Any, x: torch.Tensor) -> bool:
        has_gpu = hasattr(faiss, "get_num_gpus") and faiss.get_num_gpus() > 0
        if self.use_gpu is None:
            return has_gpu and x.is_cuda
        if self.use_gpu and not has_gpu:
            raise RuntimeError(
                "`use_gpu` is True, but the installed FAISS reports no GPU. Install FAISS "
                'with GPU support (pip install "torch-deepsmote[gpu]") or pass use_gpu=None.'
            )
        return self.use_gpu


class SklearnKNN:
    """Adapter for a scikit-learn style estimator, such as ``sklearn.neighbors.NearestNeighbors``.

    The estimator is cloned (when scikit-learn is installed), fitted on ``x`` and queried for
    ``k + 1`` neighbours of ``x`` itself; the query's own index is then dropped as in
    ``FaissKNN``.

    Args:
        estimator: An object with ``fit(X)`` and ``kneighbors(X, n_neighbors, return_distance)``.
    """

    def __init__(self, estimator: Any) -> None:
        self.estimator = estimator

    def __repr__(self) -> str:
        return f"SklearnKNN({self.estimator!r})"

    def kneighbors(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """Find each row's ``k`` nearest other rows (same contract as ``TorchKNN``).

        Args:
            x: Points, shape (n, d); passed to the estimator as a numpy array.
            k: Neighbours per row, ``1 <= k <= n - 1``.

        Returns:
            LongTensor (n, k) on ``x``'s device, nearest first, never the row itself.
        """
        x, k = _check_points(x, k)
        points = x.cpu().numpy()
        estimator = _clone(self.estimator)
        estimator.fit(points)
        found = estimator.kneighbors(points, n_neighbors=k + 1, return_distance=False)
        return _drop_self(np.asarray(found), k).to(x.device)


def _clone(estimator: Any) -> Any:
    # Like imbalanced-learn, never refit the user's own object: it may be shared elsewhere.
    try:
        from sklearn.base import clone
    except ImportError:
        return estimator
    try:
        return clone(estimator)
    except TypeError:  # not a scikit-learn estimator (no get_params); use it as it is
        return estimator


def get_knn(knn: str | Any = "auto") -> Any:
    """Turn a ``knn`` argument into a backend with ``kneighbors(x, k)``.

    Args:
        knn: ``"auto"`` (FAISS when ``faiss`` imports, else torch), ``"faiss"``, ``"torch"``,
            an object with ``kneighbors(x, k)`` (used as it is), or a scikit-learn style
            estimator with ``fit`` and ``kneighbors(X, n_neighbors=...)`` (wrapped in
            ``SklearnKNN``).

    Returns:
        The backend.

    Raises:
        ValueError: Unknown name.
        TypeError: Neither a name nor an object with ``kneighbors``.
        ImportError: ``"faiss"`` without ``faiss`` installed.

    Examples:
        >>> get_knn("torch")
        TorchKNN(chunk_size=2048)
    """
    if isinstance(knn, str):
        if knn not in _KNN_NAMES:
            raise ValueError(
                f"`knn` should be one of {', '.join(repr(n) for n in _KNN_NAMES)} or an object "
                f"with a `kneighbors` method, but got knn={knn!r}."
            )
        if knn == "torch":
            return TorchKNN()
        if knn == "faiss":
            return FaissKNN()
        try:
            return FaissKNN()
        except ImportError:
            return TorchKNN()
    if isinstance(knn, type) or not callable(getattr(knn, "kneighbors", None)):
        raise TypeError(
            f"`knn` should be one of {', '.join(repr(n) for n in _KNN_NAMES)} or an object "
            f"(an instance, not a class) with a `kneighbors` method, but got knn={knn!r}."
        )
    if isinstance(knn, (TorchKNN, FaissKNN, SklearnKNN)):
        return knn
    # NOTE: a `fit` method is what tells scikit-learn's convention (fit, then
    # kneighbors(X, n_neighbors=...)) from ours (kneighbors(x, k) on the points themselves).
    if callable(getattr(knn, "fit", None)):
        return SklearnKNN(knn)
    return knn


def class_neighbors(
    latents: torch.Tensor,
    labels: torch.Tensor,
    k_neighbors: int,
    knn: str | Any = "auto",
) -> tuple[torch.Tensor, dict[int, int]]:
    """Find each code's nearest codes of the same class (the SMOTE neighbour table).

    A class with ``n_c <= k_neighbors`` samples uses ``k_c = n_c - 1`` neighbours and warns.
    A class with a single sample has no neighbour: its own row is stored in column 0, so its
    synthetic samples are copies of it, and it warns.

    Args:
        latents: Codes, shape (N, d).
        labels: Integer class labels, shape (N,).
        k_neighbors: Neighbours per code, as in SMOTE (the paper uses 5).
        knn: Backend or backend name, see ``get_knn``.

    Returns:
        ``(neighbors, n_neighbors)``: ``neighbors`` is a LongTensor (N, k_neighbors) on the
        CPU (a small table, consumed by the CPU-side plan) holding *global* row indices of
        each row's nearest same-class rows, nearest first; columns past the class's count
        are -1. ``n_neighbors`` maps every class (Python int, sorted) to its number of valid
        columns (>= 1).

    Raises:
        ValueError: Shapes disagree, labels are not integers, or a backend returns a bad table.
        TypeError: ``k_neighbors`` is not an integer, or ``knn`` is not a valid backend.

    Examples:
        >>> latents = torch.tensor([[0.0], [1.0], [3.0], [10.0], [12.0], [20.0]])
        >>> labels = torch.tensor([0, 0, 0, 1, 1, 1])
        >>> neighbors, n_neighbors = class_neighbors(latents, labels, 2, knn="torch")
        >>> neighbors
        tensor([[1, 2],
                [0, 2],
                [1, 0],
                [4, 5],
                [3, 5],
                [4, 3]])
        >>> n_neighbors
        {0: 2, 1: 2}
    """
    k_neighbors = check_positive_int("k_neighbors", k_neighbors)
    labels = as_labels(labels, "labels")
    if not isinstance(latents, torch.Tensor):
        latents = torch.as_tensor(np.asarray(latents))
    if latents.ndim != 2:
        raise ValueError(
            "`latents` should be a 2-D tensor of shape (N, d), but got latents with shape "
            f"{tuple(latents.shape)}."
        )
    if labels.ndim != 1 or labels.shape[0] != latents.shape[0]:
        raise ValueError(
            f"`labels` should be a 1-D tensor of length N = {latents.shape[0]}, but got labels "
            f"with shape {tuple(labels.shape)}."
        )
    backend = get_knn(knn)
    neighbors = torch.full((labels.shape[0], k_neighbors), -1, dtype=torch.long)
    n_neighbors: dict[int, int] = {}
    for label in torch.unique(labels).tolist():
        rows = torch.nonzero(labels == label).flatten()
        n_class = rows.numel()
        if n_class == 1:
            warnings.warn(
                f"Class {label} has a single sample, so it has no neighbour to interpolate "
                f"with (k_neighbors={k_neighbors}): its synthetic samples are copies of it.",
                UserWarning,
                stacklevel=2,
            )
            neighbors[rows, 0] = rows
            n_neighbors[label] = 1
            continue
        k_class = min(k_neighbors, n_class - 1)
        if k_class < k_neighbors:
            warnings.warn(
                f"Class {label} has {n_class} samples, not more than k_neighbors={k_neighbors}: "
                f"its codes use their {k_class} nearest neighbours instead.",
                UserWarning,
                stacklevel=2,
            )
        local = backend.kneighbors(latents[rows.to(latents.device)], k_class)
        local = check_neighbor_table(local, n_class, k_class, backend)
        neighbors[rows, :k_class] = rows[local]
        n_neighbors[label] = k_class
    return neighbors, n_neighbors


@torch.no_grad()
def class_enemies(
    latents: torch.Tensor, labels: torch.Tensor, k_neighbors: int, chunk_size: int = 2048
) -> tuple[torch.Tensor, dict[int, int]]:
    """Each code's nearest codes of *other* classes: its "nearest enemies".

    Stepping from a code towards one of them moves a synthetic sample towards the class
    boundary (as in EOS, Dablain, Bellinger, Krawczyk and Chawla, "Efficient Augmentation
    for Imbalanced Deep Learning", ICDE 2023), where a classifier errs, instead of inside
    the class. Exact, in pure torch on the codes' device (squared L2, chunked like
    ``TorchKNN``).

    Args:
        latents: Codes, shape (N, d).
        labels: Class labels, shape (N,).
        k_neighbors: Enemies per code (fewer where the other classes hold fewer codes).

    Returns:
        ``(enemies, n_enemies)``: LongTensor (N, k_neighbors) on the CPU of global row
        indices, nearest first, -1 past a class's count; ``{class: valid columns}``.

    Raises:
        ValueError: A single class (no enemies), or shapes that disagree.

    Examples:
        >>> latents = torch.tensor([[0.0], [1.0], [5.0], [7.0]])
        >>> enemies, n = class_enemies(latents, torch.tensor([0, 0, 1, 1]), 1)
        >>> enemies.flatten().tolist(), n
        ([2, 2, 1, 1], {0: 1, 1: 1})
    """
    k_neighbors = check_positive_int("k_neighbors", k_neighbors)
    labels = as_labels(labels, "labels", len(latents))
    latents = torch.as_tensor(latents).float()
    classes = torch.unique(labels).tolist()
    if len(classes) < 2:
        raise ValueError(
            f"`labels` should hold at least two classes to have enemies, but got {classes}."
        )
    enemies = torch.full((len(labels), k_neighbors), -1, dtype=torch.long)
    n_enemies = {}
    norms = (latents * latents).sum(dim=1)
    for label in classes:
        rows = torch.nonzero(labels == label).flatten()
        others = torch.nonzero(labels != label).flatten()
        k = min(k_neighbors, len(others))
        pool, pool_norms = latents[others.to(latents.device)], norms[others.to(latents.device)]
        for start in range(0, len(rows), chunk_size):
            chunk = rows[start : start + chunk_size].to(latents.device)
            distances = torch.addmm(pool_norms[None, :], latents[chunk], pool.T, alpha=-2.0)
            local = torch.topk(distances, k, dim=1, largest=False, sorted=True).indices.cpu()
            enemies[rows[start : start + chunk_size], :k] = others[local]
        n_enemies[int(label)] = k
    return enemies, n_enemies


def check_neighbor_table(local: Any, n: int, k: int, backend: Any) -> torch.Tensor:
    """``local`` (n, k), a backend's neighbour rows of ``n`` points, checked and as int64:
    a user's object may follow another convention (Borderline-SMOTE's search and the class
    tables both check through here).

    Raises:
        ValueError: Another shape, rows outside ``[0, n)``, or a row its own neighbour.
    """
    local = local.cpu() if torch.is_tensor(local) else torch.as_tensor(np.asarray(local))
    if tuple(local.shape) != (n, k):
        raise ValueError(
            f"`knn` should return indices of shape (n, k) = ({n}, {k}) from kneighbors(x, k), "
            f"but got knn={backend!r} returning shape {tuple(local.shape)}."
        )
    local = local.long()
    if n and (local.min() < 0 or local.max() >= n):
        raise ValueError(
            f"`knn` should return indices in [0, {n}), but got knn={backend!r} returning "
            f"indices from {int(local.min())} to {int(local.max())}."
        )
    if bool((local == torch.arange(n)[:, None]).any()):
        raise ValueError(
            f"`knn` should never return a row as its own neighbour, but got knn={backend!r} "
            "doing so. A scikit-learn style object needs a `fit` method to be recognised."
        )
    return local
