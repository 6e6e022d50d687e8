"""The verdicts of the quality report can fail: the split test, reconstruction, label fidelity,
too few images, and the reading of the variety numbers beside real images'."""

import copy
import json

import numpy as np
import pytest
import torch
from helpers import make_shapes

from torch_deepsmote import DeepSMOTE
from torch_deepsmote.app.report import format_table, write_report
from torch_deepsmote.knn import class_neighbors
from torch_deepsmote.quality import assess, hold_out, split_synthesizer
from torch_deepsmote.verdicts import (
    LABEL_FIDELITY_MIN,
    MIN_REAL,
    RECONSTRUCTION_RATIO_MAX,
    min_real,
    variety,
    verdict,
)

# A small autoencoder that learns 8 x 8 shapes in a few seconds: a tenfold learning rate.
TRAINED = dict(latent_dim=16, hidden_channels=8, batch_size=16, lr=2e-3, progress=False)
COUNTS = (80, 40, 10)  # stripes, stripes the other way, squares: too few to judge


@pytest.fixture(scope="module")
def shapes8():
    return make_shapes(COUNTS, size=8)


@pytest.fixture(scope="module")
def trained(shapes8):
    X, y = shapes8
    return DeepSMOTE(random_state=0, knn="torch", max_epochs=8, **TRAINED).fit(X, y)


def _table(model, X, **kwargs):
    return {row["label"]: row for row in assess(model, X, **kwargs).table}


def test_a_trained_autoencoder_gets_a_good_verdict(trained, shapes8):
    X, _ = shapes8
    row = _table(trained, X)[1]
    assert row["verdict"] == "good", row["reading"]
    assert row["reading"].startswith("faithful and varied")
    assert row["reconstruction_ratio"] <= RECONSTRUCTION_RATIO_MAX
    assert row["label_fidelity"] >= LABEL_FIDELITY_MIN
    # The split: 20 held out, 20 parents, as many synthetic images as the class gets (40).
    assert (row["held_out"], row["parents"], row["split_synthetic"]) == (20, 20, 40)
    assert _table(trained, X)[0]["verdict"] is None  # the majority gets no synthetic image


def test_a_class_below_the_stated_count_is_too_few_to_judge(trained, shapes8):
    X, _ = shapes8
    row = _table(trained, X)[2]
    assert row["real"] == 10 < MIN_REAL and row["synthetic"] == 70
    assert row["verdict"] == "too few"
    assert row["reading"].startswith(
        f"too few images to judge: 10 real images, fewer than {MIN_REAL}"
    )
    # No automatic 100 %: five held-out images are too few for balls of k = 5 neighbours.
    assert row["precision"] is None and row["coverage"] is None


def test_an_untrained_autoencoder_is_not_called_faithful(shapes8):
    X, y = shapes8
    model = DeepSMOTE(random_state=0, knn="torch", max_epochs=1, **TRAINED).fit(X, y)
    row = _table(model, X)[1]
    assert row["reconstruction_ratio"] > RECONSTRUCTION_RATIO_MAX
    assert row["verdict"] == "not reconstructed" and row["reading"].startswith("not faithful")


def test_a_random_decoder_is_not_called_faithful(trained, shapes8):
    X, _ = shapes8
    model = copy.deepcopy(trained)
    torch.manual_seed(0)
    for module in model.decoder_.modules():
        if hasattr(module, "reset_parameters"):
            module.reset_parameters()
    model.refit_residuals(X)  # x - decode(encode(x)) of the new decoder
    row = _table(model, X)[1]
    assert row["verdict"] == "not reconstructed", row["reading"]


def test_shuffled_labels_fail_the_label_fidelity(shapes8):
    X, y = shapes8
    shuffled = np.random.default_rng(0).permutation(y)
    model = DeepSMOTE(random_state=0, knn="torch", max_epochs=8, **TRAINED).fit(X, shuffled)
    row = _table(model, X)[1]
    assert row["reconstruction_ratio"] <= RECONSTRUCTION_RATIO_MAX  # it does reconstruct
    assert row["label_fidelity"] < LABEL_FIDELITY_MIN
    assert row["verdict"] == "labels not kept" and row["reading"].startswith("not faithful")


# ---------------------------------------------------------------------- the split itself
def test_hold_out_takes_half_of_each_class_at_random():
    labels = torch.tensor([0] * 9 + [1] * 4 + [2])
    held = hold_out(labels, torch.Generator().manual_seed(0))
    assert [int(held[labels == c].sum()) for c in range(3)] == [4, 2, 0]
    other = hold_out(labels, torch.Generator().manual_seed(1))
    assert not torch.equal(held, other)
    assert torch.equal(held, hold_out(labels, torch.Generator().manual_seed(0)))


def test_split_synthetic_images_come_from_the_parents_alone(trained):
    labels = trained.labels_
    held = hold_out(labels, torch.Generator().manual_seed(0))
    parents = torch.nonzero(~held).flatten()
    synthesizer = split_synthesizer(trained, parents)
    # Its neighbour table is the library's own search among the parents' codes only.
    with pytest.warns(UserWarning, match="Class 2 has 5 samples"):
        expected, n_expected = class_neighbors(
            trained.latents_[parents], labels[parents], 5, "torch"
        )
    assert torch.equal(synthesizer.neighbors, expected) and synthesizer.n_neighbors == n_expected
    plan = synthesizer.plan({1: 50, 2: 20}, torch.Generator().manual_seed(0))
    for rows in (plan.base, plan.neighbor):  # rows of `parents`: never a held-out image
        assert not held[parents[rows]].any()
        assert torch.equal(labels[parents[rows]], plan.labels)
    # Its codes are the parents' codes, stepped by SMOTE's rule.
    base, neighbor = trained.latents_[parents[plan.base]], trained.latents_[parents[plan.neighbor]]
    codes = base + plan.lam[:, None] * (neighbor - base)
    assert torch.allclose(synthesizer.codes(plan), codes, atol=1e-6)


def test_the_split_numbers_are_seeded(trained, shapes8):
    X, _ = shapes8
    once, again, other = (_table(trained, X, random_state=s)[1] for s in (0, 0, 1))
    assert once == again and once != other
    assert 0 <= once["parents_coverage"] <= 1 and once["parents_density"] > 0


# ---------------------------------------------------------------------- the rule
def _scores(precision, density, coverage):
    return {"precision": precision, "recall": 0.5, "density": density, "coverage": coverage}


@pytest.mark.parametrize(
    ("synthetic", "parents", "reading"),
    [
        # Real images reach 90 %: synthetic ones reaching 80 % are as varied.
        ((0.9, 1.1, 0.8), (0.9, 1.0, 0.9), "as varied as real images"),
        # Off the data: a third of the precision real images have.
        ((0.3, 0.4, 0.5), (0.9, 1.0, 0.9), "off the data"),
        # Far fewer held-out neighbourhoods reached than real images reach, crowding.
        ((1.0, 1.6, 0.5), (0.9, 1.0, 0.95), "right but easy"),
        ((1.0, 0.8, 0.5), (0.9, 1.0, 0.95), "narrow"),
        ((0.9, 0.3, 0.9), (0.9, 1.0, 0.9), "spread thin"),
        # Crowding: 1.4 times the real images' density, the same coverage.
        ((1.0, 1.4, 0.9), (1.0, 1.0, 0.9), "right but easy"),
        # 60 % coverage is narrow where real images reach 95 %, fine where they reach 70 %.
        ((1.0, 0.9, 0.6), (1.0, 1.0, 0.7), "as varied as real images"),
    ],
)
def test_the_variety_reading_is_judged_beside_the_real_images(synthetic, parents, reading):
    words = variety(_scores(*synthetic), _scores(*parents))
    assert words.startswith(reading)
    assert "real images: precision" in words  # the numbers it rests on


def test_the_verdict_takes_the_first_failure_in_order():
    good = _scores(0.9, 1.0, 0.9)
    row = {"synthetic": 10, "real": 100, "reconstruction_ratio": 0.3, "label_fidelity": 0.95}
    row.update({**good, **{f"parents_{k}": v for k, v in good.items()}})
    row["variety"] = variety(good, good)
    assert verdict(row)[0] == "good"
    assert verdict({**row, "label_fidelity": 0.5, "parents_label_fidelity": 0.9})[0] == (
        "labels not kept"
    )
    assert verdict({**row, "reconstruction_ratio": 1.2, "label_fidelity": 0.5})[0] == (
        "not reconstructed"
    )
    assert verdict({**row, "real": 12, "reconstruction_ratio": 1.2})[0] == "too few"
    assert verdict({**row, "synthetic": 0}) is None
    # A features space that reads otherwise decides.
    off = _scores(0.1, 0.1, 0.1)
    features = {f"features_{k}": v for k, v in off.items()}
    features.update({f"features_parents_{k}": v for k, v in good.items()})
    features["features_variety"] = variety(off, good)
    key, words = verdict({**row, **features})
    assert key == "off" and "in the classifier's features" in words
    assert min_real(5) == MIN_REAL and min_real(20) == 42


# ---------------------------------------------------------------------- the report
def test_the_report_prints_each_verdict_and_keeps_it_in_its_json(trained, shapes8, tmp_path):
    X, _ = shapes8
    names = {0: "rows", 1: "columns", 2: "squares"}
    report = write_report(tmp_path, trained, X, names, n_show=2)
    text = format_table(report)
    assert "columns: faithful and varied" in text
    assert "squares: too few images to judge: 10 real images" in text
    assert "rows:" not in text  # the majority gets no new image: nothing to judge
    saved = {
        row["label"]: row
        for row in json.loads((tmp_path / "report.json").read_text())["quality"]["classes"]
    }
    assert [saved[c]["verdict"] for c in range(3)] == [None, "good", "too few"]
    assert saved[1]["reading"].startswith("faithful and varied")
    assert text.splitlines()[0].split()[-5:] == ["fidelity", "prec", "recall", "density", "cover"]
