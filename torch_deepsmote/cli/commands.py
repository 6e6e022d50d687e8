"""The verbs of ``torch-deepsmote``: each turns its arguments into library calls and prints.

Reading (``torch_deepsmote.app.sources``), the model folder
(``torch_deepsmote.app.model_dir``), writing (``torch_deepsmote.app.exports``) and the report
(``torch_deepsmote.app.report``) live in the library; nothing here computes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import torch

from .._validation import check_writable_folder
from ..app.exports import PROVENANCE_NAME, check_output, write_balanced, write_samples
from ..app.model_dir import ModelDir, fit_model_dir, load_model_dir
from ..app.report import REPORT_NAME, format_table, write_report
from ..app.sources import LabelledImages, read_images
from ..smote import resolve_sampling_strategy
from ..storage.atomic import atomic_write

__all__ = ["UsageError", "demo", "fit", "report", "resample", "sample"]

_STRATEGY_NAMES = ("auto", "minority", "not minority", "not majority", "all")


class UsageError(Exception):
    """A command line that cannot work as given (exit status 2)."""


def _check_device(device: str | None) -> None:
    if device is None:
        return
    try:
        parsed = torch.device(device)
    except RuntimeError:
        raise UsageError(
            f"`--device` should be cpu, cuda or cuda:N, but got --device {device!r}."
        ) from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise UsageError(
            f"`--device {device}` needs CUDA, but no CUDA device is available here. Use "
            "--device cpu, or leave --device out."
        )


def _check_tensorboard(log_dir: str | None) -> None:
    if log_dir is not None:
        from .._tensorboard import summary_writer

        summary_writer(log_dir).close()  # fails now, with the install command, not after reading


def _strategy(text: str | None, data: LabelledImages) -> Any:
    """``--sampling-strategy`` as the estimator takes it (totals keyed by label)."""
    if text is None or text in _STRATEGY_NAMES:
        return text
    try:
        return float(text)
    except ValueError:
        pass
    totals, given = {}, {}
    for part in text.split(","):
        name, equals, count = part.rpartition("=")
        try:
            label = data.label_of(name.strip())
            totals[label] = int(count)
        except ValueError as error:
            reason = error if equals else "no NAME=COUNT"
            raise UsageError(
                f"`--sampling-strategy` should be one of {', '.join(_STRATEGY_NAMES)}, a ratio "
                f"or NAME=COUNT,..., but got {text!r} ({reason})."
            ) from None
        if label in given:  # "a=5,a=9" (or a name and its label): which count was meant?
            raise UsageError(
                f"`--sampling-strategy` should give each class one count, but got class "
                f"{data.names[label]!r} twice in {text!r} ({given[label]}, then {part}). "
                "Keep one NAME=COUNT per class."
            )
        given[label] = part
    return totals


def _counts(labels: torch.Tensor, names: dict[int, str]) -> str:
    return ", ".join(f"{name} {int((labels == label).sum())}" for label, name in names.items())


def _read(args: argparse.Namespace) -> LabelledImages:
    data = read_images(
        args.data,
        image_size=tuple(args.image_size) if args.image_size else None,
        grayscale=args.grayscale,
        images_key=args.images_key,
        labels_key=args.labels_key,
        classes_key=args.classes_key,
        root=args.root,
        split=args.split,
        download=args.download,
        class_counts=args.class_counts,
        seed=args.seed,
        progress=not args.quiet,
    )
    shape = "x".join(map(str, data.images.shape[1:]))
    dtype = str(data.images.dtype).removeprefix("torch.")
    print(f"read {len(data.labels)} images ({shape} {dtype}) of {len(data.names)} classes")
    print(f"per class: {_counts(data.labels, data.names)}")
    return data


def _fit(args: argparse.Namespace, data: LabelledImages, out: Path, overwrite: bool) -> ModelDir:
    """Build the estimator from the options and fit (or reuse) the model folder."""
    from ..deepsmote import DeepSMOTE

    try:
        model = DeepSMOTE(
            sampling_strategy=_strategy(getattr(args, "sampling_strategy", "auto"), data),
            k_neighbors=getattr(args, "k_neighbors", 5),
            latent_dim=getattr(args, "latent", None),
            hidden_channels=args.hidden,
            batch_size=getattr(args, "batch_size", 100),
            lr=getattr(args, "lr", 2e-4),
            max_epochs=args.epochs,
            patience=getattr(args, "patience", 5),
            device=args.device,
            random_state=args.seed,
            progress=not args.quiet,
            residual=getattr(args, "residual", True),
            interpolation=getattr(args, "interpolation", "smote"),
            log_dir=args.tensorboard,
            value_range=tuple(args.value_range) if getattr(args, "value_range", None) else None,
        )
        resolve_sampling_strategy(model.sampling_strategy, data.labels)
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    start = time.perf_counter()
    folder = fit_model_dir(out, model, data, overwrite=overwrite)
    model = folder.model
    if folder.reused:
        print(f"reused the model in {out} (same data and training options): trained nothing")
    else:
        if folder.resumed:
            print(f"resumed the interrupted fit in {out} (same data and training options)")
        last = model.history_[-1]
        print(
            f"fit: {len(model.history_)} epoch(s) in {time.perf_counter() - start:.1f} s on "
            f"{model.device_}, final loss {last['loss']:.4f} (reconstruction "
            f"{last['reconstruction']:.4f}, MSE on the [-1, 1] scale)"
        )
    after = {c: n + model.sampling_strategy_.get(c, 0) for c, n in data.counts().items()}
    per_class = ", ".join(f"{data.names[c]} {n}" for c, n in after.items())
    print(f"after DeepSMOTE: per class {per_class}")
    return folder


def _load(args: argparse.Namespace) -> ModelDir:
    _check_device(args.device)
    return load_model_dir(args.model_dir, device=args.device, progress=not args.quiet)


# ---------------------------------------------------------------------- verbs
def fit(args: argparse.Namespace) -> int:
    _check_device(args.device)
    check_writable_folder("out", args.out, option="--out")  # before reading the data
    _check_tensorboard(args.tensorboard)
    data = _read(args)
    _fit(args, data, Path(args.out), args.overwrite)
    print(
        f"wrote the model folder {args.out}. Next:\n"
        f"  torch-deepsmote report {args.out} --out REPORT_DIR\n"
        f"  torch-deepsmote resample {args.out} --out BALANCED_DIR_OR.npz"
    )
    return 0


def sample(args: argparse.Namespace) -> int:
    folder = _load(args)
    try:
        label = folder.data.label_of(args.class_name)
    except ValueError as error:
        raise UsageError(str(error)) from None
    out = Path(args.out)
    if args.scale is not None and out.suffix.lower() != ".png":
        raise UsageError(
            f"`--scale` enlarges a .png grid, but --out {args.out!r} is a folder of image files "
            "at the images' own size. Leave --scale out, or write a grid: --out NAME.png."
        )
    check_output(out, args.overwrite, PROVENANCE_NAME)
    plan = folder.model.plan({label: args.n}, random_state=args.seed)
    written = write_samples(out, folder.model, folder.data, plan, scale=args.scale)
    print(
        f"wrote {written['images']} new images of class {folder.data.names[label]!r} to "
        f"{out} (provenance: {written['provenance']})"
    )
    return 0


def resample(args: argparse.Namespace) -> int:
    folder = _load(args)
    model, data = folder.model, folder.data
    strategy = _strategy(args.sampling_strategy, data)
    try:
        n_new = (
            model.sampling_strategy_
            if strategy is None
            else resolve_sampling_strategy(strategy, data.labels)
        )
    except (TypeError, ValueError) as error:
        raise UsageError(str(error)) from None
    out = Path(args.out)
    check_output(out, args.overwrite, PROVENANCE_NAME)
    plan = model.plan(n_new, random_state=args.seed)
    written = write_balanced(out, model, data, plan, progress=not args.quiet)
    labels = torch.cat([data.labels, plan.labels])
    print(
        f"wrote {written['images']} images ({len(data.labels)} real first, then "
        f"{written['synthetic']} new) to {out}; provenance: {written['provenance']}"
    )
    print(f"per class: {_counts(labels, data.names)}")
    return 0


def _report(folder: ModelDir, out: Path, args: argparse.Namespace, **options: Any) -> None:
    result = write_report(
        out,
        folder.model,
        folder.data.images,
        folder.data.names,
        source=folder.data.source,
        random_state=args.seed,
        **options,
    )
    print(format_table(result))
    skipped = result.get("figures_skipped")
    if skipped:
        print(f"skipped {', '.join(skipped['files'])}: {skipped['reason']}")


def report(args: argparse.Namespace) -> int:
    folder = _load(args)
    out = Path(args.out)
    check_output(out, args.overwrite, REPORT_NAME)
    with atomic_write(out) as temporary:
        _report(
            folder,
            temporary,
            args,
            n_show=args.n_show,
            max_per_class=args.max_per_class,
            near_copy=args.near_copy,
        )
    print(f"wrote the report to {out} ({REPORT_NAME} and PNG files)")
    return 0


def demo(args: argparse.Namespace) -> int:
    from ..data import FASHION_MNIST_CLASSES, load_fashion_mnist_imbalanced

    _check_device(args.device)
    _check_tensorboard(args.tensorboard)
    images, labels = load_fashion_mnist_imbalanced()
    data = LabelledImages(
        torch.from_numpy(images).unsqueeze(1),
        torch.from_numpy(labels),
        dict(enumerate(FASHION_MNIST_CLASSES)),
        {"kind": "bundled", "name": "fashion_mnist_imbalanced"},
        layout="nhw",
    )
    print(f"bundled imbalanced Fashion-MNIST: {len(images)} images")
    print(f"per class: {_counts(data.labels, data.names)}")
    start = time.perf_counter()
    out = Path(args.out)
    folder = _fit(args, data, out, overwrite=True)
    # 200 new images per class measured (of up to 990): the same table, a quarter of the decoding.
    _report(folder, out, args, max_per_class=200)
    print(
        f"demo: {time.perf_counter() - start:.1f} s. Wrote {out / 'real_vs_synthetic.png'} "
        f"(per class: 8 real, then 8 synthetic), {out / REPORT_NAME} and the model folder {out} "
        f"(try: torch-deepsmote sample {out} --class Bag -n 16 --out bags.png)"
    )
    return 0
