"""A fitted :class:`~torch_deepsmote.DeepSMOTE` as a dict of tensors and plain values.

One format serves :meth:`DeepSMOTE.save` (a single ``torch.save`` file) and the HDF5 cache
of :class:`~torch_deepsmote.OversampledDataset` (large arrays as HDF5 datasets, the rest as
a blob). Everything in it loads with ``torch.load(weights_only=True)``: no pickled code.
"""

from __future__ import annotations

from typing import Any

import torch

from .._format import ImageFormat
from .._validation import resolve_device
from ..deepsmote import DeepSMOTE
from ..models import Decoder, Encoder
from ..synthesis import Synthesizer, default_lam_range

__all__ = ["MODEL_FORMAT_VERSION", "ARRAY_KEYS", "model_arrays", "model_state", "model_from_state"]

# 2: the image format names its kind and layout (PIL items too) and the state carries the
# training data's fingerprint. Version 1 files still load.
MODEL_FORMAT_VERSION = 2
_READABLE = (1, 2)
ARRAY_KEYS = ("latents", "labels", "neighbors")
# Kept only by models that use them: residual=True, interpolation='enemy',
# base_selection='borderline'.
OPTIONAL_ARRAY_KEYS = ("residuals", "enemies", "danger")


def model_arrays(model: DeepSMOTE) -> dict:
    """The fitted model's (N, ...) arrays by key: those of ARRAY_KEYS, and those of
    OPTIONAL_ARRAY_KEYS that it keeps."""
    arrays = {key: getattr(model, f"{key}_") for key in ARRAY_KEYS}
    if model.residuals_ is not None:
        arrays["residuals"] = model.residuals_
    if model.synthesizer_.enemies is not None:
        arrays["enemies"] = model.synthesizer_.enemies
    if model.synthesizer_.danger is not None:
        arrays["danger"] = model.synthesizer_.danger
    return arrays


def model_state(model: DeepSMOTE, arrays: bool = True) -> dict:
    """The fitted model's state; without the (N, ...) arrays when ``arrays`` is False."""
    params = model.get_params(deep=False)
    if not isinstance(params["knn"], str):
        params["knn"] = "auto"  # a user's object is not saved; 'auto' stands in on load
    if callable(params["sampling_strategy"]):
        params["sampling_strategy"] = dict(model.sampling_strategy_)  # code is not saved
    for name in ("device", "log_dir", "checkpoint_dir"):  # a torch.device or Path: not weights-only
        if params.get(name) is not None:
            params[name] = str(params[name])
    if params["lam_range"] is not None:
        params["lam_range"] = [float(v) for v in params["lam_range"]]
    state = {
        "format_version": MODEL_FORMAT_VERSION,
        "params": params,
        "image_shape": list(model.image_shape_),
        "image_format": model.image_format_.to_dict(),
        "encoder": {k: v.cpu() for k, v in model.encoder_.state_dict().items()},
        "decoder": {k: v.cpu() for k, v in model.decoder_.state_dict().items()},
        "n_neighbors": dict(model.n_neighbors_),
        "n_enemies": model.synthesizer_.n_enemies,
        "sampling_strategy_": dict(model.sampling_strategy_),
        "history": list(model.history_),
        "generator_state": model._generator.get_state(),
        "data_fingerprint": model.data_fingerprint_,
    }
    if arrays:  # one file: arrays kept on disk (a streaming model's residuals) read whole
        state.update({k: _in_memory(v) for k, v in model_arrays(model).items()})
    return state


def _in_memory(array: Any) -> Any:
    return array[torch.arange(len(array))] if hasattr(array, "blocks") else array


def model_from_state(
    state: Any, device: Any = None, arrays: dict | None = None, source: str = "state"
) -> DeepSMOTE:
    """Rebuild a fitted model from :func:`model_state` (``arrays`` overrides stored arrays).

    Raises:
        RuntimeError: Not a model state of a readable format version (``source`` is named),
            or a model fitted with residuals (or ``base_selection='borderline'``) whose
            residuals (rows in danger) are missing.
    """
    version = state.get("format_version") if isinstance(state, dict) else None
    if version not in _READABLE:
        raise RuntimeError(
            f"{source!r} is not a DeepSMOTE model of format version {MODEL_FORMAT_VERSION} "
            f"(found {version!r}). Refit and save it again."
        )
    state = {**state, **(arrays or {})}
    names = DeepSMOTE._param_names()
    params = {k: v for k, v in state["params"].items() if k in names}
    params.setdefault("residual", False)  # saved before the option: fitted as published
    params["device"] = device
    model = DeepSMOTE(**params)
    shape = tuple(state["image_shape"])
    encoder = Encoder(shape, model.latent_dim, model.hidden_channels)
    decoder = Decoder(shape, model.latent_dim, model.hidden_channels)
    encoder.load_state_dict(state["encoder"])
    decoder.load_state_dict(state["decoder"])
    resolved = resolve_device(device)
    residuals = state.get("residuals")
    if model.residual and residuals is None:
        raise RuntimeError(
            f"{source!r} holds a DeepSMOTE model fitted with residual=True but no residuals. "
            "Refit and save it again."
        )
    danger = state.get("danger")
    if model.base_selection == "borderline" and danger is None:
        raise RuntimeError(
            f"{source!r} holds a DeepSMOTE model with base_selection='borderline' but no rows "
            "in danger. Refit and save it again."
        )
    synthesizer = Synthesizer(
        decoder.eval().to(resolved),
        ImageFormat.from_dict(state["image_format"]),
        latents=torch.as_tensor(state["latents"]).float(),
        labels=torch.as_tensor(state["labels"]).long(),
        neighbors=torch.as_tensor(state["neighbors"]).long(),
        n_neighbors={int(k): int(v) for k, v in state["n_neighbors"].items()},
        residuals=_residuals(residuals) if model.residual else None,
        interpolation=model.interpolation,
        lam_range=synthesizer_lam_range(model),
        enemies=None if state.get("enemies") is None else torch.as_tensor(state["enemies"]).long(),
        n_enemies=state.get("n_enemies"),
        danger=torch.as_tensor(danger).bool() if model.base_selection == "borderline" else None,
    )
    generator = torch.Generator()
    generator.set_state(state["generator_state"])
    model._set_fitted(
        encoder=encoder.to(resolved),
        synthesizer=synthesizer,
        sampling_strategy={int(k): int(v) for k, v in state["sampling_strategy_"].items()},
        history=state["history"],
        data_fingerprint=state.get("data_fingerprint"),
        generator=generator,
        device=resolved,
    )
    return model


def _residuals(residuals: Any) -> Any:
    # An array stored on disk (a CachedArray of a streaming model) is read where used.
    return residuals if hasattr(residuals, "blocks") else torch.as_tensor(residuals).half()


def synthesizer_lam_range(model: DeepSMOTE) -> tuple[float, float]:
    if model.lam_range is None:
        return default_lam_range(model.interpolation)
    return tuple(float(v) for v in model.lam_range)
