"""The ``torch-deepsmote`` argument parser: every verb, its options and its help text."""

from __future__ import annotations

import argparse
import re

from ..app.sources import DATASETS

__all__ = ["EXIT_STATUS", "build_parser", "to_shell"]

EXIT_STATUS = """\
exit status: 0 success; 1 failure (unreadable or unsuitable data, a damaged model folder or
one of another format version, a missing optional dependency); 2 bad usage (an unknown
option or value, a missing path, an unknown dataset name, an output that exists without
--overwrite)."""

_STRATEGY_HELP = (
    "how many images each class gets: auto (= not majority: every class up to the largest), "
    "minority, 'not minority', all, a ratio (two classes), or totals per class as "
    "NAME=COUNT,NAME=COUNT (class names or labels)"
)


def _number(cast: type, rule: str, positive: bool):
    """An argparse ``type``: ``cast(text)``, at least 0 (above 0 with ``positive``)."""

    def parse(text: str):
        try:
            value = cast(text)
        except ValueError:
            value = None
        if value is None or not (value > 0 if positive else value >= 0):
            raise argparse.ArgumentTypeError(f"should be {rule}, but got {text!r}")
        return value

    return parse


_positive_int = _number(int, "a positive integer", positive=True)
_non_negative_int = _number(int, "a non-negative integer", positive=False)
_non_negative_float = _number(float, "a non-negative number", positive=False)


def _counts(text: str) -> list[int]:
    try:
        counts = [int(part) for part in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 0:
        raise argparse.ArgumentTypeError(
            f"should be counts per class 0, 1, ... such as 4000,2000,1000, but got {text!r}"
        )
    return counts


def _verb(
    sub: argparse._SubParsersAction,
    name: str,
    summary: str,
    text: str,
    examples: str,
    model_dir: bool = True,
) -> argparse.ArgumentParser:
    parser = sub.add_parser(
        name,
        help=summary,
        description=f"{summary}.\n\n{text}",
        epilog=f"example:\n{examples}\n\n{EXIT_STATUS}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if model_dir:
        parser.add_argument("model_dir", metavar="DIR", help="a model folder from `fit`")
    return parser


def _common(parser: argparse.ArgumentParser, seed_help: str, overwrite: bool = True) -> None:
    parser.add_argument("--seed", type=_non_negative_int, default=0, help=seed_help)
    parser.add_argument(
        "--device", default=None, help="where to compute: cpu, cuda, cuda:1 (default: CUDA if any)"
    )
    if overwrite:
        parser.add_argument(
            "--overwrite", action="store_true", help="replace an output that exists"
        )
    parser.add_argument("--quiet", action="store_true", help="no progress bars")


def _add_fit(sub: argparse._SubParsersAction) -> None:
    fit = _verb(
        sub,
        "fit",
        "train DeepSMOTE on your images and save the model folder DIR",
        "DATA is one of:\n"
        "  - a folder with one sub-folder of images per class (torchvision's ImageFolder\n"
        "    layout; the sub-folder names are the class names). Images of different sizes\n"
        "    need --image-size H W; mixed grey and colour images become RGB unless\n"
        "    --grayscale;\n"
        "  - an .npz or .h5 file holding an image array (N,H,W), (N,C,H,W) or (N,H,W,C) under\n"
        "    the key 'images', labels (N,) (integers or strings) under 'labels' and,\n"
        "    optionally, class names under 'classes' (classes[i] names label i); change the\n"
        "    keys with --images-key, --labels-key, --classes-key;\n"
        f"  - a torchvision dataset name ({', '.join(DATASETS)}) under --root; fashion-mnist\n"
        "    is also read from /usr/share/datasets/fashion-mnist (apt-get install\n"
        "    dataset-fashion-mnist).\n\n"
        "DIR then holds the fitted model (deepsmote.h5), a copy of the training images\n"
        "(images.h5) and deepsmote.json (class names, source, settings), so that sample,\n"
        "resample and report work from DIR alone. Fitting again into DIR with the same data\n"
        "and training options loads the model instead of training; other data or options\n"
        "need --overwrite. The model loads in Python with\n"
        "torch_deepsmote.app.model_dir.load_model_dir(DIR).",
        "  torch-deepsmote fit photos/ --out model/ --image-size 64 64 --epochs 30\n"
        "  torch-deepsmote fit fashion-mnist --out fmnist/ \\\n"
        "      --class-counts 4000,2000,1000,750,500,350,200,100,60,40",
        model_dir=False,
    )
    fit.add_argument("data", metavar="DATA", help="image folder, .npz/.h5 file or dataset name")
    fit.add_argument("--out", required=True, metavar="DIR", help="the model folder to write")
    data = fit.add_argument_group("reading DATA")
    data.add_argument(
        "--image-size",
        nargs=2,
        type=_positive_int,
        metavar=("H", "W"),
        help="resize every image to H x W (image folders and datasets)",
    )
    data.add_argument("--grayscale", action="store_true", help="convert images to one channel")
    data.add_argument("--images-key", default="images", help="image array in .npz/.h5")
    data.add_argument("--labels-key", default="labels", help="label array in .npz/.h5")
    data.add_argument("--classes-key", default="classes", help="class names in .npz/.h5")
    data.add_argument("--root", default=None, help="folder of a torchvision dataset")
    data.add_argument("--split", choices=("train", "test"), default="train", help="dataset split")
    data.add_argument("--download", action="store_true", help="let torchvision download DATA")
    data.add_argument(
        "--class-counts",
        type=_counts,
        metavar="N0,N1,...",
        help="keep this many images of class 0, 1, ... of a dataset (an imbalanced subset)",
    )
    model = fit.add_argument_group("the model")
    model.add_argument("--epochs", type=_positive_int, default=50, help="most epochs (50)")
    model.add_argument(
        "--patience",
        type=_non_negative_int,
        default=5,
        help="stop after this many epochs without progress; 0 never (5)",
    )
    model.add_argument("--hidden", type=_positive_int, default=64, help="hidden width (64)")
    model.add_argument(
        "--latent", type=_positive_int, default=None, help="code size (300 grey, 600 colour)"
    )
    model.add_argument("--batch-size", type=_positive_int, default=100, help="batch size (100)")
    model.add_argument("--lr", type=float, default=2e-4, help="Adam's learning rate (2e-4)")
    model.add_argument("-k", "--k-neighbors", type=_positive_int, default=5, help="SMOTE's k (5)")
    model.add_argument("--sampling-strategy", default="auto", help=_STRATEGY_HELP)
    model.add_argument(
        "--value-range",
        nargs=2,
        type=float,
        metavar=("LOW", "HIGH"),
        help="the pixels' range, mapped to the decoder's -1..1 (e.g. 0 4095 for 12-bit "
        "data); an image outside it is refused. Default: 0..255 for 8-bit images, 0..1 for "
        "floats within it, else the data's own minimum and maximum",
    )
    model.add_argument(
        "--residual",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="add the parents' reconstruction residuals to new images (default: on; "
        "--no-residual decodes codes alone, as published)",
    )
    model.add_argument(
        "--interpolation",
        choices=("smote", "enemy", "transfer"),
        default="smote",
        help="how new codes are made (smote: the paper)",
    )
    model.add_argument(
        "--tensorboard",
        metavar="LOG_DIR",
        help="log the fit to TensorBoard (needs pip install 'torch-deepsmote[tensorboard]')",
    )
    _common(fit, "seed of weights, training order and SMOTE draws (0)")


def _add_sample(sub: argparse._SubParsersAction) -> None:
    sample = _verb(
        sub,
        "sample",
        "write N new images of one class",
        "PATH ending in .png gets one grid of the images, enlarged to at least 512 px wide\n"
        "(--scale); any other PATH becomes a folder of image files at the images' own size\n"
        "(PNG, or TIFF for 32-bit images).\n"
        "Beside them, provenance.csv (PATH.provenance.csv for a grid) names the base and\n"
        "neighbour training images and the step lam of every new image.",
        "  torch-deepsmote sample model/ --class cat -n 64 --out cats.png",
    )
    sample.add_argument(
        "--class", dest="class_name", required=True, metavar="C", help="class name or label"
    )
    sample.add_argument("-n", type=_positive_int, required=True, help="number of images")
    sample.add_argument("--out", required=True, metavar="PATH", help="grid .png or a folder")
    sample.add_argument(
        "--scale",
        type=_positive_int,
        default=None,
        metavar="N",
        help="enlarge the .png grid N times, pixels kept crisp (default: enough for a grid "
        "at least 512 px wide; 1: the images' own size)",
    )
    _common(sample, "seed of the SMOTE draw (0)")


def _add_resample(sub: argparse._SubParsersAction) -> None:
    resample = _verb(
        sub,
        "resample",
        "write the balanced dataset: the originals, then the new images",
        "PATH ending in .npz, .h5 or .hdf5 gets one array file with the keys images, labels,\n"
        "classes and synthetic (a mask), in the layout and dtype of the source, readable by\n"
        "`fit` again; any other PATH becomes an image folder of PNG files,\n"
        "PATH/<class>/real_000000.png ... synthetic_002249.png, that ImageFolder and tools\n"
        "outside PyTorch read (16-bit PNG for 16-bit grey images, 32-bit TIFF for grey\n"
        "int32 or float images; images no such file holds, 16-bit colour say, need .npz).\n"
        "provenance.csv (inside the folder, or PATH's stem + .provenance.csv) has one row\n"
        "per new image: its index, file, class, the indices\n"
        "of its base and neighbour among the originals (which come first, in order), the\n"
        "anchor and lam.",
        "  torch-deepsmote resample model/ --out balanced/\n"
        "  torch-deepsmote resample model/ --out balanced.npz --sampling-strategy minority",
    )
    resample.add_argument("--out", required=True, metavar="PATH", help=".npz, .h5 or a folder")
    resample.add_argument(
        "--sampling-strategy", default=None, help=_STRATEGY_HELP + " (default: as fitted)"
    )
    _common(resample, "seed of the SMOTE draw (0)")


def _add_report(sub: argparse._SubParsersAction) -> None:
    report = _verb(
        sub,
        "report",
        "write pictures and numbers to judge the synthetic images",
        "REPORT_DIR gets real_vs_synthetic.png (per class a row of real images, then new\n"
        "ones), counts.png, loss.png, latent_space.png (real and new codes on two principal\n"
        "axes) and quality.png (the last four need pip install 'torch-deepsmote[plots]'),\n"
        "and report.json with every number: counts before and after, the training loss, and\n"
        "per class the reconstruction error of the real images, the distance of new images\n"
        "to their nearest real image (near copies flagged), and a verdict from the split\n"
        "test: half of each class's real images held out, new images made from the other\n"
        "half and compared with the held-out half beside that half itself (too few images\n"
        "to judge, not faithful, off the data, right but easy, narrow, spread thin, or\n"
        "faithful and varied; the thresholds are in torch_deepsmote.verdicts).",
        "  torch-deepsmote report model/ --out report/",
    )
    report.add_argument("--out", required=True, metavar="REPORT_DIR", help="the report folder")
    report.add_argument("--n-show", type=_positive_int, default=8, help="images per grid row")
    report.add_argument(
        "--max-per-class",
        type=_positive_int,
        default=1000,
        help="new and real images measured per class (1000)",
    )
    report.add_argument(
        "--near-copy",
        type=_non_negative_float,
        default=0.1,
        help="a near copy lies within this share of the real images' median distance (0.1)",
    )
    _common(report, "seed of the images drawn and shown (0)")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    demo = _verb(
        sub,
        "demo",
        "fit on the bundled imbalanced Fashion-MNIST set and write its report",
        "2,249 images, classes of 1,000 down to 10. OUT becomes a model folder (as `fit`\n"
        "writes) with the report (as `report` writes) beside it; running again with the\n"
        "same options reuses the model.",
        "  torch-deepsmote demo --epochs 2 --hidden 16 --out demo/",
        model_dir=False,
    )
    demo.add_argument("--epochs", type=_positive_int, default=5, help="training epochs (5)")
    demo.add_argument("--hidden", type=_positive_int, default=64, help="hidden width (paper: 64)")
    demo.add_argument("--out", default="deepsmote-demo", help="output folder (deepsmote-demo)")
    demo.add_argument(
        "--tensorboard", metavar="LOG_DIR", help="log the fit to TensorBoard, as in `fit`"
    )
    _common(demo, "seed (0)", overwrite=False)


# The library's argument names that the command line spells otherwise (library -> dest).
_ALIASES = {
    "max_epochs": "epochs",
    "latent_dim": "latent",
    "hidden_channels": "hidden",
    "random_state": "seed",
    "log_dir": "tensorboard",
    "class": "class_name",
}
# A value as the library's messages print it: a repr, a list or tuple, a number or a word.
_VALUE = r"""'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\([^)]*\)|-?[\w.+-]*\w"""


def _shell_names(verb: argparse.ArgumentParser) -> dict[str, argparse.Action]:
    """The verb's options and arguments by the library argument name they stand for."""
    actions = {action.dest: action for action in verb._actions if action.dest != "help"}
    actions.update({name: actions[dest] for name, dest in _ALIASES.items() if dest in actions})
    return actions


def _spell(action: argparse.Action, value: str | None = None) -> str:
    """``--flag``, ``--flag VALUE``, ``--no-flag`` or a positional's metavar (``DIR``)."""
    if not action.option_strings:
        return action.metavar or action.dest.upper()
    flag = next((o for o in action.option_strings if o.startswith("--")), action.option_strings[0])
    if value is None:
        return flag
    if action.nargs == 0:  # a switch: True is the flag itself
        if value == "True":
            return flag
        negative = [o for o in action.option_strings if o.startswith("--no-")]
        return negative[0] if negative and value == "False" else f"no {flag}"
    return f"{flag} {value}"


def to_shell(text: str, verb: argparse.ArgumentParser) -> str:
    """A library message in the command line's words: ``out`` in backticks -> ``--out``,
    ``overwrite=True`` -> ``--overwrite``, ``k_neighbors=0`` -> ``--k-neighbors 0``.

    Only the names of ``verb``'s own options change; a phrase such as ``--overwrite
    (overwrite=True)`` that already names the flag keeps it once.
    """
    names = _shell_names(verb)
    pattern = "|".join(sorted(map(re.escape, names), key=len, reverse=True))
    text = re.sub(rf"`({pattern})`", lambda m: _spell(names[m[1]]), text)
    text = re.sub(rf"(?<![\w.`-])({pattern})=({_VALUE})", lambda m: _spell(names[m[1]], m[2]), text)
    return re.sub(r"(--[\w-]+(?: [^\s()]+)?) \(\1\)", r"\1", text)


def _commands():
    from . import commands

    return commands


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``torch-deepsmote`` and its verbs (``args.command`` names the verb)."""
    parser = argparse.ArgumentParser(
        prog="torch-deepsmote",
        description="DeepSMOTE over-sampling for imbalanced images: train on your images, "
        "then write new minority images, a balanced dataset, or a report to judge them.",
        epilog="example, from a folder of images to a balanced folder of images:\n"
        "  torch-deepsmote fit photos/ --out model/ --image-size 64 64\n"
        "  torch-deepsmote report model/ --out report/\n"
        "  torch-deepsmote resample model/ --out balanced/\n\n"
        "`torch-deepsmote VERB --help` explains each verb.\n\n" + EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for add in (_add_demo, _add_fit, _add_sample, _add_resample, _add_report):
        add(sub)
    for name, verb in sub.choices.items():
        verb.set_defaults(
            func=lambda args, name=name: getattr(_commands(), name)(args),
            # errors and warnings speak of this verb's options, not of Python arguments
            to_shell=lambda text, verb=verb: to_shell(text, verb),
        )
    return parser
