"""Write the small imbalanced Fashion-MNIST set bundled with the package (for the demo).

    python benchmarks/make_demo_data.py

Counts are the paper's imbalanced test counts (Table I divided by 4), drawn from the
Fashion-MNIST training split with a fixed seed. Fashion-MNIST is MIT-licensed (Zalando SE).
"""

from pathlib import Path

import numpy as np
from fashion_mnist import TABLE_I_TEST, load_split, take_counts

OUT = (
    Path(__file__).resolve().parents[1]
    / "torch_deepsmote"
    / "data"
    / "fashion_mnist_imbalanced.npz"
)

if __name__ == "__main__":
    images, labels = load_split(train=True)
    keep = take_counts(labels, TABLE_I_TEST, seed=0)
    np.savez_compressed(OUT, images=images[keep], labels=labels[keep].astype(np.uint8))
    print(f"wrote {OUT} ({OUT.stat().st_size / 1e3:.0f} kB, {len(keep)} images)")
