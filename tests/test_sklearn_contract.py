"""DeepSMOTE as scikit-learn and imbalanced-learn expect an estimator to be: tags, fitted
state, repr, 2-D rows in and out, y in scikit-learn's forms, RandomState seeds."""

from __future__ import annotations

import pickle
import warnings

import numpy as np
import pytest
import torch
from helpers import TINY

from torch_deepsmote import DeepSMOTE

sklearn = pytest.importorskip("sklearn")

ROWS = dict(image_shape=(1, 16, 16), knn="torch", random_state=0, **TINY)


@pytest.fixture(scope="module")
def rows(shapes):
    X, y = shapes
    return X.reshape(len(X), -1), y


@pytest.fixture(scope="module")
def fitted_rows(rows):
    return DeepSMOTE(**ROWS).fit(*rows)


# ---------------------------------------------------------------------- scikit-learn's protocol
def test_tags_say_a_sampler_of_2d_rows_that_needs_y():
    from sklearn.utils import get_tags

    tags = get_tags(DeepSMOTE())
    assert tags.estimator_type == "sampler" and tags.target_tags.required
    assert tags.input_tags.two_d_array and not tags.input_tags.sparse
    assert tags.sampler_tags is not None  # imbalanced-learn's tags, as BaseSampler gives


def test_tags_without_imbalanced_learn_are_scikit_learns(monkeypatch):
    import sys

    from sklearn.utils import get_tags

    monkeypatch.setitem(sys.modules, "imblearn.utils._tags", None)
    tags = get_tags(DeepSMOTE())
    assert tags.estimator_type == "sampler" and not hasattr(tags, "sampler_tags")


def test_check_is_fitted_follows_the_fitted_state(fitted_rows):
    from sklearn.exceptions import NotFittedError
    from sklearn.utils.validation import check_is_fitted

    with pytest.raises(NotFittedError):
        check_is_fitted(DeepSMOTE())
    check_is_fitted(fitted_rows)


def test_a_bad_set_params_changes_nothing():
    model = DeepSMOTE(k_neighbors=3)
    with pytest.raises(ValueError, match="k_neighbors=0"):
        model.set_params(lr=0.1, k_neighbors=0)
    assert model.k_neighbors == 3 and model.lr == 2e-4
    with pytest.raises(ValueError, match="should be one of the parameters"):
        model.set_params(lr=0.1, n_neighbours=3)
    assert model.lr == 2e-4


def test_html_repr_and_repr_show_the_parameters_that_differ_from_the_defaults():
    from sklearn.utils import estimator_html_repr

    model = DeepSMOTE(k_neighbors=3, random_state=0)
    assert repr(model) == "DeepSMOTE(k_neighbors=3, random_state=0)"
    assert repr(DeepSMOTE()) == "DeepSMOTE()"
    assert "k_neighbors=3" in estimator_html_repr(model)


def test_the_library_imports_without_scikit_learn():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['sklearn'] = None; sys.modules['imblearn'] = None\n"
        "import numpy as np, torch_deepsmote as t\n"
        "X = np.zeros((4, 64), np.float32); y = np.array([0, 0, 0, 1])\n"
        "m = t.DeepSMOTE(image_shape=(1, 8, 8), latent_dim=2, hidden_channels=2, "
        "max_epochs=1, progress=False, random_state=0, knn='torch')\n"
        "import warnings; warnings.simplefilter('error')\n"
        "try:\n    m.fit_resample(X, y[:, None])\nexcept UserWarning as w:\n    print(w)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "column-vector `y`" in done.stdout


# ---------------------------------------------------------------------- 2-D rows
def test_rows_in_rows_out_in_their_dtype(rows, fitted_rows):
    X, y = rows
    X_res, y_res = DeepSMOTE(**ROWS).fit_resample(X, y)
    assert X_res.ndim == 2 and X_res.shape[1] == 256 and X_res.dtype == X.dtype
    np.testing.assert_array_equal(X_res[: len(X)], X)
    assert np.bincount(y_res).tolist() == [60, 60, 60]
    assert fitted_rows.n_features_in_ == 256
    assert fitted_rows.sample(3, 2).shape == (3, 256)
    assert fitted_rows.encode(X[:5]).shape == (5, 8)


@pytest.mark.filterwarnings("ignore:Class 2 has 4 samples")  # a fold of the smallest class
def test_an_imbalanced_learn_pipeline_takes_rows_without_reshape_steps(rows):
    from imblearn.pipeline import make_pipeline
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score

    X, y = rows
    pipeline = make_pipeline(DeepSMOTE(**ROWS), LogisticRegression(max_iter=200))
    scores = cross_val_score(pipeline, X / 255.0, y, cv=2, scoring="balanced_accuracy")
    assert len(scores) == 2 and all(s > 0.6 for s in scores)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X: X.reshape(len(X), 1, 16, 16), r"2-D rows of 256 values .* got shape \(92, 1"),
        (lambda X: X[:, :200], r"image_shape=\(1, 16, 16\) per row\), but got shape \(92, 200\)"),
    ],
)
def test_rows_of_another_length_or_images_are_refused_with_the_fix(rows, make, match):
    X, y = rows
    with pytest.raises(ValueError, match=match):
        DeepSMOTE(**ROWS).fit(make(X), y)


def test_rows_are_judged_against_value_range_like_images(rows):
    X, y = rows
    X = X / 255.0
    X[5, 0] = 2.0
    with pytest.raises(ValueError, match=r"`X` image 5 .* outside value_range=\(0, 1\)"):
        DeepSMOTE(value_range=(0, 1), **ROWS).fit(X, y)


def test_rows_without_image_shape_name_the_fix(rows):
    with pytest.raises(ValueError, match=r"\(N, C, H, W\).*pass image_shape=\(C, H, W\)"):
        DeepSMOTE(**TINY).fit(*rows)


def test_bad_image_shape_fails_at_construction():
    with pytest.raises(TypeError, match="image_shape=64"):
        DeepSMOTE(image_shape=64)
    with pytest.raises(ValueError, match="sides of at least 8"):
        DeepSMOTE(image_shape=(1, 4, 4))


def test_sparse_rows_are_refused_naming_the_fix(rows):
    from scipy import sparse

    X, y = rows
    with pytest.raises(TypeError, match=r"sparse input is not supported. Pass X.toarray\(\)"):
        DeepSMOTE(**ROWS).fit(sparse.csr_matrix(X), y)


def test_rows_model_saves_and_loads_as_rows(fitted_rows, tmp_path):
    fitted_rows.save(tmp_path / "model.pt")
    loaded = DeepSMOTE.load(tmp_path / "model.pt", device="cpu")
    assert loaded.image_shape == (1, 16, 16)
    np.testing.assert_array_equal(
        loaded.sample(3, 1, random_state=4), fitted_rows.sample(3, 1, random_state=4)
    )


def test_a_cache_fitted_on_images_serves_rows_as_rows(shapes, tmp_path):
    X, y = shapes
    DeepSMOTE(knn="torch", random_state=0, **TINY).fit(X, y, cache_dir=tmp_path)
    model = DeepSMOTE(**ROWS).fit(X.reshape(len(X), -1), y, cache_dir=tmp_path)
    assert model.sample(2, 1).shape == (2, 256)


def test_a_cache_fitted_on_arrays_serves_tensors_as_tensors(shapes, tmp_path):
    X, y = shapes
    DeepSMOTE(knn="torch", random_state=0, **TINY).fit(X, y, cache_dir=tmp_path)
    model = DeepSMOTE(knn="torch", random_state=0, **TINY)
    model.fit(torch.from_numpy(X), torch.from_numpy(y), cache_dir=tmp_path)  # trains nothing
    assert isinstance(model.sample(2, 1), torch.Tensor)


# ---------------------------------------------------------------------- y as scikit-learn takes it
def test_a_column_y_is_used_as_1d_with_scikit_learns_warning(rows):
    from sklearn.exceptions import DataConversionWarning

    X, y = rows
    with pytest.warns(DataConversionWarning, match=r"column-vector `y` of shape \(92, 1\)"):
        _, y_res = DeepSMOTE(**ROWS).fit_resample(X, y[:, None])
    assert y_res.shape == (180,)


def test_one_hot_y_gives_one_hot_y_res(rows):
    X, y = rows
    one_hot = np.eye(3, dtype=np.int32)[y]
    _, y_res = DeepSMOTE(**ROWS).fit_resample(X, one_hot)
    assert y_res.dtype == np.int32 and y_res.shape == (180, 3)
    np.testing.assert_array_equal(y_res[: len(y)], one_hot)
    assert np.bincount(y_res.argmax(axis=1)).tolist() == [60, 60, 60]


@pytest.mark.parametrize(
    "y, exc, match",
    [
        (np.linspace(0, 1, 92), ValueError, "Unknown label type: `y` should hold class labels"),
        (torch.tensor([0.0, 1.5] * 46), ValueError, "Unknown label type"),
        (np.array([object()] * 92), TypeError, "integer or string class labels"),
        (np.ones((92, 3), int), ValueError, "Multilabel and multioutput"),
        (np.zeros((92, 2, 2)), ValueError, "Multilabel and multioutput"),
        (None, ValueError, "requires y to be passed, but the target y is None"),
        (np.array([1j] * 92), ValueError, "Complex data not supported"),
        (np.array([0, "a"] * 46, dtype=object), TypeError, "types int, str"),
        (np.zeros(92), ValueError, "at least two classes to over-sample, but got one class, 0"),
    ],
)
def test_y_that_holds_no_classes_is_refused_like_scikit_learn(rows, y, exc, match):
    with pytest.raises(exc, match=match):
        DeepSMOTE(**ROWS).fit(rows[0], y)


def test_string_labels_come_back_as_given(rows, tmp_path):
    X, y = rows
    names = np.array(["circle", "square", "stripes"])[[1, 2, 0]][y]  # not in sorted order
    model = DeepSMOTE(sampling_strategy={"circle": 30}, **ROWS)
    X_res, y_res = model.fit_resample(X, names)
    assert y_res.dtype == names.dtype and list(y_res[: len(y)]) == list(names)
    assert list(model.classes_) == ["circle", "square", "stripes"]
    assert model.sampling_strategy_ == {"circle": 22, "square": 0, "stripes": 0}
    assert set(y_res[len(y) :]) == {"circle"} and len(X_res) == len(y_res) == len(y) + 22
    assert model.sample(2, "stripes", random_state=0).shape == (2, 256)
    assert len(model.plan({"square": 3}).labels) == 3
    with pytest.raises(ValueError, match=r"`label` should be one of the classes \['circle'"):
        model.sample(1, "triangle")
    model.save(tmp_path / "model.pt")
    loaded = DeepSMOTE.load(tmp_path / "model.pt")
    assert list(loaded.classes_) == list(model.classes_)
    assert loaded.sampling_strategy == {"circle": 30}
    np.testing.assert_array_equal(
        loaded.sample(2, "square", random_state=1), model.sample(2, "square", random_state=1)
    )


def test_a_callable_strategy_gets_the_string_labels(rows):
    X, y = rows
    names = np.array(["a", "b", "c"])[y]
    asked = []

    def strategy(labels):
        asked.append(sorted(set(labels)))
        return {"c": 20}

    _, y_res = DeepSMOTE(sampling_strategy=strategy, **ROWS).fit_resample(X, names)
    assert asked == [["a", "b", "c"]] and list(y_res[len(y) :]) == ["c"] * 12


def test_lists_in_lists_out(rows):
    X, y = rows
    X_res, y_res = DeepSMOTE(**ROWS).fit_resample(X.tolist(), y.tolist())
    assert isinstance(X_res, list) and isinstance(y_res, list)
    assert X_res[: len(X)] == X.tolist() and y_res[: len(y)] == y.tolist()
    assert len(X_res[-1]) == 256 and isinstance(y_res[-1], int)


def test_a_data_frame_and_a_series_come_back_as_arrays(rows):
    pd = pytest.importorskip("pandas")
    X, y = rows
    names = pd.Series(np.array(["a", "b", "c"])[y])
    X_res, y_res = DeepSMOTE(**ROWS).fit_resample(pd.DataFrame(X), names)
    assert isinstance(X_res, np.ndarray) and X_res.shape == (180, 256)
    assert isinstance(y_res, np.ndarray) and list(y_res[: len(y)]) == list(names)


def test_tensor_y_keeps_its_dtype(rows):
    X, y = rows
    _, y_res = DeepSMOTE(**ROWS).fit_resample(torch.from_numpy(X), torch.from_numpy(y).int())
    assert y_res.dtype == torch.int32 and len(y_res) == 180


# ---------------------------------------------------------------------- random_state
def test_a_random_state_object_is_taken_as_scikit_learn_takes_it(rows):
    X, y = rows
    model = DeepSMOTE(**{**ROWS, "random_state": np.random.RandomState(3)})
    first, _ = model.fit_resample(X, y)
    second, _ = model.fit_resample(X, y)  # the RandomState moved on: another draw
    assert not np.array_equal(first, second)
    again, _ = model.set_params(random_state=np.random.RandomState(3)).fit_resample(X, y)
    np.testing.assert_array_equal(first, again)  # the same state: the same fit
    assert model.sample(2, 1, random_state=np.random.RandomState(0)).shape == (2, 256)
    plain = DeepSMOTE(**ROWS).set_params(random_state=np.random.RandomState(3))
    assert pickle.loads(pickle.dumps(plain)).random_state is not None
    with pytest.raises(TypeError, match="numpy RandomState"):
        DeepSMOTE(random_state=np.random.default_rng(0))


def test_a_random_state_object_is_saved_as_none(rows, tmp_path):
    X, y = rows
    model = DeepSMOTE(**{**ROWS, "random_state": np.random.RandomState(3)}).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.save(tmp_path / "model.pt")
    assert DeepSMOTE.load(tmp_path / "model.pt").random_state is None
