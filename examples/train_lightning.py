"""Balanced training with Lightning: ``DeepSMOTEDataModule`` around the user's dataset.

    python examples/train_lightning.py --epochs 2
    python examples/train_lightning.py --devices 2 --strategy ddp   # two processes

The training set is the imbalanced Fashion-MNIST subset bundled in the package (2,249
images, classes of 1,000 down to 10), so nothing is downloaded. The data module builds the
balanced set in ``setup`` on every rank (under DDP the ranks fit one model together and
rank 0 writes ``--cache-dir``; a second run loads it) and serves it through a
``DeepSMOTESampler`` whose ``set_epoch`` the trainer calls: fresh synthetic images per epoch.
"""

from __future__ import annotations

import argparse

import lightning.pytorch as L
import torch
from torch import nn
from torch.utils.data import TensorDataset

from torch_deepsmote.data import load_fashion_mnist_imbalanced
from torch_deepsmote.integrations.lightning import DeepSMOTEDataModule


class Classifier(L.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(64 * 7 * 7, 10),
        )  # fmt: skip

    def training_step(self, batch, batch_idx):
        images, labels = batch
        loss = nn.functional.cross_entropy(self.net(images.float() / 255), labels)
        self.log("train_loss", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ae-epochs", type=int, default=5, help="autoencoder epochs")
    parser.add_argument("--hidden", type=int, default=64, help="autoencoder width")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--strategy", default="auto")
    parser.add_argument("--cache-dir", default="runs/fmnist-lightning")
    args = parser.parse_args()

    images, labels = load_fashion_mnist_imbalanced()  # uint8 (N, 28, 28), int64 (N,)
    train = TensorDataset(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels))
    data = DeepSMOTEDataModule(
        train,
        batch_size=128,
        num_workers=2,
        cache_dir=args.cache_dir,  # on a file system every rank sees
        oversample_params={
            "max_epochs": args.ae_epochs,
            "hidden_channels": args.hidden,
            "batch_size": 100 // args.devices,  # the autoencoder's batch is per rank
            "random_state": 0,
        },
    )
    trainer = L.Trainer(
        max_epochs=args.epochs,
        devices=args.devices,
        strategy=args.strategy,
        use_distributed_sampler=False,  # DeepSMOTESampler splits the epoch across ranks
        logger=False,
        enable_checkpointing=False,
    )
    trainer.fit(Classifier(), datamodule=data)


if __name__ == "__main__":
    main()
