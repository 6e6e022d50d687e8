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
from helpers import CLI_TINY, FIT, make_folder, make_shapes, run_cli
from torch.utils.data import DataLoader, TensorDataset

import torch_deepsmote
from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.cli import main

FIT = dict(FIT, max_epochs=2)
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
        timeout=600,
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

# The reader: every job of a JSON file, in one process (one start of torch), each job's
# result or error as JSON.
READER = """
import contextlib, hashlib, io, json, sys
import numpy as np
import torch
import torch_deepsmote.fitting as fitting
from torch.utils.data import DataLoader, TensorDataset
from helpers import FIT
from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote.cli import main

trained = []
original = fitting.fit_autoencoder
fitting.fit_autoencoder = lambda *a, **k: trained.append(1) or original(*a, **k)
jobs = json.loads(open(sys.argv[1]).read())
X, y = np.load(jobs.pop("X")), np.load(jobs.pop("y"))
FIT = dict(FIT, max_epochs=2)


def fit(cache, **params):
    model = DeepSMOTE(**{**FIT, **params}).fit(X, y, cache_dir=cache)
    images = np.ascontiguousarray(model.sample(5, 2, random_state=0))
    return {"trained": len(trained), "sample": hashlib.sha256(images.tobytes()).hexdigest()}


def dataset(cache):
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    ds = OversampledDataset(base, cache_dir=cache, **FIT)
    ds.set_epoch(1)
    digest = hashlib.sha256()
    for images, targets in DataLoader(ds, batch_size=16):
        digest.update(images.numpy().tobytes() + targets.numpy().tobytes())
    return {"n": len(ds), "items": digest.hexdigest()}


def cli(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}


results = {}
for name, (kind, args) in jobs.items():
    try:
        results[name] = {"fit": fit, "dataset": dataset, "cli": cli}[kind](**args)
    except Exception as error:
        results[name] = {"error": type(error).__name__, "message": str(error)}
print(json.dumps(results))
"""


def _digest(images) -> str:
    return hashlib.sha256(np.ascontiguousarray(np.asarray(images)).tobytes()).hexdigest()


def _items(ds) -> str:
    ds.set_epoch(1)
    digest = hashlib.sha256()
    for images, targets in DataLoader(ds, batch_size=16):
        digest.update(images.numpy().tobytes() + targets.numpy().tobytes())
    return digest.hexdigest()


@pytest.fixture(scope="module")
def read_only(tmp_path_factory):
    """Folders written here, then made read-only and read by one child without write
    access: ``(what the writer saw, what the reader got, the folders)``."""
    root = tmp_path_factory.mktemp("read_only")
    X, y = make_shapes((30, 12, 5), size=12)
    np.save(root / "X.npy", X)
    np.save(root / "y.npy", y)
    seen = {}
    # A complete cache of this data, one of other data (stale) and an empty folder.
    model = DeepSMOTE(**FIT).fit(X, y, cache_dir=root / "cache")
    seen["sample"] = _digest(model.sample(5, 2, random_state=0))
    DeepSMOTE(**FIT).fit(X[:-4], y[:-4], cache_dir=root / "stale")
    (root / "empty").mkdir()
    # An OversampledDataset's cache.
    base = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    ds = OversampledDataset(base, cache_dir=root / "dataset", **FIT)
    seen["dataset"] = {"n": len(ds), "items": _items(ds)}
    # A model folder of the command line, and a writable place for its outputs.
    data = make_folder(root / "images")
    assert main(["fit", str(data), "--out", str(root / "model"), *CLI_TINY]) == 0
    (root / "outputs").mkdir()
    locked = ["cache", "stale", "empty", "dataset", "model"]
    for name in locked:
        _set_writable(root / name, False)
    try:
        probe = _child(PROBE, str(root / "cache" / "probe"))
        if probe.stdout.strip() != "denied":
            pytest.skip(f"a read-only folder is not enforced here: {probe.stdout}{probe.stderr}")
        model_dir, out = str(root / "model"), root / "outputs"
        jobs = {
            "X": str(root / "X.npy"),
            "y": str(root / "y.npy"),
            "fit": ["fit", {"cache": str(root / "cache")}],
            "fit k=2": ["fit", {"cache": str(root / "cache"), "k_neighbors": 2}],
            "fit empty": ["fit", {"cache": str(root / "empty")}],
            "fit stale": ["fit", {"cache": str(root / "stale")}],
            "dataset": ["dataset", {"cache": str(root / "dataset")}],
            "dataset empty": ["dataset", {"cache": str(root / "empty")}],
            "sample": [
                "cli",
                {
                    "argv": [
                        "sample",
                        model_dir,
                        "--class",
                        "bars",
                        "-n",
                        "4",
                        "--out",
                        str(out / "bars.png"),
                    ]
                },
            ],
            "resample": [
                "cli",
                {"argv": ["resample", model_dir, "--out", str(out / "balanced.npz")]},
            ],
            "report": ["cli", {"argv": ["report", model_dir, "--out", str(out / "report")]}],
            "fit --out": ["cli", {"argv": ["fit", str(data), "--out", model_dir, *CLI_TINY]}],
        }
        (root / "jobs.json").write_text(json.dumps(jobs))
        result = _child(READER, str(root / "jobs.json"))
        assert result.returncode == 0, result.stderr
        yield seen, json.loads(result.stdout.strip().splitlines()[-1]), root
    finally:
        for name in locked:
            _set_writable(root / name, True)


# ---------------------------------------------------------------------- DeepSMOTE.fit
def test_fit_with_a_read_only_complete_cache_loads_it_and_trains_nothing(read_only):
    seen, got, _ = read_only
    assert got["fit"] == {"trained": 0, "sample": seen["sample"]}
    # A changed neighbour setting is rebuilt in memory, without training or writing.
    assert got["fit k=2"]["trained"] == 0


def test_fit_with_a_read_only_folder_that_must_be_fitted_names_cache_dir_and_the_fix(read_only):
    _, got, root = read_only
    for folder, problem in [("empty", "holds no DeepSMOTE cache"), ("stale", "stale cache")]:
        result = got[f"fit {folder}"]
        assert result["error"] == "PermissionError", result
        message = result["message"]
        assert f"cache_dir={str(root / folder)!r} is not writable" in message
        assert problem in message and "Pass a writable cache_dir" in message


# ---------------------------------------------------------------------- OversampledDataset
def test_oversampled_dataset_serves_a_read_only_cache_and_names_a_missing_one(read_only):
    seen, got, _ = read_only
    assert got["dataset"] == seen["dataset"]  # the same items, read-only
    failed = got["dataset empty"]
    assert failed["error"] == "PermissionError" and "cache_dir=" in failed["message"]
    assert "holds no DeepSMOTE cache" in failed["message"]


# ---------------------------------------------------------------------- the command line
def test_sample_resample_and_report_work_from_a_read_only_model_folder(read_only):
    _, got, root = read_only
    for verb, target in [
        ("sample", "bars.png"),
        ("resample", "balanced.npz"),
        ("report", "report"),
    ]:
        assert got[verb]["code"] == 0, f"{verb}: {got[verb]}"
        assert (root / "outputs" / target).exists()


def test_fit_refuses_a_read_only_out_in_shell_words_before_reading(read_only):
    _, got, root = read_only
    result = got["fit --out"]
    assert result["code"] == 1 and "Traceback" not in result["stderr"]
    model = root / "model"
    expected = f"`--out` should be a folder this process can write to, but got --out {model}"
    assert expected in result["stderr"]
    assert "read " not in result["stdout"]


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
    code, stdout, err = run_cli(capsys, "fit", data, "--out", value, *CLI_TINY)
    assert code in (1, 2) and "Traceback" not in err
    assert "`--out` should be a folder" in err and words in err and "Choose" in err
    assert "read " not in stdout  # refused before reading the data
