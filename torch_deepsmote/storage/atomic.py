"""The one atomic write of the library: every file it writes goes through ``atomic_write``.

A reader sees the old file or the whole new one, never half of one: the content is written
to a temporary file in the target's folder (so that the rename stays within one file
system), flushed and fsync'ed, renamed over the target, and the rename is made durable by
an fsync of the folder where the OS allows it. On any error, a ``KeyboardInterrupt``
included, the temporary file is removed and the target is left as it was. The cache, the
checkpoint, the model file, the exports and the command line's model folder all write
through it. An export may be a whole folder (an image folder): it is written and synced
the same way, and an earlier folder at the target is removed just before the rename (a
folder cannot be renamed over a non-empty one).

Examples:
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "notes.txt")
    >>> with atomic_write(target) as temporary:
    ...     with open(temporary, "w") as handle:
    ...         _ = handle.write("done")
    >>> open(target).read(), os.listdir(os.path.dirname(target))
    ('done', ['notes.txt'])
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write", "fsync_path", "write_bytes"]


def fsync_path(path: str | os.PathLike) -> None:
    """Flush a file's (or, on POSIX, a folder's) data to disk."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    The caller writes (and closes) the temporary file inside the ``with`` block, with
    whatever writer it needs (``h5py.File``, ``torch.save``, ``open``), or makes a folder
    there. Its name starts with the target's and keeps the target's suffix last (writers
    pick their format from it), in the same folder, which is created when missing.

    Args:
        path: The file (or folder) to write.

    Yields:
        The temporary path, in the same folder as ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tag = f"tmp-{os.getpid()}-{secrets.token_hex(4)}"
    temporary = target.with_name(f".{target.stem}.{tag}{target.suffix}")
    try:
        yield temporary
        _sync_tree(temporary)  # the data must be on disk before the rename is
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        os.replace(temporary, target)
    except BaseException:
        _remove(temporary)
        raise
    with contextlib.suppress(OSError):  # persist the rename; not every OS can open a folder
        fsync_path(target.parent)


def _sync_tree(path: Path) -> None:
    if not os.path.isdir(path):
        fsync_path(path)
        return
    for folder, _, files in os.walk(path):
        for name in files:
            fsync_path(os.path.join(folder, name))
        with contextlib.suppress(OSError):
            fsync_path(folder)


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if os.path.isdir(path) and not os.path.islink(path):
            shutil.rmtree(path)
        else:
            os.remove(path)


def write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (see ``atomic_write``)."""
    with atomic_write(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
