"""The published DeepSMOTE training step, re-implemented as the reference to time against.

The layers are plain ``nn`` modules in the library's order, so that the library's initial
weights load into them position by position, and the epoch copies the published loop's
habits (numpy class sampling every step, penalty codes through numpy), as DESIGN.md
describes them.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .common import sync

__all__ = ["heldout_mse", "published_copy", "published_epoch"]


def plain_models(image_shape, latent_dim):
    """The published layers as plain nn modules (same order as the library's, so that a
    state dict loads position by position)."""
    c, h, w = image_shape
    hidden = 64
    enc_layers = []
    sides = [(h >> i, w >> i) for i in range(1, 5)]
    in_ch = c
    for i in range(4):
        out_ch = hidden * 2**i
        enc_layers.append(nn.Conv2d(in_ch, out_ch, 4, 2, 1, bias=False))
        if i:
            enc_layers.append(nn.BatchNorm2d(out_ch))
        enc_layers.append(nn.LeakyReLU(0.2, inplace=True))
        in_ch = out_ch
    enc = nn.ModuleDict(
        {"conv": nn.Sequential(*enc_layers), "fc": nn.Linear(512 * sides[-1][0] ** 2, latent_dim)}
    )
    if (h, w) == (28, 28):
        start = (512, 7, 7)
        ups = [
            nn.ConvTranspose2d(512, 256, 4),
            nn.BatchNorm2d(256),
            nn.ReLU(True),
            nn.ConvTranspose2d(256, 128, 4),
            nn.BatchNorm2d(128),
            nn.ReLU(True),
            nn.ConvTranspose2d(128, c, 4, stride=2),
        ]
    else:  # 32x32: the mirror of the encoder (see torch_deepsmote.models)
        start = (512, *sides[-1])
        ups = []
        for i in range(3, -1, -1):
            out_ch = c if i == 0 else hidden * 2 ** (i - 1)
            ups.append(nn.ConvTranspose2d(hidden * 2**i, out_ch, 4, 2, 1))
            if i:
                ups += [nn.BatchNorm2d(out_ch), nn.ReLU(True)]
    dec = nn.ModuleDict(
        {
            "fc": nn.Sequential(nn.Linear(latent_dim, int(np.prod(start))), nn.ReLU()),
            "deconv": nn.Sequential(*ups, nn.Tanh()),
        }
    )

    class PlainEncoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv, self.fc = enc["conv"], enc["fc"]

        def forward(self, x):
            return self.fc(self.conv(x).flatten(1))

    class PlainDecoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.deconv = dec["fc"], dec["deconv"]

        def forward(self, z):
            return self.deconv(self.fc(z).view(-1, *start))

    return PlainEncoder(), PlainDecoder()


def published_copy(encoder, decoder, image_shape, latent_dim, device):
    """The published layers on ``device``, holding the weights of the library's
    ``encoder`` and ``decoder`` (so both loops start from the same point)."""
    penc, pdec = plain_models(image_shape, latent_dim)
    for target, source in ((penc, encoder), (pdec, decoder)):
        for t, s in zip(target.state_dict().values(), source.state_dict().values()):
            t.copy_(s)
    return penc.to(device), pdec.to(device)


def published_epoch(encoder, decoder, optims, dec_x, dec_y, batch_size, device, rng):
    """One epoch of the published training loop, as DESIGN.md describes it.

    Returns (seconds, images processed, mean reconstruction loss)."""
    loader = DataLoader(TensorDataset(torch.from_numpy(dec_x)), batch_size=batch_size, shuffle=True)
    criterion = nn.MSELoss()
    classes = np.unique(dec_y)
    encoder.train()
    decoder.train()
    sync(device)
    start = time.perf_counter()
    images_seen, losses = 0, []
    for (images,) in loader:
        if len(images) < 2:
            continue
        encoder.zero_grad()
        decoder.zero_grad()
        images = images.to(device)
        x_hat = decoder(encoder(images))
        mse = criterion(x_hat, images)
        tc = rng.choice(classes, 1)
        xbeg = dec_x[dec_y == tc]  # the whole class copied out of numpy, every step
        nsamp = min(len(xbeg), batch_size)
        ind = rng.choice(list(range(len(xbeg))), nsamp, replace=False)
        xclass = xbeg[ind]
        xcplus = np.append(np.arange(1, nsamp), 0)
        xcnew = torch.Tensor(xclass[xcplus]).to(device)
        codes = encoder(torch.Tensor(xclass).to(device))  # graph built, then thrown away
        codes = codes.detach().cpu().numpy()[xcplus]
        ximg = decoder(torch.Tensor(codes).to(device))
        mse2 = criterion(ximg, xcnew)
        (mse + mse2).backward()
        for optim in optims:
            optim.step()
        images_seen += len(images) + nsamp
        losses.append(mse.detach())
    sync(device)
    return time.perf_counter() - start, images_seen, float(torch.stack(losses).mean())


@torch.no_grad()
def heldout_mse(encoder, decoder, x, device, batch=500):
    """Mean squared reconstruction error on ``x`` in eval mode (train mode restored)."""
    was = encoder.training, decoder.training
    encoder.eval()
    decoder.eval()
    total = 0.0
    for i in range(0, len(x), batch):
        xb = x[i : i + batch].to(device)
        total += float(F.mse_loss(decoder(encoder(xb)).float(), xb, reduction="sum"))
    encoder.train(was[0])
    decoder.train(was[1])
    return total / x.numel()
