"""The applications on top of the library: files in, files out, for the command line.

- ``sources``: a user's images from a folder, ``.npz`` / ``.h5`` or torchvision
  (``read_images``).
- ``exports``: PNG files, grids, arrays and image folders with provenance.
- ``model_dir``: the command line's model folder: fit, resume or reuse, load
  (``load_model_dir``).
- ``plots``: the grid of real and synthetic images; matplotlib figures (the ``[plots]``
  extra).
- ``report``: the report folder: figures and ``report.json``.

They use the library (``DeepSMOTE``, ``quality``, ``storage``) and nothing in the library
uses them; ``torch_deepsmote.cli`` is their command line. This ``__init__`` imports
nothing, so that ``import torch_deepsmote`` stays free of them.
"""
