"""DeepSMOTE's parameter table: the signature, the checks, and the one stored form."""

from __future__ import annotations

import inspect
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import TINY

from torch_deepsmote import DeepSMOTE
from torch_deepsmote._validation import check_bool_or_auto, check_lam_range
from torch_deepsmote.app.model_dir import fit_model_dir, load_model_dir
from torch_deepsmote.app.sources import LabelledImages
from torch_deepsmote.parameters import PARAMETERS, from_plain, to_plain


def test_the_parameter_table_is_the_signature_of_init():
    signature = inspect.signature(DeepSMOTE.__init__).parameters
    assert list(PARAMETERS) == [name for name in signature if name != "self"]
    assert all(
        p.kind is inspect.Parameter.KEYWORD_ONLY for n, p in signature.items() if n != "self"
    )


def test_init_stores_each_argument_on_a_line_of_its_own():
    # scikit-learn's habit: `self.name = name`, visible to grep, nothing built in between.
    source = inspect.getsource(DeepSMOTE.__init__)
    stored = re.findall(r"^\s+self\.(\w+) = (\w+)$", source, flags=re.M)
    assert [a for a, b in stored if a == b] == list(PARAMETERS)


def test_init_keeps_every_argument_as_given():
    values = {"lam_range": [0, 1], "log_dir": Path("logs"), "sampling_strategy": {1: 5}}
    model = DeepSMOTE(**values)
    assert all(getattr(model, name) is value for name, value in values.items())


def test_check_lam_range_returns_the_pair_as_floats():
    assert check_lam_range("lam_range", [0, np.int64(2)]) == (0.0, 2.0)
    assert all(type(v) is float for v in check_lam_range("lam_range", (0, 1)))


@pytest.mark.parametrize("name", ["pool", "in_memory", "distributed"])
def test_one_rule_for_true_false_or_auto(name):
    assert [check_bool_or_auto(name, v) for v in (True, False, "auto")] == [True, False, "auto"]
    with pytest.raises(
        ValueError, match=rf"`{name}` should be True, False or 'auto', but got {name}='yes'"
    ):
        check_bool_or_auto(name, "yes")
    with pytest.raises(TypeError, match=rf"but got {name}=1\."):
        check_bool_or_auto(name, 1)


def test_distributed_takes_the_shared_rule():
    with pytest.raises(TypeError, match="distributed=1"):
        DeepSMOTE(distributed=1)


PARAMS = {
    "sampling_strategy": {np.int64(1): np.int64(5), 2: 3},
    "k_neighbors": np.int64(3),
    "knn": "torch",
    "lr": np.float32(0.5),
    "device": torch.device("cpu"),
    "lam_range": (0, np.int64(1)),
    "log_dir": Path("logs"),
    "checkpoint_dir": None,
    "residual": True,
    "not_a_parameter": 1,
}


def test_the_plain_form_survives_json_and_weights_only_torch_load(tmp_path):
    plain = to_plain(PARAMS)
    assert "not_a_parameter" not in plain
    assert json.loads(json.dumps(plain)) == plain
    torch.save(plain, tmp_path / "params.pt")
    assert torch.load(tmp_path / "params.pt", weights_only=True) == plain
    back = from_plain(json.loads(json.dumps(plain)))
    assert back["sampling_strategy"] == {1: 5, 2: 3}
    assert back["lam_range"] == (0.0, 1.0) and back["k_neighbors"] == 3
    assert back["device"] == "cpu" and back["log_dir"] == "logs" and back["knn"] == "torch"
    DeepSMOTE(**back)  # a valid estimator again


def test_objects_are_stored_as_what_stands_in_for_them():
    from sklearn.neighbors import NearestNeighbors

    plain = to_plain({"knn": NearestNeighbors()})
    assert plain == {"knn": "auto"}


def test_earlier_stored_forms_still_load():
    # deepsmote.json of earlier versions: string keys, a knn object's repr, a list lam_range.
    earlier = {"sampling_strategy": {"0": 4}, "knn": "NearestNeighbors()", "lam_range": [0, 1]}
    assert from_plain(earlier) == {
        "sampling_strategy": {0: 4},
        "knn": "auto",
        "lam_range": (0.0, 1.0),
    }


def _data(shapes):
    X, y = shapes
    names = {label: f"class{label}" for label in np.unique(y).tolist()}
    return LabelledImages(torch.from_numpy(X), torch.from_numpy(y), names, {"kind": "arrays"})


def _half_of_majority(y):
    counts = np.bincount(np.asarray(y))
    return {label: int(counts.max()) // 2 for label in range(1, len(counts))}


def test_model_folder_and_model_file_store_the_same_parameters(shapes, tmp_path):
    model = DeepSMOTE(sampling_strategy=_half_of_majority, knn="torch", random_state=0, **TINY)
    folder = fit_model_dir(tmp_path / "model", model, _data(shapes))
    model.save(tmp_path / "model.pt")
    stored = json.loads((tmp_path / "model" / "deepsmote.json").read_text())["params"]
    assert stored == torch.load(tmp_path / "model.pt", weights_only=True)["params"]
    # A callable strategy is kept as the totals it asked for, so that both load and refit.
    assert stored["sampling_strategy"] == [[1, 30], [2, 30]]
    loaded = load_model_dir(folder.path, device="cpu")
    assert loaded.model.sampling_strategy == {1: 30, 2: 30}
    assert DeepSMOTE.load(tmp_path / "model.pt").sampling_strategy == {1: 30, 2: 30}
