"""The samplers over an over-sampled dataset, each splitting itself across distributed ranks:

- ``DeepSMOTESampler`` (``shuffled.py``): every item once per epoch, shuffled (a
  ``DistributedSampler``);
- ``ClassBalancedBatchSampler`` (``balanced.py``): batches with equal class counts;
- ``ClassPriorSampler`` and ``class_prior`` (``prior.py``): a chosen class prior
  and synthetic share per class;
- ``MinoritySampler`` (``minority.py``): CMO's minority-favouring stream.

What they share lives in ``_common.py``; their seeding rules in ``torch_deepsmote._seeding``.
"""

from .balanced import ClassBalancedBatchSampler
from .minority import MinoritySampler
from .prior import ClassPriorSampler, class_prior
from .shuffled import DeepSMOTESampler

__all__ = [
    "ClassBalancedBatchSampler",
    "ClassPriorSampler",
    "DeepSMOTESampler",
    "MinoritySampler",
    "class_prior",
]
