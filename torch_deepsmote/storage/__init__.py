"""Everything the library writes to disk, and reads back.

- ``atomic``: the one atomic write (temporary file beside the target, fsync, rename).
- ``versions``: the format version of every file the library writes.
- ``fingerprint``: the identity of data and settings (sha256 of arrays, of a config).
- ``hdf5``: the checksummed HDF5 container of the cache.
- ``image_store``: training images streamed through an HDF5 file.
- ``checkpoint``: the per-epoch checkpoint of a fit.
- ``model_file``: a fitted model as a dict of tensors (``DeepSMOTE.save`` and the cache).
- ``model_cache``: fit once, then load: the cache folder of ``OversampledDataset``.

This ``__init__`` imports nothing: the modules sit on different layers (the container
below the synthesizer that reads it, the model file above the fitted value it stores).
"""
