"""The HDF5 store behind the DeepSMOTE cache: written once, atomically; read lazily per process.

A cache file holds named arrays (``/arrays/<name>``, any shape and numeric dtype), named blobs
(``/blobs/<name>``, uint8, e.g. a ``torch.save``'d state) and root attributes (fingerprints,
configuration). Bookkeeping makes a bad file fail loudly: ``format_version``, a sha256 checksum
per entry (``sha256/arrays/<name>``, ``sha256/blobs/<name>``) and ``complete``, written last.
What the entries mean is the caller's business.

The file's first 512 bytes are an HDF5 user block holding the sha256 of the rest of the file.
``CacheFile.verify`` checks it before HDF5 parses a byte: the HDF5 library can crash the
process (a segmentation fault) on some damaged metadata, so no damaged file may reach it.

Examples:
    >>> import os, tempfile, torch
    >>> path = os.path.join(tempfile.mkdtemp(), "cache.h5")
    >>> latents = torch.arange(8.0).reshape(4, 2)
    >>> write_cache(path, arrays={"latents": latents}, blobs={"model": b"."},
    ...             attrs={"seed": 0})
    >>> with CacheFile(path) as cache:
    ...     cache.check({"seed": 0})
    ...     cache.rows("latents", [3, 0, 3])
    tensor([[6., 7.],
            [0., 1.],
            [6., 7.]])
"""

# Layout, measured on 60,000 x 300 float32 latents (68.7 MiB; h5py 3.16, HDF5 2.0, 2 cores, page
# cache warm), whole read / 256 random rows (sorted point selection), default 1 MiB chunk cache:
#   contiguous 22-24 / 2.9-3.6 ms;  chunks of 64 rows 43-48 / 15 ms;  256 rows 38-45 / 16-26 ms;
#   1024 rows 38 / 20 ms;  256 rows + lzf 37 / 18 ms (0% smaller);  + gzip-4 414 / 275 ms (7%).
# A 128 MiB chunk cache only brings chunked random reads to 6-8 ms. Each scattered row reads its
# whole chunk and float latents barely compress, so arrays are contiguous and uncompressed.
# rows(): 256 rows within a span of 1,024 read as one slice in 0.1-0.2 ms against 0.4 ms as
# points; the two break even at a span of 8-16x the rows wanted, hence _DENSE_SPAN = 8.

from __future__ import annotations

import contextlib
import hashlib
import numbers
import os
from collections.abc import Iterator, Mapping
from typing import Any

import h5py
import numpy as np
import torch

from .._validation import check_choice
from . import versions
from .atomic import atomic_write
from .fingerprint import ArrayLike, fingerprint_arrays, to_numpy, update_digest

__all__ = ["CacheError", "CorruptCacheError", "StaleCacheError"]
__all__ += ["write_cache", "CacheFile", "CachedArray"]

_SUM = "sha256/"
_RESERVED = ("format_version", "complete")
_DENSE_SPAN = 8
_USERBLOCK = 512  # HDF5's smallest user block
_MAGIC = b"torch_deepsmote cache sha256 "
_BLOCK_BYTES = 16 << 20  # bytes per block when an array is streamed
_HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"


class CacheError(RuntimeError):
    """Base class of the cache's errors: the file cannot serve this run."""


class CorruptCacheError(CacheError):
    """The file is unreadable, truncated, incomplete, lacks an entry or fails a checksum."""


class StaleCacheError(CacheError):
    """The file is sound but was written for another format version, dataset or configuration."""


def _check_entries(arrays: Mapping, blobs: Mapping, attrs: Mapping) -> None:
    for kind, names in (("arrays", arrays), ("blobs", blobs)):
        for name in names:  # a "/" would make h5py nest groups
            if not isinstance(name, str) or name in ("", ".") or "/" in name:
                raise ValueError(f"`{kind}` keys should be names without '/', but got {name=}.")
    for key, value in attrs.items():
        if not isinstance(key, str) or not key or key in _RESERVED or key.startswith(_SUM):
            raise ValueError(
                f"`attrs` keys should be names other than {_RESERVED} and not starting with "
                f"{_SUM!r}, but got key={key!r}."
            )
        if not isinstance(value, (str, numbers.Real)):
            raise TypeError(f"`attrs` values should be str, int or float, but got {key}={value!r}.")


def write_cache(
    path: str | os.PathLike,
    *,
    arrays: Mapping[str, ArrayLike],
    blobs: Mapping[str, bytes],
    attrs: Mapping[str, str | int | float],
) -> None:
    """Write one cache file atomically: a reader sees the old file or the whole new one.

    Written through ``atomic_write``: on any error
    ``path`` is left as it was and no temporary file stays.

    Args:
        path: the file to write; its folder is created when missing.
        arrays: name -> tensor or array of any shape, stored with its dtype (bool or numeric).
        blobs: name -> bytes, stored as uint8 (n_bytes,).
        attrs: name -> str, int or float, stored as root attributes.

    Raises:
        ValueError: a name with '/' or an attribute name the cache reserves.
        TypeError: an array of non-numbers, a blob not bytes, an attribute not str/int/float.
    """
    _check_entries(arrays, blobs, attrs)
    with atomic_write(path) as temporary:
        # NOTE: no HDF5 file locks, here or when reading: files are never changed in place, and
        # locks fail on some network filesystems. track_times=False: same content, same bytes.
        with h5py.File(temporary, "w-", locking=False, userblock_size=_USERBLOCK) as file:
            for name, value in arrays.items():
                file.attrs[f"{_SUM}arrays/{name}"] = _write_array(file, name, value)
            for name, value in blobs.items():
                if not isinstance(value, (bytes, bytearray, memoryview)):
                    raise TypeError(f"`blobs` values should be bytes, but got {name}={value!r}.")
                data = bytes(value)
                blob = np.frombuffer(data, dtype=np.uint8)
                file.create_dataset(f"blobs/{name}", data=blob, track_times=False)
                file.attrs[f"{_SUM}blobs/{name}"] = hashlib.sha256(data).hexdigest()
            for key, value in attrs.items():
                file.attrs[key] = value
            file.attrs["format_version"] = versions.CACHE_CONTAINER
            # NOTE: the rename is what makes the write atomic. `complete`, written last, still
            # catches a file that a non-atomic tool (a copy, a sync) left half-written.
            file.attrs["complete"] = 1
            file.flush()
        _seal(temporary)


def _write_array(file: h5py.File, name: str, value: Any) -> str:
    """Store ``value`` as ``arrays/name``; returns its digest. An array stored on disk (with
    ``blocks()``, see ``fingerprint``) is copied a block at a time."""
    if not hasattr(value, "blocks"):
        array = to_numpy(f"arrays[{name!r}]", value)
        file.create_dataset(f"arrays/{name}", data=array, track_times=False)
        return fingerprint_arrays(array)
    shape, dtype = tuple(value.shape), np.dtype(value.numpy_dtype)
    data = file.create_dataset(f"arrays/{name}", shape, dtype, track_times=False)

    def written() -> Iterator[np.ndarray]:
        row = 0
        for block in value.blocks():
            data[row : row + len(block)] = block
            row += len(block)
            yield block

    digest = hashlib.sha256()
    update_digest(digest, dtype, shape, written())
    return digest.hexdigest()


def _body_digest(handle: Any) -> str:
    """sha256 of everything after the user block of an open binary file."""
    handle.seek(_USERBLOCK)
    digest = hashlib.sha256()
    for chunk in iter(lambda: handle.read(1 << 20), b""):
        digest.update(chunk)
    return digest.hexdigest()


def _seal(path: str) -> None:
    """Write the checksum of the file's HDF5 part into its user block."""
    with open(path, "r+b") as handle:
        block = _MAGIC + _body_digest(handle).encode() + b"\n"
        handle.seek(0)
        handle.write(block.ljust(_USERBLOCK, b"\0"))


class CacheFile:
    """A cache file, read-only, opened lazily and separately in every process.

    Constructing one opens nothing; ``open`` or first use opens the file and checks its
    format version, ``complete`` flag and entries. Pickling drops the handle and a forked child
    reopens the file on first use, so DataLoader workers never share an HDF5 handle.

    Args:
        path: the file written by ``write_cache``.
    """

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.fspath(path)
        self._file: h5py.File | None = None
        self._pid: int | None = None

    def open(self) -> CacheFile:
        """Open the file if this process has not yet; returns ``self``.

        Raises:
            FileNotFoundError: no file at ``path``.
            CorruptCacheError: unreadable, truncated or not HDF5; incomplete; an entry missing.
            StaleCacheError: written in another format version.
        """
        if self._file is not None and self._pid == os.getpid():
            return self
        self.close()
        try:
            file = h5py.File(self.path, "r", locking=False)
        except (FileNotFoundError, PermissionError):
            raise  # a missing or forbidden file is not a damaged one
        except OSError as error:
            raise self._corrupt(f"is unreadable (truncated or not HDF5): {error}") from error
        try:
            with self._reading("root attributes"):
                self._read_header(file)
        except BaseException:
            file.close()
            raise
        self._file, self._pid = file, os.getpid()
        return self

    def _read_header(self, file: h5py.File) -> None:
        attrs = {k: v.item() if isinstance(v, np.generic) else v for k, v in file.attrs.items()}
        if not all(isinstance(key, str) for key in attrs):  # h5py gives bytes for non-UTF-8
            raise self._corrupt("has a damaged attribute name")
        version = attrs.get("format_version")
        if version is None:
            raise self._corrupt("has no format_version: it is not a torch_deepsmote cache")
        if version != versions.CACHE_CONTAINER:
            raise StaleCacheError(
                f"Cache file {self.path!r} has format version {version!r}, but this version of "
                f"torch_deepsmote reads format version {versions.CACHE_CONTAINER}. Delete it to "
                "rebuild it."
            )
        if attrs.get("complete") != 1:
            raise self._corrupt("is incomplete: the write that made it was interrupted")
        self._checksums = {k[len(_SUM) :]: v for k, v in attrs.items() if k.startswith(_SUM)}
        missing = [e for e in self._checksums if not isinstance(file.get(e), h5py.Dataset)]
        if missing:
            raise self._corrupt(f"lacks the entries {', '.join(missing)}")
        # Every stored entry must have its checksum: a damaged attribute name must not turn
        # an entry into one that is never checked (or make it vanish from the listing).
        stored = [
            f"{kind}/{name}" for kind in ("arrays", "blobs") if kind in file for name in file[kind]
        ]
        unchecked = sorted(set(stored) - set(self._checksums))
        if unchecked:
            raise self._corrupt(f"has entries without a checksum: {', '.join(unchecked)}")
        self._names = {
            kind: [e.split("/", 1)[1] for e in self._checksums if e.startswith(kind + "/")]
            for kind in ("arrays", "blobs")
        }
        self._attrs = {k: v for k, v in attrs.items() if k != "complete" and not k.startswith(_SUM)}

    def _corrupt(self, what: str) -> CorruptCacheError:
        return CorruptCacheError(f"Cache file {self.path!r} {what}. Delete it to rebuild it.")

    @contextlib.contextmanager
    def _reading(self, entry: str) -> Iterator[None]:
        # h5py reports damaged bytes as OSError, damaged metadata as RuntimeError (an
        # attribute message), KeyError (an object header) or ValueError; say which file and
        # entry, and what to do.
        try:
            yield
        except CacheError:  # already says what is wrong (CacheError is a RuntimeError)
            raise
        except (OSError, RuntimeError, KeyError, ValueError) as error:
            raise self._corrupt(f"could not be read at {entry}: {error}") from error

    def _dataset(self, kind: str, name: str) -> h5py.Dataset:
        self.open()
        check_choice("name", name, self._names[kind])
        return self._file[f"{kind}/{name}"]

    @property
    def attrs(self) -> dict[str, Any]:
        """The attributes given to ``write_cache``, plus ``format_version``, as Python types."""
        return dict(self.open()._attrs)

    def checksum(self, name: str) -> str:
        """The stored sha256 of array ``name``: equal checksums, equal arrays.

        Cheap (no data is read), so a process can tell, before reading rows, that an array
        is still the one it was told about and not one another run wrote since.
        """
        self._dataset("arrays", name)  # opens the file; fails on an unknown name
        return self._checksums[f"arrays/{name}"]

    def check(self, expected: Mapping[str, Any]) -> None:
        """Raise ``StaleCacheError`` listing every key of ``expected`` stored otherwise."""
        stored = self.attrs
        differ = [
            f"{key}: stored {repr(stored[key]) if key in stored else 'nothing'}, expected {value!r}"
            for key, value in expected.items()
            if key not in stored or stored[key] != value
        ]
        if differ:
            raise StaleCacheError(
                f"Cache file {self.path!r} was written for another dataset or configuration "
                f"({'; '.join(differ)}). Delete it, or use another cache path, to rebuild it."
            )

    def verify(self) -> None:
        """Check the whole file: first its bytes (before HDF5 reads any), then every entry.

        Raises:
            FileNotFoundError: No file at ``path``.
            CorruptCacheError: A byte differs from the written file, or an entry fails its
                checksum (named).
            StaleCacheError: A file of an older format (without the file checksum).
        """
        self.close()
        with open(self.path, "rb") as handle:
            block = handle.read(_USERBLOCK)
            if block.startswith(_HDF5_SIGNATURE):
                raise StaleCacheError(
                    f"Cache file {self.path!r} is of an older format (format version 1, "
                    "without a file checksum). Delete it to rebuild it."
                )
            stored = block[len(_MAGIC) : len(_MAGIC) + 64] if block.startswith(_MAGIC) else b""
            if stored.decode("ascii", "replace") != _body_digest(handle):
                raise self._corrupt("fails its file checksum: its bytes changed after writing")
        self.open()
        failed = []
        for entry, expected in self._checksums.items():
            with self._reading(entry):
                if entry.startswith("blobs/"):
                    actual = hashlib.sha256(self._file[entry][()].tobytes()).hexdigest()
                else:  # block by block: an array the size of the images is never held whole
                    data, digest = self._file[entry], hashlib.sha256()
                    update_digest(digest, data.dtype, data.shape, _row_blocks(data))
                    actual = digest.hexdigest()
            if actual != expected:
                failed.append(entry)
        if failed:
            raise self._corrupt(f"fails its checksums at {', '.join(failed)}")

    def has(self, name: str) -> bool:
        """Whether the file holds an array ``name``."""
        return name in self.open()._names["arrays"]

    def array(self, name: str) -> torch.Tensor:
        """The whole array ``name``, with the shape and dtype it was written with."""
        dataset = self._dataset("arrays", name)
        with self._reading(f"arrays/{name}"):
            return torch.from_numpy(np.asarray(dataset[()]))

    def rows(self, name: str, index: Any) -> torch.Tensor:
        """Rows of array ``name`` (N, *rest) at integer ``index``, as ``array(name)[index]``.

        Args:
            name: an array with at least one dimension.
            index: integers of any shape S in [-N, N), in any order, repeats allowed.

        Returns:
            Tensor (*S, *rest) with the array's dtype.
        """
        dataset = self._dataset("arrays", name)
        if dataset.ndim == 0:
            raise ValueError(f"`name` should name an array with rows, but got name={name!r}.")
        index = index.cpu().numpy() if isinstance(index, torch.Tensor) else np.asarray(index)
        if index.size == 0:
            index = index.astype(np.int64)  # np.asarray([]) is float64
        if index.dtype.kind not in "iu":
            raise TypeError(f"`index` should hold integers, but got dtype {index.dtype}.")
        with self._reading(f"arrays/{name}"):
            return torch.from_numpy(read_rows(dataset, index, dataset.shape[0], repr(name)))

    def layout(self, name: str) -> tuple[tuple[int, ...], np.dtype]:
        """The shape and dtype of array ``name`` (no data is read)."""
        dataset = self._dataset("arrays", name)
        return tuple(dataset.shape), dataset.dtype

    def blocks(self, name: str) -> Iterator[np.ndarray]:
        """Every row of array ``name`` in order, as arrays of about 16 MiB."""
        dataset = self._dataset("arrays", name)
        blocks = _row_blocks(dataset)
        while True:
            with self._reading(f"arrays/{name}"):
                block = next(blocks, None)
            if block is None:
                return
            yield block

    def blob(self, name: str) -> bytes:
        """The bytes stored as blob ``name``."""
        dataset = self._dataset("blobs", name)
        with self._reading(f"blobs/{name}"):
            return dataset[()].tobytes()

    def close(self) -> None:
        """Close the handle, if open; the next use reopens it."""
        file, self._file = self._file, None
        if file is not None:
            # NOTE: in a forked child this closes only the child's copy of the parent's handle.
            # Closing rather than forgetting it matters: HDF5 hands out the already-open file's
            # shared state (and the inherited descriptor) when the same file is opened again.
            with contextlib.suppress(Exception):
                file.close()

    def __enter__(self) -> CacheFile:
        return self.open()

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __reduce__(self) -> tuple:
        return type(self), (self.path,)  # never the handle: each process opens its own


class CachedArray:
    """Array ``name`` of a cache file, read by rows where it is used, like
    ``H5Images``: what a model that streams keeps instead
    of an array the size of its images (the residuals).

    Indexing by integer rows (a tensor, array or list of any shape S) gives a (*S, *rest)
    tensor; ``blocks()`` yields every row in order. Pickling keeps the path and the name.
    """

    def __init__(self, path: str | os.PathLike, name: str) -> None:
        self.path, self.name = os.fspath(path), name
        self._cache: CacheFile | None = None
        with CacheFile(self.path) as cache:
            shape, self.numpy_dtype = cache.layout(name)
        self.shape = torch.Size(shape)
        self.dtype = torch.from_numpy(np.empty(0, self.numpy_dtype)).dtype

    def _file(self) -> CacheFile:
        if self._cache is None:
            self._cache = CacheFile(self.path)  # reopens itself in another process
        return self._cache

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: Any) -> torch.Tensor:
        if isinstance(index, slice):
            index = np.arange(*index.indices(len(self)))
        return self._file().rows(self.name, index)

    def blocks(self) -> Iterator[np.ndarray]:
        """Every row in order, as arrays of about 16 MiB."""
        return self._file().blocks(self.name)

    def __reduce__(self) -> tuple:
        return type(self), (self.path, self.name)

    def __repr__(self) -> str:
        return f"CachedArray({self.path!r}, {self.name!r}, shape={tuple(self.shape)})"


def _row_blocks(dataset: h5py.Dataset) -> Iterator[np.ndarray]:
    """The rows of ``dataset`` in order, about 16 MiB at a time (a scalar: itself)."""
    if dataset.ndim == 0:
        yield np.asarray(dataset[()])
        return
    row_bytes = max(1, int(np.prod(dataset.shape[1:])) * dataset.dtype.itemsize)
    step = max(1, _BLOCK_BYTES // row_bytes)
    for start in range(0, dataset.shape[0], step):
        yield dataset[start : start + step]


def read_rows(dataset: Any, index: np.ndarray, n: int, name: str) -> np.ndarray:
    """Rows ``index`` (integers of any shape S in [-n, n)) of an h5py dataset's first ``n``.

    h5py selects only sorted, unique points: those are read once (as one slice where they
    lie close together) and scattered back into the order asked for.

    Returns:
        (*S, *rest) array of the dataset's dtype.
    """
    if index.size and (index.min() < -n or index.max() >= n):
        raise IndexError(f"`index` should lie in [-{n}, {n}) for {name}, but got {index}.")
    flat = index.reshape(-1).astype(np.int64) % max(n, 1)
    unique, inverse = np.unique(flat, return_inverse=True)
    if unique.size and unique[-1] - unique[0] < _DENSE_SPAN * unique.size:
        block = dataset[unique[0] : unique[-1] + 1][unique - unique[0]]
    else:
        block = dataset[unique]
    return block[inverse.reshape(-1)].reshape(index.shape + dataset.shape[1:])
