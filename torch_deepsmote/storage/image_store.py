"""Training images in an HDF5 file, read by rows like a tensor: memory that does not grow with N.

``read_dataset`` writes the images it reads into an
``H5ImagesWriter`` batch by batch (``OversampledDataset(in_memory=False)``); the
``H5Images`` it returns stands in for the (N, C, H, W) tensor wherever the library reads
training images: the training batches and penalty draws of
``fit_autoencoder``, ``encode_images``,
``reconstruction_residuals`` and the data fingerprint. Each
index reads only the rows it names (sorted for HDF5's point selection, then put back in the
order asked for), so the process holds a batch of images, never the set.

Examples:
    >>> import os, tempfile, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "images.h5")
    >>> writer = H5ImagesWriter(path, n=3, row=torch.zeros(1, 2, 2, dtype=torch.uint8))
    >>> for i in range(3):
    ...     writer.append(torch.full((1, 2, 2), i, dtype=torch.uint8))
    >>> images = writer.close()
    >>> images.shape, images[torch.tensor([2, 0])][:, 0, 0, 0].tolist()
    (torch.Size([3, 1, 2, 2]), [2, 0])
"""

from __future__ import annotations

import glob
import os
import secrets
import socket
from collections.abc import Iterator
from typing import Any

import h5py
import numpy as np
import torch
from torch import Tensor

__all__ = ["H5Images", "H5ImagesWriter", "new_store", "remove_store", "residual_store"]

_NAME = "images"
_WRITE_ROWS = 4096  # rows buffered per HDF5 write
_BLOCK_BYTES = 16 << 20  # bytes per block when the whole set is streamed (fingerprint)


class H5Images:
    """(N, C, H, W) images in an HDF5 file written by ``H5ImagesWriter``, read-only.

    Indexing follows a tensor's first dimension: an int, a slice, or integer rows (a
    tensor, array or list of any shape S) give a CPU tensor of the stored dtype. Pickling
    keeps only the path; each process opens the file on first use.

    Args:
        path: The file.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None
        self._fd: int | None = None
        self._fd_pid: int | None = None
        with h5py.File(self.path, "r", locking=False) as file:
            data = file[_NAME]
            self.numpy_dtype = data.dtype
            self.shape = torch.Size((int(data.attrs["rows"]), *data.shape[1:]))
        self.dtype = torch.from_numpy(np.empty(0, self.numpy_dtype)).dtype

    def _data(self) -> h5py.Dataset:
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.path, "r", locking=False), os.getpid()
        return self._file[_NAME]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> Tensor:
        n = len(self)
        if isinstance(index, slice):
            start, stop, step = index.indices(n)
            if step != 1:
                raise ValueError(f"`index` should be a slice of step 1, but got step={step}.")
            return torch.from_numpy(self._data()[start:stop])
        if isinstance(index, int):
            return self[[index]][0]
        rows = index.cpu().numpy() if isinstance(index, Tensor) else np.asarray(index)
        if rows.size == 0:
            return torch.empty((*rows.shape, *self.shape[1:]), dtype=self.dtype)
        if rows.dtype.kind not in "iu":
            raise TypeError(f"`index` should hold integers, but got dtype {rows.dtype}.")
        if rows.min() < -n or rows.max() >= n:
            raise IndexError(f"`index` should lie in [-{n}, {n}) for {self.path!r}, got {rows}.")
        flat = rows.reshape(-1).astype(np.int64) % n
        unique, inverse = np.unique(flat, return_inverse=True)
        block = self._read_points(unique)[inverse.reshape(-1)]
        return torch.from_numpy(block.reshape(rows.shape + tuple(self.shape[1:])))

    def _read_points(self, unique: np.ndarray) -> np.ndarray:
        # NOTE: h5py's point selection of a training batch (100 scattered rows) took
        # milliseconds per call; the writer makes the dataset contiguous and uncompressed,
        # so each row is row_bytes at a fixed offset in the file: one pread per row.
        data = self._data()
        row_bytes = int(np.prod(self.shape[1:])) * self.numpy_dtype.itemsize
        offset, descriptor = data.id.get_offset(), self._descriptor()
        out = bytearray(len(unique) * row_bytes)
        for k, row in enumerate(unique.tolist()):
            out[k * row_bytes : (k + 1) * row_bytes] = os.pread(
                descriptor, row_bytes, offset + row * row_bytes
            )
        return np.frombuffer(out, self.numpy_dtype).reshape(len(unique), *self.shape[1:])

    def _descriptor(self) -> int:
        if self._fd is None or self._fd_pid != os.getpid():
            self._fd, self._fd_pid = os.open(self.path, os.O_RDONLY), os.getpid()
        return self._fd

    def blocks(self) -> Iterator[np.ndarray]:
        """Every row in order, as arrays of about 16 MiB (for hashing and copying)."""
        row_bytes = max(1, int(np.prod(self.shape[1:])) * self.numpy_dtype.itemsize)
        step = max(1, _BLOCK_BYTES // row_bytes)
        for start in range(0, len(self), step):
            yield self._data()[start : min(start + step, len(self))]

    def close(self) -> None:
        if self._file is not None and self._pid == os.getpid():
            self._file.close()
        if self._fd is not None and self._fd_pid == os.getpid():
            os.close(self._fd)
        self._file = self._fd = None

    def __reduce__(self) -> tuple:
        return type(self), (self.path,)

    def __repr__(self) -> str:
        return f"H5Images({self.path!r}, shape={tuple(self.shape)}, dtype={self.dtype})"


class H5ImagesWriter:
    """Writes up to ``n`` images into a new HDF5 file, row by row, a few thousand at a time.

    The dataset is contiguous and uncompressed (a scattered row is then one small read; see
    the layout notes in ``torch_deepsmote.storage.hdf5``); rows beyond those written are never
    read (the file records how many were).

    Note:
        The one file the library does not write through ``atomic_write``: a scratch file,
        written row by row while a dataset is read, named for its process (``new_store``),
        read by that fit alone and removed after it. Nothing reads it as a finished file, so
        a rename buys nothing, and the fsync before it would cost a flush of the whole image
        set to disk; a store left by a killed process keeps its own name, which
        ``new_store`` finds and removes (a temporary name would escape it).

    Args:
        path: The file to create (replaced if it exists).
        n: The most rows that will be written.
        row: (C, H, W) an example row: its shape and dtype are the file's.
    """

    def __init__(self, path: str | os.PathLike, n: int, row: Tensor) -> None:
        self.path = os.fspath(path)
        self._file = h5py.File(self.path, "w", locking=False)
        dtype = row.numpy().dtype
        self._data = self._file.create_dataset(_NAME, (n, *row.shape), dtype, track_times=False)
        self._pending: list[Tensor] = []
        self.rows = 0

    def append(self, row: Tensor) -> None:
        """Add one (C, H, W) image after the last one."""
        self._check_room(1)
        self._pending.append(row)
        if len(self._pending) >= _WRITE_ROWS:
            self._flush()

    def extend(self, rows: Tensor) -> None:
        """Add (B, C, H, W) images after the last one, written at once."""
        self._check_room(len(rows))
        self._flush()
        self._data[self.rows : self.rows + len(rows)] = rows.numpy()
        self.rows += len(rows)

    def _check_room(self, rows: int) -> None:
        if self.rows + len(self._pending) + rows > len(self._data):
            raise ValueError(
                f"The store {self.path!r} holds n={len(self._data)} rows, but got "
                f"{self.rows + len(self._pending) + rows}. Create it with a larger `n`."
            )

    def _flush(self) -> None:
        if self._pending:
            block = torch.stack(self._pending).numpy()
            self._data[self.rows : self.rows + len(block)] = block
            self.rows += len(block)
            self._pending = []

    def keep(self, rows: np.ndarray) -> None:
        """Keep only the written rows where the bool mask ``rows`` (one per written row) is
        True, moved to the front in order (items found bad once the set was read)."""
        self._flush()
        positions = np.flatnonzero(np.asarray(rows, dtype=bool))
        if len(rows) != self.rows:
            raise ValueError(
                f"`rows` should mark each of the {self.rows} written rows, but got {len(rows)}."
            )
        # Row j moves to its rank among the kept rows, never later than itself: copied in
        # order, a block never overwrites a row a later block still reads.
        for start in range(0, len(positions), _WRITE_ROWS):
            block = positions[start : start + _WRITE_ROWS]
            self._data[start : start + len(block)] = self._data[block]
        self.rows = len(positions)

    def close(self) -> H5Images:
        """Write what is pending, close the file and open it for reading."""
        self._flush()
        self._data.attrs["rows"] = self.rows
        self._file.close()
        return H5Images(self.path)


def new_store(folder: str | os.PathLike) -> str:
    """A path for this process's image store in ``folder``, unique across processes and
    machines sharing it; stores left there by killed processes of this machine go first."""
    host = socket.gethostname().replace("-", "_")
    for path in glob.glob(os.path.join(folder, f"images-{host}-*-*.h5")):
        pid = os.path.basename(path).split("-")[2]
        if pid.isdigit() and not _alive(int(pid)):
            remove_store(path)
    return os.path.join(folder, f"images-{host}-{os.getpid()}-{secrets.token_hex(4)}.h5")


def residual_store(images: H5Images) -> str:
    """Where a fit on stored images keeps their residuals: a new file beside them (one per
    fit, so that a second fit never overwrites the residuals a first model reads)."""
    return f"{images.path}.residuals-{secrets.token_hex(6)}.h5"


def remove_store(path: str | os.PathLike) -> None:
    """Delete an image store and the residual files of the fits on it."""
    for name in [os.fspath(path), *glob.glob(f"{glob.escape(os.fspath(path))}.residuals-*.h5")]:
        try:
            os.remove(name)
        except FileNotFoundError:
            pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
