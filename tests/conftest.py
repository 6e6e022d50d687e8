"""Shared fixtures: small images of simple shapes per class, made here (nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# Two threads is all the CI machine has; more only adds contention.
torch.set_num_threads(min(2, torch.get_num_threads()))


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


@pytest.fixture(scope="session")
def shapes():
    """Three imbalanced classes of 16x16 grey uint8 images: 60, 24 and 8 images."""
    return make_shapes((60, 24, 8))


# Options for an autoencoder small enough to train in a second on 2 CPU cores.
TINY = dict(latent_dim=8, hidden_channels=4, batch_size=16, max_epochs=2, progress=False)


@pytest.fixture(scope="session")
def fitted(shapes):
    from torch_deepsmote import DeepSMOTE

    X, y = shapes
    return DeepSMOTE(random_state=0, knn="torch", **TINY).fit(X, y)
