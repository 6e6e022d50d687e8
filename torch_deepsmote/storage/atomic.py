"""The one atomic write of the library: every file it writes goes through :func:`atomic_write`.

A reader sees the old file or the whole new one, never half of one: the content is written
to a temporary file in the target's folder (so that the rename stays within one file
system), flushed and fsync'ed, renamed over the target, and the rename is made durable by
an fsync of the folder where the OS allows it. On any error, a ``KeyboardInterrupt``
included, the temporary file is removed and the target is left as it was.

Example:
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
def atomic_write(path: str | os.PathLike) -> Iterator[str]:
    """Yield a temporary path to write; on success it replaces ``path`` atomically.

    The caller writes (and closes) the temporary file inside the ``with`` block, with
    whatever writer it needs (``h5py.File``, ``torch.save``, ``open``). Its folder is
    created when missing; the temporary name starts with the target's, so a stray one
    left by a killed process is easy to attribute.

    Args:
        path: The file to write.

    Yields:
        The temporary file's path (a ``str``), in the same folder as ``path``.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = str(target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"))
    try:
        yield temporary
        fsync_path(temporary)  # the data must be on disk before the rename is
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise
    with contextlib.suppress(OSError):  # persist the rename; not every OS can open a folder
        fsync_path(target.parent)


def write_bytes(path: str | os.PathLike, data: bytes | bytearray | memoryview) -> None:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_write`)."""
    with atomic_write(path) as temporary, open(temporary, "wb") as handle:
        handle.write(data)
