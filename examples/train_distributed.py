"""Balanced training under torchrun: DeepSMOTE fitted by all ranks together, then DDP.

On a machine with 4 GPUs:

    torchrun --standalone --nproc_per_node 4 examples/train_distributed.py --epochs 2

On CPUs (gloo), for example two processes on this machine:

    torchrun --standalone --nproc_per_node 2 examples/train_distributed.py --epochs 1 \\
        --ae-epochs 1 --hidden 16

Every rank builds the same ``OversampledDataset``: the ranks train the autoencoder together
(each on its share of every epoch, ``DistributedDataParallel`` averaging the gradients),
rank 0 writes the cache, and the others load it. A second run loads the cache at once. The
classifier then trains with DDP on ``DeepSMOTESampler``, which gives each rank a disjoint,
equally long share of the same balanced epoch, with no communication per epoch.

The autoencoder's ``batch_size`` is per rank: ``100 // world_size`` keeps the paper's 100
images per step in total. The training set is the bundled imbalanced Fashion-MNIST subset
(2,249 images, classes of 1,000 down to 10), so nothing is downloaded.
"""

from __future__ import annotations

import argparse
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, TensorDataset

from torch_deepsmote import DeepSMOTESampler, OversampledDataset
from torch_deepsmote.data import load_fashion_mnist_imbalanced


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--ae-epochs", type=int, default=5, help="autoencoder epochs")
    parser.add_argument("--hidden", type=int, default=64, help="autoencoder width")
    parser.add_argument("--cache-dir", default="runs/fmnist-ddp")
    args = parser.parse_args()

    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ["LOCAL_RANK"])) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)  # the library's collectives use the current device

    images, labels = load_fashion_mnist_imbalanced()  # uint8 (N, 28, 28), int64 (N,)
    train = TensorDataset(torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels))

    # All ranks call this with the same data and settings (a collective fit).
    train = OversampledDataset(
        train,
        cache_dir=args.cache_dir,  # on a file system all ranks share
        max_epochs=args.ae_epochs,
        hidden_channels=args.hidden,
        batch_size=100 // world,
        random_state=0,
        progress=rank == 0,
    )
    sampler = DeepSMOTESampler(train, seed=0)  # num_replicas and rank from the group
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
    ).to(device)
    model = DistributedDataParallel(model, device_ids=[device] if cuda else None)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(args.epochs):
        sampler.set_epoch(epoch)  # fresh synthetic images, the same on every rank
        total, seen = 0.0, 0
        for x, y in loader:
            x, y = x.to(device).float() / 255, y.to(device)
            loss = nn.functional.cross_entropy(model(x), y)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, seen = total + loss.item() * len(y), seen + len(y)
        if rank == 0:
            print(f"epoch {epoch}: loss {total / seen:.4f} on rank 0's {seen} images")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
