import copy
from collections import Counter

import numpy as np
import pytest
import torch
from helpers import FIT, TINY, make_shapes

from torch_deepsmote import DeepSMOTE, SMOTEPlan


def fit_resample(X, y, **kwargs):
    return DeepSMOTE(**{"random_state": 0, "knn": "torch", **TINY, **kwargs}).fit_resample(X, y)


def test_fit_resample_puts_originals_first_then_fills_minorities(shapes):
    X, y = shapes
    X_res, y_res = fit_resample(X, y)
    assert isinstance(X_res, np.ndarray) and X_res.dtype == np.uint8
    np.testing.assert_array_equal(X_res[: len(X)], X)
    np.testing.assert_array_equal(y_res[: len(y)], y)
    assert np.bincount(y_res).tolist() == [60, 60, 60]
    assert y_res.dtype == y.dtype
    # New images are grouped by class in sorted order.
    assert y_res[len(y) :].tolist() == [1] * 36 + [2] * 52


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_images_in_unit_range_keep_dtype_and_range(dtype):
    X, y = make_shapes((30, 10), dtype=dtype)
    X_res, _ = fit_resample(X, y)
    assert X_res.dtype == dtype
    new = X_res[len(X) :]
    assert new.min() >= 0 and new.max() <= 1


def test_normalised_images_keep_their_value_range():
    X, y = make_shapes((30, 10), dtype=np.float32)
    X = (X - 0.3) / 0.2  # a Normalize(mean=0.3, std=0.2) style range
    model = DeepSMOTE(random_state=0, knn="torch", **TINY)
    X_res, _ = model.fit_resample(X, y)
    new = X_res[len(X) :]
    assert new.min() >= X.min() - 1e-5 and new.max() <= X.max() + 1e-5
    # The data's own range maps onto the decoder's [-1, 1], not [0, 1].
    fmt = model.image_format_
    assert (fmt.low, fmt.high) == pytest.approx((float(X.min()), float(X.max())))
    ends = fmt.from_unit(torch.tensor([-1.0, 0.0, 1.0]))
    torch.testing.assert_close(ends, torch.tensor([X.min(), (X.min() + X.max()) / 2, X.max()]))
    torch.testing.assert_close(
        fmt.to_unit(torch.from_numpy(X)).aminmax(), (torch.tensor(-1.0), torch.tensor(1.0))
    )


def test_channel_less_images_and_tensors_keep_their_form():
    X, y = make_shapes((30, 10))
    X_res, y_res = fit_resample(torch.from_numpy(X[:, 0]), torch.from_numpy(y))
    assert isinstance(X_res, torch.Tensor) and X_res.shape == (60, 16, 16)
    assert X_res.dtype == torch.uint8 and y_res.dtype == torch.int64
    assert torch.equal(X_res[:40], torch.from_numpy(X[:, 0]))


def test_colour_images():
    X, y = make_shapes((30, 10), channels=3)
    X_res, y_res = fit_resample(X, y)
    assert X_res.shape == (60, 3, 16, 16) and X_res.dtype == np.uint8
    np.testing.assert_array_equal(X_res[:40], X)
    assert np.bincount(y_res).tolist() == [30, 30]
    # The grey-in-colour images give grey-ish synthetic ones: channels agree closely.
    new = X_res[40:].astype(int)
    assert np.abs(new - new.mean(axis=1, keepdims=True)).mean() < 0.1 * new.std()


def test_sample_gives_images_of_the_asked_class_reproducibly(fitted):
    a = fitted.sample(5, 2, random_state=7)
    b = fitted.sample(5, 2, random_state=7)
    c = fitted.sample(5, 2, random_state=8)
    assert a.shape == (5, 1, 16, 16) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_sample_without_seed_continues_the_fitted_generator(fitted):
    assert not np.array_equal(fitted.sample(5, 1), fitted.sample(5, 1))
    # Two models fitted with the same random_state draw the same sequence: the draws come
    # from the fitted generator, not from the global RNG (moved on between the two fits).
    X, y = make_shapes((10, 6), size=8)
    one = DeepSMOTE(**FIT).fit(X, y)
    torch.manual_seed(123)
    other = DeepSMOTE(**FIT).fit(X, y)
    draws = [one.sample(4, 1), one.sample(4, 1)]
    assert not np.array_equal(*draws)
    for draw in draws:
        assert draw.shape == (4, 1, 8, 8) and draw.dtype == np.uint8
    for draw in draws:
        np.testing.assert_array_equal(other.sample(4, 1), draw)
    # Each draw is the next plan of that generator, for the asked class only.
    generator = one.fitted_.generator
    state = generator.get_state()
    third = one.sample(4, 1)
    generator.set_state(state)
    plan = one.plan({1: 4})
    assert (plan.labels == 1).all() and (one.labels_[plan.base] == 1).all()
    assert (one.labels_[plan.neighbor] == 1).all()
    np.testing.assert_array_equal(one.synthesize(plan), third)


def test_plan_codes_are_smote_interpolations(fitted):
    plan = fitted.plan({1: 6}, random_state=0)
    z = fitted.plan_codes(plan)
    lam = plan.lam[:, None]
    expected = fitted.latents_[plan.base] + lam * (
        fitted.latents_[plan.neighbor] - fitted.latents_[plan.base]
    )
    torch.testing.assert_close(z, expected)
    assert (fitted.labels_[plan.base] == 1).all() and (fitted.labels_[plan.neighbor] == 1).all()


def test_encode_decode_round_trip_shapes(fitted, shapes):
    X, _ = shapes
    codes = fitted.encode(X[:7])
    assert codes.shape == (7, 8) and codes.dtype == torch.float32
    torch.testing.assert_close(codes, fitted.latents_[:7])
    images = fitted.decode(codes)
    assert images.shape == (7, 1, 16, 16) and images.dtype == np.uint8
    # decode(encode(x)) is x less what the autoencoder loses: its kept residual.
    fmt = fitted.image_format_
    rebuilt = fmt.to_unit(torch.as_tensor(images)) + fitted.residuals_[:7].float()
    original = fmt.to_unit(torch.as_tensor(X[:7]))
    torch.testing.assert_close(rebuilt, original, atol=2 / 255, rtol=0)
    assert not np.array_equal(images, X[:7])  # the decoder alone loses detail


def test_fit_is_reproducible_for_a_seed(shapes):
    X, y = shapes
    a, _ = fit_resample(X, y, random_state=5)
    b, _ = fit_resample(X, y, random_state=5)
    np.testing.assert_array_equal(a, b)


def test_save_and_load_round_trip(fitted, tmp_path):
    path = tmp_path / "model.pt"
    fitted.save(path)
    loaded = DeepSMOTE.load(path, device="cpu")
    assert loaded.image_shape_ == fitted.image_shape_
    assert loaded.sampling_strategy_ == fitted.sampling_strategy_
    assert torch.equal(loaded.latents_, fitted.latents_)
    assert torch.equal(loaded.neighbors_, fitted.neighbors_)
    np.testing.assert_array_equal(
        loaded.sample(6, 2, random_state=1), fitted.sample(6, 2, random_state=1)
    )
    codes = fitted.latents_[:4]
    np.testing.assert_array_equal(loaded.decode(codes), fitted.decode(codes))
    assert not any(p.name.startswith("model.pt.tmp") for p in tmp_path.iterdir())


def test_load_rejects_damaged_and_foreign_files(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a model")
    with pytest.raises(RuntimeError, match="bad.pt"):
        DeepSMOTE.load(bad)
    other = tmp_path / "other.pt"
    torch.save({"format_version": 99}, other)
    with pytest.raises(RuntimeError, match="format version"):
        DeepSMOTE.load(other)
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        DeepSMOTE.load(tmp_path / "missing.pt")


def test_fit_dataset_reads_a_tensor_dataset(shapes):
    from torch.utils.data import TensorDataset

    X, y = shapes
    ds = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    model = DeepSMOTE(random_state=0, **TINY).fit_dataset(ds)
    assert model.image_shape_ == (1, 16, 16)
    assert model.sampling_strategy_ == {0: 0, 1: 36, 2: 52}


def test_sampling_strategy_forms_pass_through(shapes):
    X, y = shapes
    for strategy, counts in [
        ("minority", [60, 24, 60]),
        ("not majority", [60, 60, 60]),
        ({1: 30, 2: 10}, [60, 30, 10]),
        (lambda labels: {2: 20}, [60, 24, 20]),
    ]:
        _, y_res = fit_resample(X, y, sampling_strategy=strategy, max_epochs=1)
        assert np.bincount(y_res).tolist() == counts, strategy


def test_a_class_with_few_images_shrinks_k_with_a_warning():
    X, y = make_shapes((30, 3))
    with pytest.warns(UserWarning, match="k_neighbors|neighbo"):
        model = DeepSMOTE(random_state=0, knn="torch", **TINY).fit(X, y)
    assert model.n_neighbors_[1] == 2


def test_a_class_of_one_image_gets_copies_of_its_code():
    X, y = make_shapes((30, 1))
    with pytest.warns(UserWarning):
        model = DeepSMOTE(random_state=0, knn="torch", **TINY).fit(X, y)
    plan = model.plan()
    z = model.plan_codes(plan)
    assert (plan.labels == 1).sum() == 29
    torch.testing.assert_close(z, model.latents_[y == 1].expand(29, -1))


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda X, y: (X, y[:-1]), ValueError, "one label per image"),
        (lambda X, y: (X, np.zeros_like(y)), ValueError, "two classes"),
        (lambda X, y: (X[:0], y[:0]), ValueError, "at least one image"),
        (lambda X, y: ([X[0], X[1, :, :8]], y[:2]), ValueError, "one shape"),
        (
            lambda X, y: (
                np.where(np.arange(len(X))[:, None, None, None] == 3, np.nan, X / 255.0),
                y,
            ),
            ValueError,
            "image 3 has NaN",
        ),
        (lambda X, y: (np.where(X > 250, np.inf, X / 255.0), y), ValueError, "infinite"),
        (lambda X, y: (X[:, 0, 0], y), ValueError, r"\(N, C, H, W\)"),
        (lambda X, y: ("images", y), TypeError, "numpy array or a torch.Tensor"),
        (lambda X, y: (X, np.array([None] * len(y))), TypeError, "integer or string class"),
        # What was received and the fix, not a parameter the user never passed.
        (lambda X, y: (X[:, :, :4, :4], y), ValueError, r"shape \(92, 1, 4, 4\).*Resize"),
        (
            lambda X, y: (X.transpose(0, 2, 3, 1), y),
            ValueError,
            r"shape \(92, 16, 16, 1\).*permute to \(N, C, H, W\).*X.transpose\(0, 3, 1, 2\)",
        ),
    ],
)
def test_bad_input_gets_a_clear_error(shapes, make, exc, match):
    X, y = shapes
    X_bad, y_bad = make(X, y)
    with pytest.raises(exc, match=match):
        DeepSMOTE(**TINY).fit(X_bad, y_bad)


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(k_neighbors=0), ValueError, "k_neighbors=0"),
        (dict(k_neighbors=-2), ValueError, "k_neighbors=-2"),
        (dict(k_neighbors=2.5), TypeError, "k_neighbors"),
        (dict(sampling_strategy="balanced"), ValueError, "sampling_strategy='balanced'"),
        (dict(knn="annoy"), ValueError, "knn"),
        (dict(random_state=-1), ValueError, "random_state"),
        (dict(device="tpu:9"), ValueError, "device"),
        (dict(latent_dim=0), ValueError, "latent_dim"),
    ],
)
def test_bad_options_fail_at_construction(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        DeepSMOTE(**kwargs)


def test_a_dict_asking_fewer_images_than_a_class_has_is_rejected_before_training(shapes):
    X, y = shapes
    model = DeepSMOTE(sampling_strategy={1: 5}, **TINY)
    with pytest.raises(ValueError, match="1"):
        model.fit(X, y)
    assert not hasattr(model, "encoder_")  # failed before any training


def test_unfitted_model_says_so():
    with pytest.raises(RuntimeError, match="not fitted"):
        DeepSMOTE().sample(3, 0)


def test_unknown_label_and_bad_n_in_sample(fitted):
    with pytest.raises(ValueError, match="label"):
        fitted.sample(3, 9)
    with pytest.raises(ValueError, match="n=0"):
        fitted.sample(0, 1)


def test_encode_rejects_images_of_another_shape(fitted):
    with pytest.raises(ValueError, match="shape"):
        fitted.encode(np.zeros((2, 1, 20, 20), np.uint8))


# ---------------------------------------------------------------------- residual=True
@pytest.fixture(scope="module")
def fitted_residual(shapes):
    X, y = shapes
    return DeepSMOTE(random_state=0, knn="torch", **TINY).fit(X, y)  # residual=True


def test_residuals_are_what_the_autoencoder_loses(fitted_residual, shapes):
    X, _ = shapes
    model = fitted_residual
    assert model.residuals_.shape == X.shape and model.residuals_.dtype == torch.float16
    recon = torch.as_tensor(model.decode(model.latents_)).float() / 127.5 - 1  # uint8 -> unit
    unit = torch.as_tensor(X).float() / 127.5 - 1
    # decode() rounds to uint8, so the two agree to half an 8-bit step plus float16 rounding.
    assert (model.residuals_.float() - (unit - recon)).abs().max() <= 1 / 127.5 + 2e-3


def test_residual_synthesis_puts_back_the_parents_detail(fitted_residual, shapes):
    X, _ = shapes
    model = fitted_residual
    plan = model.plan({2: 5}, random_state=0)
    at_base = SMOTEPlan(plan.labels, plan.base, plan.neighbor, torch.zeros(5))
    # lam = 0: the decoded base code plus the base's own residual is the base image again.
    images = model.synthesize(at_base)
    assert np.abs(images.astype(int) - X[plan.base.numpy()].astype(int)).max() <= 1
    # Any lam: decode(z) + (1 - lam) r_base + lam r_neighbor, clamped.
    z = model.plan_codes(plan)
    r = model.residuals_.float()
    detail = r[plan.base] + plan.lam.view(-1, 1, 1, 1) * (r[plan.neighbor] - r[plan.base])
    decoded = torch.as_tensor(model.decode(z)).float() / 127.5 - 1
    expected = ((decoded + detail).clamp(-1, 1) + 1) * 127.5
    assert (torch.as_tensor(model.synthesize(plan)).float() - expected).abs().max() <= 1.5


def test_without_residual_synthesis_is_the_decoded_code(shapes):
    model = DeepSMOTE(random_state=0, knn="torch", residual=False, **TINY).fit(*shapes)
    assert model.residuals_ is None
    plan = model.plan({1: 4}, random_state=3)
    np.testing.assert_array_equal(model.synthesize(plan), model.decode(model.plan_codes(plan)))


def test_residuals_survive_save_and_load(fitted_residual, tmp_path):
    path = tmp_path / "model.pt"
    fitted_residual.save(path)
    loaded = DeepSMOTE.load(path, device="cpu")
    assert loaded.residual and torch.equal(loaded.residuals_, fitted_residual.residuals_)
    np.testing.assert_array_equal(
        loaded.sample(6, 2, random_state=1), fitted_residual.sample(6, 2, random_state=1)
    )
    state = torch.load(path, weights_only=True)
    del state["residuals"]
    torch.save(state, path)
    with pytest.raises(RuntimeError, match="residual=True but no residuals"):
        DeepSMOTE.load(path)


# ---------------------------------------------------------------------- scikit-learn's contract
def test_init_stores_arguments_as_given_and_clone_copies_them():
    from sklearn.base import clone
    from sklearn.neighbors import NearestNeighbors

    knn = NearestNeighbors(algorithm="brute")
    model = DeepSMOTE(k_neighbors=np.int64(3), knn=knn, device="cpu", lr=1e-3, random_state=4)
    assert model.k_neighbors is not None and type(model.k_neighbors) is np.int64
    assert model.device == "cpu" and model.knn is knn
    copy = clone(model)
    assert copy.get_params(deep=False).keys() == model.get_params(deep=False).keys()
    assert copy.k_neighbors == 3 and copy.lr == 1e-3 and copy.knn is not knn
    assert model.get_params()["knn__algorithm"] == "brute"
    assert "knn__algorithm" not in model.get_params(deep=False)
    model.set_params(k_neighbors=2, knn__algorithm="kd_tree")
    assert model.k_neighbors == 2 and knn.algorithm == "kd_tree"
    with pytest.raises(ValueError, match="k_neighbors=0"):
        model.set_params(k_neighbors=0)
    with pytest.raises(ValueError, match="should be one of the parameters"):
        model.set_params(n_neighbours=3)


@pytest.mark.filterwarnings("ignore:Class 2 has 4 samples")  # a fold of the smallest class
def test_an_imbalanced_learn_pipeline_cross_validates(shapes):
    from imblearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.preprocessing import FunctionTransformer

    X, y = shapes
    seen = []  # the class counts each classifier fit and prediction got

    class Recording(LogisticRegression):
        def fit(self, features, labels):
            seen.append(("fit", np.bincount(labels).tolist(), len(features)))
            return super().fit(features, labels)

        def predict(self, features):
            seen.append(("predict", None, len(features)))
            return super().predict(features)

    pipeline = make_pipeline(
        DeepSMOTE(random_state=0, knn="torch", **TINY),
        FunctionTransformer(lambda images: images.reshape(len(images), -1) / 255.0),
        Recording(max_iter=200),
    )
    scores = cross_val_score(pipeline, X, y, cv=2, scoring="balanced_accuracy")
    fits = [counts for step, counts, _ in seen if step == "fit"]
    # Each training fold was balanced by DeepSMOTE (every class at the fold's largest)...
    assert len(fits) == 2 and all(len(set(counts)) == 1 for counts in fits)
    assert sorted(n for step, _, n in seen if step == "predict") == sorted(
        [len(y) - len(y) // 2, len(y) // 2]
    )  # ...and the test folds were predicted as they are, not resampled.
    # Well separated shapes: far above the chance level of three classes.
    assert len(scores) == 2 and all(s > 0.6 for s in scores)


def test_refit_residuals_takes_only_the_training_images(shapes):
    X, y = shapes
    model = DeepSMOTE(random_state=0, knn="torch", residual=False, **TINY).fit(X, y)
    assert model.residuals_ is None
    model.set_params(residual=True)
    with pytest.raises(ValueError, match="X=None"):
        model.refit_residuals()
    with pytest.raises(ValueError, match="pixels differ"):
        model.refit_residuals(255 - X)
    model.refit_residuals(X)
    assert model.residuals_.shape == X.shape
    lam0 = model.plan({2: 3}, random_state=0)
    at_base = SMOTEPlan(lam0.labels, lam0.base, lam0.neighbor, torch.zeros(3))
    assert np.abs(model.synthesize(at_base).astype(int) - X[lam0.base.numpy()]).max() <= 1
    model.set_params(residual=False).refit_residuals()
    assert model.residuals_ is None


def test_refit_neighbors_follows_k_neighbors_without_training(fitted):
    model = copy.deepcopy(fitted)
    latents = model.latents_.clone()
    model.set_params(k_neighbors=2).refit_neighbors()
    assert model.neighbors_.shape[1] == 2 and torch.equal(model.latents_, latents)
    assert torch.equal(model.neighbors_, fitted.neighbors_[:, :2])


# ---------------------------------------------------------------------- other interpolations
@pytest.fixture(scope="module")
def variants(shapes):
    X, y = shapes
    base = DeepSMOTE(random_state=0, knn="torch", **TINY).fit(X, y)
    out = {}
    for name in ("enemy", "transfer"):
        model = copy.deepcopy(base).set_params(interpolation=name).refit_neighbors()
        out[name] = model
    return base, out


def test_enemy_steps_go_towards_other_classes_and_keep_the_larger_share(variants):
    base, models = variants
    model = models["enemy"]
    plan = model.plan({2: 40}, random_state=0)
    labels = model.labels_
    assert (labels[plan.base] == 2).all() and (labels[plan.neighbor] != 2).all()
    assert plan.anchor is None and float(plan.lam.max()) < 0.5
    z = model.latents_
    expected = z[plan.base] + plan.lam[:, None] * (z[plan.neighbor] - z[plan.base])
    torch.testing.assert_close(model.plan_codes(plan), expected)
    # The neighbours are each base's nearest codes of another class.
    others = torch.nonzero(labels != 2).flatten()
    row = int(plan.base[0])
    nearest = others[torch.cdist(z[row : row + 1], z[others]).argsort(dim=1)[0, :5]]
    assert int(plan.neighbor[0]) in nearest.tolist()
    assert torch.equal(base.latents_, model.latents_)  # nothing retrained


def test_transfer_steps_add_a_larger_class_neighbour_difference(variants, shapes):
    X, _ = shapes
    _, models = variants
    model = models["transfer"]
    plan = model.plan({2: 40}, random_state=0)
    labels, z, table = model.labels_, model.latents_, model.neighbors_
    assert (labels[plan.base] == 2).all()
    assert torch.equal(labels[plan.anchor], labels[plan.neighbor])  # one donor class per pair
    assert (labels[plan.anchor] != 2).all()  # classes larger than 2 (8 images)
    assert all(int(n) in table[int(a)].tolist() for a, n in zip(plan.anchor, plan.neighbor))
    expected = z[plan.base] + plan.lam[:, None] * (z[plan.neighbor] - z[plan.anchor])
    torch.testing.assert_close(model.plan_codes(plan), expected)
    # Residuals take the same step: lam = 0 is the base image again.
    at_base = SMOTEPlan(plan.labels, plan.base, plan.neighbor, torch.zeros(40), plan.anchor)
    images = model.synthesize(at_base).astype(int)
    assert np.abs(images - X[plan.base.numpy()]).max() <= 1
    # Donors are drawn by size among the larger classes.
    donors = Counter(labels[model.plan({1: 2000}, random_state=1).anchor].tolist())
    assert set(donors) == {0}  # only class 0 (60 images) is larger than class 1 (24)


def test_lam_range_extrapolates(shapes):
    X, y = shapes
    model = DeepSMOTE(random_state=0, knn="torch", lam_range=(-0.5, 1.5), **TINY).fit(X, y)
    lam = model.plan({1: 500}, random_state=0).lam
    assert float(lam.min()) < -0.3 and float(lam.max()) > 1.3
    assert float(lam.min()) >= -0.5 and float(lam.max()) < 1.5
    with pytest.raises(ValueError, match="lam_range"):
        DeepSMOTE(lam_range=(1.0, 0.0))
    with pytest.raises(ValueError, match="interpolation"):
        DeepSMOTE(interpolation="mixup")


def test_other_interpolations_survive_save_and_load(variants, tmp_path):
    _, models = variants
    for name, model in models.items():
        model.save(tmp_path / f"{name}.pt")
        loaded = DeepSMOTE.load(tmp_path / f"{name}.pt", device="cpu")
        assert loaded.interpolation == name
        np.testing.assert_array_equal(
            loaded.sample(5, 2, random_state=3), model.sample(5, 2, random_state=3)
        )


def test_fitted_attributes_before_fit_say_how_to_fit_and_hasattr_is_false():
    model = DeepSMOTE()
    assert not hasattr(model, "synthesizer_") and not hasattr(model, "fitted_")
    with pytest.raises(RuntimeError, match=r"not fitted yet\. Call `fit\(X, y\)`"):
        model.latents_  # noqa: B018
    with pytest.raises(RuntimeError, match="not fitted yet"):
        model.sample(2, label=0)
    with pytest.raises(AttributeError, match="no attribute 'latent_'"):
        model.latent_  # noqa: B018 - a typo is an ordinary AttributeError
