"""The format version of every file the library writes, in one place.

A reader refuses (or, for a cache, rebuilds) a file of a version it does not list as
readable, naming both versions. Raise a version when a file's layout or meaning changes.
"""

from __future__ import annotations

__all__ = [
    "CACHE_CONTAINER",
    "CHECKPOINT",
    "MODEL",
    "MODEL_FOLDER",
    "MODEL_READABLE",
]

# The HDF5 container of the cache (storage.hdf5). 2: a user block holding the file's sha256.
CACHE_CONTAINER = 2
# A fitted model as a dict of tensors (persistence.model_file): DeepSMOTE.save and the blob in the
# cache. 2: the image format names its kind and layout, and the state carries the training
# data's fingerprint. Version 1 files still load.
MODEL = 2
MODEL_READABLE = (1, 2)
# A fit's per-epoch checkpoint (storage.checkpoint).
CHECKPOINT = 1
# The command line's model folder (model_dir: deepsmote.json beside the model and images).
MODEL_FOLDER = 1
