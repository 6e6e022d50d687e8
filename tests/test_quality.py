"""Per-class quality numbers: nearest distances, near copies, label fidelity, the PCA view."""

import json

import numpy as np
import pytest
import torch
from helpers import TINY, make_shapes

from torch_deepsmote import DeepSMOTE
from torch_deepsmote.app.report import format_table
from torch_deepsmote.quality import assess, latent_pca, nearest, prdc, variety


def test_nearest_matches_a_brute_force_search_and_leaves_one_out():
    generator = torch.Generator().manual_seed(0)
    query, reference = (
        torch.randn(50, 3, generator=generator),
        torch.randn(30, 3, generator=generator),
    )
    distances, indices = nearest(query, reference, chunk_size=7)
    full = torch.cdist(query, reference)
    assert torch.equal(indices, full.argmin(1)) and torch.allclose(distances, full.min(1).values)
    distances, indices = nearest(reference, reference, exclude=torch.arange(30), chunk_size=4)
    assert not (indices == torch.arange(30)).any() and (distances > 0).all()
    assert nearest(reference[:1], reference[:1], exclude=torch.tensor([0]))[1].tolist() == [-1]


def test_latent_pca_projects_on_the_widest_axes_with_fixed_signs():
    generator = torch.Generator().manual_seed(1)
    codes = torch.randn(40, 5, generator=generator) * torch.tensor([5.0, 3.0, 1.0, 1.0, 1.0])
    real, again = latent_pca(codes, codes)
    assert real.shape == (40, 2) and torch.allclose(real, again)
    assert torch.allclose(real.mean(0), torch.zeros(2), atol=1e-4)
    for axis in range(2):  # the widest input axes, each with a positive sign
        assert torch.corrcoef(torch.stack([real[:, axis], codes[:, axis]]))[0, 1] > 0.9


@pytest.fixture(scope="module")
def single():
    """Two well separated classes and a class of one image."""
    X, y = make_shapes((30, 12, 1), size=12)
    with pytest.warns(UserWarning):
        model = DeepSMOTE(random_state=0, knn="torch", **{**TINY, "max_epochs": 1}).fit(X, y)
    return model, X


def test_a_class_of_one_image_gives_only_near_copies(single):
    model, X = single
    table = {row["label"]: row for row in assess(model, X).table}
    assert table[2]["real"] == 1 and table[2]["synthetic"] == 29
    assert table[2]["near_copy_share"] == 1.0 and table[2]["real_nearest_rms"] is None
    assert table[0]["synthetic"] == 0 and table[0]["near_copy_share"] is None


def test_well_separated_classes_keep_their_label_in_latent_space(single):
    model, X = single
    result = assess(model, X, n_new={0: 20, 1: 20, 2: 5}, max_per_class=10, random_state=3)
    table = {row["label"]: row for row in result.table}
    assert [table[c]["measured_synthetic"] for c in range(3)] == [10, 10, 5]
    assert table[0]["label_fidelity"] >= 0.8 and table[1]["label_fidelity"] >= 0.8
    assert table[0]["measured_real"] == 10 and table[0]["real"] == 30
    assert all(0 <= table[c]["reconstruction_rms"] <= 1 for c in range(3))
    assert result.synthetic_codes.shape == (25, model.latents_.shape[1])
    assert (
        assess(model, X, n_new={0: 20, 1: 20, 2: 5}, max_per_class=10, random_state=3).table
        == result.table
    )


def test_assess_refuses_other_images(single):
    model, X = single
    with pytest.raises(ValueError, match="fitted on"):
        assess(model, np.flip(X, 0).copy())


# ---------------------------------------------------------------------- variety (PRDC)
def _cloud(n, seed=0, dims=4):
    return torch.randn(n, dims, generator=torch.Generator().manual_seed(seed))


def test_prdc_of_copies_far_points_and_a_crowd():
    real = _cloud(200)
    copies = prdc(real, real.clone())
    assert copies["precision"] == copies["recall"] == copies["coverage"] == 1.0
    assert copies["density"] == pytest.approx(1.0, abs=0.15)
    # The variety alone: "faithful" is the verdict's word, once reconstruction and labels pass.
    assert variety(copies).startswith("as varied as real images")
    far = prdc(real, real + 100)
    assert far["precision"] == far["density"] == far["coverage"] == 0.0
    assert variety(far).startswith("off the data")
    # Synthetic points crowded where the real ones are densest: real-looking, dense, and
    # covering little of the real spread.
    densest = int(torch.cdist(real, real).kthvalue(6, dim=1).values.argmin())
    crowd = real[densest] + 0.01 * _cloud(120, seed=1)
    easy = prdc(real, crowd)
    assert easy["precision"] == 1.0 and easy["density"] > 1.2 and easy["coverage"] < 0.1
    assert variety(easy).startswith("right but easy")
    assert prdc(real[:5], crowd) is None  # k = 5 needs more than 5 real points


def test_prdc_agrees_with_the_prdc_package():
    reference = pytest.importorskip("prdc")
    real, fake = _cloud(150), 0.8 * _cloud(120, seed=2) + 0.3
    expected = reference.compute_prdc(real.numpy(), fake.numpy(), nearest_k=5)
    mine = prdc(real, fake, k=5)
    for name in ("precision", "recall", "density", "coverage"):
        assert mine[name] == pytest.approx(float(expected[name]), abs=1e-6), name


def test_assess_reports_variety_in_code_space_and_in_a_given_feature_space(fitted, shapes):
    X, _ = shapes
    flat = lambda images: torch.as_tensor(images).float().flatten(1)  # noqa: E731
    result = assess(fitted, X, features=flat, max_per_class=200)
    # Measured where the split test leaves more than k = 5 images on each side: held out,
    # and parents (the class of 8 images gets no numbers, not an automatic 100 %).
    measured = [
        row for row in result.table if row["synthetic"] and min(row["held_out"], row["parents"]) > 5
    ]
    assert measured and all(row["precision"] is None for row in result.table if row not in measured)
    assert result.table[2]["real"] == 8 and result.table[2]["precision"] is None
    for row in measured:
        for prefix in ("", "features_"):
            values = [row[prefix + name] for name in ("precision", "recall", "coverage")]
            assert all(0 <= v <= 1 for v in values)
            assert row[prefix + "density"] >= 0 and isinstance(row[prefix + "variety"], str)
    report = {
        "classes": [{"label": r["label"], "name": str(r["label"])} for r in result.table],
        "quality": result.to_dict(),
    }
    text = format_table(report)
    assert "prec" in text and "cover" in text and measured[0]["variety"] in text


def test_assess_measures_a_model_fitted_on_pil_items(shapes):
    from PIL import Image

    from torch_deepsmote.reading import read_dataset

    X, y = shapes
    items = [(Image.fromarray(image[0]), int(label)) for image, label in zip(X, y)]
    model = DeepSMOTE(random_state=0, knn="torch", **TINY).fit_dataset(items)
    result = assess(model, read_dataset(items).images, max_per_class=50)
    assert [row["label"] for row in result.table] == [0, 1, 2]
    assert sum(row["measured_synthetic"] for row in result.table) == 36 + 50


def test_prdc_in_chunks_is_the_same_as_in_one_block_and_as_the_prdc_package():
    reference = pytest.importorskip("prdc")
    for seed, (n, m, k) in enumerate([(60, 40, 3), (150, 200, 5), (90, 90, 10)]):
        real, fake = _cloud(n, seed=10 + seed, dims=6), 1.3 * _cloud(m, seed=20 + seed, dims=6)
        whole, chunked = prdc(real, fake, k), prdc(real, fake, k, chunk_size=7)
        assert whole == chunked
        expected = reference.compute_prdc(real.numpy(), fake.numpy(), nearest_k=k)
        for name in ("precision", "recall", "density", "coverage"):
            assert whole[name] == pytest.approx(float(expected[name]), abs=1e-9), (name, k)


def test_prdc_of_a_few_copies_of_outlying_real_points_is_narrow():
    real = _cloud(300, dims=2)
    outer = real[real.norm(dim=1).argsort(descending=True)[:10]]  # the sparse rim
    scores = prdc(real, outer.clone())
    assert scores["precision"] == 1.0 and scores["coverage"] < 0.2 and scores["density"] < 1
    assert variety(scores).startswith("narrow")


@pytest.mark.parametrize(
    ("precision", "density", "coverage", "reading"),
    [
        (0.3, 1.5, 0.9, "off the data"),  # precision first: nothing else matters
        (0.9, 1.6, 0.2, "right but easy"),  # dense, little of the spread
        (0.9, 0.6, 0.3, "narrow"),
        (0.9, 0.3, 0.8, "spread thin"),  # the reverse: the spread, from its sparse parts
        (0.9, 1.0, 0.9, "as varied as real images"),
    ],
)
def test_the_reading_in_words_follows_precision_then_coverage_then_density(
    precision, density, coverage, reading
):
    scores = {"precision": precision, "recall": 0.5, "density": density, "coverage": coverage}
    assert variety(scores).startswith(reading)
    assert variety(None) is None


def test_prdc_refuses_bad_arguments_by_name():
    real = _cloud(20)
    with pytest.raises(ValueError, match="`k` should be a positive integer, but got k=0"):
        prdc(real, real, k=0)
    with pytest.raises(TypeError, match="`chunk_size` should be a positive integer"):
        prdc(real, real, chunk_size=2.5)


def test_features_are_computed_in_bounded_batches_and_checked(fitted, shapes, monkeypatch):
    import torch_deepsmote.holdout as holdout

    X, _ = shapes
    sizes = []

    def flat(images):
        sizes.append(len(images))
        return torch.as_tensor(images).float().flatten(1)

    whole = assess(fitted, X, features=flat, max_per_class=50)
    monkeypatch.setattr(holdout, "_FEATURE_BATCH", 7)
    sizes.clear()
    batched = assess(fitted, X, features=flat, max_per_class=50)
    assert sizes and max(sizes) <= 7
    assert batched.table == whole.table
    with pytest.raises(ValueError, match=r"`features` should map a batch of B images"):
        assess(fitted, X, features=lambda images: torch.zeros(3, 2), max_per_class=50)
    with pytest.raises(TypeError, match=r"`features` should be None or a function"):
        assess(fitted, X, features="resnet")


def test_the_report_carries_the_four_numbers_per_class_in_both_spaces(fitted, shapes, tmp_path):
    from torch_deepsmote.app.report import write_report

    X, _ = shapes

    def flat(images):
        return torch.as_tensor(images).float().flatten(1)

    report = write_report(tmp_path, fitted, X, features=flat, max_per_class=60, k=3)
    saved = json.loads((tmp_path / "report.json").read_text())
    assert saved["settings"]["k"] == 3 and saved["settings"]["features"].endswith("flat")
    rows = [row for row in saved["quality"]["classes"] if row["measured_synthetic"] > 3]
    assert rows
    for row in rows:
        for name in ("precision", "recall", "density", "coverage", "variety"):
            assert row[name] is not None and row["features_" + name] is not None
    text = format_table(report)
    header = text.splitlines()[0].split()
    assert header[-4:] == ["prec", "recall", "density", "cover"]
    assert "in the classifier's features" in text and rows[0]["features_variety"] in text
