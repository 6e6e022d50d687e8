"""torch_deepsmote: DeepSMOTE over-sampling for imbalanced image data in PyTorch.

Reference: D. Dablain, B. Krawczyk and N. V. Chawla, "DeepSMOTE: Fusing Deep Learning and
SMOTE for Imbalanced Data", IEEE TNNLS, 2022.
"""

from . import integrations  # noqa: F401 - registers the Hugging Face and MONAI kinds
from ._version import __version__  # noqa: F401
from .cmo import CMO
from .dataset import OversampledDataset
from .deepsmote import DeepSMOTE
from .knn import FaissKNN, TorchKNN, get_knn
from .losses import DeepSMOTELoss, LogitAdjustedLoss
from .models import Decoder, Encoder
from .samplers import (
    ClassBalancedBatchSampler,
    ClassPriorSampler,
    DeepSMOTESampler,
    MinoritySampler,
    class_prior,
)
from .smote import SMOTEPlan, interpolate, plan_synthetic, resolve_sampling_strategy
from .synthesis import Synthesizer
from .training import TrainingConfig, fit_autoencoder

__all__ = [
    "CMO",
    "ClassBalancedBatchSampler",
    "ClassPriorSampler",
    "DeepSMOTE",
    "DeepSMOTESampler",
    "DeepSMOTELoss",
    "Decoder",
    "Encoder",
    "FaissKNN",
    "LogitAdjustedLoss",
    "MinoritySampler",
    "OversampledDataset",
    "SMOTEPlan",
    "Synthesizer",
    "TorchKNN",
    "TrainingConfig",
    "class_prior",
    "fit_autoencoder",
    "get_knn",
    "interpolate",
    "plan_synthetic",
    "resolve_sampling_strategy",
]
