"""Tests of the k-NN backends and the per-class neighbour table."""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_deepsmote.knn import (
    FaissKNN,
    KNNBackend,
    SklearnKNN,
    TorchKNN,
    class_neighbors,
    get_knn,
)


def _faiss_backend():
    pytest.importorskip("faiss")
    return FaissKNN()


def _sklearn_backend():
    neighbors = pytest.importorskip("sklearn.neighbors")
    return get_knn(neighbors.NearestNeighbors())


BACKENDS = {
    "torch": lambda: TorchKNN(),
    "torch-chunk-2": lambda: TorchKNN(chunk_size=2),
    "faiss": _faiss_backend,
    "sklearn": _sklearn_backend,
}


@pytest.fixture(params=sorted(BACKENDS))
def backend(request):
    return BACKENDS[request.param]()


def brute_force(x: torch.Tensor, k: int) -> torch.Tensor:
    distances = torch.cdist(x, x)
    distances.fill_diagonal_(float("inf"))
    return distances.argsort(dim=1, stable=True)[:, :k]


def random_points(n: int, d: int, seed: int, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=dtype)


# --- the backend contract ------------------------------------------------------------------


def test_backend_finds_golden_neighbours_of_1d_points(backend):
    # Gaps 1, 2, 4, 8: every neighbour order is unambiguous.
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0], [15.0]])
    result = backend.kneighbors(x, 2)
    assert result.dtype == torch.long
    assert result.tolist() == [[1, 2], [0, 2], [1, 0], [2, 1], [3, 2]]


def test_backend_with_k_equal_n_minus_one_returns_every_other_row(backend):
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert backend.kneighbors(x, 3).tolist() == [[1, 2, 3], [0, 2, 3], [1, 0, 3], [2, 1, 0]]


def test_backend_never_returns_self_among_duplicates(backend):
    # Six copies of one point and three other points: distance ties at zero everywhere.
    x = torch.tensor([[1.0, 1.0]] * 6 + [[5.0, 5.0], [5.0, 5.0], [9.0, 0.0]])
    n = x.shape[0]
    for k in (1, 3, 5, n - 1):
        result = backend.kneighbors(x, k)
        assert result.shape == (n, k)
        assert not (result == torch.arange(n)[:, None]).any()
        assert all(len(set(row)) == k for row in result.tolist())
    # With k < 6, a copy's neighbours are all other copies (distance 0).
    copies = backend.kneighbors(x, 5)[:6]
    assert (copies < 6).all()
    assert backend.kneighbors(x, 1)[6:8].tolist() == [[7], [6]]


def test_backend_rejects_k_out_of_range(backend):
    x = torch.zeros(4, 2)
    with pytest.raises(ValueError, match=r"`k` should be at most n - 1 = 3.*k=4"):
        backend.kneighbors(x, 4)
    with pytest.raises(ValueError, match="`k` should be a positive integer"):
        backend.kneighbors(x, 0)
    with pytest.raises(TypeError, match="`k` should be a positive integer"):
        backend.kneighbors(x, True)


def test_backend_rejects_non_finite_and_non_2d_points(backend):
    with pytest.raises(ValueError, match="finite"):
        backend.kneighbors(torch.tensor([[0.0], [float("nan")], [1.0]]), 1)
    with pytest.raises(ValueError, match="2-D"):
        backend.kneighbors(torch.zeros(5), 1)


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 2048])
def test_torch_knn_equals_brute_force_on_random_data(chunk_size):
    x = random_points(130, 6, seed=chunk_size)
    assert torch.equal(TorchKNN(chunk_size).kneighbors(x, 5), brute_force(x, 5))


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(2, 40),
    d=st.integers(1, 8),
    chunk_size=st.integers(1, 50),
    seed=st.integers(0, 2**31 - 1),
    data=st.data(),
)
def test_torch_knn_distances_equal_brute_force_for_random_shapes(n, d, chunk_size, seed, data):
    k = data.draw(st.integers(1, n - 1))
    x = random_points(n, d, seed)
    result = TorchKNN(chunk_size).kneighbors(x, k)
    assert not (result == torch.arange(n)[:, None]).any()
    # Compare distances rather than indices, so that (improbable) ties cannot flake.
    full = torch.cdist(x, x)
    full.fill_diagonal_(float("inf"))
    found = full.gather(1, result)
    expected = full.sort(dim=1).values[:, :k]
    torch.testing.assert_close(found, expected)


def test_torch_knn_accepts_half_precision_and_integer_points():
    x = torch.tensor([[0], [1], [3], [7]])
    assert TorchKNN().kneighbors(x, 1).tolist() == [[1], [0], [1], [2]]
    assert TorchKNN().kneighbors(x.half(), 1).tolist() == [[1], [0], [1], [2]]


def test_faiss_knn_matches_torch_knn_on_random_data():
    pytest.importorskip("faiss")
    x = random_points(600, 16, seed=0, dtype=torch.float32)
    assert torch.equal(FaissKNN().kneighbors(x, 5), TorchKNN().kneighbors(x, 5))


def clustered_points(n_clusters: int, per_cluster: int, d: int, seed: int) -> torch.Tensor:
    """Tight clusters far apart, in random order: what an IVF index is built for."""
    generator = torch.Generator().manual_seed(seed)
    centres = 10 * torch.randn(n_clusters, d, generator=generator)
    points = centres.repeat_interleave(per_cluster, dim=0)
    points += torch.randn(points.shape, generator=generator)
    return points[torch.randperm(len(points), generator=generator)]


def recall(found: torch.Tensor, exact: torch.Tensor) -> float:
    hits = [len(set(a) & set(b)) for a, b in zip(found.tolist(), exact.tolist())]
    return sum(hits) / exact.numel()


def test_faiss_ivf_finds_most_neighbours_of_clustered_points_and_never_self():
    pytest.importorskip("faiss")
    x = clustered_points(40, 50, 32, seed=4)
    found = FaissKNN(nlist=32, nprobe=4).kneighbors(x, 5)
    assert found.shape == (2000, 5)
    assert found.dtype == torch.long
    assert int(found.min()) >= 0
    assert not (found == torch.arange(2000)[:, None]).any()
    assert all(len(set(row)) == 5 for row in found.tolist())
    assert recall(found, TorchKNN().kneighbors(x, 5)) >= 0.95


def test_faiss_ivf_searched_cell_by_cell_finds_what_faiss_ivf_search_finds():
    faiss = pytest.importorskip("faiss")
    # 1,000 points for 16 cells: few enough that k-means trains on all of them, so the
    # index below is the one FaissKNN builds.
    x = random_points(1000, 8, seed=5, dtype=torch.float32)
    index = faiss.IndexIVFFlat(faiss.IndexFlatL2(8), 8, 16)
    index.train(x.numpy())
    index.add(x.numpy())
    index.nprobe = 3
    expected = index.search(x.numpy(), 6)[1]
    found = FaissKNN(nlist=16, nprobe=3).kneighbors(x, 5)
    assert (expected >= 0).all()
    assert torch.equal(found, torch.as_tensor(expected)[:, 1:])
    assert (expected[:, 0] == np.arange(1000)).all()  # each point is its own nearest


def test_faiss_ivf_search_prints_nothing(capsys):
    pytest.importorskip("faiss")
    FaissKNN(nlist=16, nprobe=2).kneighbors(random_points(1000, 8, seed=6), 5)
    assert capsys.readouterr().out == ""


def test_faiss_ivf_without_big_batch_search_gives_the_same_neighbours(monkeypatch):
    pytest.importorskip("faiss")
    x = clustered_points(20, 50, 16, seed=7)
    by_cell = FaissKNN(nlist=16, nprobe=2).kneighbors(x, 5)
    # Older FAISS releases lack faiss.contrib.big_batch_search; the per-query search is used.
    monkeypatch.setitem(sys.modules, "faiss.contrib.big_batch_search", None)
    assert torch.equal(FaissKNN(nlist=16, nprobe=2).kneighbors(x, 5), by_cell)


@pytest.mark.parametrize("nprobe", [8, 100])  # every cell, and more probes than cells
def test_faiss_ivf_probing_every_cell_is_exact(nprobe):
    pytest.importorskip("faiss")
    x = random_points(1000, 8, seed=8, dtype=torch.float32)
    found = FaissKNN(nlist=8, nprobe=nprobe).kneighbors(x, 5)
    assert torch.equal(found, TorchKNN().kneighbors(x, 5))


def test_faiss_ivf_stays_exact_for_classes_too_small_to_train_it():
    pytest.importorskip("faiss")
    x = random_points(100, 8, seed=9, dtype=torch.float32)  # fewer than 39 points per cell
    assert torch.equal(FaissKNN(nlist=64).kneighbors(x, 3), TorchKNN().kneighbors(x, 3))


def test_faiss_ivf_fills_rows_that_its_probed_cells_leave_short():
    pytest.importorskip("faiss")
    # One probe of 64 cells over uniform points: some cells hold fewer than k + 1 codes.
    x = random_points(3000, 8, seed=1, dtype=torch.float32)
    found = FaissKNN(nlist=64, nprobe=1).kneighbors(x, 5)
    assert found.shape == (3000, 5) and int(found.min()) >= 0
    assert not bool((found == torch.arange(3000)[:, None]).any())
    assert all(len(set(row)) == 5 for row in found.tolist())


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"nlist": 0}, ValueError, r"`nlist` should be a positive integer, but got nlist=0\."),
        ({"nlist": -4}, ValueError, "nlist=-4"),
        ({"nlist": "1024"}, TypeError, r"`nlist` should be a positive integer.*nlist='1024'"),
        ({"nlist": True}, TypeError, "`nlist` should be a positive integer"),
        ({"nlist": 1024.0}, TypeError, "nlist=1024.0"),
        ({"nlist": 64, "nprobe": 0}, ValueError, r"`nprobe` should be a positive integer.*=0"),
        ({"nlist": 64, "nprobe": None}, TypeError, "`nprobe` should be a positive integer"),
        ({"nlist": 4, "nprobe": 1.5}, TypeError, "nprobe=1.5"),
    ],
)
def test_faiss_ivf_rejects_bad_options(kwargs, error, match):
    pytest.importorskip("faiss")
    with pytest.raises(error, match=match):
        FaissKNN(**kwargs)
    assert repr(FaissKNN(nlist=4)) == "FaissKNN(use_gpu=None, nlist=4, nprobe=16)"


def test_sklearn_adapter_matches_torch_knn_and_leaves_the_estimator_unfitted():
    neighbors = pytest.importorskip("sklearn.neighbors")
    estimator = neighbors.NearestNeighbors(n_neighbors=2)
    x = random_points(200, 8, seed=1)
    result = get_knn(estimator).kneighbors(x, 5)
    assert torch.equal(result, TorchKNN().kneighbors(x, 5))
    assert not hasattr(estimator, "n_samples_fit_")  # cloned, as imbalanced-learn does


def assert_same_neighbours(found: torch.Tensor, expected: torch.Tensor, x: torch.Tensor):
    """Equal tables, or ones that differ only between candidates equally near up to float32
    rounding (a GPU sums the distances in another order)."""
    xd = x.double()
    distance = [(xd[:, None] - xd[t]).norm(dim=-1) for t in (found.cpu(), expected)]
    torch.testing.assert_close(distance[0], distance[1], rtol=1e-5, atol=1e-5)
    assert (found.cpu() == expected).all(1).float().mean() > 0.99


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_knn_backends_on_cuda_match_cpu():
    x = random_points(3000, 32, seed=2, dtype=torch.float32)
    expected = TorchKNN().kneighbors(x, 5)
    on_cuda = TorchKNN(chunk_size=512).kneighbors(x.cuda(), 5)
    assert on_cuda.is_cuda
    assert_same_neighbours(on_cuda, expected, x)
    try:
        import faiss  # noqa: F401
    except ImportError:
        return
    faiss_result = FaissKNN().kneighbors(x.cuda(), 5)
    assert faiss_result.is_cuda
    assert_same_neighbours(faiss_result, expected, x)


# --- get_knn --------------------------------------------------------------------------------


def test_get_knn_resolves_names():
    assert isinstance(get_knn("torch"), TorchKNN)
    try:
        import faiss  # noqa: F401
    except ImportError:
        assert isinstance(get_knn("auto"), TorchKNN)
    else:
        assert isinstance(get_knn("auto"), FaissKNN)
        assert isinstance(get_knn("faiss"), FaissKNN)
    # Whatever "auto" finds answers like the torch backend: the same exact neighbours.
    points = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0], [5.0, 5.0]])
    for name in ("auto", "torch"):
        index = get_knn(name).kneighbors(points, 2)
        assert index.tolist() == [[1, 2], [0, 2], [0, 1], [2, 1]]
    mine = TorchKNN()
    assert get_knn(mine) is mine  # an object with kneighbors is used as it is
    with pytest.raises(ValueError, match=r"`knn` should be .*knn='annoy'"):
        get_knn("annoy")


def test_get_knn_without_faiss_falls_back_to_torch_or_names_the_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "faiss", None)  # makes `import faiss` raise ImportError
    assert isinstance(get_knn("auto"), TorchKNN)
    with pytest.raises(ImportError, match=r'pip install "torch-deepsmote\[cpu\]"'):
        get_knn("faiss")
    with pytest.raises(ImportError, match="torch-deepsmote"):
        FaissKNN()


def test_get_knn_passes_objects_through_and_wraps_sklearn_style_ones():
    class Ours:
        def kneighbors(self, x, k):
            return TorchKNN().kneighbors(x, k)

    class SklearnStyle(Ours):
        def fit(self, x):
            return self

    ours = Ours()
    torch_knn = TorchKNN(chunk_size=3)
    assert get_knn(ours) is ours
    assert get_knn(torch_knn) is torch_knn
    assert isinstance(get_knn(SklearnStyle()), SklearnKNN)
    assert isinstance(ours, KNNBackend)


@pytest.mark.parametrize(
    ("knn", "error", "match"),
    [
        ("kdtree", ValueError, r"`knn` should be one of 'auto', 'faiss', 'torch'.*knn='kdtree'"),
        (5, TypeError, "`knn` should be one of"),
        (None, TypeError, "`knn` should be one of"),
        (TorchKNN, TypeError, "an instance, not a class"),
    ],
)
def test_get_knn_rejects_invalid_arguments(knn, error, match):
    with pytest.raises(error, match=match):
        get_knn(knn)


def test_backends_validate_their_arguments():
    with pytest.raises(ValueError, match="`chunk_size` should be a positive integer"):
        TorchKNN(chunk_size=0)
    with pytest.raises(TypeError, match="`chunk_size` should be a positive integer"):
        TorchKNN(chunk_size=2.5)
    pytest.importorskip("faiss")
    with pytest.raises(TypeError, match="`use_gpu` should be a bool"):
        FaissKNN(use_gpu="yes")


# --- class_neighbors ------------------------------------------------------------------------

# Class 0 at 0, 1, 3, 7; class 1 at 100, 101, 103, interleaved by row.
LATENTS_1D = torch.tensor([[0.0], [100.0], [1.0], [101.0], [3.0], [103.0], [7.0]])
LABELS_1D = torch.tensor([0, 1, 0, 1, 0, 1, 0])


def test_class_neighbors_returns_golden_global_indices(backend):
    neighbors, n_neighbors = class_neighbors(LATENTS_1D, LABELS_1D, 2, knn=backend)
    assert neighbors.tolist() == [[2, 4], [3, 5], [0, 4], [1, 5], [2, 0], [3, 1], [4, 2]]
    assert n_neighbors == {0: 2, 1: 2}


def test_class_neighbors_never_crosses_classes():
    latents = random_points(300, 4, seed=3)
    labels = torch.randint(0, 4, (300,), generator=torch.Generator().manual_seed(3))
    neighbors, n_neighbors = class_neighbors(latents, labels, 5, knn="torch")
    assert neighbors.shape == (300, 5)
    assert (labels[neighbors] == labels[:, None]).all()
    assert not (neighbors == torch.arange(300)[:, None]).any()
    assert n_neighbors == {0: 5, 1: 5, 2: 5, 3: 5}


def test_class_with_at_most_k_samples_shrinks_k_and_warns():
    with pytest.warns(UserWarning) as record:
        neighbors, n_neighbors = class_neighbors(LATENTS_1D, LABELS_1D, 5, knn="torch")
    messages = [str(warning.message) for warning in record]
    assert len(messages) == 2
    assert "Class 0 has 4 samples, not more than k_neighbors=5" in messages[0]
    assert "Class 1 has 3 samples, not more than k_neighbors=5" in messages[1]
    assert "their 2 nearest neighbours" in messages[1]
    assert n_neighbors == {0: 3, 1: 2}
    assert neighbors[1].tolist() == [3, 5, -1, -1, -1]
    assert neighbors[0].tolist() == [2, 4, 6, -1, -1]


def test_single_sample_class_points_to_itself_and_warns_about_copies():
    latents = torch.tensor([[0.0], [1.0], [2.0], [50.0]])
    labels = torch.tensor([0, 0, 0, 7])
    with pytest.warns(UserWarning, match=r"Class 7 has a single sample.*copies"):
        neighbors, n_neighbors = class_neighbors(latents, labels, 2, knn="torch")
    assert n_neighbors == {0: 2, 7: 1}
    assert neighbors[3].tolist() == [3, -1]


def test_class_neighbors_does_not_warn_when_every_class_is_large_enough():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        class_neighbors(LATENTS_1D, LABELS_1D, 2, knn="torch")


def test_class_neighbors_accepts_numpy_labels_and_returns_a_cpu_table():
    neighbors, _ = class_neighbors(LATENTS_1D, np.asarray(LABELS_1D), 1, knn="torch")
    assert neighbors.device.type == "cpu"
    assert neighbors[:, 0].tolist() == [2, 3, 0, 1, 2, 3, 4]


def test_class_neighbors_rejects_bad_arguments():
    with pytest.raises(ValueError, match="`k_neighbors` should be a positive integer"):
        class_neighbors(LATENTS_1D, LABELS_1D, 0)
    with pytest.raises(ValueError, match="`labels` should be a 1-D tensor of length N = 7"):
        class_neighbors(LATENTS_1D, LABELS_1D[:3], 1)
    with pytest.raises(TypeError, match="integer class labels"):
        class_neighbors(LATENTS_1D, LABELS_1D.float() + 0.5, 1)


def test_class_neighbors_rejects_a_backend_that_returns_self():
    class IncludesSelf:
        def kneighbors(self, x, k):
            return torch.arange(x.shape[0])[:, None].repeat(1, k)

    with pytest.raises(ValueError, match="never return a row as its own neighbour"):
        class_neighbors(LATENTS_1D, LABELS_1D, 1, knn=IncludesSelf())


def test_faiss_knn_forced_onto_a_missing_gpu_names_the_gpu_install():
    faiss = pytest.importorskip("faiss")
    if faiss.get_num_gpus() > 0:
        pytest.skip("FAISS sees a GPU here")
    with pytest.raises(RuntimeError, match=r"torch-deepsmote\[gpu\]"):
        FaissKNN(use_gpu=True).kneighbors(torch.zeros(3, 2), 1)
    assert FaissKNN(use_gpu=False).kneighbors(torch.zeros(3, 2), 1).shape == (3, 1)
