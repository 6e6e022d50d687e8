"""A fitted model on disk: its one-file format and the cache folder of fit-once-then-load.

- :mod:`.model_file`: a fitted model as a dict of tensors (``DeepSMOTE.save`` and the cache).
- :mod:`.model_cache`: fit once, then load: the cache folder of ``OversampledDataset``,
  one process at a time (file lock).

Both store the fitted value (:class:`~torch_deepsmote.fitting.FittedDeepSMOTE`) and so sit
above :mod:`torch_deepsmote.fitting`; the containers they write with sit below, in
:mod:`torch_deepsmote.storage`. This ``__init__`` imports nothing.
"""
