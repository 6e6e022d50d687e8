"""A fit killed before its model folder was written resumes on the same command."""

import json

import pytest
from test_cli import TINY, make_folder, run

from torch_deepsmote.storage.checkpoint import CHECKPOINT_NAME, Checkpoint

FIT = [*TINY[:1], "2", *TINY[2:]]  # two epochs: the checkpoint holds both


@pytest.fixture
def interrupted(tmp_path, monkeypatch, capsys):
    """A folder as a fit killed after its last epoch leaves it: the epoch checkpoint and
    the cache lock, no model. Returns (data, folder, the complete fit's final loss line)."""
    data = make_folder(tmp_path / "images")
    out = tmp_path / "model"
    with monkeypatch.context() as patch:
        patch.setattr(Checkpoint, "remove", lambda self: None)  # kept, as after a kill
        code, stdout, _ = run(capsys, "fit", data, "--out", out, *FIT)
    assert code == 0
    history = json.loads((out / "deepsmote.json").read_text())
    for name in ("deepsmote.h5", "images.h5", "deepsmote.json"):
        (out / name).unlink()
    assert {p.name for p in out.iterdir()} <= {CHECKPOINT_NAME, "deepsmote.h5.lock"}
    assert (out / CHECKPOINT_NAME).exists()
    final = next(line for line in stdout.splitlines() if line.startswith("fit:"))
    return data, out, final.split("final loss")[1], history


def test_the_same_fit_command_resumes_an_interrupted_fit_and_says_so(interrupted, capsys):
    data, out, final_loss, first = interrupted
    code, stdout, _ = run(capsys, "fit", data, "--out", out, *FIT)
    assert code == 0
    assert f"resumed the interrupted fit in {out}" in stdout
    # Resumed after its last complete epoch: the same losses, nothing trained again.
    assert final_loss in stdout
    info = json.loads((out / "deepsmote.json").read_text())
    keys = ("data_fingerprint", "training_fingerprint", "epochs", "final_loss")
    assert [info[k] for k in keys] == [first[k] for k in keys]
    assert info["fit_seconds"] == first["fit_seconds"]  # the checkpoint's epoch times
    assert not (out / CHECKPOINT_NAME).exists()  # replaced by the written model


def test_an_interrupted_fit_of_other_options_is_refused_without_overwrite(interrupted, capsys):
    data, out, _, _ = interrupted
    code, _, err = run(capsys, "fit", data, "--out", out, *TINY[:1], "3", *TINY[2:])
    assert code == 2
    assert "interrupted fit of other data or training options" in err and "--overwrite" in err
    assert (out / CHECKPOINT_NAME).exists()  # left as it was


def test_overwrite_starts_an_interrupted_fit_over(interrupted, capsys, monkeypatch):
    data, out, _, _ = interrupted
    loaded = []
    original = Checkpoint.load
    monkeypatch.setattr(Checkpoint, "load", lambda self: loaded.append(original(self)))
    code, stdout, _ = run(capsys, "fit", data, "--out", out, *FIT, "--overwrite")
    assert code == 0 and "resumed" not in stdout
    assert loaded and loaded[0] is None  # nothing was there to resume from


def test_a_folder_with_other_files_still_needs_overwrite(interrupted, capsys):
    data, out, _, _ = interrupted
    (out / "notes.txt").write_text("mine")
    code, _, err = run(capsys, "fit", data, "--out", out, *FIT)
    assert code == 2 and "is not a model folder" in err and "--overwrite" in err
