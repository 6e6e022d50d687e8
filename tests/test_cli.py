"""``torch-deepsmote``: every verb and every error a person can act on, in-process, on tiny data."""

import csv
import importlib.util
import json
import math
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from helpers import CLI_TINY, make_folder, make_shapes, run_cli
from PIL import Image

from torch_deepsmote.cli import build_parser, main
from torch_deepsmote.data import SYSTEM_FASHION_MNIST


def read_provenance(path: Path) -> list[dict]:
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A model folder fitted on a tiny ImageFolder of 12, 6 and 1 images."""
    root = tmp_path_factory.mktemp("cli")
    data = make_folder(root / "images")
    out = root / "model"
    assert main(["fit", str(data), "--out", str(out), *CLI_TINY, "-k", "3"]) == 0
    return out


# ---------------------------------------------------------------------- fit
def test_fit_writes_a_model_folder_with_class_names_and_counts(model_dir):
    assert {"deepsmote.h5", "images.h5", "deepsmote.json"} <= {p.name for p in model_dir.iterdir()}
    info = json.loads((model_dir / "deepsmote.json").read_text())
    assert info["format_version"] == 1
    assert [(c["name"], c["count"], c["new"]) for c in info["classes"]] == [
        ("bars", 6, 6),  # torchvision's ImageFolder order: sorted folder names
        ("square", 1, 11),
        ("stripes", 12, 0),
    ]
    assert info["source"]["kind"] == "folder" and info["layout"] == "nhw"
    assert info["params"]["k_neighbors"] == 3 and info["image_shape"] == [1, 12, 12]


def test_fit_again_with_the_same_data_and_options_reuses_the_model(model_dir, capsys):
    data = model_dir.parent / "images"
    code, out, _ = run_cli(capsys, "fit", data, "--out", model_dir, *CLI_TINY, "-k", "3")
    assert code == 0 and "reused the model" in out and "trained nothing" in out


def test_fit_into_a_model_folder_of_other_data_needs_overwrite(tmp_path, capsys):
    out = tmp_path / "model"
    assert run_cli(capsys, "fit", make_folder(tmp_path / "a"), "--out", out, *CLI_TINY)[0] == 0
    other = make_folder(tmp_path / "b", counts=(5, 5, 2))
    code, _, err = run_cli(capsys, "fit", other, "--out", out, *CLI_TINY)
    assert code == 2 and "fitted on other data" in err and "--overwrite" in err
    assert run_cli(capsys, "fit", other, "--out", out, *CLI_TINY, "--overwrite")[0] == 0
    info = json.loads((out / "deepsmote.json").read_text())
    assert [c["count"] for c in info["classes"]] == [5, 2, 5]


def test_fit_resizes_an_image_folder_of_mixed_sizes_and_modes(tmp_path, capsys):
    data = make_folder(tmp_path / "images", sizes=[(12, 12), (20, 16)])
    Image.new("RGB", (9, 9), (200, 10, 10)).save(data / "bars" / "colour.png")
    out = tmp_path / "model"
    code, _, _ = run_cli(capsys, "fit", data, "--out", out, "--image-size", 10, 14, *CLI_TINY)
    info = json.loads((out / "deepsmote.json").read_text())
    assert code == 0 and info["image_shape"] == [3, 10, 14] and info["layout"] == "nhwc"
    grey = ["--image-size", 8, 8, "--grayscale", *CLI_TINY]
    code, _, _ = run_cli(capsys, "fit", data, "--out", tmp_path / "grey", *grey)
    assert code == 0
    assert json.loads((tmp_path / "grey" / "deepsmote.json").read_text())["image_shape"] == [
        1,
        8,
        8,
    ]


def test_fit_reads_an_npz_with_its_own_keys_and_string_labels(tmp_path, capsys):
    images, labels = make_shapes((10, 4), size=8)
    path = tmp_path / "data.npz"
    np.savez(path, x=images.transpose(0, 2, 3, 1), y=np.array(["cat", "dog"])[labels])
    code, _, err = run_cli(capsys, "fit", path, "--out", tmp_path / "m", *CLI_TINY)
    assert code == 1 and "--images-key should name" in err and "x, y" in err
    args = ["--images-key", "x", "--labels-key", "y"]
    code, out, _ = run_cli(capsys, "fit", path, "--out", tmp_path / "m", *args, *CLI_TINY)
    assert code == 0 and "per class: cat 10, dog 4" in out
    info = json.loads((tmp_path / "m" / "deepsmote.json").read_text())
    assert info["layout"] == "nhwc" and info["image_shape"] == [1, 8, 8]


def test_fit_reads_an_h5_file_with_class_names(tmp_path, capsys):
    images, labels = make_shapes((10, 4), size=8)
    path = tmp_path / "data.h5"
    with h5py.File(path, "w") as file:
        file["images"], file["labels"] = images, labels
        file["classes"] = np.array(["zero", "one"], dtype=h5py.string_dtype())
    code, out, _ = run_cli(capsys, "fit", path, "--out", tmp_path / "m", *CLI_TINY)
    assert code == 0 and "per class: zero 10, one 4" in out


@pytest.mark.skipif(
    not (SYSTEM_FASHION_MNIST / "train-images-idx3-ubyte.gz").exists(),
    reason="needs apt-get install dataset-fashion-mnist",
)
def test_fit_reads_fashion_mnist_from_the_system_idx_files(tmp_path, capsys):
    counts = ",".join(["20", "10"] + ["4"] * 8)
    code, out, _ = run_cli(
        capsys, "fit", "fashion-mnist", "--root", tmp_path, "--class-counts", counts,
        "--out", tmp_path / "m", *CLI_TINY,
    )  # fmt: skip
    assert code == 0 and "read 62 images (1x28x28 uint8) of 10 classes" in out
    assert "T-shirt/top 20, Trouser 10" in out


def test_fit_says_how_to_install_tensorboard_when_it_is_missing(model_dir, tmp_path, capsys):
    if importlib.util.find_spec("tensorboard") is not None:
        pytest.skip("tensorboard is installed")
    data = model_dir.parent / "images"
    code, _, err = run_cli(
        capsys, "fit", data, "--out", tmp_path / "m", "--tensorboard", tmp_path, *CLI_TINY
    )
    assert code == 1 and "pip install 'torch-deepsmote[tensorboard]'" in err
    assert not (tmp_path / "m").exists()  # refused before reading anything


# ---------------------------------------------------------------------- sample, resample
def test_sample_writes_one_grid_or_a_folder_of_pngs_with_provenance(model_dir, tmp_path, capsys):
    code, out, _ = run_cli(
        capsys, "sample", model_dir, "--class", "bars", "-n", 9, "--out", tmp_path / "g.png",
        "--scale", 1,
    )  # fmt: skip
    assert code == 0 and "wrote 9 new images of class 'bars'" in out
    with Image.open(tmp_path / "g.png") as grid:  # 3 x 3 images of 12 px, padding 2
        assert grid.size == (3 * 14 + 2, 3 * 14 + 2)
    assert len(read_provenance(tmp_path / "g.provenance.csv")) == 9
    code, _, _ = run_cli(
        capsys, "sample", model_dir, "--class", "0", "-n", 4, "--out", tmp_path / "f"
    )
    pngs = sorted(p.name for p in (tmp_path / "f").glob("*.png"))
    assert code == 0 and pngs == [f"bars_0000{i}.png" for i in range(4)]
    with Image.open(tmp_path / "f" / pngs[0]) as image:
        assert image.size == (12, 12) and image.mode == "L"
    rows = read_provenance(tmp_path / "f" / "provenance.csv")
    assert [r["file"] for r in rows] == pngs and {r["class"] for r in rows} == {"bars"}


def test_sample_grid_is_enlarged_to_a_judgeable_size_with_crisp_pixels(model_dir, tmp_path, capsys):
    grid = ["sample", model_dir, "--class", "bars", "-n", 16, "--quiet", "--out"]
    assert run_cli(capsys, *grid, tmp_path / "native.png", "--scale", 1)[0] == 0
    assert run_cli(capsys, *grid, tmp_path / "big.png")[0] == 0
    with Image.open(tmp_path / "native.png") as native, Image.open(tmp_path / "big.png") as big:
        assert native.size == (4 * 14 + 2,) * 2  # 58 px: 4 x 4 images of 12 px, padding 2
        assert big.size == (9 * 58,) * 2  # the least whole factor to >= 512 px: 9
        small = np.asarray(native)
        # nearest neighbour: every pixel of the native grid becomes a 9 x 9 block of itself
        assert (np.asarray(big) == small.repeat(9, axis=0).repeat(9, axis=1)).all()
    assert run_cli(capsys, *grid, tmp_path / "x3.png", "--scale", 3)[0] == 0
    with Image.open(tmp_path / "x3.png") as three:
        assert three.size == (3 * 58,) * 2
    code, _, err = run_cli(capsys, *grid, tmp_path / "folder", "--scale", 3)
    assert code == 2 and "--scale" in err and "NAME.png" in err


def test_sampling_strategy_giving_a_class_twice_is_refused_naming_it(model_dir, tmp_path, capsys):
    for strategy in ("square=4,square=9", "square=4,1=9"):  # by name twice; a name and its label
        code, _, err = run_cli(
            capsys, "resample", model_dir, "--out", tmp_path / "b.npz", "--quiet",
            "--sampling-strategy", strategy,
        )  # fmt: skip
        assert code == 2 and "'square' twice" in err and strategy in err, err
        assert not (tmp_path / "b.npz").exists()


def test_errors_name_the_flags_the_user_typed_not_python_arguments(model_dir, tmp_path, capsys):
    out = tmp_path / "b.npz"
    out.write_bytes(b"mine")
    code, _, err = run_cli(capsys, "resample", model_dir, "--out", out, "--quiet")
    assert code == 2 and f"--out {str(out)!r} exists. Pass --overwrite to replace" in err, err
    assert "`out`" not in err and "overwrite=True" not in err
    data = model_dir.parent / "images"
    code, _, err = run_cli(capsys, "fit", data, "--out", tmp_path / "m", *CLI_TINY, "--lr", "-1")
    assert code == 2 and "--lr should be a positive number, but got --lr -1.0" in err, err
    code, _, err = run_cli(capsys, "sample", model_dir, "--class", "cats", "-n", 2, "--out", out)
    assert code == 2 and "--class should be a class name or label" in err, err
    (tmp_path / "notes.txt").write_text("not images")
    code, _, err = run_cli(
        capsys, "fit", tmp_path / "notes.txt", "--out", tmp_path / "m", *CLI_TINY
    )
    assert code == 1 and err.startswith("torch-deepsmote fit: error: DATA should be"), err


def test_sample_of_an_unknown_class_lists_the_classes(model_dir, tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "sample", model_dir, "--class", "cats", "-n", 2, "--out", tmp_path / "x"
    )
    assert code == 2 and "'bars'" in err and "'stripes'" in err and "Traceback" not in err


def _class_of_rows(model_dir: Path) -> np.ndarray:
    with h5py.File(model_dir / "images.h5") as file:
        return file["arrays/labels"][()]


def test_resample_npz_holds_originals_first_then_a_balanced_set(model_dir, tmp_path, capsys):
    code, _, _ = run_cli(capsys, "resample", model_dir, "--out", tmp_path / "b.npz", "--quiet")
    assert code == 0
    with np.load(tmp_path / "b.npz") as data:
        images, labels, synthetic = data["images"], data["labels"], data["synthetic"]
        assert data["classes"].tolist() == ["bars", "square", "stripes"]
    assert images.shape == (36, 12, 12) and images.dtype == np.uint8  # the source's (N, H, W)
    assert np.bincount(labels).tolist() == [12, 12, 12]
    original = _class_of_rows(model_dir)
    assert (labels[:19] == original).all() and not synthetic[:19].any() and synthetic[19:].all()
    rows = read_provenance(tmp_path / "b.provenance.csv")
    assert len(rows) == 36 - 19 and [int(r["index"]) for r in rows] == list(range(19, 36))
    for row in rows:  # parents are originals of the row's own class
        assert original[int(row["base"])] == original[int(row["neighbor"])] == int(row["label"])
        assert 0 <= float(row["lam"]) <= 1 and row["base_file"].startswith(row["class"] + "/")


def test_resample_image_folder_is_an_imagefolder_of_balanced_classes(model_dir, tmp_path, capsys):
    from torchvision.datasets import ImageFolder

    out = tmp_path / "balanced"
    assert run_cli(capsys, "resample", model_dir, "--out", out, "--quiet")[0] == 0
    folder = ImageFolder(str(out))
    assert folder.classes == ["bars", "square", "stripes"]
    assert np.bincount(folder.targets).tolist() == [12, 12, 12]
    rows = read_provenance(out / "provenance.csv")
    assert len(rows) == 17 and all((out / r["file"]).exists() for r in rows)
    assert all(r["file"].startswith(f"{r['class']}/synthetic_") for r in rows)


def test_resample_h5_with_a_sampling_strategy_by_class_name(model_dir, tmp_path, capsys):
    out = tmp_path / "b.h5"
    code, _, _ = run_cli(
        capsys, "resample", model_dir, "--out", out, "--sampling-strategy", "square=4", "--quiet"
    )
    with h5py.File(out) as file:
        assert np.bincount(file["labels"][()]).tolist() == [6, 4, 12]
        assert [c.decode() for c in file["classes"][()]] == ["bars", "square", "stripes"]
    assert code == 0 and len(read_provenance(tmp_path / "b.provenance.csv")) == 3


def test_an_existing_output_is_refused_unless_overwrite(model_dir, tmp_path, capsys):
    out = tmp_path / "b.npz"
    out.write_bytes(b"mine")
    code, _, err = run_cli(capsys, "resample", model_dir, "--out", out, "--quiet")
    assert code == 2 and "exists" in err and "--overwrite" in err and out.read_bytes() == b"mine"
    assert run_cli(capsys, "resample", model_dir, "--out", out, "--quiet", "--overwrite")[0] == 0
    foreign = tmp_path / "photos"
    foreign.mkdir()
    (foreign / "holiday.jpg").write_bytes(b"x")
    code, _, err = run_cli(capsys, "report", model_dir, "--out", foreign, "--overwrite")
    assert code == 2 and "did not write" in err and (foreign / "holiday.jpg").exists()


# ---------------------------------------------------------------------- report
def test_report_writes_its_pictures_and_consistent_numbers(model_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, _ = run_cli(capsys, "report", model_dir, "--out", out, "--quiet")
    assert code == 0 and "fidelity" in stdout
    report = json.loads((out / "report.json").read_text())
    expected = ["real_vs_synthetic.png"]
    if importlib.util.find_spec("matplotlib") is not None:
        expected += ["counts.png", "loss.png", "latent_space.png", "quality.png"]
    assert report["figures"] == expected and all((out / f).stat().st_size > 0 for f in expected)
    with Image.open(out / "real_vs_synthetic.png") as grid:  # 3 rows of 16 cells of 48 px
        assert grid.height == 3 * 50 + 2 and grid.width > 16 * 50
    assert report["counts_before"] == [6, 1, 12] and report["counts_after"] == [12, 12, 12]
    assert report["total_after"] == 36 and len(report["history"]) == 1
    table = {row["label"]: row for row in report["quality"]["classes"]}
    assert [table[c]["synthetic"] for c in range(3)] == [6, 11, 0]
    single = table[1]  # one real image: every synthetic one is a copy of it
    assert single["real_nearest_rms"] is None and single["near_copy_share"] == 1.0
    assert single["synthetic_nearest_rms"] < 0.01
    # The split test's label fidelity: 3 held-out bars against a 1-epoch model's codes, no
    # longer the near-automatic share against the very codes the new images came from.
    assert 0 <= table[0]["label_fidelity"] <= 1 and table[0]["verdict"] == "too few"
    assert table[2]["measured_synthetic"] == 0 and table[2]["label_fidelity"] is None
    assert 0 < report["quality"]["near_copy_threshold"] < table[0]["real_nearest_rms"]


def test_report_prints_a_verdict_for_each_class_given_new_images(model_dir, tmp_path, capsys):
    out = tmp_path / "report"
    code, stdout, _ = run_cli(capsys, "report", model_dir, "--out", out, "--quiet")
    table = {
        row["label"]: row
        for row in json.loads((out / "report.json").read_text())["quality"]["classes"]
    }
    # 6 and 1 real images: too few to judge, whatever the numbers; 12 get no new image.
    assert code == 0 and [table[c]["verdict"] for c in range(3)] == ["too few", "too few", None]
    assert "bars: too few images to judge: 6 real images, fewer than 20" in stdout
    assert "faithful and varied" not in stdout


@pytest.mark.slow  # about 20 s on 2 CPU cores: training on 2,249 images, then the report
def test_demo_fits_the_bundled_data_and_writes_the_report(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, _ = run_cli(capsys, "demo", "--epochs", 1, "--hidden", 4, "--out", out, "--quiet")
    assert code == 0 and "after DeepSMOTE: per class T-shirt/top 1000, Trouser 1000" in stdout
    assert (out / "real_vs_synthetic.png").stat().st_size > 0
    report = json.loads((out / "report.json").read_text())
    assert report["counts_before"] == [1000, 500, 250, 187, 125, 87, 50, 25, 15, 10]
    assert report["counts_after"] == [1000] * 10
    # The demo's folder is a model folder: the other verbs work on it.
    assert (
        run_cli(capsys, "sample", out, "--class", "Bag", "-n", 4, "--out", tmp_path / "b.png")[0]
        == 0
    )


@pytest.mark.slow
def test_demo_with_the_paper_model(tmp_path, capsys):
    code, stdout, _ = run_cli(capsys, "demo", "--epochs", 2, "--out", tmp_path, "--quiet")
    assert code == 0 and "fit: 2 epoch(s)" in stdout
    info = json.loads((tmp_path / "deepsmote.json").read_text())
    # The paper's model: width 64, a 300-d code for 28x28 grey images.
    assert info["params"]["hidden_channels"] == 64 and info["image_shape"] == [1, 28, 28]
    assert info["epochs"] == 2 and math.isfinite(info["final_loss"])
    report = json.loads((tmp_path / "report.json").read_text())
    before = [1000, 500, 250, 187, 125, 87, 50, 25, 15, 10]
    assert report["counts_before"] == before and report["counts_after"] == [1000] * 10
    # The folder names every class, its real images and the new ones that balance it.
    from torch_deepsmote.data import FASHION_MNIST_CLASSES

    classes = info["classes"]
    assert [c["name"] for c in classes] == list(FASHION_MNIST_CLASSES)
    assert [c["count"] for c in classes] == before
    assert [c["new"] for c in classes] == [1000 - n for n in before]
    # The picture: a row per class of 8 real then 8 synthetic 28 x 28 images.
    with Image.open(tmp_path / "real_vs_synthetic.png") as picture:
        assert picture.width >= 16 * 28 and picture.height >= 10 * 28


# ---------------------------------------------------------------------- errors and help
def _folder_with(tmp_path: Path, case: str) -> Path:
    root = tmp_path / case
    if case == "one-class":
        make_folder(root, counts=(4,))
    elif case == "empty-class":
        make_folder(root, counts=(4, 3))
        (root / "square").mkdir()
    elif case == "unreadable":
        make_folder(root, counts=(4, 3))
        (root / "bars" / "broken.png").write_bytes(b"not a png")
    elif case == "mixed-sizes":
        make_folder(root, counts=(4, 3), sizes=[(12, 12), (16, 12)])
    return root


@pytest.mark.parametrize(
    "case, code, message",
    [
        ("missing", 2, ["no such file", "mnist, fashion-mnist, cifar10, svhn"]),
        ("one-class", 1, ["at least two", "'stripes'"]),
        ("empty-class", 1, ["square", "holds none"]),
        ("unreadable", 1, ["broken.png", "could not read"]),
        ("mixed-sizes", 1, ["is 12x12 and", ".png' is 12x16", "--image-size H W"]),
    ],
)
def test_fit_errors_name_the_problem_without_a_traceback(tmp_path, capsys, case, code, message):
    data = _folder_with(tmp_path, case)
    status, _, err = run_cli(capsys, "fit", data, "--out", tmp_path / "model", *CLI_TINY)
    assert status == code, err
    assert all(part in err for part in message), err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "model" / "deepsmote.json").exists()


def test_an_unknown_dataset_name_lists_the_known_ones(tmp_path, capsys):
    code, _, err = run_cli(capsys, "fit", "imagenet", "--out", tmp_path / "m", *CLI_TINY)
    assert code == 2 and "'imagenet'" in err and "cifar10, svhn" in err


def test_a_model_folder_of_another_format_version_is_refused(model_dir, tmp_path, capsys):
    import shutil

    old = tmp_path / "old"
    shutil.copytree(model_dir, old)
    info = json.loads((old / "deepsmote.json").read_text())
    (old / "deepsmote.json").write_text(json.dumps({**info, "format_version": 99}))
    for verb in (["sample", old, "--class", "bars", "-n", 1], ["resample", old], ["report", old]):
        code, _, err = run_cli(capsys, *verb, "--out", tmp_path / "x")
        assert code == 1 and "format version 99" in err and "--overwrite" in err
    code, _, err = run_cli(capsys, "report", tmp_path / "nothing", "--out", tmp_path / "x")
    assert code == 2 and "no deepsmote.json" in err and "torch-deepsmote fit" in err


@pytest.mark.parametrize("verb", ["demo", "fit", "sample", "resample", "report"])
def test_every_verb_explains_itself_with_a_runnable_example(verb, capsys):
    code, out, _ = run_cli(capsys, verb, "--help")
    assert code == 0 and "example:" in out and f"torch-deepsmote {verb} " in out
    assert "exit status: 0 success; 1 failure" in out


def test_bad_usage_exits_2_with_argparse_usage(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err
    assert "usage: torch-deepsmote" in err and "demo" in err and "required" in err
    assert main(["fit", "x", "--out", "y", "--epochs", "0"]) == 2
    assert "positive integer" in capsys.readouterr().err


def test_an_output_never_replaces_a_model_folder(model_dir, capsys):
    code, _, err = run_cli(capsys, "report", model_dir, "--out", model_dir, "--overwrite")
    assert code == 2 and "is a model folder" in err and (model_dir / "deepsmote.h5").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_a_cuda_device_without_cuda_is_bad_usage(model_dir, tmp_path, capsys):
    code, _, err = run_cli(capsys, "sample", model_dir, "--class", "bars", "-n", 1,
                       "--out", tmp_path / "x.png", "--device", "cuda")  # fmt: skip
    assert code == 2 and "no CUDA device" in err and "--device cpu" in err


def test_parser_names_every_verb():
    parser = build_parser()
    assert parser.parse_args(["report", "m", "--out", "r"]).command == "report"
