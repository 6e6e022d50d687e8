"""Write the small imbalanced Fashion-MNIST set bundled with the package (for the demo).

    python -m benchmarks.make_demo_data

Counts are the paper's imbalanced test counts (Table I divided by 4), drawn from the
Fashion-MNIST training split with a fixed seed. Fashion-MNIST is MIT-licensed (Zalando SE).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from torch_deepsmote.data import TABLE_I_TEST, fashion_mnist, imbalanced_subset

OUT = (
    Path(__file__).resolve().parents[1]
    / "torch_deepsmote"
    / "data"
    / "fashion_mnist_imbalanced.npz"
)


def demo_subset() -> tuple[np.ndarray, np.ndarray]:
    """The bundled set: images (2249, 28, 28) uint8 and labels (2249,) uint8, in index order."""
    train = fashion_mnist(train=True)
    keep = imbalanced_subset(train, TABLE_I_TEST, seed=0).indices
    return train.data[keep].numpy(), train.targets[keep].numpy().astype(np.uint8)


if __name__ == "__main__":
    images, labels = demo_subset()
    np.savez_compressed(OUT, images=images, labels=labels)
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {len(images)} images)")
