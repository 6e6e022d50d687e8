"""A fitted model on disk: its one-file format and the cache folder of fit-once-then-load.

- ``model_file``: a fitted model as a dict of tensors (``DeepSMOTE.save`` and the cache).
- ``model_cache``: fit once, then load: the cache folder of ``OversampledDataset``,
  one process at a time (file lock).

Both store the fitted value (``FittedDeepSMOTE``) and so sit
above ``torch_deepsmote.fitting``; the containers they write with sit below, in
``torch_deepsmote.storage``. This ``__init__`` imports nothing.
"""
