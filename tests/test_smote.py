"""Tests of the SMOTE pieces: sampling_strategy, the random plan and the interpolation."""

from __future__ import annotations

import warnings
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from torch_deepsmote.knn import class_neighbors
from torch_deepsmote.smote import (
    SMOTEPlan,
    interpolate,
    plan_synthetic,
    resolve_sampling_strategy,
)

# --- resolve_sampling_strategy --------------------------------------------------------------

# Six of class 0, three of class 1, one of class 2.
LABELS = [0] * 6 + [1] * 3 + [2]


@pytest.mark.parametrize(
    ("sampling_strategy", "expected"),
    [
        ("auto", {0: 0, 1: 3, 2: 5}),
        ("not majority", {0: 0, 1: 3, 2: 5}),
        ("minority", {0: 0, 1: 0, 2: 5}),
        ("not minority", {0: 0, 1: 3, 2: 0}),
        ("all", {0: 0, 1: 3, 2: 5}),
        ({1: 4}, {0: 0, 1: 1, 2: 0}),
        ({0: 8, 2: 1}, {0: 2, 1: 0, 2: 0}),
        (lambda y: {int(c): 10 for c in np.unique(y)}, {0: 4, 1: 7, 2: 9}),
    ],
)
def test_resolve_sampling_strategy_golden_counts(sampling_strategy, expected):
    assert resolve_sampling_strategy(sampling_strategy, LABELS) == expected


@pytest.mark.parametrize(("ratio", "expected"), [(0.5, {0: 0, 1: 2}), (1.0, {0: 0, 1: 7})])
def test_float_ratio_sets_minority_to_a_fraction_of_the_majority(ratio, expected):
    assert resolve_sampling_strategy(ratio, [0] * 10 + [1] * 3) == expected


def test_resolve_sampling_strategy_returns_sorted_python_ints_for_any_label_container():
    labels = [7, -1, 7, 3, 7, 3]
    results = [
        resolve_sampling_strategy("auto", container)
        for container in (labels, np.asarray(labels, dtype=np.int32), torch.tensor(labels))
    ]
    assert results[0] == results[1] == results[2] == {-1: 2, 3: 1, 7: 0}
    for result in results:
        assert list(result) == [-1, 3, 7]
        assert all(type(key) is int and type(value) is int for key, value in result.items())


def test_ties_for_majority_and_minority_go_to_the_smallest_label():
    labels = [4, 4, 1, 1, 9, 2]  # majority tie 1/4, minority tie 2/9
    assert resolve_sampling_strategy("minority", labels) == {1: 0, 2: 1, 4: 0, 9: 0}
    assert resolve_sampling_strategy("not majority", labels) == {1: 0, 2: 1, 4: 0, 9: 1}


@pytest.mark.parametrize(
    ("sampling_strategy", "labels", "error", "match"),
    [
        ("bogus", LABELS, ValueError, r"one of 'auto', 'minority', .*sampling_strategy='bogus'"),
        ("majority", LABELS, ValueError, "over-sampling cannot add to"),
        (0.5, LABELS, ValueError, "exactly two"),
        (0.0, [0, 0, 1], ValueError, r"a number in \(0, 1\]"),
        (1.5, [0, 0, 1], ValueError, r"a number in \(0, 1\]"),
        (float("nan"), [0, 0, 1], ValueError, r"a number in \(0, 1\]"),
        (0.2, [0] * 10 + [1] * 3, ValueError, "adds at least one sample"),
        (1.0, [0, 0, 1, 1], ValueError, "adds at least one sample"),
        ({5: 10}, LABELS, ValueError, r"unknown classes \[5\]"),
        ({0: 5}, LABELS, ValueError, "class 0 has 6 samples and 5 were requested"),
        ({1: -1}, LABELS, ValueError, "cannot remove samples"),
        ({1: 4.0}, LABELS, TypeError, "integer counts"),
        (lambda y: [1, 2], LABELS, TypeError, "returning"),
        (lambda y: {0: 1}, LABELS, ValueError, r"`sampling_strategy\(labels\)` should ask"),
        ([0, 1], LABELS, TypeError, "a dict {class: total count}"),
        (True, [0, 0, 1], TypeError, "`sampling_strategy` should be one of"),
        ("auto", [3, 3, 3], ValueError, "at least two classes"),
        ("auto", [[0, 1], [1, 0]], ValueError, "1-D"),
        ("auto", [0.5, 1.0], TypeError, "integer class labels"),
    ],
)
def test_resolve_sampling_strategy_rejects_invalid_input(sampling_strategy, labels, error, match):
    with pytest.raises(error, match=match):
        resolve_sampling_strategy(sampling_strategy, labels)


# Label sets for the comparison with imbalanced-learn: binary, ties, negative and unsorted
# labels, a near-balanced set, and the paper's Fashion-MNIST training counts (Table I).
LABEL_SETS = {
    "binary": [0] * 10 + [1] * 4,
    "binary-negative": [5] * 3 + [-2] * 9,
    "binary-balanced": [0] * 5 + [1] * 5,
    "binary-extreme": [0] * 100 + [1],
    "ties": [0] * 4 + [1] * 4 + [2] * 2 + [3] * 2,
    "unsorted": [2, 0, 1, 2, 2, 0, 1, 2, 2, 9],
    "fashion": np.repeat(np.arange(10), [4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40]),
}

STRATEGIES = {
    **{
        name: (lambda counts, name=name: name)
        for name in ["auto", "minority", "not minority", "not majority", "all", "majority", "bogus"]
    },
    **{
        f"float-{r}": (lambda counts, r=r: r)
        for r in [0.01, 0.1, 0.25, 0.3, 0.5, 0.75, 0.999, 1.0, 1, 0.0, 1.5, -0.2]
    },
    "dict-minority-to-majority": lambda counts: {min(counts, key=counts.get): max(counts.values())},
    "dict-all-plus-3": lambda counts: {c: n + 3 for c, n in counts.items()},
    "dict-same": lambda counts: dict(counts),
    "dict-empty": lambda counts: {},
    "dict-fewer": lambda counts: {next(iter(counts)): next(iter(counts.values())) - 1},
    "dict-unknown": lambda counts: {12345: 7},
    "callable-double": lambda counts: lambda y: {int(c): 2 * int((y == c).sum()) for c in set(y)},
    "callable-empty": lambda counts: lambda y: {},
}


@pytest.mark.parametrize("label_set", sorted(LABEL_SETS))
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_resolve_sampling_strategy_matches_imbalanced_learn(label_set, strategy):
    imblearn_utils = pytest.importorskip("imblearn.utils")
    y = np.asarray(LABEL_SETS[label_set])
    counts = {int(c): int(n) for c, n in sorted(Counter(y.tolist()).items())}
    sampling_strategy = STRATEGIES[strategy](counts)
    try:
        reference = imblearn_utils.check_sampling_strategy(sampling_strategy, y, "over-sampling")
    except ValueError:
        with pytest.raises((ValueError, TypeError)):
            resolve_sampling_strategy(sampling_strategy, y)
        return
    expected = {c: int(reference.get(c, 0)) for c in counts}
    assert resolve_sampling_strategy(sampling_strategy, y) == expected


# --- plan_synthetic -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def table():
    """Codes of five classes (20, 12, 6, 2 and 1 samples) and their neighbour table."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.repeat_interleave(torch.arange(5), torch.tensor([20, 12, 6, 2, 1]))
    labels = labels[torch.randperm(labels.numel(), generator=generator)]
    latents = torch.randn(labels.numel(), 3, generator=generator, dtype=torch.float64)
    latents += 10.0 * labels[:, None]  # separate the classes
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # classes 3 and 4 are small on purpose
        neighbors, n_neighbors = class_neighbors(latents, labels, 5, knn="torch")
    n_new = resolve_sampling_strategy("auto", labels)
    return latents, labels, neighbors, n_neighbors, n_new


def _plan(table, seed):
    _, labels, neighbors, n_neighbors, n_new = table
    generator = torch.Generator().manual_seed(seed)
    return plan_synthetic(n_new, labels, neighbors, n_neighbors, generator)


def test_plan_is_identical_for_the_same_seed_and_differs_across_seeds(table):
    first, again, other = _plan(table, 7), _plan(table, 7), _plan(table, 8)
    for field in ("labels", "base", "neighbor", "lam"):
        assert torch.equal(getattr(first, field), getattr(again, field))
    assert not torch.equal(first.base, other.base)
    assert not torch.equal(first.lam, other.lam)


def test_plan_does_not_touch_the_global_rng(table):
    state = torch.get_rng_state()
    _plan(table, 0)
    assert torch.equal(torch.get_rng_state(), state)


def test_plan_has_n_new_samples_per_class_grouped_in_sorted_order(table):
    n_new = table[4]
    plan = _plan(table, 0)
    assert isinstance(plan, SMOTEPlan)
    assert len(plan) == sum(n_new.values()) == 20 * 5 - 41
    assert torch.bincount(plan.labels, minlength=5).tolist() == [n_new[c] for c in range(5)]
    assert bool((plan.labels[1:] >= plan.labels[:-1]).all())
    for field in (plan.labels, plan.base, plan.neighbor):
        assert field.dtype == torch.long and field.shape == (len(plan),)


def test_plan_pairs_each_base_with_one_of_its_valid_same_class_neighbours(table):
    _, labels, neighbors, n_neighbors, _ = table
    plan = _plan(table, 0)
    assert torch.equal(labels[plan.base], plan.labels)
    assert torch.equal(labels[plan.neighbor], plan.labels)
    for label, base, neighbor in zip(
        plan.labels.tolist(), plan.base.tolist(), plan.neighbor.tolist()
    ):
        assert neighbor in neighbors[base, : n_neighbors[label]].tolist()


def test_plan_steps_lie_in_the_unit_interval(table):
    lam = _plan(table, 3).lam
    assert lam.dtype == torch.float32
    assert bool((lam >= 0).all()) and bool((lam < 1).all())


def test_plan_uses_every_base_and_neighbour_column_of_a_class(table):
    _, labels, neighbors, n_neighbors, _ = table
    n_new = {0: 0, 1: 2000, 2: 0, 3: 0, 4: 0}
    plan = plan_synthetic(n_new, labels, neighbors, n_neighbors, torch.Generator().manual_seed(1))
    assert set(plan.base.tolist()) == set(torch.nonzero(labels == 1).flatten().tolist())
    columns = (neighbors[plan.base] == plan.neighbor[:, None]).int().argmax(dim=1)
    assert set(columns.tolist()) == set(range(n_neighbors[1]))


def test_single_sample_class_gives_copies_of_its_code(table):
    latents, labels, _, _, _ = table
    with pytest.warns(UserWarning) as record:
        neighbors, n_neighbors = class_neighbors(latents, labels, 5, knn="torch")
    messages = [str(warning.message) for warning in record]
    assert any("Class 4 has a single sample" in m and "copies" in m for m in messages)
    n_new = {0: 0, 1: 0, 2: 0, 3: 0, 4: 6}
    plan = plan_synthetic(n_new, labels, neighbors, n_neighbors, torch.Generator().manual_seed(0))
    row = int(torch.nonzero(labels == 4))
    assert plan.base.tolist() == plan.neighbor.tolist() == [row] * 6
    codes = interpolate(latents, plan.base, plan.neighbor, plan.lam)
    assert torch.equal(codes, latents[row].expand(6, -1))


def test_plan_with_nothing_to_add_is_empty(table):
    _, labels, neighbors, n_neighbors, _ = table
    plan = plan_synthetic({0: 0}, labels, neighbors, n_neighbors, torch.Generator())
    assert len(plan) == 0
    assert interpolate(table[0], plan.base, plan.neighbor, plan.lam).shape == (0, 3)


def test_plan_synthetic_rejects_bad_arguments(table):
    _, labels, neighbors, n_neighbors, _ = table
    with pytest.raises(TypeError, match="`generator` should be a CPU torch.Generator"):
        plan_synthetic({1: 1}, labels, neighbors, n_neighbors, 0)
    with pytest.raises(ValueError, match="class 9, which has 0 rows"):
        plan_synthetic({9: 1}, labels, neighbors, n_neighbors, torch.Generator())
    with pytest.raises(ValueError, match="non-negative counts"):
        plan_synthetic({1: -1}, labels, neighbors, n_neighbors, torch.Generator())
    with pytest.raises(ValueError, match="should not exceed the valid"):
        plan_synthetic({3: 50}, labels, neighbors, {**n_neighbors, 3: 5}, torch.Generator())
    with pytest.raises(ValueError, match=r"should have shape \(N, k\)"):
        plan_synthetic({1: 1}, labels[:-1], neighbors, n_neighbors, torch.Generator())


# --- interpolate ----------------------------------------------------------------------------


def test_interpolate_golden_values():
    latents = torch.tensor([[0.0, 0.0], [2.0, 4.0], [10.0, -10.0]])
    base = torch.tensor([0, 1, 0, 2])
    neighbor = torch.tensor([1, 2, 2, 2])
    lam = torch.tensor([0.5, 0.25, 0.0, 0.75])
    expected = torch.tensor([[1.0, 2.0], [4.0, 0.5], [0.0, 0.0], [10.0, -10.0]])
    assert torch.equal(interpolate(latents, base, neighbor, lam), expected)


def test_interpolate_keeps_the_latent_dtype():
    latents = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    out = interpolate(latents, torch.tensor([0]), torch.tensor([1]), torch.tensor([0.1]))
    assert out.dtype == torch.float64
    assert out.item() == pytest.approx(0.1, abs=1e-7)  # lam itself was float32


def test_synthetic_codes_of_a_1d_class_stay_within_its_range():
    # Class 0 at 0, 1, 3, 7; class 1 at 100, 101, 103: SMOTE never leaves a class's hull.
    latents = torch.tensor([[0.0], [100.0], [1.0], [101.0], [3.0], [103.0], [7.0]])
    labels = torch.tensor([0, 1, 0, 1, 0, 1, 0])
    neighbors, n_neighbors = class_neighbors(latents, labels, 2, knn="torch")
    plan = plan_synthetic(
        {0: 50, 1: 50}, labels, neighbors, n_neighbors, torch.Generator().manual_seed(0)
    )
    codes = interpolate(latents, plan.base, plan.neighbor, plan.lam).flatten()
    assert bool(((codes[:50] >= 0) & (codes[:50] <= 7)).all())
    assert bool(((codes[50:] >= 100) & (codes[50:] <= 103)).all())
    expected = [
        latents[b, 0].item() + lam * (latents[n, 0].item() - latents[b, 0].item())
        for b, n, lam in zip(plan.base.tolist(), plan.neighbor.tolist(), plan.lam.tolist())
    ]
    torch.testing.assert_close(codes, torch.tensor(expected))


@settings(max_examples=50, deadline=None)
@given(
    d=st.integers(1, 16),
    lam=st.floats(0.0, 1.0, exclude_max=True),
    seed=st.integers(0, 2**31 - 1),
)
def test_interpolated_point_lies_on_the_segment_from_base_to_neighbour(d, lam, seed):
    latents = torch.randn(2, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    z = interpolate(
        latents, torch.tensor([0]), torch.tensor([1]), torch.tensor([lam], dtype=torch.float64)
    )[0]
    start, end = latents
    length = torch.linalg.vector_norm(end - start)
    to_start, to_end = torch.linalg.vector_norm(z - start), torch.linalg.vector_norm(end - z)
    torch.testing.assert_close(to_start + to_end, length)
    torch.testing.assert_close(to_start, lam * length)


def test_interpolate_rejects_mismatched_shapes():
    latents = torch.zeros(3, 2)
    with pytest.raises(ValueError, match="1-D of one length"):
        interpolate(latents, torch.tensor([0, 1]), torch.tensor([1]), torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"should have shape \(N, d\)"):
        interpolate(torch.zeros(3), torch.tensor([0]), torch.tensor([1]), torch.tensor([0.5]))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_interpolate_on_cuda_matches_cpu_with_cpu_plan():
    latents = torch.randn(50, 8, generator=torch.Generator().manual_seed(0))
    base, neighbor = torch.arange(50), torch.arange(50).flip(0)
    lam = torch.rand(50, generator=torch.Generator().manual_seed(1))
    on_cuda = interpolate(latents.cuda(), base, neighbor, lam)
    assert on_cuda.is_cuda
    torch.testing.assert_close(on_cuda.cpu(), interpolate(latents, base, neighbor, lam))
