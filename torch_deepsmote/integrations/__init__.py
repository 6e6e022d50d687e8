"""Where users' images already live: Hugging Face ``datasets``, MONAI and Lightning.

Each module imports its library only when used, so the base install needs none of them:

- ``hf``: ``datasets.Dataset`` as the wrapped dataset
  (labels from the Arrow column, ``ClassLabel`` names, its format set aside while fitting
  and applied to synthetic rows) and ``to_hf_dataset``
  (``pip install "torch-deepsmote[hf]"``).
- ``monai``: MONAI dict datasets and their ``Compose``
  (``pip install "torch-deepsmote[monai]"``).
- ``lightning``: ``DeepSMOTEDataModule``, a
  ``LightningDataModule`` (``pip install "torch-deepsmote[lightning]"``); importing it
  imports Lightning.

Importing this package (``import torch_deepsmote`` does) registers the Hugging Face and
MONAI dataset kinds with ``torch_deepsmote.adapters``; Lightning is not imported.
"""

from . import hf, monai  # noqa: F401 - registers their dataset kinds
