"""The one atomic write: the old file or the whole new one, and never a temporary left."""

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torchvision.utils
from PIL import Image

import torch_deepsmote
from torch_deepsmote._format import ImageFormat
from torch_deepsmote.app import exports, model_dir
from torch_deepsmote.app.plots import save_grid
from torch_deepsmote.app.sources import LabelledImages
from torch_deepsmote.smote import SMOTEPlan
from torch_deepsmote.storage import atomic, hdf5
from torch_deepsmote.storage.atomic import atomic_write, write_bytes


def test_a_write_replaces_the_target_and_leaves_nothing_else(tmp_path):
    target = tmp_path / "sub" / "model.pt"  # the folder is created
    with atomic_write(target) as temporary:
        assert temporary.parent == target.parent and temporary.suffix == ".pt"
        torch.save({"w": torch.arange(3)}, temporary)
    assert torch.equal(torch.load(target)["w"], torch.arange(3))
    assert [p.name for p in target.parent.iterdir()] == ["model.pt"]


@pytest.mark.parametrize("error", [RuntimeError("disk full"), KeyboardInterrupt()])
def test_an_error_inside_keeps_the_old_file_and_removes_the_temporary(tmp_path, error):
    target = tmp_path / "info.json"
    write_bytes(target, b'{"old": 1}')
    with pytest.raises(type(error)):
        with atomic_write(target) as temporary:
            temporary.write_text('{"new": ')
            raise error
    assert json.loads(target.read_text()) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["info.json"]


def test_a_failed_rename_keeps_the_old_file_and_removes_the_temporary(tmp_path, monkeypatch):
    target = tmp_path / "cache.h5"
    write_bytes(target, b"old")

    def broken(*args):
        raise OSError("rename failed")

    monkeypatch.setattr(atomic.os, "replace", broken)
    with pytest.raises(OSError, match="rename failed"):
        write_bytes(target, b"new")
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["cache.h5"]


def test_a_folder_is_written_whole_and_replaces_the_old_one(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.png").write_bytes(b"x")
    with atomic_write(target) as temporary:
        temporary.mkdir()
        (temporary / "a").mkdir()
        (temporary / "a" / "new.png").write_bytes(b"y")
    assert sorted(str(p.relative_to(target)) for p in target.rglob("*")) == ["a", "a/new.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_a_failed_folder_export_leaves_the_old_folder_and_no_temporary(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    (target / "old.png").write_bytes(b"x")
    with pytest.raises(ValueError):
        with atomic_write(target) as temporary:
            temporary.mkdir()
            (temporary / "half.png").write_bytes(b"y")
            raise ValueError("a bad image")
    assert [p.name for p in target.iterdir()] == ["old.png"]
    assert [p.name for p in tmp_path.iterdir()] == ["export"]


def test_the_model_folder_json_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "deepsmote.json"
    model_dir._write_json(path, {"format_version": 1})

    def no_disk(path):
        raise OSError("fsync failed")

    monkeypatch.setattr(atomic, "fsync_path", no_disk)  # after the write, before the rename
    with pytest.raises(OSError, match="fsync failed"):
        model_dir._write_json(path, {"format_version": 2})
    assert json.loads(path.read_text()) == {"format_version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["deepsmote.json"]


def test_the_model_folder_images_keep_the_old_file_when_a_write_fails(tmp_path, monkeypatch):
    def data(value):
        images = torch.full((3, 1, 4, 4), value, dtype=torch.uint8)
        return LabelledImages(images, torch.tensor([0, 0, 1]), {0: "a", 1: "b"}, {})

    path = tmp_path / "images.h5"
    model_dir._write_images(path, data(1), "old")

    def broken(path):
        raise OSError("no space left")

    monkeypatch.setattr(hdf5, "_seal", broken)  # the HDF5 part is written, the seal fails
    with pytest.raises(OSError, match="no space left"):
        model_dir._write_images(path, data(2), "new")
    with hdf5.CacheFile(path) as file:
        file.verify()
        assert file.attrs["data_fingerprint"] == "old" and int(file.array("images").max()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["images.h5"]


def _export_inputs():
    """A stand-in for a fitted model (its synthesizer and image format), data and a plan."""

    def images(plan):
        return torch.full((len(plan), 1, 4, 4), 200, dtype=torch.uint8)

    model = SimpleNamespace(
        synthesizer_=SimpleNamespace(images=images),
        image_format_=ImageFormat("torch", "uint8", "chw", 0.0, 255.0),
    )
    data = LabelledImages(
        torch.zeros(4, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 0, 0, 1]), {0: "a", 1: "b"}, {}
    )
    plan = SMOTEPlan(
        torch.tensor([1, 1]), torch.tensor([3, 3]), torch.tensor([3, 3]), torch.tensor([0.25, 0.75])
    )
    return model, data, plan


def _snapshot(root):
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_array_export_keeps_the_old_files_and_no_temporary(tmp_path, monkeypatch, error):
    model, data, plan = _export_inputs()
    exports.write_balanced(tmp_path / "b.npz", model, data, plan)
    before = _snapshot(tmp_path)
    assert sorted(before) == ["b.npz", "b.provenance.csv"]

    def half(file, **arrays):
        file.write(b"PK half an archive")
        raise error

    monkeypatch.setattr(np, "savez", half)
    with pytest.raises(type(error)):
        exports.write_balanced(tmp_path / "b.npz", model, data, plan)
    assert _snapshot(tmp_path) == before  # the old files, and nothing beside them


@pytest.mark.parametrize("error", [OSError("disk full"), KeyboardInterrupt()])
def test_a_failed_folder_export_keeps_the_old_folder_and_no_temporary(tmp_path, monkeypatch, error):
    model, data, plan = _export_inputs()
    exports.write_balanced(tmp_path / "out", model, data, plan)
    before = _snapshot(tmp_path)
    assert len([name for name in before if name.endswith(".png")]) == 6
    written, original = [], exports._write_image

    def fails_on_the_third(path, image):
        written.append(path)
        original(path, image)
        if len(written) == 3:
            raise error

    monkeypatch.setattr(exports, "_write_image", fails_on_the_third)
    with pytest.raises(type(error)):
        exports.write_balanced(tmp_path / "out", model, data, plan)
    assert len(written) == 3 and all(not path.exists() for path in written)
    assert _snapshot(tmp_path) == before and [p.name for p in tmp_path.iterdir()] == ["out"]


def test_a_failed_grid_export_keeps_the_old_grid_and_no_temporary(tmp_path, monkeypatch):
    model, data, plan = _export_inputs()
    exports.write_samples(tmp_path / "g.png", model, data, plan)
    before = _snapshot(tmp_path)

    def half(images, path, **kwargs):
        Path(path).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(torchvision.utils, "save_image", half)
    with pytest.raises(OSError, match="disk full"):
        exports.write_samples(tmp_path / "g.png", model, data, plan)
    assert _snapshot(tmp_path) == before


def test_a_report_grid_is_written_atomically(tmp_path, monkeypatch):
    path = tmp_path / "grid.png"
    save_grid(torch.zeros(3, 4, 4), path, ["a"])
    before = path.read_bytes()

    def half(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\x89PNG half")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", half)
    with pytest.raises(OSError, match="disk full"):
        save_grid(torch.ones(3, 4, 4), path)
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["grid.png"]


def test_no_module_writes_a_file_around_the_atomic_write():
    """Every os.replace of the package is the atomic write's own."""
    root = Path(torch_deepsmote.__file__).parent
    users = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "os.replace(" in path.read_text()
    )
    assert users == ["storage/atomic.py"]
