"""benchmarks/classify_deepsmote.py: recipe names, and the library pieces they assemble."""

from __future__ import annotations

import pytest
import torch
from helpers import TINY, make_shapes
from torch.utils.data import TensorDataset

from benchmarks import classify_deepsmote as cd
from torch_deepsmote import OversampledDataset, class_prior  # noqa: E402


def test_recipe_names_spell_their_options():
    spec = cd.parse("dsp-q0.5-rest-enemy-k20-x0.4-d0.75-ce")
    assert spec["class_power"] == 0.5 and spec["synthetic_share"] == "rest"
    assert spec["defer"] == 0.75 and spec["loss"] == "ce"
    assert spec["library"] == {
        "residual": True,
        "interpolation": "enemy",
        "k_neighbors": 20,
        "lam_range": (0.0, 0.4),
    }
    assert cd.parse("dsp")["synthetic_share"] == 0.3 and cd.parse("dsp-paper")["library"] == {
        "residual": False
    }
    assert cd.parse("dsp-mixup")["mix"] == "mixup" and cd.parse("dsp-mixup")["class_power"] == 1
    assert cd.parse("dsp-cmo")["class_power"] == 0.0  # CMO's minority loader is balanced
    assert cd.parse("dsp-cmo-q0.5")["class_power"] == 0.5
    assert cd.parse("dsp-q0.5-bl-m5")["library"] == {
        "residual": True,
        "base_selection": "borderline",
        "m_neighbors": 5,
    }
    assert cd.parse("dsp-bl")["library"]["base_selection"] == "borderline"
    with pytest.raises(ValueError, match="unknown option 'remix'"):
        cd.parse("dsp-remix")


@pytest.fixture(scope="module")
def ctx():
    X, y = make_shapes((60, 20, 8))
    base = TensorDataset(torch.from_numpy(X).float() / 255, torch.from_numpy(y))
    made = {}

    def oversampled(seed, strategy=None, **options):
        key = tuple(sorted(options.items()))
        if key not in made:
            made[key] = OversampledDataset(
                base,
                seed=seed,
                sampling_strategy=strategy,
                random_state=0,
                knn="torch",
                **TINY,
                **options,
            )
        return made[key]

    return {"batch_size": 11, "steps": 40, "oversampled": oversampled}


def test_a_recipe_serves_its_prior_and_tells_the_loss(ctx):
    recipe = cd.recipe("dsp-q0.5-s0.5", ctx, 0)
    expected = class_prior(torch.tensor([60, 20, 8]), 0.5)
    torch.testing.assert_close(recipe.prior().double(), expected, atol=0.02, rtol=0)
    x, y = next(recipe.batches)
    assert x.shape == (11, 1, 16, 16) and x.dtype == torch.float32
    assert recipe.info["synthetic_fraction"][0] == 0.0  # the majority has no synthetic items
    assert recipe.info["synthetic_fraction"][2] == pytest.approx(0.5, abs=0.05)


def test_a_deferred_recipe_changes_the_prior_when_its_epoch_comes(ctx):
    recipe = cd.recipe("dsp-q0-s0.5-d0.5", ctx, 0)
    per_epoch = recipe.info["batches_per_epoch"]  # 88 // 11 = 8 batches
    assert recipe.info["start_epoch"] == 2  # half of 40 steps: after epoch 2 of 8 steps
    natural = recipe.prior()
    torch.testing.assert_close(natural.double(), class_prior(torch.tensor([60, 20, 8]), 1))
    for _ in range(2 * per_epoch + 1):  # into the third epoch
        next(recipe.batches)
    torch.testing.assert_close(recipe.prior(), torch.full((3,), 1 / 3), atol=0.02, rtol=0)
    assert cd.recipe("dsp-ce", ctx, 0).prior is None


def test_the_benchmark_loss_is_the_library_loss():
    from benchmarks import classify_methods as cm
    from torch_deepsmote import LogitAdjustedLoss

    torch.manual_seed(0)
    logits, targets = torch.randn(16, 3), torch.randint(0, 3, (16,))
    prior = torch.tensor([0.7, 0.2, 0.1])
    criterion = LogitAdjustedLoss(prior)
    expected = torch.nn.functional.cross_entropy(logits + prior.log(), targets)
    torch.testing.assert_close(cm.mixed_loss(logits, targets, targets, 1.0, criterion), expected)
    assert "def logit_adjusted_loss" not in open(cm.__file__).read()  # no copy of the loss
