"""The identity of data and settings: sha256 digests that equal inputs share.

The estimator keys its cache, checkpoint and model folder to the training data's
fingerprint and the settings' fingerprint; the cache also stores one digest per entry.
An array stored on disk (an object with ``numpy_dtype``, ``shape`` and ``blocks()``, such
as ``H5Images``) is hashed block by block and
gives the digest of the same array in memory.

Examples:
    >>> import torch
    >>> fingerprint_arrays(torch.arange(3)) == fingerprint_arrays(torch.arange(3).numpy())
    True
    >>> fingerprint_config({"seed": 0, "lr": 1}) == fingerprint_config({"lr": 1, "seed": 0})
    True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any, Union

import numpy as np
import torch

__all__ = ["fingerprint_arrays", "fingerprint_config", "to_numpy", "update_digest"]

ArrayLike = Union[torch.Tensor, np.ndarray]


def fingerprint_config(config: Mapping[str, Any]) -> str:
    """sha256 hex digest of ``config`` as canonical JSON (sorted keys; other values by repr).

    Note:
        A value whose repr holds a memory address (a function, most objects) fingerprints
        differently in every run; pass names or numbers instead.
    """
    if not isinstance(config, Mapping):
        raise TypeError(f"`config` should be a dict, but got config={config!r}.")
    text = json.dumps(config, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def fingerprint_arrays(*arrays: ArrayLike) -> str:
    """sha256 hex digest over the dtype, shape and bytes of each array or tensor, in order.

    An array stored on disk (with ``numpy_dtype``, ``shape`` and ``blocks()``) is read block
    by block and gives the digest of the same array in memory.
    """
    digest = hashlib.sha256()
    for i, value in enumerate(arrays):
        if hasattr(value, "blocks"):
            update_digest(digest, value.numpy_dtype, tuple(value.shape), value.blocks())
        else:
            array = to_numpy(f"arrays[{i}]", value)
            update_digest(digest, array.dtype, array.shape, [array])
    return digest.hexdigest()


def update_digest(digest: Any, dtype: np.dtype, shape: tuple, blocks: Iterable[Any]) -> None:
    """Feed one array, given as its dtype, shape and row blocks in order, to ``digest``."""
    # dtype and shape count too: the same bytes as another dtype or shape are another array.
    digest.update(f"{np.dtype(dtype).str}{tuple(shape)};".encode())
    for block in blocks:
        digest.update(np.asarray(block, order="C").data)


def to_numpy(name: str, value: Any) -> np.ndarray:
    """``value`` as a C-ordered, native-endian array of numbers (torch reads no other byte
    order); ``name`` is what an error calls it.

    Raises:
        TypeError: ``value`` has no numpy dtype (bfloat16) or does not hold numbers.
    """
    try:  # bfloat16 and friends have no numpy dtype
        array = np.asarray(value.detach().cpu() if isinstance(value, torch.Tensor) else value)
    except TypeError as error:
        dtype = getattr(value, "dtype", type(value).__name__)
        raise TypeError(f"`{name}` should have a numpy dtype, but got {dtype}.") from error
    if array.dtype.kind not in "biufc":
        raise TypeError(f"`{name}` should hold numbers, but got dtype {array.dtype}.")
    return np.asarray(array, dtype=array.dtype.newbyteorder("="), order="C")
