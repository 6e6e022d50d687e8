"""The one atomic write: the old file or the whole new one, and never a temporary left."""

import json

import pytest
import torch

from torch_deepsmote.storage import atomic
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
    from torch_deepsmote import model_dir

    path = tmp_path / "deepsmote.json"
    model_dir._write_json(path, {"format_version": 1})

    def no_disk(path):
        raise OSError("fsync failed")

    monkeypatch.setattr(atomic, "fsync_path", no_disk)  # after the write, before the rename
    with pytest.raises(OSError, match="fsync failed"):
        model_dir._write_json(path, {"format_version": 2})
    assert json.loads(path.read_text()) == {"format_version": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["deepsmote.json"]


def test_no_module_writes_a_file_around_the_atomic_write():
    """Every os.replace of the package is the atomic write's own."""
    from pathlib import Path

    import torch_deepsmote

    root = Path(torch_deepsmote.__file__).parent
    users = sorted(
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if "os.replace(" in path.read_text()
    )
    assert users == ["storage/atomic.py"]
