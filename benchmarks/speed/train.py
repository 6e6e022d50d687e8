"""Section 1, training throughput: ``fit_autoencoder`` against the published step.

At 1x28x28 and 3x32x32 (Fashion-MNIST padded, three channels): images/s of both loops from
the same initial weights, GFLOP/s of a library step against a large matmul timed in the same
run, held-out MSE after the same epochs; then bf16 autocast + channels_last against fp32.
"""

from __future__ import annotations

import copy
import time
from statistics import median

import numpy as np
import torch
import torch.nn.functional as F

from torch_deepsmote.models import Decoder, Encoder, default_latent_dim
from torch_deepsmote.training import TrainingConfig, fit_autoencoder

from .common import fmt, load_fashion_mnist, sync, to_unit
from .published import heldout_mse, published_copy, published_epoch

__all__ = ["render", "run"]


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


def run(quick, device):
    """One row per shape and loop, and a "bf16 check" row per shape."""
    rows = []
    train_set, test_set = load_fashion_mnist(True), load_fashion_mnist(False)
    per_class, n_classes = (100, 2) if quick else (100, 5)
    reps = 2
    for shape in [(1, 28, 28), (3, 32, 32)]:
        # Classes of >= 100 images, so every penalty batch holds 100 images in both loops.
        idx = torch.cat(
            [(train_set.targets == c).nonzero().flatten()[:per_class] for c in range(n_classes)]
        )
        x = train_set.data[idx][:, None]
        heldout = test_set.data[:500][:, None]
        if shape[0] == 3:  # no CIFAR here: Fashion-MNIST padded to 32x32, three channels
            x = F.pad(x, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()
            heldout = F.pad(heldout, (2, 2, 2, 2)).expand(-1, 3, -1, -1).contiguous()
        y = train_set.targets[idx]
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
        penc, pdec = published_copy(enc0, dec0, shape, latent, device)
        published = {
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
            seconds, _, _ = published_epoch(
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
    return {"rows": rows, "images": len(x), "reps": reps}


def render(t):
    """The section's markdown lines, from the keys :func:`run` returns."""
    lines = [
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
    lines += [
        "",
        "Opt-in reduced precision (bf16 autocast + channels_last) against fp32, each on "
        "a 1-step epoch of 100 images after a warm-up epoch (kept small: bf16 is slow on "
        "CPUs without bf16 instructions), held-out MSE after the same 2 steps from the "
        "same weights:",
        "",
        "| shape | fp32 s/epoch | bf16 s/epoch | bf16 speed-up | fp32 MSE | bf16 MSE |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in t["rows"]:
        if r["path"] == "bf16 check":
            lines.append(
                f"| {r['shape']} | {r['fp32_seconds']:.2f} | {r['bf16_seconds']:.2f} | "
                f"{r['speedup']:.2f}x | {r['fp32_heldout_mse']:.4f} | "
                f"{r['bf16_heldout_mse']:.4f} |"
            )
    lines.append("")
    return lines
