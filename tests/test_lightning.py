"""``DeepSMOTEDataModule``: a Lightning Trainer on balanced batches, set_epoch by the trainer."""

from __future__ import annotations

import functools
from types import SimpleNamespace

import pytest
import torch
from helpers import FIT, make_shapes
from torch.utils.data import TensorDataset

L = pytest.importorskip("lightning.pytorch")
from lightning.pytorch.utilities.model_helpers import is_overridden  # noqa: E402

from torch_deepsmote import ClassPriorSampler, DeepSMOTESampler, OversampledDataset  # noqa: E402
from torch_deepsmote.integrations.lightning import DeepSMOTEDataModule  # noqa: E402

COUNTS = (40, 16, 6)


@pytest.fixture(scope="module")
def train():
    X, y = make_shapes(COUNTS)
    return TensorDataset(torch.from_numpy(X), torch.from_numpy(y))


class Classifier(L.LightningModule):
    """A linear classifier that records the targets of every training batch."""

    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(16 * 16, len(COUNTS))
        self.seen: list[list[int]] = []

    def training_step(self, batch, _):
        images, targets = batch
        self.seen.append(targets.tolist())
        logits = self.layer(images.flatten(1).float() / 255)
        return torch.nn.functional.cross_entropy(logits, targets)

    def validation_step(self, batch, _):
        images, targets = batch
        self.log("val_loss", torch.nn.functional.cross_entropy(self.layer(
            images.flatten(1).float() / 255), targets))  # fmt: skip

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def trainer(**kwargs):
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
        **kwargs,
    )


def test_a_trainer_runs_balanced_batches_with_set_epoch_driven_by_its_epochs(
    train, tmp_path, monkeypatch
):
    epochs = []
    set_epoch = OversampledDataset.set_epoch
    monkeypatch.setattr(
        OversampledDataset, "set_epoch", lambda self, e: (epochs.append(e), set_epoch(self, e))
    )
    dm = DeepSMOTEDataModule(
        train, train, cache_dir=tmp_path, batch_size=16, seed=3, oversample_params=FIT
    )
    model = Classifier()
    run = trainer(max_epochs=2, limit_train_batches=3, limit_val_batches=1)
    run.fit(model, datamodule=dm)
    assert run.global_step == 6 and epochs == [0, 1] and dm.balanced.epoch == 1
    # The batches are the sampler's: the balanced set shuffled from seed + epoch.
    expected = []
    for epoch in (0, 1):
        sampler = DeepSMOTESampler(dm.balanced, seed=3)
        sampler.set_epoch(epoch)
        order = [dm.balanced.targets[i] for i in sampler]
        expected += [order[b * 16 : (b + 1) * 16] for b in range(3)]
    assert model.seen == expected
    assert len(dm.balanced) == 3 * COUNTS[0]  # every class filled to the majority's count

    # A second run on the same cache_dir loads the model: nothing is trained.
    def no_training(*args, **kwargs):
        raise AssertionError("trained again")

    monkeypatch.setattr("torch_deepsmote.fitting.fit_autoencoder", no_training)
    again = DeepSMOTEDataModule(
        train, train, cache_dir=tmp_path, batch_size=16, oversample_params=FIT
    )
    trainer(max_epochs=1, limit_train_batches=1, limit_val_batches=1).fit(
        Classifier(), datamodule=again
    )
    assert again.balanced.targets == dm.balanced.targets


def test_a_sampler_factory_is_split_across_the_trainers_ranks(train):
    dm = DeepSMOTEDataModule(
        train,
        batch_size=8,
        sampler=functools.partial(ClassPriorSampler, class_power=0.0, synthetic_share=0.5),
    )
    dm.balanced = OversampledDataset(train, **FIT)  # as setup("fit") builds it
    connector = SimpleNamespace(use_distributed_sampler=False)
    dm.trainer = SimpleNamespace(world_size=2, global_rank=1, _accelerator_connector=connector)
    sampler = dm.train_dataloader().sampler
    assert isinstance(sampler, ClassPriorSampler) and (sampler.num_replicas, sampler.rank) == (2, 1)
    connector.use_distributed_sampler = True  # Lightning would split it a second time
    with pytest.raises(ValueError, match=r"use_distributed_sampler=False"):
        dm.train_dataloader()
    val = DeepSMOTEDataModule(train, train)
    val.trainer = dm.trainer
    assert val.val_dataloader().sampler.rank == 1  # evaluation is split in order too
    assert is_overridden("val_dataloader", val) and not is_overridden("val_dataloader", dm)


def test_bad_arguments_and_a_missing_setup_are_named(train):
    with pytest.raises(TypeError, match=r"`sampler` should be None or a callable"):
        DeepSMOTEDataModule(train, sampler="prior")
    with pytest.raises(ValueError, match=r"pass DeepSMOTEDataModule\(cache_dir=...\)"):
        DeepSMOTEDataModule(train, oversample_params={"cache_dir": "x"})
    with pytest.raises(RuntimeError, match=r"needs setup\('fit'\) first"):
        DeepSMOTEDataModule(train).train_dataloader()
    alone = DeepSMOTEDataModule(train, oversample_params={"distributed": False})
    alone.trainer = SimpleNamespace(world_size=2, global_rank=0)
    with pytest.raises(ValueError, match=r"`cache_dir` should be set when 2 ranks fit"):
        alone.setup("fit")


class RankRecorder(Classifier):
    """Saves, on every rank, what it trained on and what its balanced set serves."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    def on_train_end(self):
        balanced = self.trainer.datamodule.balanced
        synthetic = range(balanced.n_real, balanced.n_real + 6)
        torch.save(
            {
                "seen": self.seen,
                "epoch": balanced.epoch,
                "images": torch.stack([balanced[i][0] for i in synthetic]),
                "weights": balanced.model.decoder_.state_dict(),
            },
            f"{self.folder}/rank{self.global_rank}.pt",
        )


@pytest.mark.slow
def test_two_ddp_ranks_fit_one_model_together_and_split_every_epoch(train, tmp_path):
    dm = DeepSMOTEDataModule(train, cache_dir=tmp_path / "cache", batch_size=8, seed=3,
                             oversample_params=FIT)  # fmt: skip
    run = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp_spawn",
        max_epochs=2,
        limit_train_batches=2,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        use_distributed_sampler=False,
    )
    run.fit(RankRecorder(str(tmp_path)), datamodule=dm)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert (tmp_path / "cache" / "deepsmote.h5").exists()
    assert ranks[0]["epoch"] == ranks[1]["epoch"] == 1
    assert torch.equal(ranks[0]["images"], ranks[1]["images"])  # one model, one plan
    for key, value in ranks[0]["weights"].items():
        assert torch.equal(value, ranks[1]["weights"][key]), key
    # Each rank's batches are its own share of the same shuffled balanced epoch.
    balanced = OversampledDataset(train, cache_dir=tmp_path / "cache", **FIT)
    for rank in (0, 1):
        expected = []
        for epoch in (0, 1):
            sampler = DeepSMOTESampler(balanced, num_replicas=2, rank=rank, seed=3)
            sampler.set_epoch(epoch)
            order = [balanced.targets[i] for i in sampler]
            expected += [order[:8], order[8:16]]
        assert ranks[rank]["seen"] == expected
