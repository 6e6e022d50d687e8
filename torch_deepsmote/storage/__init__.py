"""Everything the library writes to disk, and reads back, below the fitted model.

- :mod:`.atomic`: the one atomic write (temporary file beside the target, fsync, rename).
- :mod:`.versions`: the format version of every file the library writes.
- :mod:`.fingerprint`: the identity of data and settings (sha256 of arrays, of a config).
- :mod:`.hdf5`: the checksummed HDF5 container of the cache.
- :mod:`.image_store`: training images streamed through an HDF5 file.
- :mod:`.checkpoint`: the per-epoch checkpoint of a fit.

The fitted model's own file and the cache folder built on these containers live one layer
up, in :mod:`torch_deepsmote.persistence`. This ``__init__`` imports nothing.
"""
