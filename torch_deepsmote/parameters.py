"""DeepSMOTE's parameters in one table, and their one stored form.

``PARAMETERS`` names every argument of ``DeepSMOTE`` with its check,
its role (what a changed value invalidates) and what the ranks of a process group must agree
on (scikit-learn keeps the same table as ``_parameter_constraints``). ``to_plain`` and
``from_plain`` are the one serialiser of the parameters: the model file (``DeepSMOTE.save``,
the HDF5 cache) and the model folder's ``deepsmote.json`` both store what ``to_plain``
gives.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ._params import Param
from ._pixels import check_value_range
from ._validation import (
    check_bool,
    check_bool_or_auto,
    check_choice,
    check_folder,
    check_lam_range,
    check_positive_int,
    check_random_state,
    optional,
    resolve_device,
)
from .knn import get_knn
from .models import check_image_shape as check_shape
from .smote import check_sampling_strategy
from .synthesis import INTERPOLATIONS
from .training import TrainingConfig

if TYPE_CHECKING:
    from .fitting import FittedDeepSMOTE

__all__ = ["BASE_SELECTIONS", "KNN_NAMES", "PARAMETERS", "from_plain", "to_plain"]

BASE_SELECTIONS = ("all", "borderline")
KNN_NAMES = ("auto", "faiss", "torch")


def check_image_shape(name: str, value: Any) -> tuple[int, int, int]:
    """``(C, H, W)``: 1 to 4 channels, sides of at least 8 (the encoder's rule)."""
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in value
    ):
        raise TypeError(
            f"`{name}` should be None or (C, H, W), three integers, but got {name}={value!r}."
        )
    return check_shape(value)


# Every parameter of DeepSMOTE, in the order of its signature.
PARAMETERS: dict[str, Param] = {
    "sampling_strategy": Param(check_sampling_strategy, "serving", None),
    # How X's rows hold images: the pixels, and so the weights, are the same either way.
    "image_shape": Param(optional(check_image_shape), "serving"),
    "k_neighbors": Param(check_positive_int, "index"),
    # 'auto' resolves per machine: the ranks agree on the backend it finds.
    "knn": Param(lambda name, value: get_knn(value), "index", lambda v: type(get_knn(v)).__name__),
    "latent_dim": Param(optional(check_positive_int), "weights"),
    "hidden_channels": Param(check_positive_int, "weights"),
    **{name: Param(None, "weights") for name in TrainingConfig.__dataclass_fields__},
    "device": Param(lambda name, value: resolve_device(value), "process", None),
    "random_state": Param(check_random_state, "weights"),
    "progress": Param(check_bool, "process", None),
    "residual": Param(check_bool, "serving"),
    "interpolation": Param(lambda name, value: check_choice(name, value, INTERPOLATIONS), "index"),
    "lam_range": Param(optional(check_lam_range), "index"),
    "base_selection": Param(
        lambda name, value: check_choice(name, value, BASE_SELECTIONS), "index"
    ),
    "m_neighbors": Param(check_positive_int, "index"),
    "log_dir": Param(check_folder, "process", None),
    "checkpoint_dir": Param(check_folder, "process", lambda folder: folder is not None),
    "distributed": Param(check_bool_or_auto, "process"),
    "value_range": Param(check_value_range, "weights"),
}


def to_plain(params: Mapping[str, Any], fitted: FittedDeepSMOTE | None = None) -> dict:
    """The parameters as plain values, which ``torch.load(weights_only=True)`` and JSON both
    keep exactly.

    Code and objects are not stored: a ``knn`` object becomes ``'auto'`` and a callable
    ``sampling_strategy`` the ``{class: total}`` it asked of ``fitted``. A dict
    ``sampling_strategy`` becomes ``[[class, count], ...]`` (JSON would turn integer keys
    into strings), paths and devices strings, ``lam_range`` and ``value_range`` lists of two
    floats, numpy scalars Python numbers, a numpy ``RandomState`` ``None`` (the fitted
    model's generator is stored with it).

    Args:
        params: ``DeepSMOTE.get_params(deep=False)`` (names outside ``PARAMETERS`` are
            left out).
        fitted: The model fitted with these parameters; a callable ``sampling_strategy``
            is stored as the class totals it resolved to there.

    Examples:
        >>> plain = to_plain({"sampling_strategy": {0: 5}, "lam_range": (0, 1)})
        >>> plain
        {'sampling_strategy': [[0, 5]], 'lam_range': [0.0, 1.0]}
        >>> from_plain(plain)
        {'sampling_strategy': {0: 5}, 'lam_range': (0.0, 1.0)}
    """
    plain = {}
    for name, value in params.items():
        if name not in PARAMETERS:
            continue
        if name == "sampling_strategy":
            if callable(value) and fitted is not None:
                value = _totals(fitted)  # code is not stored; what it asked for is
            if isinstance(value, Mapping):
                value = [[_number(k), _number(v)] for k, v in value.items()]
        elif name == "knn" and not isinstance(value, str):
            value = "auto"  # a user's object is not stored; 'auto' stands in on load
        elif name == "random_state" and isinstance(value, np.random.RandomState):
            value = None  # a stream, not a seed: the model's own generator is stored
        elif name in ("lam_range", "value_range") and value is not None:
            value = list(_PAIRS[name](name, value))
        elif isinstance(value, os.PathLike) or name == "device" and value is not None:
            value = os.fspath(value) if isinstance(value, os.PathLike) else str(value)
        elif isinstance(value, tuple):  # image_shape: JSON has lists only
            value = [_number(v) for v in value]
        plain[name] = _number(value)
    return plain


def from_plain(plain: Mapping[str, Any]) -> dict:
    """The constructor's arguments from ``to_plain``'s values (also those stored by
    earlier versions: a dict ``sampling_strategy`` with string keys, a ``knn`` object's
    repr). Names this version does not know are left out.
    """
    params = {name: value for name, value in plain.items() if name in PARAMETERS}
    strategy = params.get("sampling_strategy")
    if isinstance(strategy, list):
        params["sampling_strategy"] = {k: v for k, v in strategy}
    elif isinstance(strategy, Mapping):  # JSON of earlier versions: integer labels as keys
        params["sampling_strategy"] = {_int_key(k): v for k, v in strategy.items()}
    for name, value in params.items():
        if name != "sampling_strategy" and isinstance(value, list):
            params[name] = tuple(value)  # stored as a list: given as a tuple
    for name, check in _PAIRS.items():
        if params.get(name) is not None:
            params[name] = check(name, params[name])
    if "knn" in params and params["knn"] not in KNN_NAMES:
        params["knn"] = "auto"  # a knn object stored as its repr; 'auto' stands in
    return params


# The parameters given as (low, high): stored as two floats, read back as a tuple.
_PAIRS = {"lam_range": check_lam_range, "value_range": check_value_range}


def _totals(fitted: FittedDeepSMOTE) -> dict:
    """``{class: total after resampling}`` of the classes ``fitted`` adds images to: the
    dict ``sampling_strategy`` that asks for the same."""
    classes, counts = torch.unique(fitted.synthesizer.labels, return_counts=True)
    new = fitted.sampling_strategy
    return {c: n + new[c] for c, n in zip(classes.tolist(), counts.tolist()) if new.get(c)}


def _number(value: Any) -> Any:
    # numpy scalars (np.int64 labels, counts, np.str_ class names) as Python values.
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Number):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value) if isinstance(value, numbers.Real) else value


def _int_key(key: Any) -> Any:
    try:
        return int(key)
    except (TypeError, ValueError):
        return key
