"""scikit-learn's and imbalanced-learn's own estimator checks, run on DeepSMOTE's 2-D mode.

DeepSMOTE samples images: in its 2-D mode (``image_shape=(C, H, W)``) each row of ``X`` is
one flattened image, and the encoder needs sides of at least 8 px, so rows of 64 values
here. Most of scikit-learn's checks fit on ``X`` of 1 to 10 columns, which hold no image:
they cannot apply, and ``SKLEARN_EXPECTED`` says so check by check. imbalanced-learn's
sampler checks draw their data from one function (1000 rows of 20 features, three classes
weighted 0.2, 0.3 and 0.5); here it draws 300 rows of 64 features with the same weights, so
those checks run for real; the few that build ``X`` of 2 or 3 columns themselves are in
``IMBLEARN_EXPECTED``.

Every expected failure is a strict xfail: a check that starts to pass fails the run, so the
lists stay true. What the data-bound checks test is tested on image rows at the end.
"""

from __future__ import annotations

import pickle
import warnings
from functools import partial

import numpy as np
import pytest

sklearn_checks = pytest.importorskip("sklearn.utils.estimator_checks")
imblearn_checks = pytest.importorskip("imblearn.utils.estimator_checks")

from sklearn.datasets import make_classification  # noqa: E402

from torch_deepsmote import DeepSMOTE  # noqa: E402

SHAPE = (1, 8, 8)  # the smallest image the encoder takes
TINY_ROWS = dict(
    image_shape=SHAPE,
    latent_dim=2,
    hidden_channels=2,
    batch_size=250,
    max_epochs=1,
    residual=False,
    knn="torch",
    progress=False,
    random_state=0,
)

NO_IMAGE = (
    "fits X of 1 to 10 columns, which holds no image: the 2-D mode takes rows of "
    "C*H*W = 64 values (sides of at least 8 px) and refuses other rows by name; what the "
    "check tests is tested on image rows below"
)
SKLEARN_EXPECTED = {
    "check_do_not_raise_errors_in_init_or_set_params": (
        "DeepSMOTE checks its arguments in __init__ and set_params, so that a bad option "
        "fails before an hour of training (the library's rule); scikit-learn checks in fit"
    ),
    "check_estimators_empty_data_messages": NO_IMAGE
    + " (it wants scikit-learn's own message for X of 0 columns)",
    "check_estimators_nan_inf": NO_IMAGE
    + " (NaN and inf pixels are refused by name: test_deepsmote.py's bad-input test)",
    "check_positive_only_tag_during_fit": NO_IMAGE,
    **{
        name: NO_IMAGE
        for name in (
            "check_fit_score_takes_y",
            "check_estimators_overwrite_params",
            "check_dont_overwrite_parameters",
            "check_estimators_fit_returns_self",
            "check_readonly_memmap_input",
            "check_n_features_in_after_fitting",
            "check_estimators_dtypes",
            "check_dtype_object",
            "check_pipeline_consistency",
            "check_estimators_pickle",
            "check_f_contiguous_array_estimator",
            "check_methods_sample_order_invariance",
            "check_methods_subset_invariance",
            "check_fit2d_1feature",
            "check_dict_unchanged",
            "check_fit_idempotent",
            "check_fit_check_is_fitted",
            "check_n_features_in",
            "check_fit2d_predict1d",
            "check_fit2d_1sample",
        )
    },
}
IMBLEARN_EXPECTED = {
    "check_samplers_one_label": NO_IMAGE.replace("1 to 10", "2"),
    "check_samplers_fit": NO_IMAGE.replace("1 to 10", "2"),
    "check_sampler_get_feature_names_out": NO_IMAGE.replace("1 to 10", "3")
    + " (DeepSMOTE has no get_feature_names_out: its columns are pixels)",
    "check_sampler_get_feature_names_out_pandas": NO_IMAGE.replace("1 to 10", "3")
    + " (DeepSMOTE has no get_feature_names_out: its columns are pixels)",
}


def _name(check) -> str:
    """The check's name, with the keywords that tell its variants apart."""
    keywords = {}
    while isinstance(check, partial):
        keywords = {**check.keywords, **keywords}
        check = check.func
    extra = ",".join(f"{k}={v}" for k, v in sorted(keywords.items()))
    return check.__name__ + (f"({extra})" if extra else "")


def _cases(generator, expected: dict) -> list:
    cases = []
    with warnings.catch_warnings():  # scikit-learn's note that DeepSMOTE is no BaseEstimator
        warnings.filterwarnings("ignore", "Estimator DeepSMOTE does not inherit")
        checks = list(generator)
    for estimator, check in checks:
        name = _name(check)
        marks = []
        if name.split("(")[0] in expected:
            marks = [pytest.mark.xfail(reason=expected[name.split("(")[0]], strict=True)]
        cases.append(pytest.param(estimator, check, id=name, marks=marks))
    return cases


def _image_rows_dataset():
    # imbalanced-learn's sample_dataset_generator with rows that hold 8x8 images (and 300
    # of them, not 1000: the checks count classes, not rows).
    return make_classification(
        n_samples=300,
        n_classes=3,
        n_features=64,
        n_informative=4,
        weights=[0.2, 0.3, 0.5],
        random_state=0,
    )


@pytest.mark.parametrize(
    "estimator, check",
    _cases(
        sklearn_checks.estimator_checks_generator(DeepSMOTE(**TINY_ROWS), legacy=True),
        SKLEARN_EXPECTED,
    ),
)
@pytest.mark.filterwarnings("ignore:Estimator DeepSMOTE does not inherit")
# DeepSMOTE checks in set_params on purpose (see check_do_not_raise_errors_in_init_...).
@pytest.mark.filterwarnings("ignore:.* occurred during set_params of param")
def test_scikit_learn_check(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "estimator, check",
    _cases(imblearn_checks.estimator_checks_generator(DeepSMOTE(**TINY_ROWS)), IMBLEARN_EXPECTED),
)
@pytest.mark.filterwarnings("ignore:Estimator DeepSMOTE does not inherit")
@pytest.mark.filterwarnings("ignore:A column-vector `y`")
def test_imbalanced_learn_check(estimator, check, monkeypatch):
    monkeypatch.setattr(imblearn_checks, "sample_dataset_generator", _image_rows_dataset)
    check(estimator)


@pytest.mark.filterwarnings("ignore:Estimator DeepSMOTE does not inherit")
def test_every_expected_failure_names_a_check_that_runs():
    names = {
        _name(check).split("(")[0]
        for generator in (
            sklearn_checks.estimator_checks_generator(DeepSMOTE(**TINY_ROWS)),
            imblearn_checks.estimator_checks_generator(DeepSMOTE(**TINY_ROWS)),
        )
        for _, check in generator
    }
    assert set(SKLEARN_EXPECTED) | set(IMBLEARN_EXPECTED) <= names


# ---------------------------------------------------------------------- the same, on image rows
@pytest.fixture(scope="module")
def classification_rows():
    """Rows of 64 random features (8x8 images), two classes: not the images of ``shapes``."""
    X, y = make_classification(
        n_samples=60, n_features=64, n_informative=4, weights=[0.7], random_state=0
    )
    return X.astype(np.float32), y


def test_fit_on_image_rows_keeps_params_returns_self_and_sets_n_features_in(classification_rows):
    X, y = classification_rows
    model = DeepSMOTE(**TINY_ROWS)
    params = repr(model.get_params())
    X_before = X.copy()
    assert model.fit(X, y) is model
    assert repr(model.get_params()) == params and np.array_equal(X, X_before)
    assert model.n_features_in_ == 64


def test_fit_on_image_rows_is_idempotent_and_pickles(classification_rows, tmp_path):
    X, y = classification_rows
    first = DeepSMOTE(**TINY_ROWS).fit_resample(X, y)
    model = DeepSMOTE(**TINY_ROWS)
    again = model.fit_resample(np.asfortranarray(X), y)  # F-contiguous rows too
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    copy = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(
        copy.sample(3, 1, random_state=2), model.sample(3, 1, random_state=2)
    )


@pytest.mark.filterwarnings("ignore:The given NumPy array is not writable")  # torch's note
def test_read_only_memmapped_rows_of_any_dtype(classification_rows, tmp_path):
    X, y = classification_rows
    for dtype in (np.float32, np.float64, np.int64):
        path = tmp_path / f"X-{np.dtype(dtype).name}.npy"
        np.save(path, (X * 10).astype(dtype))
        mapped = np.load(path, mmap_mode="r")
        X_res, _ = DeepSMOTE(**TINY_ROWS).fit_resample(mapped, y)
        assert X_res.dtype == dtype and X_res.shape[1] == 64
