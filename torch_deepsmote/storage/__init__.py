"""Everything the library writes to disk, and reads back, below the fitted model.

- ``atomic``: the one atomic write (temporary file beside the target, fsync, rename).
- ``versions``: the format version of every file the library writes.
- ``fingerprint``: the identity of data and settings (sha256 of arrays, of a config).
- ``hdf5``: the checksummed HDF5 container of the cache.
- ``image_store``: training images streamed through an HDF5 file.
- ``checkpoint``: the per-epoch checkpoint of a fit.

The fitted model's own file and the cache folder built on these containers live one layer
up, in ``torch_deepsmote.persistence``. This ``__init__`` imports nothing.
"""
