"""A Hugging Face ``datasets.Dataset`` balanced with DeepSMOTE, trained on, and exported.

    python examples/train_hf.py --epochs 2

The dataset has the form ``load_dataset("imagefolder", ...)`` gives (an ``Image`` column and
a ``ClassLabel`` column), here built from the imbalanced Fashion-MNIST subset bundled in the
package (2,249 images, classes of 1,000 down to 10), so nothing is downloaded. Its
``set_transform`` (tensors and a random flip) is set aside while DeepSMOTE fits and applied
to the synthetic rows as to the real ones. The balanced set is then exported as a
``datasets.Dataset`` with a ``synthetic`` column and the provenance of every new row.
"""

from __future__ import annotations

import argparse

import datasets
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader

from torch_deepsmote import DeepSMOTESampler, OversampledDataset
from torch_deepsmote.data import FASHION_MNIST_CLASSES, load_fashion_mnist_imbalanced
from torch_deepsmote.integrations.hf import to_hf_dataset


def augment(batch: dict) -> dict:
    """An HF batch transform: PIL images -> float (1, 28, 28) tensors, flipped at random."""
    pixels = []
    for image in batch["image"]:
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255)[None]
        pixels.append(x.flip(-1) if torch.rand(()) < 0.5 else x)
    return {"pixel_values": pixels, "label": batch["label"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ae-epochs", type=int, default=5, help="autoencoder epochs")
    parser.add_argument("--hidden", type=int, default=64, help="autoencoder width")
    parser.add_argument("--cache-dir", default="runs/fmnist-hf")
    parser.add_argument("--export", default=None, help="save the balanced set to this folder")
    args = parser.parse_args()

    images, labels = load_fashion_mnist_imbalanced()
    features = datasets.Features(
        image=datasets.Image(), label=datasets.ClassLabel(names=list(FASHION_MNIST_CLASSES))
    )
    train = datasets.Dataset.from_dict(
        {"image": [Image.fromarray(x) for x in images], "label": labels.tolist()},
        features=features,
    )
    train.set_transform(augment)

    # Labels from the Arrow column, class names from the ClassLabel, the transform set aside.
    balanced = OversampledDataset(
        train, cache_dir=args.cache_dir, max_epochs=args.ae_epochs,
        hidden_channels=args.hidden, random_state=0,
    )  # fmt: skip
    print(f"{balanced.n_real} real + {balanced.n_synthetic} synthetic rows;", balanced.classes)

    sampler = DeepSMOTESampler(balanced, seed=0)
    loader = DataLoader(balanced, batch_size=128, sampler=sampler, num_workers=2)
    model = nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 10),
    )  # fmt: skip
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # fresh synthetic rows every epoch
        for batch in loader:  # dicts, as the dataset's transform makes them
            loss = nn.functional.cross_entropy(model(batch["pixel_values"]), batch["label"])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        print(f"epoch {epoch}: last batch loss {loss.item():.3f}")

    export = to_hf_dataset(balanced)  # originals first, then this epoch's synthetic rows
    new = export.filter(lambda flag: flag, input_columns="synthetic")
    print(f"exported {len(export)} rows, {len(new)} synthetic; first:", new[0])
    if args.export:
        export.save_to_disk(args.export)


if __name__ == "__main__":
    main()
