"""Speed of torch_deepsmote against the published design (issue 4).

Every figure is a ratio of two things timed in the same run (median of several repetitions,
interleaved so that a neighbour's load hits both alike). Sections:

1. train    training throughput of ``fit_autoencoder`` against a re-implementation of the
            published step (numpy class sampling every step, penalty codes through numpy),
            at 1x28x28 and 3x32x32; bf16 + channels_last; GFLOP/s against a large matmul.
2. quality  held-out reconstruction loss against training seconds, published recipe vs
            the library's loop with its plateau stop.
3. serve    images/s a DataLoader gets from OversampledDataset (real, synthetic, balanced
            mix; workers 0 and 2) against in-memory real images, the decoder alone (batch
            256) and a one-image-per-decoder-call loader; and from ``pool=True`` (each
            epoch's synthetic set decoded once into shared memory).
4. knn      per-class neighbour table + SMOTE plan for Table I counts (FAISS, torch,
            scikit-learn), and one class of 200,000 codes of size 600.
5. cache    latents/s from the HDF5 cache: whole-class reads and random batches of 256 in a
            DataLoader with 2 workers.

Run (writes the "## Performance (issue 4)" section of benchmarks/RESULTS.md):

    flock /tmp/deepsmote-cpu.lock python benchmarks/bench_speed.py          # ~15 min, 2 cores
    flock /tmp/deepsmote-cpu.lock python benchmarks/bench_speed.py --quick  # ~2-3 min

The section is rewritten with the sections of this run only: to rerun one, add
``--sections knn --no-write --json /tmp/speed.json`` and copy its part into RESULTS.md.
The device is CUDA when available, else CPU; FAISS-GPU is used only when FAISS sees a GPU.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, Dataset, SubsetRandomSampler, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fashion_mnist import TABLE_I_TRAIN, load_split, take_counts  # noqa: E402

import torch_deepsmote.deepsmote as deepsmote_module  # noqa: E402
from torch_deepsmote import OversampledDataset  # noqa: E402
from torch_deepsmote.cache import CacheFile, write_cache  # noqa: E402
from torch_deepsmote.knn import FaissKNN, SklearnKNN, TorchKNN, class_neighbors  # noqa: E402
from torch_deepsmote.models import Decoder, Encoder, default_latent_dim  # noqa: E402
from torch_deepsmote.smote import plan_synthetic, resolve_sampling_strategy  # noqa: E402
from torch_deepsmote.training import TrainingConfig, fit_autoencoder  # noqa: E402

HERE = Path(__file__).resolve().parent
SECTION = "## Performance (issue 4)"
DEFAULT_SECTIONS = "train,quality,serve,knn,cache"


def median(values):
    return statistics.median(values)


def sync(device):
    if device is not None and device.type == "cuda":
        torch.cuda.synchronize()


def to_unit(x):
    return x.float() / 127.5 - 1


# --------------------------------------------------------------------------- the published step
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


def step_flops(encoder, decoder, x):
    """FLOPs of one library training step (reconstruction + penalty batch of the same size)."""
    from torch.utils.flop_counter import FlopCounterMode

    enc, dec = copy.deepcopy(encoder).cpu(), copy.deepcopy(decoder).cpu()
    x = x.cpu()
    with FlopCounterMode(display=False) as counter:
        loss = F.mse_loss(dec(enc(x)), x)
        with torch.no_grad():
            codes = enc(x)
        loss = loss + F.mse_loss(dec(codes), x)
        loss.backward()
    return counter.get_total_flops()


def matmul_gflops(device, n=2048, reps=5):
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    times = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        times.append(time.perf_counter() - t)
    return 2 * n**3 / median(times) / 1e9


def bf16_effect(enc0, dec0, x, y, heldout, device):
    """bf16 autocast + channels_last against fp32 on a 2-step epoch: a warm-up epoch, then
    one timed epoch each (bf16 is slow where the CPU lacks bf16 instructions, so this part
    is kept small); held-out MSE of both after the same steps from the same weights."""
    result = {}
    for name, cfg in [
        ("fp32", TrainingConfig(max_epochs=1, patience=0, precision="fp32")),
        (
            "bf16",
            TrainingConfig(max_epochs=1, patience=0, precision="bf16", channels_last=True),
        ),
    ]:
        enc, dec = copy.deepcopy(enc0), copy.deepcopy(dec0)
        generator = torch.Generator().manual_seed(0)
        seconds = []
        for _ in range(2):
            hist = fit_autoencoder(
                enc,
                dec,
                x,
                y,
                to_unit,
                config=cfg,
                generator=generator,
                device=device,
                progress=False,
            )
            seconds.append(hist[0]["seconds"])
        result[f"{name}_seconds"] = seconds[-1]
        result[f"{name}_heldout_mse"] = heldout_mse(enc, dec, heldout, device)
    result["speedup"] = result["fp32_seconds"] / result["bf16_seconds"]
    return result


def bench_train(args, device, out):
    rows = []
    images_all, labels_all = load_split(True)
    test_images, _ = load_split(False)
    per_class, n_classes = (100, 2) if args.quick else (100, 5)
    reps = 2
    for shape in [(1, 28, 28), (3, 32, 32)]:
        # Classes of >= 100 images, so every penalty batch holds 100 images in both loops.
        idx = np.concatenate(
            [np.flatnonzero(labels_all == c)[:per_class] for c in range(n_classes)]
        )
        x = torch.from_numpy(images_all[idx])[:, None]
        heldout = torch.from_numpy(test_images[:500].copy())[:, None]
        if shape[0] == 3:  # no CIFAR here: Fashion-MNIST padded to 32x32, three channels
            x = F.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()
            heldout = F.pad(heldout, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()
        y = torch.from_numpy(labels_all[idx])
        heldout = to_unit(heldout)
        latent = default_latent_dim(shape)
        torch.manual_seed(0)
        enc0, dec0 = Encoder(shape, latent), Decoder(shape, latent)
        variants = {
            "library fp32": {
                "cfg": TrainingConfig(max_epochs=1, patience=0, precision="fp32"),
                "enc": copy.deepcopy(enc0),
                "dec": copy.deepcopy(dec0),
            }
        }
        penc, pdec = plain_models(shape, latent)
        for target, source in ((penc, enc0), (pdec, dec0)):
            for t, s in zip(target.state_dict().values(), source.state_dict().values()):
                t.copy_(s)
        penc.to(device)
        pdec.to(device)
        published = {
            "enc": penc,
            "dec": pdec,
            "optims": [
                torch.optim.Adam(penc.parameters(), lr=2e-4),
                torch.optim.Adam(pdec.parameters(), lr=2e-4),
            ],
            "x": to_unit(x).numpy(),
            "y": y.numpy(),
            "rng": np.random.default_rng(0),
        }
        times = {name: [] for name in [*variants, "published"]}
        matmuls = []
        generator = torch.Generator().manual_seed(0)
        steps_per_epoch = len(x) // 100
        for rep in range(reps + 1):  # rep 0 warms up oneDNN primitives and allocators
            print(shape, "rep", rep, flush=True)
            for name, v in variants.items():
                hist = fit_autoencoder(
                    v["enc"],
                    v["dec"],
                    x,
                    y,
                    to_unit,
                    config=v["cfg"],
                    generator=generator,
                    device=device,
                    progress=False,
                )
                if rep:
                    times[name].append(hist[0]["seconds"])
            seconds, seen, _ = published_epoch(
                penc,
                pdec,
                published["optims"],
                published["x"],
                published["y"],
                100,
                device,
                published["rng"],
            )
            if rep:
                times["published"].append(seconds)
                matmuls.append(matmul_gflops(device))
        # 100 images spread over the classes (x holds per_class of each, class by class).
        pick = torch.arange(len(x)).view(n_classes, per_class)[:, : 100 // n_classes].flatten()
        bf16 = bf16_effect(enc0, dec0, x[pick], y[pick], heldout, device)
        print(shape, bf16, flush=True)
        images_per_epoch = 2 * 100 * steps_per_epoch
        flops = step_flops(enc0, dec0, to_unit(x[:100])) * steps_per_epoch
        mm = median(matmuls)
        ref = median(times["published"])
        for name in [*variants, "published"]:
            t = median(times[name])
            if name == "published":
                mse = heldout_mse(penc, pdec, heldout, device)
            else:
                mse = heldout_mse(variants[name]["enc"], variants[name]["dec"], heldout, device)
            rows.append(
                {
                    "shape": "x".join(map(str, shape)),
                    "path": name,
                    "seconds_per_epoch": t,
                    "images_per_s": images_per_epoch / t,
                    "ratio_vs_published": ref / t,
                    "gflops": flops / t / 1e9,
                    "matmul_gflops": mm,
                    "fraction_of_matmul": flops / t / 1e9 / mm,
                    "heldout_mse_after": mse,
                    "epochs": reps + 1,
                }
            )
            print(rows[-1], flush=True)
        rows.append({"shape": rows[-1]["shape"], "path": "bf16 check", **bf16})
    out["train"] = {"rows": rows, "images": len(x), "reps": reps}


# --------------------------------------------------------------------------- time to quality
def bench_quality(args, device, out):
    images, labels = load_split(True)
    test_images, _ = load_split(False)
    scale = 80 if args.quick else 40
    counts = tuple(max(2, c // scale) for c in TABLE_I_TRAIN)
    idx = take_counts(labels, counts, seed=0)
    x = torch.from_numpy(images[idx])[:, None]
    y = torch.from_numpy(labels[idx])
    heldout = to_unit(torch.from_numpy(test_images[:500].copy())[:, None])
    budget = 2 if args.quick else 4  # the published recipe's epoch budget, scaled down
    torch.manual_seed(1)
    enc0, dec0 = Encoder((1, 28, 28)), Decoder((1, 28, 28))
    penc, pdec = plain_models((1, 28, 28), 300)
    for target, source in ((penc, enc0), (pdec, dec0)):
        for t, s in zip(target.state_dict().values(), source.state_dict().values()):
            t.copy_(s)
    penc.to(device)
    pdec.to(device)
    optims = [torch.optim.Adam(m.parameters(), lr=2e-4) for m in (penc, pdec)]
    rng = np.random.default_rng(0)
    published_curve, elapsed = [], 0.0
    for _ in range(budget):
        seconds, _, _ = published_epoch(
            penc, pdec, optims, to_unit(x).numpy(), y.numpy(), 100, device, rng
        )
        elapsed += seconds
        published_curve.append((elapsed, heldout_mse(penc, pdec, heldout, device)))
    level = published_curve[-1][1]
    enc, dec = copy.deepcopy(enc0), copy.deepcopy(dec0)
    library_curve = []
    state = {"elapsed": 0.0}

    def callback(record):
        state["elapsed"] += record["seconds"]
        library_curve.append((state["elapsed"], heldout_mse(enc, dec, heldout, device)))

    cfg = TrainingConfig(max_epochs=3 * budget)  # library defaults: patience 5, min_delta 1e-3
    history = fit_autoencoder(
        enc,
        dec,
        x,
        y,
        to_unit,
        config=cfg,
        generator=torch.Generator().manual_seed(0),
        device=device,
        progress=False,
        callback=callback,
    )
    reached = next((i for i, (_, m) in enumerate(library_curve) if m <= level), None)
    out["quality"] = {
        "images": len(x),
        "scale": scale,
        "counts": counts,
        "budget_epochs": budget,
        "level": level,
        "published_curve": published_curve,
        "library_curve": library_curve,
        "library_epochs_run": len(history),
        "library_max_epochs": cfg.max_epochs,
        "library_epoch_reaching_level": reached,
        "library_seconds_to_level": None if reached is None else library_curve[reached][0],
        "published_seconds_to_level": published_curve[-1][0],
    }
    print(out["quality"], flush=True)


# --------------------------------------------------------------------------- serving
class OneByOne(Dataset):
    """Hides ``__getitems__``: one decoder call per synthetic image."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        return self.dataset[i]


@contextlib.contextmanager
def short_training(n_images):
    """Train the serving model on a few images only: serving cost does not depend on the
    weights, and a full fit would take the whole benchmark's budget."""
    original = deepsmote_module.fit_autoencoder

    def patched(encoder, decoder, images, labels, *a, **k):
        return original(encoder, decoder, images[:n_images], labels[:n_images], *a, **k)

    deepsmote_module.fit_autoencoder = patched
    try:
        yield
    finally:
        deepsmote_module.fit_autoencoder = original


def loader_rate(dataset, indices, workers, n_batches, batch_size=128):
    sampler = SubsetRandomSampler(indices, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler,
        num_workers=workers,
        persistent_workers=workers > 0,
    )
    it = iter(loader)
    next(it)  # worker start-up and first-batch warm-up are not serving throughput
    start, count = time.perf_counter(), 0
    for _ in range(n_batches):
        images, _ = next(it)
        count += len(images)
    seconds = time.perf_counter() - start
    del it, loader
    return count / seconds


def bench_serve(args, device, out):
    images, labels = load_split(True)
    idx = take_counts(labels, TABLE_I_TRAIN, seed=0)
    x = torch.from_numpy(images[idx])[:, None].contiguous()
    y = torch.from_numpy(labels[idx])
    with short_training(200):
        ds = OversampledDataset(
            TensorDataset(x, y), max_epochs=1, progress=False, random_state=0, knn="torch"
        )
    model = ds.model
    n_real, n_total = ds.n_real, len(ds)
    real_idx = list(range(n_real))
    synth_idx = list(range(n_real, n_total))
    all_idx = list(range(n_total))
    n_batches = 4 if args.quick else 10
    reps = 2 if args.quick else 3
    memory = TensorDataset(x, y)
    codes = torch.randn(256, model.latents_.shape[1])
    decoder = model.decoder_.eval().to(device)

    @torch.inference_mode()
    def decoder_rate():
        decoder(codes.to(device))
        sync(device)
        start = time.perf_counter()
        for _ in range(max(2, n_batches // 2)):
            decoder(codes.to(device)).cpu()
        sync(device)
        return 256 * max(2, n_batches // 2) / (time.perf_counter() - start)

    results = {}

    def record(name, value):
        results.setdefault(name, []).append(value)

    for _ in range(reps):
        record("decoder alone (batch 256)", decoder_rate())
        for workers in (0, 2):
            record(f"in-memory real, workers={workers}", loader_rate(memory, real_idx, workers, 40))
            record(f"real only, workers={workers}", loader_rate(ds, real_idx, workers, 40))
            record(
                f"synthetic only, workers={workers}",
                loader_rate(ds, synth_idx, workers, n_batches),
            )
            record(f"balanced mix, workers={workers}", loader_rate(ds, all_idx, workers, n_batches))
    one = OneByOne(ds)
    results["synthetic one image per decoder call, workers=0"] = [
        loader_rate(one, synth_idx, 0, 2) for _ in range(reps)
    ]
    # pool=True: the epoch's synthetic set is decoded once (timed) and then served from
    # shared memory. Filled to 1,000 per class (4,750 synthetic) to keep the fill short;
    # the serving rate does not depend on the pool's size.
    counts = torch.bincount(y).tolist()
    start = time.perf_counter()
    pooled = OversampledDataset(
        memory,
        model,
        sampling_strategy={c: max(n, 1000) for c, n in enumerate(counts)},
        pool=True,
    )
    pool_fill = pooled.n_synthetic / (time.perf_counter() - start)
    pool_idx = list(range(pooled.n_real, len(pooled)))
    n_pool_batches = min(40, len(pool_idx) // 128 - 1)
    for _ in range(reps):
        for workers in (0, 2):
            real_rate = loader_rate(memory, real_idx, workers, 40)
            record(f"in-memory real (pool run), workers={workers}", real_rate)
            pool_rate = loader_rate(pooled, pool_idx, workers, n_pool_batches)
            record(f"synthetic from pool, workers={workers}", pool_rate)
    results["pool fill: decode one epoch's synthetic set"] = [pool_fill]
    rates = {name: median(v) for name, v in results.items()}
    out["serve"] = {
        "rates": rates,
        "n_real": n_real,
        "n_synthetic": n_total - n_real,
        "n_pool": pooled.n_synthetic,
    }
    print(out["serve"], flush=True)


# --------------------------------------------------------------------------- k-NN and plan
def time_it(fn, reps, device=None):
    """Median seconds of ``fn()``; on CUDA, waits for the queued kernels at both ends."""
    times = []
    for _ in range(reps):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return median(times)


def bench_knn(args, device, out):
    from sklearn.neighbors import NearestNeighbors

    reps = 2 if args.quick else 3
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(np.repeat(np.arange(10), TABLE_I_TRAIN))
    # Codes with the low-dimensional structure of an autoencoder's: 32 factors, 300 sizes.
    factors = torch.from_numpy(rng.standard_normal((len(labels), 32), dtype=np.float32))
    mix = torch.from_numpy(rng.standard_normal((32, 300), dtype=np.float32))
    centres = torch.from_numpy(rng.standard_normal((10, 300), dtype=np.float32))
    latents = factors @ mix + 3 * centres[labels]
    latents += 0.1 * torch.from_numpy(rng.standard_normal(latents.shape, dtype=np.float32))
    backends = {}
    try:  # FaissKNN raises ImportError without FAISS (the GPU machine lacks its wheel)
        backends["faiss"] = FaissKNN(use_gpu=None)
    except ImportError:
        pass
    faiss_here = "faiss" in backends
    backends["torch"] = TorchKNN()
    backends["scikit-learn"] = SklearnKNN(NearestNeighbors(algorithm="auto"))
    x_dev = latents.to(device)
    n_new = resolve_sampling_strategy("auto", labels)
    rows = {}
    for name, backend in backends.items():
        points = x_dev if name == "torch" else latents
        table = {}

        def run(backend=backend, points=points, table=table):
            table["r"] = class_neighbors(points, labels, 5, knn=backend)
            plan_synthetic(n_new, labels, *table["r"], torch.Generator().manual_seed(0))

        run()
        first = points[labels.to(points.device) == 0]
        rows[name] = {
            "all classes + plan s": time_it(run, reps, device),
            "class of 4000 s": time_it(
                lambda b=backend, p=first: b.kneighbors(p, 5),
                reps,
                device,
            ),
        }
    out["knn"] = {"table_i": rows}
    if not faiss_here:
        print(out["knn"], "(no faiss: the 200,000-code search is skipped)", flush=True)
        return
    # One class of 200,000 codes of size 600: a mixture of 2,000 clusters in a 48-factor
    # subspace plus noise (codes of one class gather by style; plain Gaussian factors, with
    # no cluster at all, are the worst case for a cell index).
    n, d = (50_000 if args.quick else 200_000), 600
    mix = torch.from_numpy(rng.standard_normal((48, d), dtype=np.float32))
    centres = torch.from_numpy(rng.standard_normal((2000, 48), dtype=np.float32))
    member = torch.from_numpy(rng.integers(0, 2000, n))
    factors = centres[member] + 0.5 * torch.from_numpy(
        rng.standard_normal((n, 48), dtype=np.float32)
    )
    big = factors @ mix + 0.1 * torch.from_numpy(rng.standard_normal((n, d), dtype=np.float32))
    # About sqrt(nprobe * n) cells (see FaissKNN); the candidates measured against each
    # other are in benchmarks/results/performance_notes.md.
    nlist = 1024 if n >= 100_000 else 512
    ivf = FaissKNN(nlist=nlist, nprobe=8)
    start = time.perf_counter()
    found = ivf.kneighbors(big, 5)
    ivf_s = time.perf_counter() - start
    # Recall against exact search for 1,000 random queries.
    q = torch.from_numpy(rng.choice(n, 1000, replace=False))
    norms = (big * big).sum(1)
    dist = norms[None, :] - 2 * big[q] @ big.T
    dist[torch.arange(len(q)), q] = float("inf")
    exact = torch.topk(dist, 5, dim=1, largest=False).indices
    recall = float(
        np.mean([len(set(a.tolist()) & set(b.tolist())) / 5 for a, b in zip(found[q], exact)])
    )
    # Exact cost, extrapolated from exact FAISS on 20,000 queries against all n.
    import faiss

    index = faiss.IndexFlatL2(d)
    index.add(big.numpy())
    sub = big[:20_000].numpy()
    start = time.perf_counter()
    index.search(sub, 6)
    exact_s = (time.perf_counter() - start) * n / len(sub)
    out["knn"].update(
        big={
            "n": n,
            "d": d,
            "backend": repr(ivf),
            "seconds": ivf_s,
            "recall_at_5": recall,
            "exact_faiss_seconds_extrapolated": exact_s,
        },
    )
    print(out["knn"], flush=True)


# --------------------------------------------------------------------------- cache reads
class CacheRows(Dataset):
    def __init__(self, path, n):
        self.cache, self.n = CacheFile(path), n

    def __len__(self):
        return self.n

    def __getitems__(self, indices):
        return self.cache.rows("latents", torch.as_tensor(indices))

    def __getitem__(self, i):
        return self.cache.rows("latents", [i])[0]


def bench_cache(args, device, out):
    n, d = 60_000, 300
    rng = np.random.default_rng(0)
    latents = rng.standard_normal((n, d), dtype=np.float32)
    labels = rng.integers(0, 10, n)
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "deepsmote.h5")
    write_cache(path, arrays={"latents": latents, "labels": labels}, blobs={}, attrs={})
    cache = CacheFile(path).open()
    reps = 3
    class_rows = [np.flatnonzero(labels == c) for c in range(10)]
    whole = time_it(lambda: [cache.rows("latents", r) for r in class_rows], reps)
    ds = CacheRows(path, n)
    n_batches = 50 if args.quick else 200

    def loader_pass():
        loader = DataLoader(
            ds,
            batch_size=256,
            shuffle=True,
            num_workers=2,
            collate_fn=lambda b: b,
            generator=torch.Generator().manual_seed(0),
        )
        it = iter(loader)
        next(it)
        start = time.perf_counter()
        for _ in range(n_batches):
            next(it)
        return 256 * n_batches / (time.perf_counter() - start)

    rates = [loader_pass() for _ in range(reps)]
    out["cache"] = {
        "n": n,
        "d": d,
        "whole_class_latents_per_s": n / whole,
        "random_256_latents_per_s_workers2": median(rates),
    }
    print(out["cache"], flush=True)


# --------------------------------------------------------------------------- report
def fmt(v, digits=0):
    return f"{v:,.{digits}f}"


def render(out, args, device):
    lines = [SECTION, ""]
    flags = " --quick" if args.quick else ""
    if args.sections != DEFAULT_SECTIONS:
        flags += f" --sections {args.sections}"
    lines.append(
        f"Command: `flock /tmp/deepsmote-cpu.lock python benchmarks/bench_speed.py{flags}` "
        f"({out['wall_s']:.0f} s). Machine: {out['machine']}. "
        f"Versions: {out['versions']}. Device: {device}. Every ratio compares two things timed "
        "in the same run, interleaved, median of the repetitions; the machine's 2 cores may be "
        "shared, so absolute figures vary between runs more than the ratios."
    )
    lines.append("")
    if "train" in out:
        t = out["train"]
        lines += [
            "### 1. Training throughput",
            "",
            f"One epoch = {t['images']} Fashion-MNIST images in classes of 100 (so every "
            "penalty batch has 100 images in both loops); images/s count both loss terms "
            f"(200 per step). Median of {t['reps']} epochs after a warm-up epoch. GFLOP/s: FLOPs "
            "of a library step (torch.utils.flop_counter) over time; matmul: a 2048x2048 "
            "fp32 product in the same run. Held-out MSE: 500 test images after "
            f"{t['reps'] + 1} epochs from the same initial weights.",
            "",
            "| shape | path | images/s | vs published | GFLOP/s | of matmul | held-out MSE |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
        ]
        for r in t["rows"]:
            if r["path"] == "bf16 check":
                continue
            lines.append(
                f"| {r['shape']} | {r['path']} | {fmt(r['images_per_s'], 1)} | "
                f"{r['ratio_vs_published']:.2f}x | {fmt(r['gflops'], 1)} | "
                f"{100 * r['fraction_of_matmul']:.0f}% ({fmt(r['matmul_gflops'], 0)}) | "
                f"{r['heldout_mse_after']:.4f} |"
            )
        lines.append("")
        lines.append(
            "Opt-in reduced precision (bf16 autocast + channels_last) against fp32, each on "
            "a 1-step epoch of 100 images after a warm-up epoch (kept small: bf16 is slow on "
            "CPUs without bf16 instructions), held-out MSE after the same 2 steps from the "
            "same weights:"
        )
        lines.append("")
        lines.append(
            "| shape | fp32 s/epoch | bf16 s/epoch | bf16 speed-up | fp32 MSE | bf16 MSE |"
        )
        lines.append("| --- | ---: | ---: | ---: | ---: | ---: |")
        for r in t["rows"]:
            if r["path"] == "bf16 check":
                lines.append(
                    f"| {r['shape']} | {r['fp32_seconds']:.2f} | {r['bf16_seconds']:.2f} | "
                    f"{r['speedup']:.2f}x | {r['fp32_heldout_mse']:.4f} | "
                    f"{r['bf16_heldout_mse']:.4f} |"
                )
        lines.append("")
    if "quality" in out:
        q = out["quality"]
        lines += [
            "### 2. Time to quality",
            "",
            f"Table I counts / {q['scale']} ({q['images']} images), paper model, held-out MSE "
            f"on 500 test images after every epoch; published budget {q['budget_epochs']} epochs "
            f"(scaled down from 50-350 to fit the run), level = its final held-out MSE "
            f"{q['level']:.4f}. Library: default plateau stop (patience 5, min_delta 1e-3), "
            f"max_epochs {q['library_max_epochs']}; ran {q['library_epochs_run']} epochs.",
            "",
            "| epoch | published s | published MSE | library s | library MSE |",
            "| ---: | ---: | ---: | ---: | ---: |",
        ]
        for i in range(max(len(q["published_curve"]), len(q["library_curve"]))):
            p = q["published_curve"][i] if i < len(q["published_curve"]) else ("", "")
            lib = q["library_curve"][i] if i < len(q["library_curve"]) else ("", "")
            cells = [
                f"{v:.1f}"
                if isinstance(v, float) and j % 2 == 0
                else (f"{v:.4f}" if isinstance(v, float) else "")
                for j, v in enumerate((*p, *lib))
            ]
            lines.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        reached = q["library_epoch_reaching_level"]
        if reached is None:
            lines.append("\nThe library run did not reach the level.")
        else:
            lines.append(
                f"\nLibrary reaches the level after epoch {reached + 1}, at "
                f"{q['library_seconds_to_level']:.1f} s, against "
                f"{q['published_seconds_to_level']:.1f} s "
                f"for the published loop; it then ran {q['library_epochs_run'] - reached - 1} "
                "more epochs before stopping."
            )
        lines.append("")
    if "serve" in out:
        s = out["serve"]
        r = s["rates"]
        dec = r["decoder alone (batch 256)"]
        lines += [
            "### 3. Serving",
            "",
            f"OversampledDataset over Table I counts ({s['n_real']} real + {s['n_synthetic']} "
            "synthetic 1x28x28 uint8 tensors), DataLoader batch 128, random order. Pool rows: "
            f"the same model with `pool=True`, filled to 1,000 per class ({s.get('n_pool')} "
            "synthetic); the fill row is images decoded per second of fill.",
            "",
            "| loader | images/s | vs decoder alone | vs in-memory real (same workers) |",
            "| --- | ---: | ---: | ---: |",
        ]
        for name, v in r.items():
            w = name.rsplit("workers=", 1)[-1] if "workers=" in name else None
            mem = r.get(f"in-memory real, workers={w}") if w else None
            if w and "pool" in name:  # compared with the real loader timed beside it
                mem = r.get(f"in-memory real (pool run), workers={w}")
            lines.append(
                f"| {name} | {fmt(v, 0)} | {v / dec:.2f} | "
                + (f"{v / mem:.2f}" if mem else "")
                + " |"
            )
        lines.append("")
    if "knn" in out:
        k = out["knn"]
        sk = k["table_i"]["scikit-learn"]
        lines += [
            "### 4. Neighbour search and the SMOTE plan",
            "",
            "9,000 codes of size 300 in Table I counts (32-factor structure plus noise), k=5: "
            "per-class table for all classes plus the plan for 'auto'; and the class of 4,000.",
            "",
            "| backend | all classes + plan s | vs scikit-learn | class of 4,000 s "
            "| vs scikit-learn |",
            "| --- | ---: | ---: | ---: | ---: |",
        ]
        for name, v in k["table_i"].items():
            lines.append(
                f"| {name} | {v['all classes + plan s']:.3f} | "
                f"{sk['all classes + plan s'] / v['all classes + plan s']:.2f}x | "
                f"{v['class of 4000 s']:.3f} | "
                f"{sk['class of 4000 s'] / v['class of 4000 s']:.2f}x |"
            )
        b = k.get("big")
        lines.append(
            f"\nOne class of {b['n']:,} codes of size {b['d']} (2,000 clusters in a 48-factor "
            "subspace, plus noise): "
            f"`{b['backend']}` (approximate) {b['seconds']:.1f} s, recall@5 {b['recall_at_5']:.3f} "
            f"on 1,000 queries against exact search; exact FAISS would take about "
            f"{b['exact_faiss_seconds_extrapolated']:.0f} s (extrapolated from 20,000 queries)."
            if b
            else "\nThe 200,000-code search needs FAISS, which this machine lacks: skipped."
        )
        lines.append("")
    if "cache" in out:
        c = out["cache"]
        lines += [
            "### 5. Cache reads",
            "",
            f"{c['n']:,} x {c['d']} float32 latents, contiguous and uncompressed (the layout "
            "chosen from the measurements in torch_deepsmote/cache.py: chunking slowed random "
            "rows 4-8x and float latents do not compress). Whole-class reads (10 classes, "
            f"scattered rows): {fmt(c['whole_class_latents_per_s'])} latents/s. Random batches "
            f"of 256 through a DataLoader with 2 workers: "
            f"{fmt(c['random_256_latents_per_s_workers2'])} latents/s.",
            "",
        ]
    for name, error in out.get("errors", {}).items():
        lines.append(f"Section `{name}` failed in this run: `{error}`.\n")
    return "\n".join(lines)


def write_results(text, path):
    path = Path(path)
    old = path.read_text() if path.exists() else "# Benchmarks\n"
    if SECTION in old:
        head, rest = old.split(SECTION, 1)
        nxt = rest.find("\n## ")
        tail = rest[nxt + 1 :] if nxt >= 0 else ""
        new = head + text + ("\n" + tail if tail else "")
    else:
        before, marker, after = old.partition("\n## ")
        new = before.rstrip() + "\n\n" + text + ("\n\n## " + after if marker else "")
    path.write_text(new.rstrip() + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, ~2-3 minutes")
    parser.add_argument("--sections", default=DEFAULT_SECTIONS, help="comma-separated subset")
    parser.add_argument("--results", default=str(HERE / "RESULTS.md"))
    parser.add_argument("--json", default=str(HERE / "out" / "speed.json"))
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    start = time.perf_counter()
    out = {
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"
        + (f", {torch.cuda.get_device_name()}" if device.type == "cuda" else ""),
        "versions": f"torch {torch.__version__}, numpy {np.__version__}, Python "
        f"{platform.python_version()}",
    }
    try:
        import faiss
        import h5py
        import sklearn

        out["versions"] += (
            f", faiss {faiss.__version__}, scikit-learn {sklearn.__version__}, "
            f"h5py {h5py.__version__}"
        )
    except ImportError:
        pass
    benches = {
        "train": bench_train,
        "quality": bench_quality,
        "serve": bench_serve,
        "knn": bench_knn,
        "cache": bench_cache,
    }
    for name in args.sections.split(","):
        t = time.perf_counter()
        try:
            benches[name](args, device, out)
        except Exception as error:  # report the other sections all the same
            import traceback

            traceback.print_exc()
            out.setdefault("errors", {})[name] = repr(error)
        print(f"[{name}] {time.perf_counter() - t:.0f} s", flush=True)
        out["wall_s"] = time.perf_counter() - start
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(out, indent=1, default=str))  # partial, so far
    out["wall_s"] = time.perf_counter() - start
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(out, indent=1, default=str))
    text = render(out, args, device)
    print(text)
    if not args.no_write:
        write_results(text, args.results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
