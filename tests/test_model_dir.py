"""A fit killed before its model folder was written resumes on the same command; a fit still
running in another process is waited for, not taken for an interrupted one."""

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import CLI_TINY, make_folder, run_cli

import torch_deepsmote
from torch_deepsmote.storage.checkpoint import CHECKPOINT_NAME, Checkpoint

REPO = Path(torch_deepsmote.__file__).parent.parent

FIT = [*CLI_TINY[:1], "2", *CLI_TINY[2:]]  # two epochs: the checkpoint holds both


@pytest.fixture
def interrupted(tmp_path, monkeypatch, capsys):
    """A folder as a fit killed after its last epoch leaves it: the epoch checkpoint and
    the cache lock, no model. Returns (data, folder, the complete fit's final loss line)."""
    data = make_folder(tmp_path / "images")
    out = tmp_path / "model"
    with monkeypatch.context() as patch:
        patch.setattr(Checkpoint, "remove", lambda self: None)  # kept, as after a kill
        code, stdout, _ = run_cli(capsys, "fit", data, "--out", out, *FIT)
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
    code, stdout, _ = run_cli(capsys, "fit", data, "--out", out, *FIT)
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
    code, _, err = run_cli(capsys, "fit", data, "--out", out, *CLI_TINY[:1], "3", *CLI_TINY[2:])
    assert code == 2
    assert "interrupted fit of other data or training options" in err and "--overwrite" in err
    assert (out / CHECKPOINT_NAME).exists()  # left as it was


def test_overwrite_starts_an_interrupted_fit_over(interrupted, capsys, monkeypatch):
    data, out, _, _ = interrupted
    loaded = []
    original = Checkpoint.load
    monkeypatch.setattr(Checkpoint, "load", lambda self: loaded.append(original(self)))
    code, stdout, _ = run_cli(capsys, "fit", data, "--out", out, *FIT, "--overwrite")
    assert code == 0 and "resumed" not in stdout
    assert loaded and loaded[0] is None  # nothing was there to resume from


def test_a_folder_with_other_files_still_needs_overwrite(interrupted, capsys):
    data, out, _, _ = interrupted
    (out / "notes.txt").write_text("mine")
    code, _, err = run_cli(capsys, "fit", data, "--out", out, *FIT)
    assert code == 2 and "is not a model folder" in err and "--overwrite" in err


# A fit paused after its first epoch's checkpoint (until the file GO appears), holding the
# folder as a running fit does: the checkpoint is there and the model is not, as after a kill.
PAUSED_FIT = """
import os, sys, time
from torch_deepsmote.cli import main
from torch_deepsmote.storage.checkpoint import Checkpoint

ready, go = sys.argv[1], sys.argv[2]
save = Checkpoint.save

def paused(self, state):
    save(self, state)
    if not os.path.exists(ready):
        open(ready, "w").close()
        deadline = time.time() + 600
        while not os.path.exists(go) and time.time() < deadline:
            time.sleep(0.05)

Checkpoint.save = paused
sys.exit(main(sys.argv[3:]))
"""
CLI = "import sys; from torch_deepsmote.cli import main; sys.exit(main(sys.argv[1:]))"


def test_a_second_fit_while_another_process_fits_the_folder_waits_and_reuses_its_model(
    tmp_path,
):
    data = make_folder(tmp_path / "images")
    out, ready, go = tmp_path / "model", tmp_path / "ready", tmp_path / "go"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": str(REPO)}
    fit = ["fit", str(data), "--out", str(out), *FIT]
    first = subprocess.Popen(
        [sys.executable, "-c", PAUSED_FIT, str(ready), str(go), *fit],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 300
    while not ready.exists() and first.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert ready.exists(), first.communicate()
    # Mid-fit, the folder looks like an interrupted one: a checkpoint and no model.
    assert (out / CHECKPOINT_NAME).exists() and not (out / "deepsmote.json").exists()
    second = subprocess.Popen(
        [sys.executable, "-c", CLI, *fit],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    # The first fit goes on once the second says it waits (or, when it never says so, after
    # five minutes: the second then waits on the first's lock all the same).
    release = threading.Timer(300, go.touch)
    release.start()
    for line in second.stdout:
        lines.append(line)
        if "another process is fitting" in line:
            go.touch()
    release.cancel()
    assert second.wait(timeout=600) == 0, "".join(lines)
    assert first.wait(timeout=600) == 0, first.communicate()
    said = "".join(lines)
    assert f"another process is fitting the model folder {out} now" in said
    assert "deepsmote.h5.lock" in said  # the lock it waits on
    assert f"reused the model in {out}" in said and "resumed" not in said
    assert not (out / CHECKPOINT_NAME).exists()
