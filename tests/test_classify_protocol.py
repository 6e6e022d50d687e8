"""benchmarks/classify*.py, issue 12's protocol: augmentation, the long-tail baselines' batch
and loss code, the training loop's loss curve, the settings list and the paired report."""

from __future__ import annotations

import hashlib
import math

import numpy as np
import pytest
import torch

from benchmarks import classify_batches as cb
from benchmarks import classify_methods as cm
from torch_deepsmote import LogitAdjustedLoss


def _ctx(counts=(90, 10), steps=40, bs=10, side=4):
    y = torch.cat([torch.full((n,), c) for c, n in enumerate(counts)])
    # Each image holds its own label in every pixel, so batches can be traced back.
    x = y.float()[:, None, None, None].expand(-1, 1, side, side).clone()
    return {"x": x, "y": y, "batch_size": bs, "n_classes": len(counts), "steps": steps}


# ---------------------------------------------------------------------- augmentation
def test_crop_flip_moves_each_image_by_at_most_the_pad():
    x = torch.zeros(200, 1, 28, 28)
    x[:, 0, 10, 5] = 1.0  # one bright pixel, away from the centre column
    out = cb.CropFlip(pad=2, flip=True, seed=0)(x)
    assert out.shape == x.shape
    rows, cols = [], []
    for img in out[:, 0]:
        r, c = (img == 1).nonzero().tolist()[0]
        assert (img == 1).sum() == 1 and img.sum() == 1  # moved, nothing else changed
        rows.append(r)
        cols.append(c)
    assert set(rows) == set(range(8, 13))  # 10 +- 2, every offset used
    left, mirrored = {c for c in cols if c < 14}, {c for c in cols if c >= 14}
    assert left == set(range(3, 8)) and mirrored == set(range(20, 25))  # 27 - (5 +- 2)


def test_crop_flip_is_seeded_and_off_without_pad_or_flip():
    x = torch.rand(16, 3, 8, 8)
    a, b = cb.CropFlip(2, True, seed=3)(x), cb.CropFlip(2, True, seed=3)(x)
    assert torch.equal(a, b)
    assert not torch.equal(a, cb.CropFlip(2, True, seed=4)(x))
    assert torch.equal(cb.CropFlip(0, False, seed=0)(x), x)


def test_make_augment_picks_the_pad_by_image_size_and_can_be_off():
    assert cb.make_augment("none", 28, 0) is None
    assert cb.make_augment("crop-flip", 28, 0).pad == 2
    assert cb.make_augment("crop-flip", 32, 0).pad == 4
    assert not cb.make_augment("crop", 28, 0).flip
    with pytest.raises(ValueError, match="augment"):
        cb.make_augment("rotate", 28, 0)


# ---------------------------------------------------------------------- samplers
def test_class_balanced_sampler_draws_every_class_equally_often():
    labels = np.repeat([0, 1, 2], [400, 40, 4])
    gen = torch.Generator().manual_seed(0)
    draws = np.concatenate(
        [labels[list(cb.class_balanced_sampler(labels, gen))] for _ in range(60)]
    )
    freq = np.bincount(draws, minlength=3) / len(draws)
    np.testing.assert_allclose(freq, 1 / 3, atol=0.015)


def test_deferred_switches_at_the_given_step_and_starts_the_second_stream_late():
    started = []

    def later():
        started.append(True)
        while True:
            yield "balanced"

    stream = cb.deferred(iter(["natural"] * 100), later(), switch_at=75)
    got = [next(stream) for _ in range(80)]
    assert got == ["natural"] * 75 + ["balanced"] * 5
    assert started == [True]


def test_drw_trains_on_natural_batches_then_balanced_ones_for_the_last_quarter():
    ctx = _ctx(steps=40)
    recipe = cm.batches_for("drw", ctx, seed=0)
    assert recipe.info["switch_step"] == 30 and recipe.prior is None and recipe.mix is None
    first = torch.cat([next(recipe.batches)[1] for _ in range(30)])
    # Natural shuffling, 3 whole epochs of the 100 items: exactly 10 % minority.
    assert (first == 1).float().mean() == pytest.approx(0.1)
    later = torch.cat([next(recipe.batches)[1] for _ in range(300)])
    assert (later == 1).float().mean() == pytest.approx(0.5, abs=0.04)


# ---------------------------------------------------------------------- mixing
def test_mixup_mixes_images_and_targets_with_one_lambda():
    ctx = _ctx(counts=(5, 5, 5))
    x, y = ctx["x"], ctx["y"]
    mixed, y2, lam = cb.Mixup(alpha=1.0, seed=0)(x, y, step=0)
    assert 0.0 <= lam <= 1.0 and sorted(y2.tolist()) == sorted(y.tolist())
    expected = lam * y.float() + (1 - lam) * y2.float()
    assert torch.allclose(mixed[:, 0, 0, 0], expected)
    again = cb.Mixup(alpha=1.0, seed=0)(x, y, step=0)
    assert torch.equal(again[0], mixed) and again[2] == lam


def test_cutmix_box_stays_inside_the_image_and_covers_one_minus_lambda():
    rng = np.random.default_rng(0)
    for lam in np.linspace(0, 1, 21):
        top, bottom, left, right = cb.cutmix_box(28, 28, float(lam), rng)
        assert 0 <= top <= bottom <= 28 and 0 <= left <= right <= 28
        # Clipping only shrinks the box.
        assert (bottom - top) * (right - left) <= 28 * 28 * (1 - lam) + 2 * 28


def test_cmo_pastes_minority_boxes_with_area_weighted_targets():
    bs = 32
    background = torch.zeros(bs, 1, 28, 28)
    y = torch.zeros(bs, dtype=torch.long)

    def minority():
        while True:
            yield torch.ones(bs + 8, 1, 28, 28), torch.full((bs + 8,), 9)

    cmo = cb.CMO(minority(), steps=1000, prob=1.0, seed=0, off=0.015)
    pasted = 0
    for step in range(15, 200):
        x, y2, lam = cmo(background, y, step)
        share = x.mean(dim=(1, 2, 3))  # the pasted pixels are the ones
        assert torch.allclose(share, torch.full((bs,), 1 - lam))  # one box for the batch
        assert len(y2) == bs and (y2 == 9).all()
        assert lam + (1 - lam) == 1.0 and 0.0 <= lam <= 1.0
        pasted += lam < 1
    assert pasted > 150
    assert background.sum() == 0  # the input batch is not modified in place


def test_cmo_is_off_at_the_start_and_end_and_pastes_with_its_probability():
    def minority():
        while True:
            yield torch.ones(4, 1, 8, 8), torch.full((4,), 1)

    x, y = torch.zeros(4, 1, 8, 8), torch.zeros(4, dtype=torch.long)
    cmo = cb.CMO(minority(), steps=1000, prob=0.5, seed=0)
    for step in [*range(15), *range(985, 1000)]:
        out, y2, lam = cmo(x, y, step)
        assert lam == 1.0 and out is x and y2 is y
    coins = [cmo(x, y, step)[1] is not y for step in range(15, 985)]
    assert np.mean(coins) == pytest.approx(0.5, abs=0.06)


def test_cmo_minority_loader_draws_classes_uniformly_and_the_loss_uses_the_natural_prior():
    ctx = _ctx(counts=(80, 15, 5), steps=100)
    recipe = cm.batches_for("cmo_la", ctx, seed=0)
    assert isinstance(recipe.mix, cb.CMO)
    torch.testing.assert_close(
        recipe.prior / recipe.prior.sum(), torch.tensor([0.8, 0.15, 0.05], dtype=torch.float64)
    )
    drawn = torch.cat([next(recipe.mix.minority)[1] for _ in range(300)])
    freq = torch.bincount(drawn, minlength=3).float() / len(drawn)
    torch.testing.assert_close(freq, torch.full((3,), 1 / 3), atol=0.03, rtol=0)


def test_oracle_stream_draws_classes_uniformly_half_from_unseen_images_but_the_largest():
    ctx = _ctx(counts=(80, 15, 5), steps=100)
    # The pool's images are marked by 10 + label, so a draw names where it came from.
    y_pool = torch.tensor([0] * 50 + [1] * 40 + [2] * 30)
    x_pool = (10 + y_pool).float()[:, None, None, None].expand(-1, 1, 4, 4).clone()
    ctx["pool"] = lambda: (x_pool, y_pool)
    recipe = cm.batches_for("oracle_cmo_la", ctx, seed=0)
    assert isinstance(recipe.mix, cb.CMO) and recipe.info["n_pool"] == 120
    torch.testing.assert_close(
        recipe.prior / recipe.prior.sum(), torch.tensor([0.8, 0.15, 0.05], dtype=torch.float64)
    )
    draws = [next(recipe.mix.minority) for _ in range(400)]
    x, y = torch.cat([d[0] for d in draws]), torch.cat([d[1] for d in draws])
    freq = torch.bincount(y, minlength=3).float() / len(y)
    torch.testing.assert_close(freq, torch.full((3,), 1 / 3), atol=0.03, rtol=0)
    unseen = x[:, 0, 0, 0] >= 10
    assert not unseen[y == 0].any()  # the largest class has no "synthetic" share
    for c in (1, 2):
        assert unseen[y == c].float().mean() == pytest.approx(0.5, abs=0.05)
    again = torch.cat([next(cm.batches_for("oracle_cmo_la", ctx, 0).mix.minority)[1]])
    assert torch.equal(again, draws[0][1])  # seeded
    # oracle_la: natural class rates, 30 % of each smaller class's draws unseen.
    recipe = cm.batches_for("oracle_la", ctx, seed=0)
    assert recipe.mix is None
    draws = [next(recipe.batches) for _ in range(400)]
    x, y = torch.cat([d[0] for d in draws]), torch.cat([d[1] for d in draws])
    freq = torch.bincount(y, minlength=3).float() / len(y)
    torch.testing.assert_close(freq, torch.tensor([0.8, 0.15, 0.05]), atol=0.02, rtol=0)
    unseen = x[:, 0, 0, 0] >= 10
    assert not unseen[y == 0].any()
    for c in (1, 2):
        assert unseen[y == c].float().mean() == pytest.approx(0.3, abs=0.06)


def test_mixed_loss_weights_the_two_targets_by_lambda():
    logits = torch.randn(6, 4)
    y, y2 = torch.tensor([0, 1, 2, 3, 0, 1]), torch.tensor([3, 3, 3, 3, 2, 2])
    prior = torch.tensor([0.7, 0.2, 0.05, 0.05])
    ce = torch.nn.functional.cross_entropy
    assert torch.allclose(cm.mixed_loss(logits, y, y2, 1.0, None), ce(logits, y))
    adjusted = logits + prior.log()
    expected = 0.3 * ce(adjusted, y) + 0.7 * ce(adjusted, y2)
    criterion = LogitAdjustedLoss(prior)
    assert torch.allclose(cm.mixed_loss(logits, y, y2, 0.3, criterion), expected)


# ---------------------------------------------------------------------- training loop
def test_training_records_a_loss_curve_and_is_reproducible():
    ctx = _ctx(counts=(30, 10), side=8)

    def train(seed):
        recipe = cm.batches_for("mixup_la", ctx, seed)
        torch.manual_seed(seed)
        model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 2))
        aug = cb.make_augment("crop-flip", 8, seed)
        out = cm.train_classifier(
            model, recipe, steps=25, lr=1e-2, device="cpu", augment=aug, loss_every=10
        )
        return out, model

    out, model = train(0)
    assert out["loss_every"] == 10 and len(out["loss_curve"]) == math.ceil(25 / 10)
    assert all(math.isfinite(v) and v > 0 for v in out["loss_curve"])
    again, model2 = train(0)
    assert again["loss_curve"] == out["loss_curve"]
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), model2.parameters()))
    fit = cm.training_fit(model, ctx["x"], ctx["y"], "cpu")
    assert fit["ce"] > 0 and 0 <= fit["acsa"] <= 100


def test_every_new_baseline_gives_batches_of_the_batch_size():
    ctx = _ctx()
    for method in ("none", "logit_adj", "mixup_la", "cmo_la", "drw", "weighted", "ros"):
        recipe = cm.batches_for(method, ctx, seed=0)
        x, y = next(recipe.batches)
        assert x.shape == (10, 1, 4, 4) and y.shape == (10,)
        assert (recipe.prior is None) == (method in ("none", "drw", "weighted", "ros"))


def test_conv_fc_has_the_textbook_size():
    model = cm.make_classifier("cnn-fc", 1, 10, 28)
    assert sum(p.numel() for p in model.parameters()) == 421_642
    assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)


# ---------------------------------------------------------------------- settings
def test_autoencoder_cache_keeps_the_folder_name_of_earlier_runs():
    from benchmarks import classify

    args = classify.parse_args(["--device", "cpu", "--preset", "cpu"])
    counts = (4000, 2000, 1000, 750, 500, 350, 200, 100, 60, 40)
    key = classify.autoencoder_key(classify.settings(args, counts))
    # The folder benchmarks/results/short-budget-resnet8/results.json names for these settings.
    assert hashlib.sha256(key.encode()).hexdigest()[:10] == "2a1f1c930b"
    # Classifier settings do not retrain the autoencoder; autoencoder settings do.
    other = classify.parse_args(["--device", "cpu", "--steps", "9", "--classifier", "cnn-fc"])
    assert classify.autoencoder_key(classify.settings(other, counts)) == key
    wider = classify.parse_args(["--device", "cpu", "--hidden", "64"])
    assert classify.autoencoder_key(classify.settings(wider, counts)) != key


def test_resume_compares_every_setting_of_the_one_list():
    from benchmarks import classify

    args = classify.parse_args(["--device", "cpu", "--preset", "i12-cnn", "--augment", "none"])
    values = classify.settings(args, (4, 2))
    assert list(values) == [k for k in classify.SETTINGS if k != "train_counts"] + ["train_counts"]
    assert values["augment"] == "none" and values["classifier"] == "cnn-fc"
    assert values["steps"] == classify.I12["i12-cnn"]["steps"]


# ---------------------------------------------------------------------- report
def _record(method, seed, data_seed, bal, imb=None, seconds=10.0):
    imb = bal if imb is None else imb
    return {
        "method": method,
        "seed": seed,
        "data_seed": data_seed,
        "seconds": seconds,
        "scores": {
            "balanced": {"acsa": bal, "gm": bal + 5, "f1": bal - 1},
            "imbalanced": {"acsa": imb, "gm": imb + 5, "f1": imb - 1},
        },
    }


def _result(records, ae_seconds=100.0):
    return {"records": records, "autoencoder": {"seconds": ae_seconds, "train_seconds": ae_seconds}}


def test_paired_differences_are_taken_per_seed_against_the_best_baseline():
    from benchmarks import classify_report as report

    results = [
        _result(
            [_record("none", s, d, 80 + s) for s in range(3)]
            + [_record("logit_adj", s, d, 82 + s) for s in range(3)]
            + [
                _record("deepsmote_residual", s, d, 82.5 + s + (0.5 if s == 2 else 0))
                for s in range(3)
            ]
            + [_record("dsp-cmo-s0.5", s, d, 90 + s) for s in range(3)]  # a recipe, not a baseline
        )  # fmt: skip
        for d in (0, 1)
    ]
    rows = report.collect(results)
    assert report.best_baseline(rows, "balanced", "acsa") == "logit_adj"
    with_oracle = report.collect([*results, _result([_record("oracle_la", 0, 0, 99.0)])])
    assert report.best_baseline(with_oracle, "balanced", "acsa") == "logit_adj"  # a ceiling
    assert with_oracle[("oracle_la", 0, 0)]["autoencoder_seconds"] == 0.0
    assert with_oracle[("dsp-cmo-s0.5", 0, 0)]["autoencoder_seconds"] == 100.0
    diffs = report.paired_differences(rows, "deepsmote_residual", "logit_adj", "balanced", "acsa")
    assert sorted(diffs.values()) == pytest.approx([0.5, 0.5, 0.5, 0.5, 1.0, 1.0])
    only_one = report.paired_differences(
        rows, "deepsmote_residual", "logit_adj", "balanced", "acsa", data_seed=1
    )
    assert set(only_one) == {(1, 0), (1, 1), (1, 2)}


def test_protocol_tables_pool_data_seeds_and_charge_the_autoencoder_to_deepsmote_rows():
    from benchmarks import classify_report as report

    results = [
        _result(
            [_record("none", 0, d, 80.0), _record("deepsmote_residual", 0, d, 81.0, seconds=20)]
        )
        for d in (0, 1)
    ]
    text = "\n".join(report.protocol_tables(results))
    assert "data seeds 0, 1 pooled" in text and "data seed 1" in text
    row = next(line for line in text.splitlines() if line.startswith("| deepsmote_residual |"))
    assert "+1.00" in row  # paired against none, the only baseline
    timing = next(
        line for line in text.splitlines() if line.startswith("| deepsmote_residual | 20")
    )
    assert "120" in timing  # 20 s of classifier + 100 s of autoencoder


def test_protocol_tables_split_classifiers_and_pair_recall_per_class():
    from benchmarks import classify_report as report

    def rec(method, seed, recall):
        out = _record(method, seed, 0, float(np.mean(recall)))
        out["scores"]["balanced"]["recall"] = recall
        return out

    def result(classifier, records):
        return {**_result(records), "config": {"classifier": classifier, "steps": 8}}

    cnn = result("cnn", [rec("cmo_la", s, [90.0, 50.0 + s]) for s in range(3)])
    cnn_dsp = result("cnn", [rec("dsp-cmo", s, [91.0, 48.0 + 2 * s]) for s in range(2)])
    resnet = result("resnet", [rec("cmo_la", 0, [10.0, 10.0])])
    text = "\n".join(report.protocol_tables([cnn, cnn_dsp, resnet], ("dsp-cmo:cmo_la",)))
    assert "### cnn, 8 steps" in text and "### resnet, 8 steps" in text
    cnn_part = text.split("### resnet")[0]
    assert "10.00" not in cnn_part  # the other classifier's seed 0 is not a pair
    lines = report.per_class_table(report.collect([cnn, cnn_dsp]), "dsp-cmo", "cmo_la")
    assert "(n=2)" in lines[0]
    # class 1: seeds 0, 1 give 48, 50 against 50, 51: differences -2, -1
    assert lines[3].startswith("| 1 | 49.0 | 50.5 | -1.5 ± 0.7 | 2 |")
    assert lines[2].startswith("| 0 | 91.0 | 90.0 | +1.0 ± 0.0 | 0 |")
    assert report.per_class_table(report.collect([resnet]), "dsp-cmo", "cmo_la") == []


def test_the_headroom_ratio_is_the_share_of_the_oracles_gain_per_paired_run():
    from benchmarks import classify_report as report

    def record(method, seed, acsa):
        return {"method": method, "seed": seed, "scores": {"balanced": {"acsa": acsa}}}

    result = {
        "config": {"data_seed": 0},
        "records": [
            record("logit_adj", 0, 88.0),
            record("oracle_la", 0, 90.0),
            record("dsp-q1-s0.3", 0, 88.5),
            record("logit_adj", 1, 88.0),
            record("oracle_la", 1, 89.0),
            record("dsp-q1-s0.3", 1, 87.5),
            record("dsp-q1-s0.3", 2, 99.0),  # no oracle for seed 2: left out
            record("cmo_la", 0, 89.0),  # a baseline: no ratio
        ],
    }
    ratios = report.headroom_ratios(report.collect([result]))
    assert ratios == {"dsp-q1-s0.3": {(0, 0): 0.25, (0, 1): -0.5}}
    table = report._headroom_table(report.collect([result]))
    assert table[-1].startswith("| dsp-q1-s0.3 | 2 | -0.12 ± 0.53 (d0s0 +0.25, d0s1 -0.50)")


# ---------------------------------------------------------------------- controls
def test_a_setting_added_later_resumes_runs_made_before_it():
    from benchmarks import classify

    args = classify.parse_args(["--device", "cpu", "--preset", "i12-cnn"])
    new = classify.settings(args, (4, 2))
    old = {k: v for k, v in new.items() if k != "val_split"}  # a results.json made before
    assert classify.changed_settings(old, new) == []
    held_out = classify.parse_args(["--device", "cpu", "--preset", "i12-cnn", "--val-split", "0.2"])
    assert classify.changed_settings(old, classify.settings(held_out, (4, 2))) == ["val_split"]


def test_validation_split_holds_out_a_share_of_every_class_and_leaves_one_to_train():
    from benchmarks import classify

    labels = np.repeat(np.arange(3), [50, 10, 2])
    rows = np.arange(0, 62)
    train, held = classify.validation_split(labels, rows, 0.2, seed=0)
    assert np.bincount(labels[held]).tolist() == [10, 2, 1]
    assert np.bincount(labels[train]).tolist() == [40, 8, 1]
    assert len(np.intersect1d(train, held)) == 0 and len(train) + len(held) == 62
    again = classify.validation_split(labels, rows, 0.2, seed=0)
    assert (again[1] == held).all()
    assert not (classify.validation_split(labels, rows, 0.2, seed=1)[1] == held).all()


def test_tau_methods_parse_and_bad_ones_are_refused():
    from benchmarks import classify
    from benchmarks import classify_methods as cm

    assert cm.tau_of("logit_adj_tau1.5") == 1.5 and cm.tau_of("logit_adj") is None
    with pytest.raises(ValueError, match="non-negative number"):
        cm.tau_of("logit_adj_taux")
    args = classify.parse_args(["--device", "cpu", "--methods", "logit_adj_tau2,cmo_la_sam"])
    assert args.methods == ["logit_adj_tau2", "cmo_la_sam"]
    with pytest.raises(SystemExit):
        classify.parse_args(["--device", "cpu", "--methods", "logit_adj_tau-1"])
    with pytest.raises(SystemExit):
        classify.parse_args(["--device", "cpu", "--val-split", "1.0"])


def test_sam_takes_the_gradient_at_the_ascended_weights_and_puts_the_weights_back():
    from benchmarks import classify_methods as cm

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    x, y = torch.randn(16, 4), torch.arange(16) % 3
    before = [p.detach().clone() for p in model.parameters()]
    torch.nn.functional.cross_entropy(model(x), y).backward()
    g = [p.grad.clone() for p in model.parameters()]
    cm._sam_ascent(model, x, y, y, 1.0, None, rho=0.5)
    assert all(torch.equal(p, w) for p, w in zip(model.parameters(), before))
    # The same gradient computed by hand at w + rho g / ||g||.
    norm = torch.sqrt(sum((t**2).sum() for t in g))
    ascended = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3))
    with torch.no_grad():
        for q, w, t in zip(ascended.parameters(), before, g):
            q.copy_(w + 0.5 * t / norm)
    torch.nn.functional.cross_entropy(ascended(x), y).backward()
    for p, q in zip(model.parameters(), ascended.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-6)
    # ... which is not the gradient at w.
    assert not all(torch.allclose(p.grad, t) for p, t in zip(model.parameters(), g))


def test_the_controls_change_training_and_stay_reproducible():
    from benchmarks import classify_methods as cm

    x = torch.rand(64, 1, 8, 8)
    y = torch.tensor([0] * 40 + [1] * 16 + [2] * 8)
    ctx = {"x": x, "y": y, "batch_size": 16, "n_classes": 3, "steps": 6}

    def final_loss(method):
        torch.manual_seed(0)
        model = cm.make_classifier("mlp", 1, 3, 8)
        recipe = cm.batches_for(method, ctx, seed=0)
        return cm.train_classifier(model, recipe, steps=6, lr=1e-2, device="cpu")["final_loss"]

    recipe = cm.batches_for("logit_adj_tau2", ctx, seed=0)
    assert recipe.tau == 2.0 and recipe.sam_rho == 0.0
    assert cm.batches_for("cmo_la_sam", ctx, seed=0).sam_rho == cm.SAM_RHO
    assert final_loss("logit_adj_tau2") != final_loss("logit_adj")
    assert final_loss("logit_adj_tau1") == final_loss("logit_adj")
    assert final_loss("cmo_la_sam") != final_loss("cmo_la")
    assert final_loss("cmo_la_sam") == final_loss("cmo_la_sam")


def test_a_validation_run_scores_held_out_training_images_only(tmp_path):
    # End to end on the bundled digits (no download): the run trains on the rest of the
    # subset, scores the held-out part, never the test sets, and keeps its record.
    import json

    from benchmarks import classify

    # About 20 training images: batches of 8 (the quick preset's 64 would be none).
    argv = ["--dataset", "digits", "--quick", "--steps", "3", "--seeds", "1", "--batch-size", "8"]
    argv += ["--methods", "logit_adj_tau2", "--val-split", "0.3", "--sweep-ratios", ""]
    argv += ["--no-figures", "--out", str(tmp_path / "out"), "--work", str(tmp_path)]
    assert classify.main(argv) == 0
    result = json.loads((tmp_path / "out" / "results.json").read_text())
    (record,) = result["records"]
    assert list(record["scores"]) == ["validation"]
    counts = result["config"]["validation_counts"]
    assert len(counts) == 10 and min(counts) >= 1
    # The held-out images are part of the drawn subset: the training set is the rest.
    train_counts = classify.data.scale(classify.data.PAPER_COUNTS["digits"][0], 0.1)
    assert sum(counts) < sum(train_counts)


def test_an_endless_loader_that_yields_no_batch_is_refused_not_looped():
    from torch.utils.data import DataLoader, TensorDataset

    data = TensorDataset(torch.zeros(5, 1, 4, 4), torch.zeros(5, dtype=torch.long))
    batches = cb.shuffled(data, bs=8, seed=0)
    with pytest.raises(ValueError, match="5 items, batch_size=8, drop_last=True"):
        next(batches)
    assert len(list(zip(range(5), cb.endless(DataLoader(data, 4, drop_last=True))))) == 5
