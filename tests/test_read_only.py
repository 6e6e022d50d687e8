"""A complete cache or model folder on a read-only mount is read without write access; bad
folder arguments are named with their fix.

The reader runs in a child process without the power to write: under a user other than
root, ``chmod`` alone takes it away; as root, the child also drops the capabilities that
let root ignore file permissions (``setpriv``), and the fixture checks that a write there
really fails before trusting the test.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY, make_shapes
from test_cli import TINY as CLI_TINY
from test_cli import make_folder, run
from torch.utils.data import DataLoader, TensorDataset

import torch_deepsmote
from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.cli import main

FIT = dict(TINY, random_state=0, knn="torch")
REPO = Path(torch_deepsmote.__file__).parent.parent

# As root, the child keeps its uid but loses CAP_DAC_OVERRIDE / CAP_DAC_READ_SEARCH (from
# the bounding set and the inheritable set, so the python it runs never gets them back).
SETPRIV = ["--bounding-set=-dac_override,-dac_read_search", "--inh-caps=-all"]


def _prefix() -> list[str]:
    """The command prefix that runs a child bound by file permissions."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: root ignores a read-only folder's mode")
    return [setpriv, *SETPRIV]


def _child(script: str, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "tests")])}
    return subprocess.run(
        [*_prefix(), sys.executable, "-c", script, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def _set_writable(root: Path, writable: bool) -> None:
    for folder, _, files in os.walk(root):
        for path in [folder, *(os.path.join(folder, f) for f in files)]:
            mode = os.stat(path).st_mode
            bits = stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH
            os.chmod(path, (mode | stat.S_IWUSR) if writable else (mode & ~bits))


PROBE = """
import sys
try:
    open(sys.argv[1], "w")
except PermissionError:
    print("denied")
else:
    print("written")
"""


@pytest.fixture
def read_only():
    """Makes folders read-only for the child (and checks that it is), writable again after."""
    made = []

    def make(root: Path) -> Path:
        _set_writable(root, False)
        made.append(root)
        probe = _child(PROBE, str(root / "probe"))
        if probe.stdout.strip() != "denied":
            pytest.skip(f"a read-only folder is not enforced here: {probe.stdout}{probe.stderr}")
        return root

    yield make
    for root in made:
        _set_writable(root, True)


def _digest(images) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(images)).tobytes()).hexdigest()


# ---------------------------------------------------------------------- DeepSMOTE.fit
FIT_CHILD = """
import json, sys
import numpy as np
import torch_deepsmote.fitting as fitting
from conftest import TINY
from torch_deepsmote import DeepSMOTE

trained = []
original = fitting.fit_autoencoder
fitting.fit_autoencoder = lambda *a, **k: trained.append(1) or original(*a, **k)
X, y = np.load(sys.argv[2]), np.load(sys.argv[3])
try:
    model = DeepSMOTE(**dict(TINY, random_state=0, knn="torch", **json.loads(sys.argv[4])))
    model.fit(X, y, cache_dir=sys.argv[1])
except Exception as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}))
else:
    images = np.ascontiguousarray(model.sample(5, 2, random_state=0))
    import hashlib
    digest = hashlib.sha256(images.tobytes()).hexdigest()
    print(json.dumps({"trained": len(trained), "sample": digest}))
"""


@pytest.fixture(scope="module")
def arrays(tmp_path_factory):
    X, y = make_shapes((30, 12, 5), size=12)
    folder = tmp_path_factory.mktemp("arrays")
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    return X, y, folder


def _fit_child(cache: Path, arrays, **params) -> dict:
    _, _, folder = arrays
    result = _child(
        FIT_CHILD, str(cache), str(folder / "X.npy"), str(folder / "y.npy"), json.dumps(params)
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_fit_with_a_read_only_complete_cache_loads_it_and_trains_nothing(
    arrays, tmp_path, read_only
):
    X, y, _ = arrays
    model = DeepSMOTE(**FIT).fit(X, y, cache_dir=tmp_path / "cache")
    expected = _digest(model.sample(5, 2, random_state=0))
    read_only(tmp_path / "cache")
    assert _fit_child(tmp_path / "cache", arrays) == {"trained": 0, "sample": expected}
    # A changed neighbour setting is rebuilt in memory, without training or writing.
    assert _fit_child(tmp_path / "cache", arrays, k_neighbors=2)["trained"] == 0


def test_fit_with_a_read_only_folder_that_must_be_fitted_names_cache_dir_and_the_fix(
    arrays, tmp_path, read_only
):
    X, y, _ = arrays
    (tmp_path / "empty").mkdir()
    DeepSMOTE(**FIT).fit(X[:-4], y[:-4], cache_dir=tmp_path / "stale")  # other data
    read_only(tmp_path / "empty")
    read_only(tmp_path / "stale")
    for folder, problem in [("empty", "holds no DeepSMOTE cache"), ("stale", "stale cache")]:
        result = _fit_child(tmp_path / folder, arrays)
        assert result["error"] == "PermissionError", result
        message = result["message"]
        assert f"cache_dir={str(tmp_path / folder)!r} is not writable" in message
        assert problem in message and "Pass a writable cache_dir" in message


# ---------------------------------------------------------------------- OversampledDataset
DATASET_CHILD = """
import hashlib, json, sys
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset
from conftest import TINY
from torch_deepsmote import OversampledDataset

X, y = torch.from_numpy(np.load(sys.argv[2])), torch.from_numpy(np.load(sys.argv[3]))
try:
    ds = OversampledDataset(
        TensorDataset(X, y), cache_dir=sys.argv[1], random_state=0, knn="torch", **TINY
    )
except Exception as error:
    print(json.dumps({"error": type(error).__name__, "message": str(error)}))
else:
    ds.set_epoch(1)
    digest = hashlib.sha256()
    for images, targets in DataLoader(ds, batch_size=16):
        digest.update(images.numpy().tobytes() + targets.numpy().tobytes())
    print(json.dumps({"n": len(ds), "items": digest.hexdigest()}))
"""


def test_oversampled_dataset_serves_a_read_only_cache_and_names_a_missing_one(
    arrays, tmp_path, read_only
):
    X, y, folder = arrays
    ds = OversampledDataset(
        TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), cache_dir=tmp_path / "c", **FIT
    )
    ds.set_epoch(1)
    digest = hashlib.sha256()
    for images, targets in DataLoader(ds, batch_size=16):
        digest.update(images.numpy().tobytes() + targets.numpy().tobytes())
    (tmp_path / "none").mkdir()
    read_only(tmp_path / "c")
    read_only(tmp_path / "none")
    args = (str(folder / "X.npy"), str(folder / "y.npy"))
    result = _child(DATASET_CHILD, str(tmp_path / "c"), *args)
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout.strip().splitlines()[-1])
    assert served == {"n": len(ds), "items": digest.hexdigest()}  # the same items, read-only
    result = _child(DATASET_CHILD, str(tmp_path / "none"), *args)
    failed = json.loads(result.stdout.strip().splitlines()[-1])
    assert failed["error"] == "PermissionError" and "cache_dir=" in failed["message"]
    assert "holds no DeepSMOTE cache" in failed["message"]


# ---------------------------------------------------------------------- the command line
CLI_CHILD = """
import sys
from torch_deepsmote.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_sample_resample_and_report_work_from_a_read_only_model_folder(tmp_path, read_only):
    data = make_folder(tmp_path / "images")
    model = tmp_path / "model"
    assert main(["fit", str(data), "--out", str(model), *CLI_TINY]) == 0
    read_only(model)
    out = tmp_path / "outputs"
    out.mkdir()
    for verb, target, extra in [
        ("sample", "bars.png", ["--class", "bars", "-n", "4"]),
        ("resample", "balanced.npz", []),
        ("report", "report", []),
    ]:
        result = _child(CLI_CHILD, verb, str(model), "--out", str(out / target), *extra)
        assert result.returncode == 0, f"{verb}: {result.stderr}"
        assert (out / target).exists()
    # And fit refuses to write there, in shell words, before reading its data.
    result = _child(CLI_CHILD, "fit", str(data), "--out", str(model), *CLI_TINY)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"`--out` should be a folder this process can write to, but got --out {model}" in (
        result.stderr
    )
    assert "read " not in result.stdout


# ---------------------------------------------------------------------- bad folder arguments
@pytest.fixture
def bad_folders(tmp_path):
    (tmp_path / "file").write_text("not a folder")
    return {
        "a file": (tmp_path / "file", FileExistsError, "which is a file"),
        "under a file": (tmp_path / "file" / "sub", NotADirectoryError, "lies under the file"),
        "empty": ("", ValueError, "the empty path"),
    }


@pytest.mark.parametrize("case", ["a file", "under a file", "empty"])
def test_a_bad_cache_dir_is_named_with_its_fix_before_any_work(bad_folders, case, monkeypatch):
    value, error, words = bad_folders[case]
    X, y = make_shapes((8, 4), size=8)
    import torch_deepsmote.dataset as dataset

    monkeypatch.setattr(dataset, "read_dataset", lambda *a, **k: pytest.fail("read the data"))
    pattern = rf"`cache_dir` should be a folder.*cache_dir={re.escape(repr(str(value)))}.*{words}"
    with pytest.raises(error, match=pattern):
        DeepSMOTE(**FIT).fit(X, y, cache_dir=value)
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    with pytest.raises(error, match=pattern):
        OversampledDataset(base, cache_dir=value, **FIT)


def test_a_cache_dir_of_the_wrong_type_is_a_type_error():
    X, y = make_shapes((8, 4), size=8)
    with pytest.raises(TypeError, match=r"`cache_dir` should be None or a folder path.*=3"):
        DeepSMOTE(**FIT).fit(X, y, cache_dir=3)


@pytest.mark.parametrize("case", ["a file", "under a file", "empty"])
def test_fit_names_a_bad_out_in_shell_words(bad_folders, case, tmp_path, capsys):
    value, _, words = bad_folders[case]
    data = make_folder(tmp_path / "images")
    code, stdout, err = run(capsys, "fit", data, "--out", value, *CLI_TINY)
    assert code in (1, 2) and "Traceback" not in err
    assert "`--out` should be a folder" in err and words in err and "Choose" in err
    assert "read " not in stdout  # refused before reading the data
