"""A standard torchvision training loop, changed in one line to train on balanced data.

    python examples/train_balanced.py --root /usr/share/datasets/fashion-mnist --epochs 2

The training set is Fashion-MNIST cut to the DeepSMOTE paper's imbalanced counts (classes of
4,000 down to 40 images). Without the `OversampledDataset` line below, the loop trains on
that imbalanced set as it is; with it, every epoch is balanced with fresh DeepSMOTE images.
The IDX files come from `apt-get install dataset-fashion-mnist` or torchvision's download.
"""

from __future__ import annotations

import argparse
import gzip
import shutil
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision.datasets import FashionMNIST
from torchvision.transforms import ToTensor

from torch_deepsmote import DeepSMOTESampler, OversampledDataset

COUNTS = (4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40)  # the paper's Table I


def fashion_mnist(root: Path, train: bool) -> FashionMNIST:
    """torchvision's FashionMNIST, from Debian's IDX files when they are there."""
    raw = root / "FashionMNIST" / "raw"
    system = Path("/usr/share/datasets/fashion-mnist")
    if not raw.exists() and system.exists():
        raw.mkdir(parents=True)
        for gz in system.glob("*.gz"):
            with gzip.open(gz) as src, open(raw / gz.stem, "wb") as dst:
                shutil.copyfileobj(src, dst)
    return FashionMNIST(root, train=train, transform=ToTensor(), download=not raw.exists())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="data")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ae-epochs", type=int, default=5, help="autoencoder epochs")
    args = parser.parse_args()

    full = fashion_mnist(Path(args.root), train=True)
    rng = np.random.default_rng(0)
    targets = full.targets.numpy()
    keep = np.sort(
        np.concatenate(
            [
                rng.choice(np.flatnonzero(targets == c), n, replace=False)
                for c, n in enumerate(COUNTS)
            ]
        )
    )
    train = Subset(full, keep.tolist())

    # The one changed line: wrap the dataset. It trains DeepSMOTE once and caches it.
    train = OversampledDataset(
        train, cache_dir="runs/fmnist", max_epochs=args.ae_epochs, random_state=0
    )

    sampler = DeepSMOTESampler(train, shuffle=True, seed=0)
    loader = DataLoader(train, batch_size=128, sampler=sampler, num_workers=2)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(64 * 7 * 7, 10),
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # fresh synthetic images every epoch
        for images, labels in loader:
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(images), labels)
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: last batch loss {loss.item():.3f}")

    test = fashion_mnist(Path(args.root), train=False)
    model.eval()
    correct = torch.zeros(10)
    with torch.no_grad():
        for images, labels in DataLoader(test, batch_size=512):
            hits = model(images).argmax(1) == labels
            correct += torch.bincount(labels[hits], minlength=10)
    recall = correct / torch.bincount(test.targets, minlength=10)
    print("per-class recall on the balanced test set:", [round(r, 3) for r in recall.tolist()])
    print(f"mean per-class recall (ACSA): {recall.mean():.4f}")


if __name__ == "__main__":
    main()
