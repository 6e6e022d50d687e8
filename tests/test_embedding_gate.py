"""benchmarks/embedding_gate.py: the feature-space gate's sets, EOS's draw and the head."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmarks import classify_methods as cm
from benchmarks import embedding_gate as gate


def test_split_head_gives_the_penultimate_features_and_the_last_linear():
    torch.manual_seed(0)
    model = cm.make_classifier("cnn-fc", 1, 10).eval()
    body, head = gate.split_head(model)
    x = torch.rand(5, 1, 28, 28)
    feats = gate.features_of(body, x, batch_size=2)
    assert feats.shape == (5, 128) and head is model.net[-1]
    with torch.no_grad():
        assert torch.allclose(head(feats), model(x), atol=1e-6)
    with pytest.raises(TypeError, match="nn.Sequential ending in nn.Linear"):
        gate.split_head(torch.nn.Linear(3, 2))


def test_oracle_rows_fill_every_class_to_the_largest_from_its_own_pool_rows():
    y_pool = np.repeat(np.arange(3), 10)
    counts = np.array([8, 5, 2])
    rows = gate.oracle_rows(y_pool, counts, seed=0)
    assert np.bincount(y_pool[rows], minlength=3).tolist() == [0, 3, 6]
    assert len(set(rows)) == len(rows)  # unseen images, each once
    assert (rows == gate.oracle_rows(y_pool, counts, seed=0)).all()
    with pytest.raises(ValueError, match="fewer than"):
        gate.oracle_rows(y_pool, np.array([20, 5, 2]), seed=0)


def test_eos_steps_from_bases_with_an_enemy_towards_that_enemy_keeping_the_label():
    # Class 0 (the majority): a grid in [0, 1] x [0, 1.5]; class 1: two rows just right of
    # it (an enemy among their 2 neighbours) and a tight cluster far away (none); class 2:
    # a tight cluster far away, so no row of it has an enemy.
    grid = [[x, y] for x in (0.0, 0.5, 1.0) for y in (0.0, 0.5, 1.0, 1.5)]
    feats = np.array(
        grid
        + [[1.5, 0.5], [1.6, 0.4], [30, 30], [30.2, 30.1], [30.1, 30.2]]
        + [[-50, 0], [-50.1, 0], [-50, 0.1]],
        dtype=np.float32,
    )
    labels = np.array([0] * 12 + [1] * 5 + [2] * 3)
    with pytest.raises(RuntimeError, match="class 2 has no row with an enemy"):
        gate.eos_features(feats, labels, k=2, rng=np.random.default_rng(0))
    feats, labels = feats[:17], labels[:17]
    x_new, y_new = gate.eos_features(feats, labels, k=2, rng=np.random.default_rng(0))
    assert x_new.dtype == np.float32 and y_new.tolist() == [1] * 7
    # Each new row lies on a segment from a near class-1 row (12 or 13) to a class-0 row.
    for x in x_new:
        on_segment = [
            abs(np.linalg.det(np.stack([feats[e] - feats[b], x - feats[b]]))) < 1e-5
            and 0 <= np.dot(x - feats[b], feats[e] - feats[b]) <= np.sum((feats[e] - feats[b]) ** 2)
            for b in (12, 13)
            for e in range(12)
        ]
        assert any(on_segment)
    assert len({tuple(x) for x in x_new}) == 7  # r drawn per row
    # Seeded.
    again, _ = gate.eos_features(feats, labels, k=2, rng=np.random.default_rng(0))
    assert np.array_equal(x_new, again)
    # The published code's lookup: the neighbour one rank nearer than the drawn enemy. Row
    # 12's neighbours are 13 (a friend), then an enemy: its steps go towards 13; row 13's
    # nearest is 12, then an enemy: towards 12. So every new row lies between the two.
    x_code, y_code = gate.eos_features(
        feats, labels, k=2, rng=np.random.default_rng(0), published_indexing=True
    )
    assert y_code.tolist() == [1] * 7
    low, high = feats[[12, 13]].min(0), feats[[12, 13]].max(0)
    assert ((x_code >= low - 1e-6) & (x_code <= high + 1e-6)).all()


def test_fit_head_learns_a_separable_set_with_balanced_draws():
    gen = torch.Generator().manual_seed(0)
    centres = torch.tensor([[3.0, 0], [-3, 0], [0, 3]])
    labels = torch.tensor([0] * 200 + [1] * 20 + [2] * 5)
    feats = centres[labels] + 0.5 * torch.randn(len(labels), 2, generator=gen)
    head = gate.fit_head(feats, labels, 3, steps=300, batch_size=32, lr=1e-2, seed=0)
    with torch.no_grad():
        recall = [(head(feats[labels == c]).argmax(1) == c).float().mean() for c in range(3)]
    assert min(recall) == 1.0
    again = gate.fit_head(feats, labels, 3, steps=300, batch_size=32, lr=1e-2, seed=0)
    assert torch.equal(again.weight, head.weight)


def test_the_verdict_stops_when_the_oracle_head_gains_too_little():
    def entry(method, seed, own, crt, oracle, eos):
        scores = {"own": own, "crt": crt, "oracle": oracle, "eos": eos, "eos_code": crt}
        return {
            "method": method,
            "seed": seed,
            "heads": {h: [{"balanced": {"acsa": v}}] for h, v in scores.items()},
        }

    v = gate.verdict(
        [
            entry("cmo_la", 0, 88.9, 88.7, 89.1, 88.8),  # oracle +0.2 over own: too little
            entry("cmo_la", 1, 88.7, 88.8, 89.4, 89.1),  # +0.6; eos +0.3 over crt
            entry("logit_adj", 0, 88.5, 88.8, 90.0, 89.1),
            entry("logit_adj", 1, 88.7, 88.9, 90.3, 89.0),
        ]
    )
    assert v["cmo_la"]["oracle_gain"] == pytest.approx([0.2, 0.6])
    assert v["cmo_la"]["oracle_passes"] and v["cmo_la"]["eos_passes"]  # mean +0.4
    assert v["logit_adj"]["oracle_passes"] and v["logit_adj"]["eos_gain"] == pytest.approx(
        [0.3, 0.1]
    )
    low = gate.verdict([entry("cmo_la", 0, 88.9, 88.7, 89.0, 88.9)])["cmo_la"]
    assert not low["oracle_passes"] and not low["passes"]
