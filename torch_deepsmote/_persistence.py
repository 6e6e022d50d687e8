"""A fitted :class:`~torch_deepsmote.DeepSMOTE` as a dict of tensors and plain values.

One format serves :meth:`DeepSMOTE.save` (a single ``torch.save`` file) and the HDF5 cache
of :class:`~torch_deepsmote.OversampledDataset` (large arrays as HDF5 datasets, the rest as
a blob). Everything in it loads with ``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

from typing import Any

import torch

from ._images import ImageFormat
from .models import Decoder, Encoder
from .training import TrainingConfig

__all__ = ["FORMAT_VERSION", "ARRAY_KEYS", "model_arrays", "model_state", "model_from_state"]

FORMAT_VERSION = 1
ARRAY_KEYS = ("latents", "labels", "neighbors")
# Kept only by models fitted with residual=True (a model saved before it existed has none).
OPTIONAL_ARRAY_KEYS = ("residuals",)
_INIT_KEYS = (
    "sampling_strategy",
    "k_neighbors",
    "knn",
    "latent_dim",
    "hidden_channels",
    "device",
    "random_state",
    "progress",
    "residual",
    *TrainingConfig.__dataclass_fields__,
)


def model_arrays(model: Any) -> dict:
    """The fitted model's (N, ...) arrays by key: those of ARRAY_KEYS, and residuals if kept."""
    arrays = {key: getattr(model, f"{key}_") for key in ARRAY_KEYS}
    arrays.update(
        {
            key: getattr(model, f"{key}_")
            for key in OPTIONAL_ARRAY_KEYS
            if getattr(model, f"{key}_", None) is not None
        }
    )
    return arrays


def model_state(model: Any, arrays: bool = True) -> dict:
    """The fitted model's state; without the (N, ...) arrays when ``arrays`` is False."""
    params = model.get_params()
    if not isinstance(params["knn"], str):
        params["knn"] = "auto"  # a user's object is not saved; 'auto' stands in on load
    if callable(params["sampling_strategy"]):
        params["sampling_strategy"] = dict(model.sampling_strategy_)  # code is not saved
    state = {
        "format_version": FORMAT_VERSION,
        "params": params,
        "image_shape": list(model.image_shape_),
        "image_format": model.image_format_.to_dict(),
        "encoder": {k: v.cpu() for k, v in model.encoder_.state_dict().items()},
        "decoder": {k: v.cpu() for k, v in model.decoder_.state_dict().items()},
        "n_neighbors": dict(model.n_neighbors_),
        "sampling_strategy_": dict(model.sampling_strategy_),
        "history": list(model.history_),
        "generator_state": model._generator.get_state(),
    }
    if arrays:
        state.update(model_arrays(model))
    return state


def model_from_state(
    cls: type, state: Any, device: Any = None, arrays: dict | None = None, source: str = "state"
) -> Any:
    """Rebuild a fitted model from :func:`model_state` (``arrays`` overrides stored arrays).

    Raises:
        RuntimeError: Not a model state of this format version (``source`` is named).
    """
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        found = state.get("format_version") if isinstance(state, dict) else None
        raise RuntimeError(
            f"{source!r} is not a DeepSMOTE model of format version {FORMAT_VERSION} "
            f"(found {found!r}). Refit and save it again."
        )
    state = {**state, **(arrays or {})}
    params = {k: v for k, v in state["params"].items() if k in _INIT_KEYS}
    params.setdefault("residual", False)  # saved before the option: fitted as published
    params["device"] = device
    model = cls(**params)
    shape = tuple(state["image_shape"])
    model.image_shape_ = shape
    model.image_format_ = ImageFormat(**state["image_format"])
    model.encoder_ = Encoder(shape, model.latent_dim, model.hidden_channels)
    model.decoder_ = Decoder(shape, model.latent_dim, model.hidden_channels)
    model.encoder_.load_state_dict(state["encoder"])
    model.decoder_.load_state_dict(state["decoder"])
    model.encoder_.eval().to(model.device)
    model.decoder_.eval().to(model.device)
    model.latents_ = torch.as_tensor(state["latents"]).float()
    model.labels_ = torch.as_tensor(state["labels"]).long()
    model.neighbors_ = torch.as_tensor(state["neighbors"]).long()
    residuals = state.get("residuals")
    if model.residual and residuals is None:
        raise RuntimeError(
            f"{source!r} holds a DeepSMOTE model fitted with residual=True but no residuals. "
            "Refit and save it again."
        )
    model.residuals_ = None if residuals is None else torch.as_tensor(residuals).half()
    model.classes_ = torch.unique(model.labels_)
    model.n_neighbors_ = {int(k): int(v) for k, v in state["n_neighbors"].items()}
    model.sampling_strategy_ = {int(k): int(v) for k, v in state["sampling_strategy_"].items()}
    model.history_ = list(state["history"])
    model._generator = torch.Generator()
    model._generator.set_state(state["generator_state"])
    return model
