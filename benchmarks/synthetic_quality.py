"""Are the synthetic images right, varied and hard? Per-class diagnostics for issue 12.

    python -m benchmarks.synthetic_quality --quick                    # minutes, tiny settings
    python -m benchmarks.synthetic_quality --variants smote,enemy,transfer,smote-k20,smote-bl
    python -m benchmarks.synthetic_quality --variants smote-x1.5 --resume  # adds a variant

For one training subset (the paper's Table I counts of Fashion-MNIST), one autoencoder
(the classify.py protocol's settings, loaded from its cache when ``--cache-dir`` points
there) and each DeepSMOTE variant (interpolation, ``k_neighbors``, ``lam_range``,
``base_selection``):

- GAN-test (Shmelkov, Schmid and Alahari, "How good is my GAN?", ECCV 2018): the accuracy
  of a reference classifier, trained on all 60,000 real training images, on the synthetic
  images of each class; beside it the same on the class's real training images (their
  parents). Low: wrong or unrealistic images. Also the reference's mean probability of the
  true class ("confidence"): near 1, the images are easy, far from where a classifier errs.
- GAN-train (ibid.): a classifier trained only on synthetic images (the same number for
  every class, drawn from each class's own codes), tested on the real balanced test set,
  per class; beside it the same classifier trained on as many real images drawn with
  repetition from the subset (random oversampling). Synthetic above real: the synthetic
  images carry variety that the few real ones lack.
- Near copies: each synthetic image's distance to its nearest real image of its class
  (RMS over pixels in [0, 1]), against the real images' own leave-one-out distances; the
  share below a tenth of the real median is flagged as near copies.
- Label fidelity in latent space: the share of synthetic codes whose nearest real code is
  of another class.
- Variety in the reference classifier's feature space (its last layer's input): precision,
  recall, density and coverage (:func:`torch_deepsmote.quality.prdc`) of each class's
  synthetic images against its real ones, beside the same for as many *unseen* real images
  of the class (the training split outside the subset): what new real images would bring.

Writes ``results.json`` (every number) and prints a table per variant.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from benchmarks import classify_batches as cb
from benchmarks import classify_methods as cm
from benchmarks import imbalanced_data as data
from torch_deepsmote import OversampledDataset
from torch_deepsmote.quality import nearest, prdc

QUICK = dict(count_scale=0.1, ae_epochs=1, hidden=8, latent_dim=32, ref_steps=150, steps=100)
FULL = dict(count_scale=1.0, ae_epochs=10, hidden=32, latent_dim=None, ref_steps=3000, steps=1500)


def parse_variant(text: str) -> dict:
    """``smote``, ``enemy``, ``transfer``, with ``-k20`` (k_neighbors), ``-x1.5``
    (lam_range (0, 1.5)) and ``-bl`` (base_selection 'borderline') suffixes, e.g.
    ``smote-k20-x1.5``."""
    name, *options = text.split("-")
    variant = {"interpolation": name}
    for option in options:
        if option == "bl":
            variant["base_selection"] = "borderline"
        elif option.startswith("k"):
            variant["k_neighbors"] = int(option[1:])
        elif option.startswith("x"):
            variant["lam_range"] = (0.0, float(option[1:]))
        else:
            raise ValueError(f"unknown variant option {option!r} in {text!r}")
    return variant


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true")
    p.add_argument("--variants", default="smote,enemy,transfer,smote-k20,smote-x1.5")
    p.add_argument("--data-seed", type=int, default=0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-per-class", type=int, default=1000, help="synthetic images per class")
    p.add_argument("--classifier", default="cnn-fc")
    p.add_argument("--cache-dir", default=None, help="autoencoder cache (classify.py's)")
    p.add_argument("--work", default="/tmp/deepsmote-bench")
    p.add_argument("--out", default=None)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument(
        "--resume",
        action="store_true",
        help="keep the variants of an earlier results.json in --out (same settings) and "
        "add the others",
    )
    for key in FULL:
        p.add_argument("--" + key.replace("_", "-"), type=type(FULL[key] or 0), default=None)
    args = p.parse_args(argv)
    for key, value in (QUICK if args.quick else FULL).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    here = Path(__file__).resolve().parent
    args.out = Path(args.out or here / "results" / ("quality-quick" if args.quick else "quality"))
    args.work = Path(args.work)
    args.variants = [parse_variant(v) | {"name": v} for v in args.variants.split(",") if v]
    return args


def train(images, labels, args, seed: int, steps: int) -> torch.nn.Module:
    """The protocol's classifier, optimiser and augmentation on these images, plain CE."""
    gen = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        TensorDataset(images, labels), 128, shuffle=True, generator=gen, drop_last=True
    )

    def endless():
        while True:
            yield from loader

    torch.manual_seed(seed)
    model = cm.make_classifier(args.classifier, images.shape[1], 10, images.shape[-1])
    recipe = cb.Recipe(endless(), None, {})
    augment = cb.make_augment("crop-flip", images.shape[-1], cb.child_seed(seed, 1))
    cm.train_classifier(model, recipe, steps=steps, lr=1e-3, device="cpu", augment=augment)
    return model.eval()


@torch.inference_mode()
def probabilities(model, x: torch.Tensor) -> torch.Tensor:
    return torch.cat([model(x[i : i + 1000]).softmax(1) for i in range(0, len(x), 1000)])


@torch.no_grad()
def penultimate(model: torch.nn.Module, x: torch.Tensor, batch: int = 1000) -> torch.Tensor:
    """(n, F) the input of ``model``'s last linear layer: the features it classifies."""
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    seen: list = []
    hook = last.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
    try:
        model.eval()
        for i in range(0, len(x), batch):
            model(x[i : i + batch])
    finally:
        hook.remove()
    return torch.cat(seen).flatten(1)


def variety(features: torch.Tensor, labels, real: torch.Tensor, real_labels) -> dict:
    """Per class (0..9) precision, recall, density and coverage of ``features`` against
    ``real`` (``None`` where a class has 5 rows or fewer)."""
    scores = [prdc(real[real_labels == c], features[labels == c]) for c in range(10)]
    return {
        key: [None if s is None else s[key] for s in scores]
        for key in ("precision", "recall", "density", "coverage")
    }


def _mean(values: list) -> float:
    return float(np.mean([v for v in values if v is not None]))


def per_class(values: torch.Tensor, labels: torch.Tensor) -> list[float]:
    return [float(values[labels == c].float().mean()) for c in range(10)]


def nearest_rms(a: torch.Tensor, b: torch.Tensor, exclude_self: bool = False) -> torch.Tensor:
    """RMS pixel distance from each image of ``a`` (n, D) to its nearest one of ``b``
    (``b`` is ``a`` and each image's own row is left out when ``exclude_self``)."""
    distances, _ = nearest(a, b, exclude=torch.arange(len(a)) if exclude_self else None)
    return distances / a.shape[1] ** 0.5


# Settings that change the numbers: a resumed run must match the earlier one in all of them.
_SAME = ("data_seed", "seed", "n_per_class", "classifier", "cache_dir", *FULL)


def resumed(args, config: dict) -> list[dict]:
    """The variant records of ``--out``'s results.json under ``--resume`` (empty without
    it, or without a file); refuses an earlier run made with other settings."""
    path = args.out / "results.json"
    if not args.resume or not path.exists():
        return []
    before = json.loads(path.read_text())
    differ = [k for k in _SAME if before["config"].get(k) != config.get(k)]
    if differ:
        raise SystemExit(
            f"--resume: {path} was made with other settings ({', '.join(differ)}); "
            "pass another --out or drop --resume"
        )
    return before["variants"]


def reference_classifier(x_full, y_full, args) -> torch.nn.Module:
    """The GAN-test reference, trained on every real training image; kept in ``--work``
    so that a resumed or repeated run does not train it again (its training is seeded)."""
    path = args.work / f"quality-reference-{args.classifier}-s{args.seed}-{args.ref_steps}.pt"
    model = cm.make_classifier(args.classifier, x_full.shape[1], 10, x_full.shape[-1])
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    print(f"reference classifier: {len(x_full)} real images, {args.ref_steps} steps", flush=True)
    model = train(x_full, y_full, args, args.seed, args.ref_steps)
    torch.save(model.state_dict(), path)
    return model


def main(argv=None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    args.out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    train_full = data.load_split("fashion-mnist", None, True, args.work)
    test_full = data.load_split("fashion-mnist", None, False, args.work)
    x_full, y_full = data.as_tensors(train_full)
    counts = data.scale(data.PAPER_COUNTS["fashion-mnist"][0], args.count_scale)
    taken = data.take(data.labels_of(train_full), counts, args.data_seed)
    subset = data.subset(train_full, taken)
    x_real, y_real = data.as_tensors(subset)
    y_test = data.labels_of(test_full)
    cap = max(10, round(1000 * min(1.0, args.count_scale)))
    x_test, y_test = data.as_tensors(
        data.subset(test_full, data.take(y_test, data.balanced_counts(y_test, cap=cap), 0))
    )
    n = max(10, round(args.n_per_class * min(1.0, args.count_scale * 10)))

    config = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}
    earlier = resumed(args, config)
    reference = reference_classifier(x_full, y_full, args)
    ref_test = float((probabilities(reference, x_test).argmax(1) == y_test).float().mean())
    ref_real = probabilities(reference, x_real)
    report = {
        "config": config,
        "counts": list(counts),
        "reference_test_accuracy": 100 * ref_test,
        "real": {
            "gan_test": per_class(100 * (ref_real.argmax(1) == y_real), y_real),
            "confidence": per_class(ref_real[torch.arange(len(y_real)), y_real], y_real),
        },
        "variants": [],
    }
    # Random oversampling of the real subset: the GAN-train reference.
    gen = torch.Generator().manual_seed(args.seed)
    rows = torch.cat(
        [
            torch.nonzero(y_real == c).flatten()[torch.randint(counts[c], (n,), generator=gen)]
            for c in range(10)
        ]
    )
    ros = train(x_real[rows], y_real[rows], args, args.seed, args.steps)
    report["real"]["gan_train"] = per_class(
        100 * (probabilities(ros, x_test).argmax(1) == y_test), y_test
    )
    # Variety of unseen real images (outside the subset), n per class: the yardstick.
    ref_features = penultimate(reference, x_real)
    unseen_rows = torch.ones(len(y_full), dtype=torch.bool)
    unseen_rows[torch.as_tensor(list(taken))] = False
    unseen_rows = torch.nonzero(unseen_rows).flatten()
    pick = torch.cat([unseen_rows[y_full[unseen_rows] == c][:n] for c in range(10)])
    report["real"]["unseen_variety"] = variety(
        penultimate(reference, x_full[pick]), y_full[pick], ref_features, y_real
    )
    real_flat = x_real.flatten(1)
    loo = torch.cat(
        [nearest_rms(real_flat[y_real == c], real_flat[y_real == c], True) for c in range(10)]
    )
    report["real"]["nearest_real_rms_median"] = float(loo.median())

    cache_dir = args.cache_dir or args.work / "quality-autoencoder" / f"seed{args.data_seed}"
    done = {record["variant"]: record for record in earlier}
    report["variants"] = [done[v["name"]] for v in args.variants if v["name"] in done]
    report["variants"] += [r for name, r in done.items() if r not in report["variants"]]
    for variant in args.variants:
        if variant["name"] in done:
            print(f"{variant['name']:16s} kept from the earlier results.json", flush=True)
            continue
        options = {k: v for k, v in variant.items() if k != "name"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            ds = OversampledDataset(
                subset,
                cache_dir=cache_dir,
                random_state=args.data_seed,
                max_epochs=args.ae_epochs,
                lr=1e-3,
                patience=0,
                hidden_channels=args.hidden,
                latent_dim=args.latent_dim,
                progress=False,
                **options,
            )
        synth = ds.synthesizer
        plan = synth.plan({c: n for c in range(10)}, torch.Generator().manual_seed(args.seed))
        images = synth.images(plan).float() / 255  # uint8 items -> ToTensor's [0, 1]
        labels = plan.labels
        probs = probabilities(reference, images)
        gan_train = train(images, labels, args, args.seed, args.steps)
        recall = 100 * (probabilities(gan_train, x_test).argmax(1) == y_test)
        flat = images.flatten(1)
        near = torch.cat(
            [nearest_rms(flat[labels == c], real_flat[y_real == c]) for c in range(10)]
        )
        near_labels = torch.cat([labels[labels == c] for c in range(10)])
        codes = synth.codes(plan)
        nearest_code = torch.cdist(codes, synth.latents).argmin(1)
        record = {
            "variant": variant["name"],
            "options": {k: list(v) if isinstance(v, tuple) else v for k, v in options.items()},
            "gan_test": per_class(100 * (probs.argmax(1) == labels), labels),
            "confidence": per_class(probs[torch.arange(len(labels)), labels], labels),
            "gan_train": per_class(recall, y_test),
            "nearest_real_rms": per_class(near, near_labels),
            "near_copies": per_class(near < 0.1 * loo.median(), near_labels),
            "latent_label_flip": per_class(synth.labels[nearest_code] != labels, labels),
            "variety": variety(penultimate(reference, images), labels, ref_features, y_real),
        }
        report["variants"].append(record)
        print(
            f"{variant['name']:16s} GAN-test {np.mean(record['gan_test']):5.1f} "
            f"(real {np.mean(report['real']['gan_test']):5.1f})  "
            f"confidence {np.mean(record['confidence']):.3f}  "
            f"GAN-train {np.mean(record['gan_train']):5.1f} "
            f"(ROS {np.mean(report['real']['gan_train']):5.1f})  "
            f"latent flips {100 * np.mean(record['latent_label_flip']):.1f}%  "
            f"coverage {_mean(record['variety']['coverage']):.3f} "
            f"(unseen real {_mean(report['real']['unseen_variety']['coverage']):.3f})  "
            f"density {_mean(record['variety']['density']):.2f} "
            f"(unseen real {_mean(report['real']['unseen_variety']['density']):.2f})",
            flush=True,
        )
        report["seconds"] = time.perf_counter() - start
        (args.out / "results.json").write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
