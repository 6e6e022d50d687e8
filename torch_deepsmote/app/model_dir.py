"""A model folder: a fitted DeepSMOTE, the images it was fitted on and what they are.

``torch-deepsmote fit DATA --out DIR`` writes one, and ``sample``, ``resample`` and ``report``
work from it alone, wherever DATA has gone since. It holds three files:

- ``deepsmote.h5``: the fitted model in the library's cache format (weights, codes,
  neighbour table, residuals, fingerprints of the data and settings; see
  ``torch_deepsmote.persistence.model_cache``). Fitting again with the same data and training
  settings loads it and trains nothing; a changed ``k_neighbors``, ``residual`` or sampling
  setting is applied without training.
- ``images.h5``: the training images (N, C, H, W) in their own dtype and their labels (and
  the source file of every image of an image folder). ``resample`` writes them first, and
  ``report`` measures the synthetic images against them. They cost one copy of the data on
  disk; in exchange the folder is complete.
- ``deepsmote.json``: the folder's format version, the class names and counts, the data
  source, the estimator's parameters and the fingerprints, readable by a person.

In Python, [`load_model_dir`][torch_deepsmote.app.model_dir.load_model_dir] gives the fitted
[`DeepSMOTE`][torch_deepsmote.deepsmote.DeepSMOTE] and the images back.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._validation import check_writable_folder
from .._version import __version__
from ..deepsmote import DeepSMOTE
from ..parameters import from_plain, to_plain
from ..persistence.model_cache import CACHE_NAME, LOCK_SUFFIX, locked
from ..storage import versions
from ..storage.atomic import write_bytes
from ..storage.checkpoint import CHECKPOINT_NAME, Checkpoint
from ..storage.fingerprint import fingerprint_arrays
from ..storage.hdf5 import CacheFile, write_cache
from .exports import MODEL_INFO
from .sources import LabelledImages

__all__ = ["INFO_NAME", "ModelDir", "fit_model_dir", "load_model_dir"]

INFO_NAME = MODEL_INFO
IMAGES_NAME = "images.h5"
LOCK_NAME = CACHE_NAME + LOCK_SUFFIX  # the folder's lock is its cache's


@dataclass
class ModelDir:
    """A loaded model folder.

    Attributes:
        path: The folder.
        model: The fitted estimator.
        data: The training images, labels, class names and source.
        info: The contents of ``deepsmote.json``.
        reused: Whether [`fit_model_dir`][torch_deepsmote.app.model_dir.fit_model_dir] found
            the model already fitted (no training).
        resumed: Whether it resumed an interrupted fit of the same data and options.
    """

    path: Path
    model: DeepSMOTE
    data: LabelledImages
    info: dict
    reused: bool = False
    resumed: bool = False


def fit_model_dir(
    path: str | os.PathLike, model: DeepSMOTE, data: LabelledImages, *, overwrite: bool = False
) -> ModelDir:
    """Fit ``model`` on ``data`` into the model folder ``path``, or reuse the model there.

    Args:
        path: The folder; created when missing.
        model: An unfitted estimator with the wanted settings.
        data: From ``torch_deepsmote.app.sources.read_images``.
        overwrite: Replace a model fitted on other data or with other training settings,
            write into a folder that holds other files, and start an interrupted fit over.
            Without it, a folder that holds only an interrupted fit (killed before its model
            was written) of this data and these settings resumes that fit.

    Another process fitting the same folder holds its lock (``deepsmote.h5.lock``) from
    the first look at the folder to the last file written: this one waits (and says so),
    then finds the folder complete and reuses it when the data and options are the same.

    Returns:
        The [`ModelDir`][torch_deepsmote.app.model_dir.ModelDir]; ``reused`` tells whether
        training was skipped.

    Raises:
        FileExistsError: ``path`` is a file, a non-empty folder that is no model folder, a
            model folder of other data or settings, or an interrupted fit of those, and
            ``overwrite`` is False.
        NotADirectoryError: ``path`` lies under a file.
        PermissionError: ``path`` is not writable here.
        RuntimeError: ``path`` is a model folder of another format version.
    """
    check_writable_folder("path", path, option="--out")
    path = Path(path)
    expected = {
        "data_fingerprint": fingerprint_arrays(data.labels, data.images),
        "training_fingerprint": model.training_fingerprint(),
    }
    path.mkdir(parents=True, exist_ok=True)
    waiting = (
        f"another process is fitting the model folder {path} now. This fit goes on when "
        "that one is done, and reuses its model if the data and options are the same "
        "(Ctrl-C to stop)"
    )
    with locked(str(path / LOCK_NAME), None, progress=True, waiting=waiting):
        return _fit_locked(path, model, data, expected, overwrite)


def _fit_locked(
    path: Path, model: DeepSMOTE, data: LabelledImages, expected: dict, overwrite: bool
) -> ModelDir:
    """``fit_model_dir`` in its folder, with the folder's lock held."""
    reused = resumed = False
    if (path / INFO_NAME).exists():
        info = read_info(path)
        differs = [key.split("_")[0] for key in expected if info.get(key) != expected[key]]
        if differs and not overwrite:
            raise FileExistsError(
                f"{str(path)!r} holds a model fitted on other {' and '.join(differs)}. Pass "
                "--overwrite (overwrite=True) to replace it, or choose another folder."
            )
        reused = not differs and (path / CACHE_NAME).exists()
    elif any(p.name != LOCK_NAME for p in path.iterdir()) and not overwrite:
        # No other process holds the lock now: a checkpoint here is an interrupted fit's.
        resumed = _check_interrupted(path, expected)
    if overwrite and not reused:
        # Overwrite means starting over: an interrupted fit's checkpoint is not resumed.
        Checkpoint(path, key="").remove()
    if not reused:
        # Until the new model is complete, the folder is not a model folder.
        with contextlib.suppress(FileNotFoundError):
            (path / INFO_NAME).unlink()
    with warnings.catch_warnings():
        # Replacing a stale model is what overwrite asked for; no warning about it.
        warnings.filterwarnings("ignore", "Rebuilding the", UserWarning)
        model.fit(data.images, data.labels, cache_dir=path, on_mismatch="refit")
    if not reused:
        _write_images(path / IMAGES_NAME, data, expected["data_fingerprint"])
    info = _info(model, data, expected)
    _write_json(path / INFO_NAME, info)
    return ModelDir(path, model, data, info, reused, resumed)


def _check_interrupted(path: Path, expected: dict) -> bool:
    """``True`` when ``path`` holds only an interrupted fit (its epoch checkpoint, the cache
    lock, temporary files) of this data and these training settings, which the fit then
    resumes; raise when it holds anything else."""
    in_progress = {CHECKPOINT_NAME, LOCK_NAME}
    others = [p.name for p in path.iterdir() if p.name not in in_progress and ".tmp-" not in p.name]
    if others:
        raise FileExistsError(
            f"`out` {str(path)!r} exists and is not a model folder (no {INFO_NAME}). Pass "
            "--overwrite (overwrite=True) to write into it, or choose another folder."
        )
    key = Checkpoint(path, key="").stored_key()
    ours = f"{expected['training_fingerprint']}:"
    if key is None or not key.startswith(ours) or not key.endswith(expected["data_fingerprint"]):
        raise FileExistsError(
            f"`out` {str(path)!r} holds an interrupted fit of other data or training options. "
            "Pass --overwrite (overwrite=True) to start over there, or choose another folder."
        )
    return True


def load_model_dir(
    path: str | os.PathLike, *, device: Any = None, progress: bool = False
) -> ModelDir:
    """Load a model folder written by
    [`fit_model_dir`][torch_deepsmote.app.model_dir.fit_model_dir].

    Args:
        path: The folder.
        device: Where to encode and decode; ``None``: CUDA when available, else CPU.
        progress: Show progress bars when the estimator later decodes or refits.

    Raises:
        FileNotFoundError: No model folder at ``path``.
        RuntimeError: A folder of another format version, or one whose files do not belong
            together (an interrupted fit, a damaged file).
    """
    path = Path(path)
    info = read_info(path)
    data = _read_images(path / IMAGES_NAME, info)
    if not (path / CACHE_NAME).exists():
        raise FileNotFoundError(
            f"{str(path)!r} lacks its model {CACHE_NAME} (an interrupted fit?). Fit it again "
            "with `torch-deepsmote fit DATA --out DIR --overwrite`."
        )
    params = from_plain(info["params"])
    model = DeepSMOTE(**{**params, "device": device, "progress": progress, "log_dir": None})
    try:
        model.fit(data.images, data.labels, cache_dir=path, on_mismatch="raise")
    except RuntimeError as error:
        raise RuntimeError(
            f"the model in {str(path)!r} does not match its images or settings ({error}). "
            "Fit it again with `torch-deepsmote fit DATA --out DIR --overwrite`."
        ) from None
    return ModelDir(path, model, data, info)


def read_info(path: Path) -> dict:
    """The checked ``deepsmote.json`` of a model folder."""
    file = path / INFO_NAME
    if not file.exists():
        what = "folder" if path.is_dir() else "path"
        raise FileNotFoundError(
            f"`model_dir` should be a model folder, but the {what} {str(path)!r} has no "
            f"{INFO_NAME}. Make one with `torch-deepsmote fit DATA --out {path}`."
        )
    try:
        info = json.loads(file.read_text())
        version = info.get("format_version")
    except (ValueError, AttributeError):
        version = None
    if version != versions.MODEL_FOLDER:
        raise RuntimeError(
            f"{str(path)!r} is a model folder of format version {version!r}, but this "
            f"torch-deepsmote ({__version__}) reads version {versions.MODEL_FOLDER}. Fit it "
            "again with `torch-deepsmote fit DATA --out DIR --overwrite`."
        )
    return info


# ---------------------------------------------------------------------- files
def _write_json(path: Path, value: Any) -> None:
    write_bytes(path, (json.dumps(value, indent=2) + "\n").encode())


def _write_images(path: Path, data: LabelledImages, fingerprint: str) -> None:
    files = json.dumps(data.files).encode() if data.files is not None else b"null"
    write_cache(
        path,
        arrays={"images": data.images, "labels": data.labels},
        blobs={"files": files},
        attrs={"data_fingerprint": fingerprint},
    )


def _read_images(path: Path, info: dict) -> LabelledImages:
    try:
        with CacheFile(path) as file:
            file.verify()
            images, labels = file.array("images"), file.array("labels")
            files = json.loads(file.blob("files").decode())
    except (OSError, RuntimeError, ValueError) as error:
        raise RuntimeError(
            f"could not read the training images {str(path)!r} ({error}). Fit the folder "
            "again with `torch-deepsmote fit DATA --out DIR --overwrite`."
        ) from None
    names = {int(c["label"]): c["name"] for c in info["classes"]}
    return LabelledImages(images, labels, names, info["source"], info["layout"], files)


def _info(model: DeepSMOTE, data: LabelledImages, fingerprints: dict) -> dict:
    counts = data.counts()
    history = model.history_
    return {
        "format_version": versions.MODEL_FOLDER,
        "torch_deepsmote_version": __version__,
        "source": data.source,
        "layout": data.layout,
        "image_shape": list(model.image_shape_),
        "dtype": model.image_format_.dtype,
        "classes": [
            {
                "label": label,
                "name": name,
                "count": counts[label],
                "new": int(model.sampling_strategy_.get(label, 0)),
            }
            for label, name in data.names.items()
        ],
        "params": to_plain(model.get_params(deep=False), model.fitted_),
        **fingerprints,
        "epochs": len(history),
        "final_loss": history[-1]["loss"] if history else None,
        "fit_seconds": round(sum(epoch["seconds"] for epoch in history), 2),
        "device": str(model.device_),
    }
