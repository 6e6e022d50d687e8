"""Borderline-SMOTE's base selection: the danger rule, the planner's bases, the estimator."""

from __future__ import annotations

import copy
import warnings

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import TINY, make_shapes
from torch.utils.data import TensorDataset

import torch_deepsmote.fitting as fitting_module
from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.borderline import in_danger
from torch_deepsmote.distributed import Ranks
from torch_deepsmote.distributed import in_danger as ranked_in_danger
from torch_deepsmote.smote import plan_synthetic, plan_transfer

# A hand-made 2-D latent set, no two distances equal: class 0 a cluster at the origin,
# class 1 a cluster at (6, 0) reaching towards it, and one class-1 code inside class 0.
LATENTS = torch.tensor(
    [
        [0.0, 0.0],  # 0 : class 0, interior
        [1.0, 0.1],  # 1
        [0.2, 1.1],  # 2
        [1.1, 1.25],  # 3
        [0.5, 0.62],  # 4
        [2.1, 0.4],  # 5 : class 0, facing class 1
        [2.0, 1.5],  # 6 : class 0, facing class 1
        [0.55, 0.25],  # 7 : class 1 inside class 0 (noise)
        [2.6, 1.05],  # 8 : class 1, facing class 0
        [2.75, 0.15],  # 9 : class 1, facing class 0
        [3.9, 0.5],  # 10
        [5.0, 0.0],  # 11: class 1, interior
        [5.5, 0.7],  # 12
        [6.1, 0.2],  # 13
        [5.4, -0.6],  # 14
        [4.7, 0.95],  # 15
    ]
)
LABELS = torch.tensor([0] * 7 + [1] * 9)
M = 4
# Of their 4 nearest codes, rows 0-4 have 1 of the other class, rows 5, 6, 8
# and 9 have 2 (danger), row 7 has 4 (noise) and rows 10-15 none (safe).
GOLDEN = [False] * 5 + [True, True, False, True, True] + [False] * 6


def _imblearn_danger(latents, labels, m):
    """What imbalanced-learn's BorderlineSMOTE marks as in danger, class by class."""
    from imblearn.over_sampling import BorderlineSMOTE
    from sklearn.neighbors import NearestNeighbors

    X, y = latents.numpy(), labels.numpy()
    nn = NearestNeighbors(n_neighbors=m + 1).fit(X)
    danger = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        danger[y == c] = BorderlineSMOTE(m_neighbors=m)._in_danger_noise(nn, X[y == c], c, y)
    return danger.tolist()


def _own_reading(latents, labels, m):
    """The rule as the paper states it: m / 2 <= m' < m other-class codes among the m nearest."""
    distances = torch.cdist(latents, latents)
    distances.fill_diagonal_(float("inf"))
    nearest = distances.argsort(dim=1)[:, :m]
    other = (labels[nearest] != labels[:, None]).sum(dim=1)
    return [bool(m / 2 <= int(o) < m) for o in other]


# ---------------------------------------------------------------------- the danger rule
def test_danger_is_the_mixed_neighbourhood_not_noise_nor_interior():
    danger = in_danger(LATENTS, LABELS, M, knn="torch")
    assert danger.dtype == torch.bool and danger.shape == (16,)
    assert danger.tolist() == GOLDEN
    assert not danger[7]  # all of its neighbours are class 0: noise
    assert not danger[[0, 4, 11]].any()  # interiors are safe
    assert _own_reading(LATENTS, LABELS, M) == GOLDEN


def test_danger_agrees_with_imbalanced_learn():
    pytest.importorskip("imblearn")
    assert _imblearn_danger(LATENTS, LABELS, M) == GOLDEN
    generator = torch.Generator().manual_seed(0)
    latents = torch.randn(120, 3, generator=generator)
    labels = (latents[:, 0] + 0.5 * torch.randn(120, generator=generator) > 0.8).long()
    labels[:10] = 2
    for m in (1, 4, 10):
        expected = _imblearn_danger(latents, labels, m)
        assert in_danger(latents, labels, m, knn="torch").tolist() == expected


def test_danger_is_the_same_for_every_backend():
    from sklearn.neighbors import NearestNeighbors

    expected = in_danger(LATENTS, LABELS, M, knn="torch")
    assert torch.equal(in_danger(LATENTS, LABELS, M, knn=NearestNeighbors()), expected)
    pytest.importorskip("faiss")
    assert torch.equal(in_danger(LATENTS, LABELS, M, knn="faiss"), expected)


def test_a_neighbourhood_larger_than_the_set_shrinks_with_a_warning():
    with pytest.warns(UserWarning, match="m_neighbors=20"):
        danger = in_danger(LATENTS, LABELS, 20, knn="torch")
    assert danger.tolist() == _own_reading(LATENTS, LABELS, 15)


def _danger_worker(rank: int, folder: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group(
        "gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=2
    )
    try:
        torch.save(
            ranked_in_danger(LATENTS, LABELS, M, "torch", Ranks(rank, 2)), f"{folder}/{rank}.pt"
        )
    finally:
        dist.destroy_process_group()


def test_every_rank_gets_rank_0s_danger_rows(tmp_path):
    assert ranked_in_danger(LATENTS, LABELS, M, "torch", None).tolist() == GOLDEN
    mp.spawn(_danger_worker, args=(str(tmp_path),), nprocs=2, join=True)
    for rank in range(2):
        assert torch.load(tmp_path / f"{rank}.pt").tolist() == GOLDEN


# ---------------------------------------------------------------------- the planner
def _tables(k=2):
    from torch_deepsmote.knn import class_neighbors

    return class_neighbors(LATENTS, LABELS, k, knn="torch")


def test_plans_draw_their_bases_among_the_allowed_rows_only():
    neighbors, n_neighbors = _tables()
    danger = torch.tensor(GOLDEN)
    for draw in (plan_synthetic, plan_transfer):
        plan = draw({0: 30, 1: 40}, LABELS, neighbors, n_neighbors, _gen(), bases=danger)
        assert danger[plan.base].all()
        assert set(plan.base.tolist()) == {5, 6, 8, 9}  # every danger row is drawn
        assert (LABELS[plan.base] == plan.labels).all()


def test_a_class_with_no_allowed_row_draws_from_all_its_rows():
    neighbors, n_neighbors = _tables()
    only_class_0 = torch.tensor(GOLDEN) & (LABELS == 0)
    plan = plan_synthetic({1: 50}, LABELS, neighbors, n_neighbors, _gen(), bases=only_class_0)
    every = plan_synthetic({1: 50}, LABELS, neighbors, n_neighbors, _gen())
    assert torch.equal(plan.base, every.base) and torch.equal(plan.lam, every.lam)


def test_allowing_every_row_leaves_the_plans_bit_identical():
    neighbors, n_neighbors = _tables()
    everyone = torch.ones(16, dtype=torch.bool)
    for draw in (plan_synthetic, plan_transfer):
        plain = draw({0: 9, 1: 7}, LABELS, neighbors, n_neighbors, _gen(), (0.0, 1.0))
        masked = draw({0: 9, 1: 7}, LABELS, neighbors, n_neighbors, _gen(), bases=everyone)
        for name in ("labels", "base", "neighbor", "lam", "anchors"):
            assert torch.equal(getattr(plain, name), getattr(masked, name)), name


@pytest.mark.parametrize("bases", [torch.ones(15, dtype=torch.bool), torch.ones(16)])
def test_a_bad_bases_mask_is_refused(bases):
    neighbors, n_neighbors = _tables()
    with pytest.raises(ValueError, match="`bases` should be None or a bool tensor"):
        plan_synthetic({1: 2}, LABELS, neighbors, n_neighbors, _gen(), bases=bases)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


# ---------------------------------------------------------------------- the estimator
@pytest.fixture(scope="module")
def models(fitted):
    """The session's tiny model, and the same with borderline bases (m=5: 6 of the 24
    codes of class 1 are in danger, none of class 2's 8)."""
    borderline = copy.deepcopy(fitted).set_params(base_selection="borderline", m_neighbors=5)
    return fitted, borderline.refit_neighbors()


def test_borderline_bases_are_the_codes_in_danger_and_the_rest_unchanged(models):
    plain, model = models
    danger = model.synthesizer_.danger
    assert torch.equal(danger, in_danger(model.latents_, model.labels_, 5, knn="torch"))
    assert 0 < int(danger[model.labels_ == 1].sum()) < int((model.labels_ == 1).sum())
    assert torch.equal(model.neighbors_, plain.neighbors_)  # the same SMOTE neighbours
    plan = model.plan({1: 60}, random_state=0)
    assert danger[plan.base].all() and (model.labels_[plan.base] == 1).all()
    assert (model.labels_[plan.neighbor] == 1).all()
    z = model.latents_
    expected = z[plan.base] + plan.lam[:, None] * (z[plan.neighbor] - z[plan.base])
    torch.testing.assert_close(model.plan_codes(plan), expected)


def test_a_class_without_danger_falls_back_to_all_its_codes_and_says_so_once(models):
    plain, model = models
    model = copy.deepcopy(model)
    with pytest.warns(UserWarning, match="Class 2 has no code in danger") as record:
        model.plan({1: 5, 2: 20}, random_state=3)
        alone = model.plan({2: 20}, random_state=3)
    assert len(record) == 1  # once, and not for class 1, which has codes in danger
    assert "use all of its rows as bases" in str(record[0].message)
    expected = plain.plan({2: 20}, random_state=3)
    assert torch.equal(alone.base, expected.base) and torch.equal(alone.lam, expected.lam)


def test_base_selection_all_leaves_the_plans_as_they_were(models):
    plain, model = models
    back = copy.deepcopy(model).set_params(base_selection="all").refit_neighbors()
    assert back.synthesizer_.danger is None
    for name in ("labels", "base", "neighbor", "lam"):
        assert torch.equal(
            getattr(back.plan(random_state=7), name), getattr(plain.plan(random_state=7), name)
        )


@pytest.mark.parametrize("interpolation", ["enemy", "transfer"])
def test_borderline_bases_work_with_the_other_interpolations(models, interpolation):
    _, model = models
    model = copy.deepcopy(model).set_params(interpolation=interpolation).refit_neighbors()
    plan = model.plan({1: 40}, random_state=0)
    assert model.synthesizer_.danger[plan.base].all()
    if interpolation == "enemy":
        assert (model.labels_[plan.neighbor] != 1).all()
    else:
        assert (model.labels_[plan.anchor] != 1).all()


def test_a_saved_borderline_model_plans_the_same(models, tmp_path):
    _, model = models
    model.save(tmp_path / "model.pt")
    loaded = DeepSMOTE.load(tmp_path / "model.pt", device="cpu")
    assert loaded.base_selection == "borderline" and loaded.m_neighbors == 5
    assert torch.equal(loaded.synthesizer_.danger, model.synthesizer_.danger)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # class 2's fallback
        a, b = loaded.plan(random_state=1), model.plan(random_state=1)
    assert torch.equal(a.base, b.base) and torch.equal(a.lam, b.lam)


def test_a_cache_rebuilds_the_danger_rows_without_training_and_keeps_them(tmp_path, monkeypatch):
    X, y = make_shapes((40, 16, 6))
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    fit = dict(TINY, max_epochs=1, random_state=0, knn="torch", m_neighbors=10)
    first = OversampledDataset(base, cache_dir=tmp_path, **fit)
    monkeypatch.setattr(
        fitting_module, "fit_autoencoder", lambda *a, **k: pytest.fail("trained again")
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a class with no code in danger, if any
        border = OversampledDataset(base, cache_dir=tmp_path, base_selection="borderline", **fit)
        again = OversampledDataset(base, cache_dir=tmp_path, base_selection="borderline", **fit)
    model = border.model
    assert torch.equal(model.latents_, first.model.latents_)
    danger = in_danger(model.latents_, model.labels_, 10, knn="torch")
    assert torch.equal(border.synthesizer.danger, danger)
    assert torch.equal(again.synthesizer.danger, danger)  # read from the cache
    bases = [border.origin(i)["base"] for i in range(border.n_real, len(border))]
    assert [again.origin(i)["base"] for i in range(again.n_real, len(again))] == bases
    with_danger = set(model.labels_[danger].tolist())
    assert with_danger  # the rule finds some, and every base of those classes is one of them
    assert all(bool(danger[b]) for b in bases if int(model.labels_[b]) in with_danger)


def test_the_index_fingerprint_only_counts_m_neighbors_for_borderline():
    model = DeepSMOTE(knn="torch")
    plain = model.index_fingerprint()
    assert model.set_params(m_neighbors=3).index_fingerprint() == plain
    border = model.set_params(base_selection="borderline").index_fingerprint()
    assert border != plain
    assert model.set_params(m_neighbors=4).index_fingerprint() != border


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"base_selection": "edge"}, ValueError, "base_selection='edge'"),
        ({"base_selection": "borderline-1"}, ValueError, "`base_selection` should be one of"),
        ({"m_neighbors": 0}, ValueError, "m_neighbors=0"),
        ({"m_neighbors": True}, TypeError, "m_neighbors=True"),
    ],
)
def test_bad_borderline_options_fail_at_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        DeepSMOTE(**kwargs)
    with pytest.raises(exc, match=match):
        DeepSMOTE().set_params(**kwargs)


def test_the_options_pass_through_get_params_and_clone():
    from sklearn.base import clone

    model = DeepSMOTE(base_selection="borderline", m_neighbors=7)
    params = clone(model).get_params()
    assert params["base_selection"] == "borderline" and params["m_neighbors"] == 7
    assert model.training_fingerprint() == DeepSMOTE().training_fingerprint()
