"""What the tests share: tiny data made here (nothing downloaded) and the tiny settings.

Fixtures live in conftest.py; everything else a test module needs from another lives here
(``pythonpath = ["tests"]`` in pyproject.toml puts this folder on ``sys.path``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from torch_deepsmote.cli import main

# Options for an autoencoder small enough to train in a second on 2 CPU cores.
TINY = dict(latent_dim=8, hidden_channels=4, batch_size=16, max_epochs=2, progress=False)

# The tests' usual fit: one epoch of TINY, seeded, with the pure-torch neighbour search.
# A module that needs other values derives them: ``dict(FIT, max_epochs=3)``.
FIT = dict(TINY, max_epochs=1, random_state=0, knn="torch")

# The command line's tiny fit, one epoch of TINY's autoencoder: ``fit DATA --out DIR *CLI_TINY``.
CLI_TINY = ["--epochs", "1", "--hidden", "4", "--latent", "8", "--batch-size", "16", "--quiet"]

# The classes of make_folder's ImageFolder; the last has one image, so its synthetic
# images are copies of it.
FOLDER_NAMES = ("stripes", "bars", "square")
FOLDER_COUNTS = (12, 6, 1)


def make_shapes(counts, size=16, channels=1, seed=0, dtype=np.uint8):
    """Images (N, C, size, size) where each class is a distinct simple pattern plus noise.

    Class 0: horizontal stripes, 1: vertical stripes, 2: a centred square, 3: a disc,
    4: a diagonal, further classes: checkerboards of growing period.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size] / size
    images, labels = [], []
    for label, n in enumerate(counts):
        for _ in range(n):
            shift = rng.uniform(0, 1)
            if label == 0:
                base = (np.sin((yy + shift) * 4 * np.pi) > 0).astype(float)
            elif label == 1:
                base = (np.sin((xx + shift) * 4 * np.pi) > 0).astype(float)
            elif label == 2:
                r = 0.2 + 0.1 * shift
                base = ((abs(yy - 0.5) < r) & (abs(xx - 0.5) < r)).astype(float)
            elif label == 3:
                base = (((yy - 0.5) ** 2 + (xx - 0.5) ** 2) < (0.15 + 0.15 * shift) ** 2).astype(
                    float
                )
            elif label == 4:
                base = (abs(yy - xx - (shift - 0.5) * 0.5) < 0.12).astype(float)
            else:
                period = label - 3
                base = (((yy * size // period) + (xx * size // period)) % 2).astype(float)
            img = np.clip(base * 0.8 + 0.1 + rng.normal(0, 0.05, base.shape), 0, 1)
            images.append(np.repeat(img[None], channels, axis=0))
            labels.append(label)
    images = np.stack(images)
    if np.dtype(dtype) == np.uint8:
        images = (images * 255).round().astype(np.uint8)
    else:
        images = images.astype(dtype)
    return images, np.array(labels, dtype=np.int64)


def make_folder(root: Path, counts=FOLDER_COUNTS, sizes=None) -> Path:
    """An ImageFolder of grey 12x12 PNGs, one sub-folder per class of FOLDER_NAMES.

    ``sizes``: a list of (width, height) the images are resized to in turn.
    """
    images, labels = make_shapes(counts, size=12, seed=1)
    for i, (image, label) in enumerate(zip(images, labels)):
        folder = root / FOLDER_NAMES[label]
        folder.mkdir(parents=True, exist_ok=True)
        picture = Image.fromarray(image[0])
        if sizes is not None:
            picture = picture.resize(sizes[i % len(sizes)])
        picture.save(folder / f"img{i:02d}.png")
    return root


def run_cli(capsys, *argv):
    """(exit status, stdout, stderr) of ``torch-deepsmote argv``, run in this process."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


class NumpyItems(Dataset):
    """A user's own dataset: (H, W) numpy images of (N, 1, H, W) ``images`` with the
    targets given, as they are, and no ``targets`` or ``labels`` attribute: the library
    reads the targets from the items."""

    def __init__(self, images, targets):
        self.images, self.y = images, targets

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        return self.images[i][0], self.y[i]
