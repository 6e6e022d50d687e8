"""Reading a user's images: folders, array files and their layouts, labels and names."""

import h5py
import numpy as np
import pytest
import torch
from helpers import make_shapes
from PIL import Image

from torch_deepsmote.app.sources import read_images


def _folder(root, modes=("L", "L"), sizes=((8, 8), (8, 8))):
    for name, mode, size in zip(("a", "b"), modes, sizes):
        (root / name).mkdir(parents=True)
        for i in range(3):
            Image.new(mode, size, 40 * i).save(root / name / f"{i}.png")
    return root


def test_a_grey_folder_reads_as_one_channel_with_folder_names_and_files(tmp_path):
    read = read_images(_folder(tmp_path))
    assert read.images.shape == (6, 1, 8, 8) and read.images.dtype == torch.uint8
    assert read.names == {0: "a", 1: "b"} and read.counts() == {0: 3, 1: 3}
    assert read.files[:2] == ["a/0.png", "a/1.png"] and read.layout == "nhw"


def test_mixed_modes_become_rgb_unless_grayscale(tmp_path):
    root = _folder(tmp_path, modes=("L", "RGB"))
    colour, grey = read_images(root), read_images(root, grayscale=True)
    assert colour.images.shape == (6, 3, 8, 8) and grey.images.shape == (6, 1, 8, 8)
    # Pixel for pixel what PIL's own conversion of each file gives (grey copied into three
    # channels; colour weighted into one), in the order of ``files``.
    for read, mode in ((colour, "RGB"), (grey, "L")):
        for image, name in zip(read.images, read.files):
            expected = np.array(Image.open(root / name).convert(mode)).reshape(8, 8, -1)
            assert torch.equal(image, torch.from_numpy(expected).permute(2, 0, 1))
    assert colour.images[4].max() > 0 and not torch.equal(colour.images[4][0], colour.images[4][1])


def test_mixed_sizes_name_two_files_and_image_size_resizes(tmp_path):
    root = _folder(tmp_path, sizes=((8, 8), (10, 6)))
    with pytest.raises(ValueError, match=r"a/0\.png' is 8x8 and .*b/0\.png' is 6x10"):
        read_images(root)
    assert read_images(root, image_size=(5, 7)).images.shape == (6, 1, 5, 7)


@pytest.mark.parametrize("layout", ["nhw", "nchw", "nhwc"])
def test_array_layouts_read_as_nchw_and_are_remembered(tmp_path, layout):
    images, labels = make_shapes((4, 3), size=8, channels=3)
    array = {"nhw": images[:, 0], "nchw": images, "nhwc": images.transpose(0, 2, 3, 1)}[layout]
    np.savez(tmp_path / "d.npz", images=array, labels=labels)
    read = read_images(tmp_path / "d.npz")
    channels = 1 if layout == "nhw" else 3
    assert read.layout == layout and read.images.shape == (7, channels, 8, 8)
    assert torch.equal(read.images[:, 0], torch.from_numpy(images[:, 0]))


def test_labels_may_be_strings_or_named_by_a_classes_array(tmp_path):
    images = np.zeros((4, 8, 8), np.uint8)
    with h5py.File(tmp_path / "d.h5", "w") as file:
        file["images"], file["labels"] = images, np.array([b"dog", b"cat", b"dog", b"dog"])
    read = read_images(tmp_path / "d.h5")
    assert read.names == {0: "cat", 1: "dog"} and read.labels.tolist() == [1, 0, 1, 1]
    np.savez(
        tmp_path / "n.npz",
        images=images,
        labels=[3, 3, 7, 7],
        classes=[str(i) * 2 for i in range(8)],
    )
    read = read_images(tmp_path / "n.npz")
    assert read.names == {3: "33", 7: "77"} and read.label_of("77") == 7 and read.label_of("3") == 3
    with pytest.raises(ValueError, match=r"one of 3 \('33'\), 7 \('77'\)"):
        read.label_of("cat")


def test_image_size_is_refused_for_array_files(tmp_path):
    np.savez(tmp_path / "d.npz", images=np.zeros((4, 8, 8), np.uint8), labels=[0, 0, 1, 1])
    with pytest.raises(ValueError, match="apply to image folders"):
        read_images(tmp_path / "d.npz", image_size=(4, 4))


def test_a_dataset_not_under_root_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="--root .* or --download"):
        read_images("cifar10", root=tmp_path)
