"""Data bundled with the package.

``fashion_mnist_imbalanced.npz``: 2,249 Fashion-MNIST training images (MIT licence,
Zalando SE) with the class counts of the DeepSMOTE paper's imbalanced test set (Table I):
[1000, 500, 250, 187, 125, 87, 50, 25, 15, 10] for classes 0..9. Written by
``benchmarks/make_demo_data.py``.
"""

from __future__ import annotations

from importlib import resources

import numpy as np

__all__ = ["FASHION_MNIST_CLASSES", "load_fashion_mnist_imbalanced"]

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


def load_fashion_mnist_imbalanced() -> tuple[np.ndarray, np.ndarray]:
    """The bundled imbalanced Fashion-MNIST subset.

    Returns:
        images: (2249, 28, 28) uint8.
        labels: (2249,) int64 in 0..9.

    Example:
        >>> images, labels = load_fashion_mnist_imbalanced()
        >>> images.shape, np.bincount(labels).tolist()
        ((2249, 28, 28), [1000, 500, 250, 187, 125, 87, 50, 25, 15, 10])
    """
    with resources.files(__name__).joinpath("fashion_mnist_imbalanced.npz").open("rb") as f:
        data = np.load(f)
        return data["images"], data["labels"].astype(np.int64)
