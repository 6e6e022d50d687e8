"""A fitted model as a dict of tensors and plain values, and the one-file model format.

One format serves ``DeepSMOTE.save`` (a single ``torch.save`` file) and the HDF5 cache
(large arrays as HDF5 datasets, the rest as a blob). It works on the fitted value
(``FittedDeepSMOTE``) and the estimator's parameters, never
on the estimator. Everything in it loads with ``torch.load(weights_only=True)``: no
pickled code.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import torch

from .._format import ImageFormat
from .._validation import resolve_device
from ..fitting import FittedDeepSMOTE
from ..models import Decoder, build_autoencoder
from ..parameters import from_plain, to_plain
from ..storage import versions
from ..storage.atomic import atomic_write
from ..synthesis import Synthesizer, default_lam_range

__all__ = ["ARRAY_KEYS", "load_model", "model_arrays", "model_from_state", "model_state"]
__all__ += ["save_model"]

ARRAY_KEYS = ("latents", "labels", "neighbors")
# Kept only by models that use them: residual=True, interpolation='enemy',
# base_selection='borderline'.
OPTIONAL_ARRAY_KEYS = ("residuals", "enemies", "danger")


def model_arrays(fitted: FittedDeepSMOTE) -> dict:
    """The fitted model's (N, ...) arrays by key: those of ARRAY_KEYS, and those of
    OPTIONAL_ARRAY_KEYS that it keeps."""
    synthesizer = fitted.synthesizer
    arrays = {key: getattr(synthesizer, key) for key in ARRAY_KEYS}
    for key in OPTIONAL_ARRAY_KEYS:
        if getattr(synthesizer, key) is not None:
            arrays[key] = getattr(synthesizer, key)
    return arrays


def model_state(fitted: FittedDeepSMOTE, params: Mapping[str, Any], arrays: bool = True) -> dict:
    """The fitted model's state; without the (N, ...) arrays when ``arrays`` is False."""
    synthesizer = fitted.synthesizer
    state = {
        "format_version": versions.MODEL,
        "params": to_plain(params, fitted),
        "image_shape": list(fitted.image_shape),
        "image_format": synthesizer.image_format.to_dict(),
        "encoder": {k: v.cpu() for k, v in fitted.encoder.state_dict().items()},
        "decoder": {k: v.cpu() for k, v in synthesizer.decoder.state_dict().items()},
        "n_neighbors": dict(synthesizer.n_neighbors),
        "n_enemies": synthesizer.n_enemies,
        "sampling_strategy_": dict(fitted.sampling_strategy),
        "history": list(fitted.history),
        "generator_state": fitted.generator.get_state(),
        "data_fingerprint": fitted.data_fingerprint,
        "class_names": None if fitted.class_names is None else list(fitted.class_names),
    }
    if arrays:  # one file: arrays kept on disk (a streaming model's residuals) read whole
        state.update({k: _in_memory(v) for k, v in model_arrays(fitted).items()})
    return state


def _in_memory(array: Any) -> Any:
    return array[torch.arange(len(array))] if hasattr(array, "blocks") else array


def model_from_state(
    state: Any,
    device: Any = None,
    arrays: dict | None = None,
    source: str = "state",
) -> tuple[FittedDeepSMOTE, dict]:
    """Rebuild a fitted model from ``model_state`` (``arrays`` overrides stored arrays).

    Returns:
        ``(fitted, params)``: the value and the parameters it was fitted with.

    Raises:
        RuntimeError: Not a model state of a readable format version (``source`` is named),
            or a model fitted with residuals (or ``base_selection='borderline'``) whose
            residuals (rows in danger) are missing.
    """
    version = state.get("format_version") if isinstance(state, dict) else None
    if version not in versions.MODEL_READABLE:
        raise RuntimeError(
            f"{source!r} is not a DeepSMOTE model of format version {versions.MODEL} "
            f"(found {version!r}). Refit and save it again."
        )
    state = {**state, **(arrays or {})}
    params = from_plain(state["params"])
    params.setdefault("residual", False)  # saved before the option: fitted as published
    _check_arrays(state, params, source)
    resolved = resolve_device(device)
    shape = tuple(state["image_shape"])
    encoder, decoder = build_autoencoder(shape, params["latent_dim"], params["hidden_channels"])
    encoder.load_state_dict(state["encoder"])
    decoder.load_state_dict(state["decoder"])
    generator = torch.Generator()
    generator.set_state(state["generator_state"])
    fitted = FittedDeepSMOTE(
        encoder=encoder.eval().to(resolved),
        synthesizer=_synthesizer(state, params, decoder.eval().to(resolved)),
        sampling_strategy={int(k): int(v) for k, v in state["sampling_strategy_"].items()},
        history=list(state["history"]),
        data_fingerprint=state.get("data_fingerprint"),
        generator=generator,
        device=resolved,
        class_names=None if state.get("class_names") is None else tuple(state["class_names"]),
    )
    return fitted, params


def _check_arrays(state: dict, params: dict, source: str) -> None:
    if params["residual"] and state.get("residuals") is None:
        raise RuntimeError(
            f"{source!r} holds a DeepSMOTE model fitted with residual=True but no residuals. "
            "Refit and save it again."
        )
    if params.get("base_selection") == "borderline" and state.get("danger") is None:
        raise RuntimeError(
            f"{source!r} holds a DeepSMOTE model with base_selection='borderline' but no rows "
            "in danger. Refit and save it again."
        )


def _synthesizer(state: dict, params: dict, decoder: Decoder) -> Synthesizer:
    interpolation = params.get("interpolation", "smote")
    enemies = state.get("enemies")
    return Synthesizer(
        decoder,
        ImageFormat.from_dict(state["image_format"]),
        latents=torch.as_tensor(state["latents"]).float(),
        labels=torch.as_tensor(state["labels"]).long(),
        neighbors=torch.as_tensor(state["neighbors"]).long(),
        n_neighbors={int(k): int(v) for k, v in state["n_neighbors"].items()},
        residuals=_residuals(state["residuals"]) if params["residual"] else None,
        interpolation=interpolation,
        lam_range=params.get("lam_range") or default_lam_range(interpolation),
        enemies=None if enemies is None else torch.as_tensor(enemies).long(),
        n_enemies=state.get("n_enemies"),
        danger=torch.as_tensor(state["danger"]).bool()
        if params.get("base_selection") == "borderline"
        else None,
    )


def _residuals(residuals: Any) -> Any:
    # An array stored on disk (a CachedArray of a streaming model) is read where used.
    return residuals if hasattr(residuals, "blocks") else torch.as_tensor(residuals).half()


# ---------------------------------------------------------------------- the one-file format
def save_model(path: str | os.PathLike, fitted: FittedDeepSMOTE, params: Mapping[str, Any]) -> None:
    """Write the fitted model and its parameters to one file, atomically."""
    with atomic_write(path) as temporary:
        torch.save(model_state(fitted, params), temporary)


def load_model(path: str | os.PathLike, device: Any = None) -> tuple[FittedDeepSMOTE, dict]:
    """Read a file of ``save_model``: ``(fitted, params)``.

    Raises:
        FileNotFoundError: No such file.
        RuntimeError: A file that is not a DeepSMOTE model, or of another format version.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"No DeepSMOTE model at {path!r}.")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise RuntimeError(
            f"Could not read a DeepSMOTE model from {path!r}: the file is damaged or not "
            f"a DeepSMOTE model ({error})."
        ) from error
    return model_from_state(state, device=device, source=path)
