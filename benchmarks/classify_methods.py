"""Classifiers, the resampling methods and the fixed-step training loop of classify.py.

Every method hands the same training loop a :class:`~classify_batches.Recipe`: an endless
stream of (images, targets) batches, a class prior for the loss (``None``: plain cross-entropy) and,
for the mixing baselines, a mixer (``classify_batches``). The loop takes exactly ``steps``
optimiser steps whatever the method, so no method gets more updates than another, and it
augments every batch the same way, whatever made its images.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from benchmarks import classify_batches as cb
from benchmarks import classify_deepsmote as cd
from benchmarks.classify_batches import Recipe
from torch_deepsmote import LogitAdjustedLoss, class_prior

__all__ = [
    "BASELINES",
    "CLASSIFIERS",
    "METHODS",
    "batches_for",
    "evaluate",
    "load_classifier",
    "make_classifier",
    "save_classifier",
    "train_classifier",
]

METHODS = (
    "none",  # the imbalanced set as it is
    "ros",  # random oversampling (imbalanced-learn RandomOverSampler)
    "weighted",  # class-balanced sampling (WeightedRandomSampler)
    "smote",  # SMOTE on pixels (imbalanced-learn)
    "logit_adj",  # logit-adjusted cross-entropy (Menon et al., ICLR 2021), tau = 1
    "mixup_la",  # input mixup (alpha 1) + logit-adjusted cross-entropy
    "cmo_la",  # CMO (Park et al., CVPR 2022): minority CutMix onto natural batches + logit adj.
    "drw",  # deferred re-balancing: plain CE, class-balanced sampling for the last quarter
    "deepsmote",  # DeepSMOTE, one fixed synthetic set (the paper)
    "deepsmote_fresh",  # DeepSMOTE, a fresh synthetic set every epoch (set_epoch)
    "deepsmote_la",  # DeepSMOTE to partial balance + logit adjustment for the rest
    "deepsmote_residual",  # fixed set, DeepSMOTE(residual=True): parents' residuals added
    "deepsmote_residual_fresh",  # the same with a fresh synthetic set every epoch
    "deepsmote_residual_mix",  # fixed residual set; half of each class's draws are real
)
# Opt-in variants (--methods): ideas measured against the paper's recipe.
EXTRA_METHODS = (
    "deepsmote_residual_la",  # deepsmote_la with residual=True
    # A ceiling, not a baseline (it reads images a user does not have): dsp-cmo-s0.5 with
    # every "synthetic" draw an unseen real image of the class, from the training split
    # outside the subset. What a perfect generator could give this recipe.
    "oracle_cmo_la",
    # The same ceiling for dsp-q1-s0.3 (natural class rates, 30 % of each minority class's
    # draws synthetic, logit-adjusted loss): those draws unseen real images instead.
    "oracle_la",
    # Controls of a "best recipe" claim: cmo_la with sharpness-aware minimisation (SAM,
    # Foret et al., ICLR 2021) at rho = SAM_RHO, and the adjusted loss at another
    # temperature, logit_adj_tau<T> (T chosen on a validation split: --val-split).
    "cmo_la_sam",
)
# SAM's radius: Foret et al.'s default, and the value of Saddle-LongTail's GLMC + SAM
# runs (val-iisc/Saddle-LongTail, GLMC-2023/run.sh: CIFAR-10-LT 87.55 -> 89.18).
SAM_RHO = 0.05
TAU_PREFIX = "logit_adj_tau"
DEEPSMOTE_METHODS = tuple(m for m in METHODS + EXTRA_METHODS if m.startswith("deepsmote"))
# What a strong practitioner would use instead of synthetic images (issue 12): the rows that
# the paired differences of the report are taken against.
BASELINES = tuple(m for m in METHODS if m not in DEEPSMOTE_METHODS)

CLASSIFIERS = ("cnn", "cnn-fc", "mlp", "resnet18", "resnet18-w8", "resnet18-w16")
# deferred re-balancing: the share of the steps trained on natural batches first.
DRW_SWITCH = 0.75


def tau_of(method: str) -> float | None:
    """The temperature of a ``logit_adj_tau<T>`` method (``logit_adj_tau1.5``: 1.5), else
    None.

    Raises:
        ValueError: the name starts like one but ``T`` is not a non-negative number.
    """
    if not method.startswith(TAU_PREFIX):
        return None
    text = method.removeprefix(TAU_PREFIX)
    try:
        tau = float(text)
    except ValueError:
        tau = -1.0
    if not (tau >= 0 and math.isfinite(tau)):
        raise ValueError(
            f"a {TAU_PREFIX}<T> method should end in a non-negative number, but got "
            f"method={method!r}; e.g. {TAU_PREFIX}1.5."
        )
    return tau


def uses_autoencoder(method: str) -> bool:
    """Whether ``method`` makes DeepSMOTE images (a ``deepsmote*`` row or a ``dsp-`` recipe)."""
    return method in DEEPSMOTE_METHODS or cd.is_recipe(method)


# ---------------------------------------------------------------------- classifiers
class SmallCNN(nn.Module):
    """Three conv blocks and a linear head: the CPU classifier (about 24 k parameters)."""

    def __init__(self, channels: int, n_classes: int, width: int = 32) -> None:
        super().__init__()

        def block(c_in, c_out):
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
            ]

        self.net = nn.Sequential(
            *block(channels, width // 2),
            nn.MaxPool2d(2),
            *block(width // 2, width),
            nn.MaxPool2d(2),
            *block(width, 2 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
            nn.Linear(2 * width, n_classes),
        )

    def forward(self, x):
        return self.net((x - 0.5) / 0.5)


class ConvFC(nn.Module):
    """Two conv-ReLU-pool blocks (32 and 64 channels) and a 128-unit hidden layer: the
    textbook MNIST CNN, about 0.42 M parameters at 28x28, most of them in the hidden layer.
    The CNN of "about 0.4 M parameters" that issue 12 measured at 85 balanced-test ACSA."""

    def __init__(self, channels: int, n_classes: int, side: int = 28) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 32, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(2),
            nn.Flatten(),
            nn.Linear(64 * (side // 4) ** 2, 128),
            nn.ReLU(inplace=True),
            nn.Linear(128, n_classes),
        )

    def forward(self, x):
        return self.net((x - 0.5) / 0.5)


class _Normalised(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net((x - 0.5) / 0.5)


class MLP(nn.Module):
    """Two hidden layers of 1,024 on raw pixels (about 1.9 M parameters at 28x28): cheap on
    a CPU, yet able to memorise a few hundred images, unlike SmallCNN at these budgets."""

    def __init__(self, n_inputs: int, n_classes: int, width: int = 1024) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(n_inputs, width),
            nn.ReLU(inplace=True),
            nn.Linear(width, width),
            nn.ReLU(inplace=True),
            nn.Linear(width, n_classes),
        )

    def forward(self, x):
        return self.net((x - 0.5) / 0.5)


def narrow_resnet18(channels: int, n_classes: int, width: int) -> nn.Module:
    """ResNet-18's layout (a 3x3 stride-1 stem, four stages of two torchvision BasicBlocks)
    with stage widths ``width * (1, 2, 4, 8)`` instead of 64 * (1, 2, 4, 8): the paper's
    classifier shrunk until a CPU can train it (width 8: about 0.18 M parameters)."""
    from torchvision.models.resnet import BasicBlock, conv1x1

    layers: list[nn.Module] = [
        nn.Conv2d(channels, width, 3, padding=1, bias=False),
        nn.BatchNorm2d(width),
        nn.ReLU(inplace=True),
    ]
    c_in = width
    for stage in range(4):
        c_out = width * 2**stage
        for block in range(2):
            stride = 2 if stage > 0 and block == 0 else 1
            down = None
            if stride != 1 or c_in != c_out:
                down = nn.Sequential(conv1x1(c_in, c_out, stride), nn.BatchNorm2d(c_out))
            layers.append(BasicBlock(c_in, c_out, stride, down))
            c_in = c_out
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c_in, n_classes)]
    net = nn.Sequential(*layers)
    for m in net.modules():  # torchvision's ResNet initialisation
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
    return _Normalised(net)


def make_classifier(kind: str, channels: int, n_classes: int, side: int = 28) -> nn.Module:
    """``'cnn'`` (SmallCNN), ``'cnn-fc'`` (ConvFC), ``'mlp'`` (MLP), ``'resnet18'``
    (torchvision's, with a 3x3 stride-1 stem and no max-pool, the usual CIFAR-style stem for
    28x28 and 32x32 images) or ``'resnet18-wN'`` (the same layout at base width N, see
    :func:`narrow_resnet18`)."""
    if kind == "cnn":
        return SmallCNN(channels, n_classes)
    if kind == "cnn-fc":
        return ConvFC(channels, n_classes, side)
    if kind == "mlp":
        return MLP(channels * side * side, n_classes)
    if kind.startswith("resnet18-w"):
        return narrow_resnet18(channels, n_classes, int(kind.removeprefix("resnet18-w")))
    from torchvision.models import resnet18

    net = resnet18(num_classes=n_classes)
    net.conv1 = nn.Conv2d(channels, 64, 3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    return _Normalised(net)


# ---------------------------------------------------------------------- loss
def mixed_loss(logits, targets, targets2, lam: float, criterion: LogitAdjustedLoss | None):
    """``lam * loss(targets) + (1 - lam) * loss(targets2)``: the loss of mixup and CutMix
    with two label sets, each the library's :class:`~torch_deepsmote.LogitAdjustedLoss`
    (plain cross-entropy when ``criterion`` is None). ``lam`` 1 is the plain loss."""
    loss_of = criterion if criterion is not None else nn.functional.cross_entropy
    loss = loss_of(logits, targets)
    if lam < 1.0:
        loss = lam * loss + (1.0 - lam) * loss_of(logits, targets2)
    return loss


# ---------------------------------------------------------------------- data per method
def _balanced(data, labels, bs: int, seed: int) -> Iterator:
    sampler = cb.class_balanced_sampler(labels, torch.Generator().manual_seed(seed))
    return cb.endless(DataLoader(data, bs, sampler=sampler, drop_last=True))


def batches_for(method: str, ctx: dict, seed: int) -> Recipe:
    """The :class:`Recipe` of ``method``.

    ``ctx`` holds ``x``/``y`` (the training subset's tensors), ``batch_size``,
    ``n_classes``, ``steps`` and ``oversampled(seed, strategy, residual)`` (a factory for
    ``OversampledDataset``; the autoencoder is trained once and read from its cache after).
    """
    from imblearn.over_sampling import SMOTE, RandomOverSampler

    bs, n_classes, y = ctx["batch_size"], ctx["n_classes"], ctx["y"].numpy()
    info: dict = {}
    # The baselines read the subset's stacked tensors: the same items in the same order as
    # the torchvision Subset, without a PIL conversion per item (on a GPU that would be
    # slower than the ResNet-18 step).
    real = TensorDataset(ctx["x"], ctx["y"])
    natural_prior = cb.class_counts(y, n_classes)
    if method in ("none", "logit_adj"):
        return Recipe(
            cb.shuffled(real, bs, seed), natural_prior if method != "none" else None, info
        )
    if tau_of(method) is not None:
        return Recipe(cb.shuffled(real, bs, seed), natural_prior, info, tau=tau_of(method))
    if method == "cmo_la_sam":
        return batches_for("cmo_la", ctx, seed)._replace(sam_rho=SAM_RHO)
    if method == "mixup_la":
        mix = cb.Mixup(cb.MIXUP_ALPHA, seed)
        return Recipe(cb.shuffled(real, bs, seed), natural_prior, info, mix)
    if method == "cmo_la":
        minority = _balanced(real, y, bs, cb.child_seed(seed, 3))
        mix = cb.CMO(minority, ctx["steps"], cb.CMO_PROB, seed)
        return Recipe(cb.shuffled(real, bs, seed), natural_prior, info, mix)
    if method in ("oracle_cmo_la", "oracle_la"):
        x_pool, y_pool = ctx["pool"]()
        info["n_pool"] = len(y_pool)
        if method == "oracle_la":
            stream = _oracle_stream(real, x_pool, y_pool, bs, seed, class_power=1.0, share=0.3)
            return Recipe(stream, natural_prior, info)
        minority = _oracle_stream(real, x_pool, y_pool, bs, cb.child_seed(seed, 3))
        mix = cb.CMO(minority, ctx["steps"], cb.CMO_PROB, seed)
        return Recipe(cb.shuffled(real, bs, seed), natural_prior, info, mix)
    if method == "drw":
        switch = round(DRW_SWITCH * ctx["steps"])
        info["switch_step"] = switch
        later = _balanced(real, y, bs, cb.child_seed(seed, 3))
        return Recipe(cb.deferred(cb.shuffled(real, bs, seed), later, switch), None, info)
    if method == "ros":
        rows, _ = RandomOverSampler(random_state=seed).fit_resample(
            np.arange(len(y)).reshape(-1, 1), y
        )
        data = torch.utils.data.Subset(real, rows.ravel().tolist())
        info["n_train"] = len(data)
        return Recipe(cb.shuffled(data, bs, seed), None, info)
    if method == "weighted":
        return Recipe(_balanced(real, y, bs, seed), None, info)
    if method == "smote":
        x = ctx["x"]
        k = int(min(5, np.bincount(y).min() - 1))  # imbalanced-learn needs k < smallest class
        x_res, y_res = SMOTE(k_neighbors=k, random_state=seed).fit_resample(
            x.reshape(len(x), -1).numpy(), y
        )
        data = TensorDataset(
            torch.from_numpy(x_res).reshape(-1, *x.shape[1:]), torch.from_numpy(y_res)
        )
        info["n_train"] = len(data)
        return Recipe(cb.shuffled(data, bs, seed), None, info)
    if cd.is_recipe(method):  # issue 12's recipes: library sampler + matched loss
        return cd.recipe(method, ctx, seed)
    if method in DEEPSMOTE_METHODS:
        return _deepsmote_batches(method, ctx, seed, info)
    raise ValueError(f"`method` should be one of {METHODS}, but got method={method!r}.")


def _deepsmote_batches(method, ctx, seed, info) -> Recipe:
    from torch_deepsmote import DeepSMOTESampler

    bs, n_classes = ctx["batch_size"], ctx["n_classes"]
    strategy = None
    if method.endswith("_la"):  # partial balance: every class up to a share of the largest
        counts = np.bincount(ctx["y"].numpy(), minlength=n_classes)
        target = math.ceil(ctx["la_balance"] * counts.max())
        strategy = {c: int(max(n, target)) for c, n in enumerate(counts)}
    start = time.perf_counter()
    balanced = ctx["oversampled"](seed, strategy, residual="residual" in method)
    info.update(n_train=len(balanced), n_synthetic=balanced.n_synthetic)
    if method.endswith("_fresh"):
        sampler = DeepSMOTESampler(balanced, seed=seed)
        loader = DataLoader(balanced, batch_size=bs, sampler=sampler, drop_last=True)
        info["setup_seconds"] = time.perf_counter() - start
        return Recipe(cb.endless(loader, sampler.set_epoch), None, info)
    # The paper's fixed set: the synthetic items never change without set_epoch, so they
    # are read through the DataLoader once (one decoder call per 512 items) and kept,
    # instead of being decoded again in every epoch.
    x, y = _read_all(balanced)
    info["setup_seconds"] = time.perf_counter() - start
    prior = cb.class_counts(y.numpy(), n_classes) if method.endswith("_la") else None
    data = TensorDataset(x, y)
    if method.endswith("_mix"):
        gen = torch.Generator().manual_seed(seed)
        # Every class equally often, half of its draws real, half synthetic (a class
        # without synthetic items: all real): random oversampling plus DeepSMOTE.
        synthetic, ones = torch.arange(len(y)) >= balanced.n_real, torch.ones(n_classes)
        half_real = cb.prior_weights(y, synthetic, ones.double(), 0.5)
        # The committed runs computed these weights in float32 (0.5 / a count tensor):
        # rounded the same, they draw the same items.
        half_real = half_real.float().double()
        sampler = WeightedRandomSampler(half_real, len(data), generator=gen)
        return Recipe(
            cb.endless(DataLoader(data, bs, sampler=sampler, drop_last=True)), prior, info
        )
    return Recipe(cb.shuffled(data, bs, seed), prior, info)


def _oracle_stream(
    real: TensorDataset, x_pool, y_pool, bs: int, seed: int, class_power=0.0, share=0.5
) -> Iterator:
    """A dsp recipe's stream (``ClassPriorSampler(class_power, synthetic_share=share)``)
    with unseen real images in place of synthetic ones: class ``c`` drawn with probability
    ``∝ n_c ** class_power``, ``share`` of its draws from the pool (none of the largest
    class's, which has no synthetic images there), the rest the subset's own images."""
    x_real, y_real = real.tensors
    largest = torch.bincount(y_real).argmax()
    keep = y_pool != largest
    y_all = torch.cat([y_real, y_pool[keep]])
    unseen = torch.arange(len(y_all)) >= len(y_real)
    prior = class_prior(torch.bincount(y_real), class_power)
    weights = cb.prior_weights(y_all, unseen, prior, share)
    data = TensorDataset(torch.cat([x_real, x_pool[keep]]), y_all)
    gen = torch.Generator().manual_seed(seed)
    sampler = WeightedRandomSampler(weights, len(y_real), replacement=True, generator=gen)
    return cb.endless(DataLoader(data, bs, sampler=sampler, drop_last=True))


def _read_all(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = [], []
    for x, y in DataLoader(dataset, batch_size=512, shuffle=False):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    return torch.cat(xs), torch.cat(ys).long()


# ---------------------------------------------------------------------- training
def _autocast(device: torch.device):
    """bf16 autocast on CUDA (ResNet-18's convolutions on tensor cores), none on CPU, where
    this machine has no bf16 instructions. Every method gets the same precision."""
    use = device.type == "cuda" and torch.cuda.is_bf16_supported()
    return torch.autocast(device.type, dtype=torch.bfloat16, enabled=use)


def _to(t, device: torch.device) -> torch.Tensor:
    """``t`` on ``device``; on CUDA through pinned memory, so that the copy does not wait
    for the GPU to finish the previous step."""
    t = torch.as_tensor(t)
    if device.type != "cuda":
        return t
    return t.pin_memory().to(device, non_blocking=True)


def train_classifier(
    model,
    recipe: Recipe,
    *,
    steps: int,
    lr: float,
    device,
    augment: Callable | None = None,
    loss_every: int = 100,
) -> dict:
    """``steps`` AdamW steps with a cosine learning-rate decay on ``recipe``'s batches.

    Each batch is augmented by ``augment`` (every method alike, synthetic images as real
    ones), then mixed by ``recipe.mix`` where the method mixes.

    Returns:
        Timing, the last step's loss and ``loss_curve``: the mean training loss of each
        run of ``loss_every`` steps (the loss the method optimises, mixing included).
    """
    device = torch.device(device)
    # channels_last: the layout that bf16 convolutions on tensor cores prefer.
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    model.to(device, memory_format=layout).train()
    # A recipe's prior may change during training (a deferred ClassPriorSampler): then it is
    # a callable, read after each batch and moved to the device only when it changes.
    source = recipe.prior if callable(recipe.prior) else (lambda: recipe.prior)
    criterion, moved = None, None
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: 0.5 * (1 + math.cos(math.pi * s / steps))
    )
    start, data_seconds = time.perf_counter(), 0.0
    curve, running = [], torch.zeros((), device=device)
    for step in range(steps):
        t = time.perf_counter()
        x, y = next(recipe.batches)
        if source() is not moved:
            moved = source()
            criterion = (
                None if moved is None else LogitAdjustedLoss(moved, tau=recipe.tau).to(device)
            )
        if augment is not None:
            x = augment(x)
        y2, lam = y, 1.0
        if recipe.mix is not None:
            x, y2, lam = recipe.mix(x, y, step, augment)
        data_seconds += time.perf_counter() - t
        x, y, y2 = _to(x, device).contiguous(memory_format=layout), _to(y, device), _to(y2, device)
        with _autocast(device):
            logits = model(x)
        loss = mixed_loss(logits.float(), y, y2, lam, criterion)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if recipe.sam_rho > 0:
            _sam_ascent(model, x, y, y2, lam, criterion, recipe.sam_rho)
        optimizer.step()
        schedule.step()
        # Summed on the device and read every loss_every steps: no sync per step on CUDA.
        running += loss.detach()
        if (step + 1) % loss_every == 0 or step + 1 == steps:
            curve.append(float(running) / ((step % loss_every) + 1))
            running.zero_()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return {
        "train_seconds": time.perf_counter() - start,
        "data_seconds": data_seconds,
        "final_loss": float(loss.detach()),
        "loss_every": loss_every,
        "loss_curve": curve,
    }


def _sam_ascent(model, x, y, y2, lam, criterion, rho: float) -> None:
    """Sharpness-aware minimisation's gradient (Foret et al., ICLR 2021; the two steps of
    val-iisc/Saddle-LongTail's ``sam.py``): from the gradient ``g`` that ``.grad`` holds,
    move the weights to ``w + rho g / ||g||``, take the same batch's gradient there into
    ``.grad``, and move back to ``w``, so that the optimiser's step uses it."""
    params = [p for p in model.parameters() if p.grad is not None]
    with torch.no_grad():
        norm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in params]))
        scale = rho / (norm + 1e-12)
        old = [p.detach().clone() for p in params]
        for p in params:
            p.add_(p.grad * scale)
    model.zero_grad(set_to_none=True)
    with _autocast(x.device):
        logits = model(x)
    mixed_loss(logits.float(), y, y2, lam, criterion).backward()
    with torch.no_grad():  # back to w exactly, not w + e - e
        for p, w in zip(params, old):
            p.copy_(w)


@torch.inference_mode()
def training_fit(model, x: torch.Tensor, y: torch.Tensor, device, batch_size: int = 1000) -> dict:
    """Plain cross-entropy and ACSA of ``model`` on the real training images, unaugmented:
    how far the classifier fits (memorises) its training set, comparable across methods."""
    model.eval()
    chunks = [x[i : i + batch_size].to(device) for i in range(0, len(x), batch_size)]
    logits = torch.cat([model(c).float().cpu() for c in chunks])
    return {
        "ce": float(nn.functional.cross_entropy(logits, y)),
        "acsa": evaluate(y.numpy(), logits.argmax(1).numpy())["acsa"],
    }


@torch.inference_mode()
def predict(model, x: torch.Tensor, device, batch_size: int = 1000) -> np.ndarray:
    # fp32, not autocast: bf16 logits tie often enough to tilt argmax to low class indices,
    # which are the majority classes here.
    model.eval()
    out = [
        model(x[i : i + batch_size].to(device)).argmax(1).cpu()
        for i in range(0, len(x), batch_size)
    ]
    return torch.cat(out).numpy()


def save_classifier(model: nn.Module, path) -> None:
    """Write ``model``'s state_dict (on the CPU, float32 as trained) to ``path``, atomically:
    what a head refit on the classifier's features reads back with :func:`load_classifier`."""
    import io

    from torch_deepsmote.storage.atomic import write_bytes

    buffer = io.BytesIO()
    torch.save({k: v.detach().cpu() for k, v in model.state_dict().items()}, buffer)
    write_bytes(path, buffer.getvalue())


def load_classifier(path, kind: str, channels: int, n_classes: int, side: int = 28) -> nn.Module:
    """The classifier ``kind`` (:func:`make_classifier`) with the weights saved at ``path``,
    in eval mode on the CPU."""
    model = make_classifier(kind, channels, n_classes, side)
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def evaluate(y_true, y_pred) -> dict:
    """ACSA, macro GM and macro F1 (x100) from scikit-learn and imbalanced-learn, and the
    recall of each class (x100; ACSA is their mean): which classes a method wins or loses."""
    from imblearn.metrics import geometric_mean_score
    from sklearn.metrics import balanced_accuracy_score, f1_score, recall_score

    return {
        "acsa": 100 * balanced_accuracy_score(y_true, y_pred),
        "gm": 100 * geometric_mean_score(y_true, y_pred, average="macro"),
        "f1": 100 * f1_score(y_true, y_pred, average="macro"),
        "recall": [100 * float(r) for r in recall_score(y_true, y_pred, average=None)],
    }
