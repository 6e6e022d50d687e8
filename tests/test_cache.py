"""The HDF5 cache store: round trips, atomic writes, damage detection, staleness, processes."""

from __future__ import annotations

import multiprocessing
import os
import pickle

import h5py
import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from torch_deepsmote.storage import versions
from torch_deepsmote.storage.fingerprint import fingerprint_arrays, fingerprint_config
from torch_deepsmote.storage.hdf5 import (
    CacheError,
    CacheFile,
    CorruptCacheError,
    StaleCacheError,
    _seal,
    write_cache,
)


def _contents(seed=0):
    rng = np.random.default_rng(seed)
    arrays = {
        "latents": torch.from_numpy(rng.standard_normal((500, 12)).astype(np.float32)),
        "labels": rng.integers(0, 5, size=500).astype(np.int64),
        "images": rng.integers(0, 256, size=(20, 1, 8, 8), dtype=np.uint8),
    }
    blobs = {"model": bytes(rng.integers(0, 256, size=3000, dtype=np.uint8)), "empty": b""}
    attrs = {"seed": 7, "lr": 0.0002, "dataset": "shapes-abc", "k_neighbors": 5}
    return arrays, blobs, attrs


@pytest.fixture
def cache_path(tmp_path):
    path = tmp_path / "cache.h5"
    write_cache(path, **dict(zip(("arrays", "blobs", "attrs"), _contents())))
    return path


def _read_rows(cache, index, queue):
    """Runs in a child process: read through an inherited or unpickled CacheFile."""
    rows = cache.rows("latents", index).numpy()
    queue.put((rows, cache._pid == os.getpid()))


def test_round_trip_keeps_arrays_dtypes_blobs_and_attrs(cache_path):
    arrays, blobs, attrs = _contents()
    with CacheFile(cache_path) as cache:
        for name, value in arrays.items():
            got = cache.array(name)
            assert got.dtype == torch.as_tensor(value).dtype
            assert torch.equal(got, torch.as_tensor(value))
        for name, value in blobs.items():
            assert cache.blob(name) == value
        assert cache.attrs == {**attrs, "format_version": versions.CACHE_CONTAINER}
        assert all(type(cache.attrs[k]) is type(v) for k, v in attrs.items())
        cache.check(attrs)
        cache.verify()


def test_round_trip_of_scalar_bool_and_empty_arrays(tmp_path):
    arrays = {"scalar": np.float64(3.5), "mask": np.array([True, False]), "none": np.zeros((0, 4))}
    write_cache(tmp_path / "c.h5", arrays=arrays, blobs={}, attrs={})
    with CacheFile(tmp_path / "c.h5") as cache:
        for name, value in arrays.items():
            assert np.array_equal(cache.array(name).numpy(), np.asarray(value))
        assert cache.rows("none", []).shape == (0, 4)
        cache.verify()


def test_stored_checksum_is_the_array_fingerprint(cache_path):
    arrays, _, _ = _contents()
    with h5py.File(cache_path, "r") as file:
        assert file.attrs["sha256/arrays/latents"] == fingerprint_arrays(arrays["latents"])


@pytest.mark.parametrize(
    "index",
    [
        [499, 3, 3, 0, 250, 3],  # unsorted, repeated, scattered
        [10, 12, 11, 10, 14],  # dense: read as one slice
        np.array([[5, -1], [-500, 5]]),  # negative, 2-D
        torch.tensor([7, 7, 7]),
        [42],
    ],
)
def test_rows_equal_fancy_indexing(cache_path, index):
    latents = _contents()[0]["latents"]
    with CacheFile(cache_path) as cache:
        got = cache.rows("latents", index)
        assert torch.equal(got, latents[torch.as_tensor(np.asarray(index))])
        assert torch.equal(
            cache.rows("labels", index),
            torch.as_tensor(_contents()[0]["labels"])[torch.as_tensor(np.asarray(index))],
        )


def test_rows_rejects_out_of_range_and_non_integer_index(cache_path):
    with CacheFile(cache_path) as cache:
        with pytest.raises(IndexError, match="500"):
            cache.rows("latents", [0, 500])
        with pytest.raises(TypeError, match="`index` should hold integers"):
            cache.rows("latents", [0.5])
        with pytest.raises(ValueError, match="`name` should be one of"):
            cache.rows("latent", [0])


def test_check_names_every_differing_key(cache_path):
    cache = CacheFile(cache_path)
    with pytest.raises(StaleCacheError) as info:
        cache.check({"seed": 8, "lr": 0.0002, "dataset": "other", "missing": 1})
    message = str(info.value)
    assert "seed: stored 7, expected 8" in message
    assert "dataset: stored 'shapes-abc', expected 'other'" in message
    assert "missing: stored nothing, expected 1" in message
    assert "lr" not in message
    assert isinstance(info.value, CacheError) and isinstance(info.value, RuntimeError)


def test_constructing_opens_nothing(tmp_path):
    cache = CacheFile(tmp_path / "absent.h5")  # no error until first use
    assert cache._file is None
    with pytest.raises(FileNotFoundError, match="absent.h5"):
        cache.open()


def test_truncated_file_is_corrupt_and_named(cache_path):
    size = os.path.getsize(cache_path)
    with open(cache_path, "r+b") as handle:
        handle.truncate(size // 2)
    with pytest.raises(CorruptCacheError, match="cache.h5"):
        CacheFile(cache_path).open()


@pytest.mark.parametrize("content", [b"", b"garbage, not an HDF5 file\n" * 100])
def test_garbage_file_is_corrupt_and_named(tmp_path, content):
    path = tmp_path / "junk.h5"
    path.write_bytes(content)
    with pytest.raises(CorruptCacheError, match="junk.h5"):
        CacheFile(path).array("latents")


def test_flipped_bytes_in_array_data_fail_verify(cache_path):
    with h5py.File(cache_path, "r") as file:
        offset = file["arrays/latents"].id.get_offset()  # contiguous: data starts here
    assert offset is not None
    with open(cache_path, "r+b") as handle:
        handle.seek(offset + 1000)
        byte = handle.read(1)
        handle.seek(offset + 1000)
        handle.write(bytes([byte[0] ^ 0xFF]))
    cache = CacheFile(cache_path).open()  # metadata is intact; only verify() can tell
    with pytest.raises(CorruptCacheError, match=r"cache\.h5.*fails its file checksum"):
        cache.verify()
    # Under the file checksum, each entry's own: a file re-sealed after the damage (as a
    # tool that rewrote it would) still fails, at the damaged entry only.
    _seal(str(cache_path))
    with pytest.raises(CorruptCacheError, match=r"cache\.h5.*arrays/latents") as info:
        cache.verify()
    assert "labels" not in str(info.value)


def test_a_cache_of_the_previous_format_is_stale(cache_path, tmp_path):
    old = tmp_path / "old.h5"  # format 1: plain HDF5 from the first byte, no file checksum
    with h5py.File(old, "w") as file:
        file["arrays/latents"] = np.zeros((3, 2), np.float32)
        file.attrs["format_version"] = 1
        file.attrs["complete"] = 1
    with pytest.raises(StaleCacheError, match=r"old\.h5.*older format.*Delete it"):
        CacheFile(old).verify()


def test_interrupted_write_without_complete_flag_is_corrupt(tmp_path):
    path = tmp_path / "partial.h5"
    with h5py.File(path, "w") as file:
        file["arrays/latents"] = np.zeros((3, 2), np.float32)
        file.attrs["format_version"] = versions.CACHE_CONTAINER
    with pytest.raises(CorruptCacheError, match="partial.h5.*incomplete"):
        CacheFile(path).open()


def test_missing_entry_is_corrupt(cache_path):
    with h5py.File(cache_path, "r+") as file:
        del file["blobs/model"]
    with pytest.raises(CorruptCacheError, match="blobs/model"):
        CacheFile(cache_path).open()


def test_other_format_version_is_stale(cache_path):
    with h5py.File(cache_path, "r+") as file:
        file.attrs["format_version"] = versions.CACHE_CONTAINER + 1
    with pytest.raises(StaleCacheError, match="format version"):
        CacheFile(cache_path).open()


def test_write_is_atomic_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "sub" / "cache.h5"  # the folder is created
    arrays, blobs, attrs = _contents()
    write_cache(path, arrays=arrays, blobs=blobs, attrs=attrs)
    assert os.listdir(path.parent) == ["cache.h5"]
    before = path.read_bytes()
    broken = {"good": np.ones(3), "bad": np.array([object()], dtype=object), "later": np.ones(2)}
    with pytest.raises(TypeError, match="bad"):
        write_cache(path, arrays=broken, blobs={}, attrs={"seed": 8})
    assert os.listdir(path.parent) == ["cache.h5"]
    assert path.read_bytes() == before
    CacheFile(path).verify()
    write_cache(path, arrays={"x": np.arange(3)}, blobs={}, attrs={"seed": 9})  # replaces it
    assert CacheFile(path).attrs["seed"] == 9
    assert os.listdir(path.parent) == ["cache.h5"]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"arrays": {"a/b": np.ones(2)}}, ValueError, "without '/'"),
        ({"attrs": {"complete": 1}}, ValueError, "key='complete'"),
        ({"attrs": {"sha256/x": "0"}}, ValueError, "key='sha256/x'"),
        ({"attrs": {"shape": [1, 2]}}, TypeError, "str, int or float"),
        ({"blobs": {"model": "text"}}, TypeError, "should be bytes"),
        ({"arrays": {"x": torch.ones(2, dtype=torch.bfloat16)}}, TypeError, "bfloat16"),
    ],
)
def test_write_rejects_bad_entries(tmp_path, kwargs, error, match):
    with pytest.raises(error, match=match):
        write_cache(tmp_path / "c.h5", **{"arrays": {}, "blobs": {}, "attrs": {}, **kwargs})
    assert os.listdir(tmp_path) == []


def test_pickled_cache_file_reopens_lazily(cache_path):
    cache = CacheFile(cache_path).open()
    expected = cache.rows("latents", [4, 1])
    copy = pickle.loads(pickle.dumps(cache))
    assert copy._file is None and copy.path == cache.path
    assert torch.equal(copy.rows("latents", [4, 1]), expected)
    cache.close()
    copy.close()


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_child_process_reads_through_its_own_handle(cache_path, method):
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method!r} start method here")
    context = multiprocessing.get_context(method)
    cache = CacheFile(cache_path)
    index = [9, 2, 9]
    expected = cache.rows("latents", index).numpy()  # the parent holds an open handle
    queue = context.Queue()
    child = context.Process(target=_read_rows, args=(cache, index, queue))
    child.start()
    rows, reopened = queue.get(timeout=120)
    child.join(timeout=60)
    assert child.exitcode == 0
    assert np.array_equal(rows, expected)
    assert reopened  # the child opened the file itself
    assert np.array_equal(cache.rows("latents", index).numpy(), expected)  # parent unaffected
    cache.close()


def test_config_fingerprint_is_canonical_and_sensitive():
    config = {"seed": 0, "knn": "torch", "lr": 2e-4, "nested": {"b": 1, "a": [1, 2]}}
    reordered = {"nested": {"a": [1, 2], "b": 1}, "lr": 2e-4, "knn": "torch", "seed": 0}
    assert fingerprint_config(config) == fingerprint_config(reordered)
    assert fingerprint_config(config) != fingerprint_config({**config, "seed": 1})
    assert fingerprint_config({"device": torch.device("cpu")}) == fingerprint_config(
        {"device": torch.device("cpu")}
    )
    assert len(fingerprint_config({})) == 64


def test_array_fingerprint_sees_dtype_shape_order_and_tensors():
    a = np.arange(6, dtype=np.int32)
    assert fingerprint_arrays(a) == fingerprint_arrays(torch.from_numpy(a.copy()))
    assert fingerprint_arrays(a) != fingerprint_arrays(a.reshape(2, 3))
    assert fingerprint_arrays(a) != fingerprint_arrays(a.view(np.float32))
    assert fingerprint_arrays(a, a[:2]) != fingerprint_arrays(a[:2], a)
    assert fingerprint_arrays(a[::2]) == fingerprint_arrays(a[::2].copy())


@settings(max_examples=60, deadline=None)
@given(
    array=arrays(
        dtype=st.sampled_from([np.uint8, np.int64, np.float32]),
        shape=array_shapes(min_dims=1, max_dims=3, min_side=1, max_side=6),
    ),
    data=st.data(),
)
def test_changing_any_byte_changes_the_array_fingerprint(array, data):
    raw = array.view(np.uint8).reshape(-1)
    position = data.draw(st.integers(0, raw.size - 1))
    flip = data.draw(st.integers(1, 255))
    changed = raw.copy()
    changed[position] ^= flip
    before = fingerprint_arrays(array)
    assert fingerprint_arrays(array.copy()) == before
    assert fingerprint_arrays(changed.view(array.dtype).reshape(array.shape)) != before


def test_an_array_stored_on_disk_is_written_block_by_block_like_the_same_array(tmp_path):
    from torch_deepsmote.storage.hdf5 import CachedArray
    from torch_deepsmote.storage.image_store import H5ImagesWriter

    rows = torch.randn(50, 2, 3, 3).half()
    writer = H5ImagesWriter(tmp_path / "rows.h5", n=50, row=rows[0])
    writer.extend(rows[:20])
    writer.extend(rows[20:])
    stored = writer.close()
    write_cache(tmp_path / "a.h5", arrays={"r": rows}, blobs={}, attrs={})
    write_cache(tmp_path / "b.h5", arrays={"r": stored}, blobs={}, attrs={})
    a, b = CacheFile(tmp_path / "a.h5"), CacheFile(tmp_path / "b.h5")
    b.verify()
    assert a.checksum("r") == b.checksum("r")
    assert torch.equal(b.array("r"), rows)
    lazy = pickle.loads(pickle.dumps(CachedArray(tmp_path / "b.h5", "r")))
    assert lazy.shape == rows.shape and lazy.dtype == torch.float16 and len(lazy) == 50
    index = torch.tensor([[7, 0], [49, 7]])
    assert torch.equal(lazy[index], rows[index]) and torch.equal(lazy[3:9], rows[3:9])
    assert torch.equal(torch.from_numpy(np.concatenate(list(lazy.blocks()))), rows)
    # The cache written from the lazy array is the same array again.
    write_cache(tmp_path / "c.h5", arrays={"r": lazy}, blobs={}, attrs={})
    assert CacheFile(tmp_path / "c.h5").checksum("r") == a.checksum("r")
