"""A standard torchvision training loop, changed in one line to train on balanced data.

    python examples/train_balanced.py --epochs 2

The training set is Fashion-MNIST cut to the DeepSMOTE paper's imbalanced counts (classes of
4,000 down to 40 images). Without the `OversampledDataset` line below, the loop trains on
that imbalanced set as it is; with it, every epoch is balanced with fresh DeepSMOTE images.
The images are torchvision's FashionMNIST in ``--root``, filled from the IDX files of
`apt-get install dataset-fashion-mnist` where they exist, else downloaded by torchvision.
"""

from __future__ import annotations

import argparse

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision.transforms import ToTensor

from torch_deepsmote import DeepSMOTESampler, OversampledDataset
from torch_deepsmote.data import TABLE_I_TRAIN, fashion_mnist, imbalanced_subset


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", default="data")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ae-epochs", type=int, default=5, help="autoencoder epochs")
    args = parser.parse_args()

    full = fashion_mnist(args.root, train=True, transform=ToTensor(), download=True)
    train = imbalanced_subset(full, TABLE_I_TRAIN, seed=0)

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

    test = fashion_mnist(args.root, train=False, transform=ToTensor(), download=True)
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
