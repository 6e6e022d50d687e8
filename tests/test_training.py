import numpy as np
import pytest
import torch
from helpers import TINY

from torch_deepsmote import DeepSMOTE
from torch_deepsmote.models import Decoder, Encoder
from torch_deepsmote.training import TrainingConfig, fit_autoencoder, resolve_precision


def state_equal(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


def test_reconstruction_loss_falls_clearly(shapes):
    X, y = shapes
    model = DeepSMOTE(
        latent_dim=16,
        hidden_channels=8,
        batch_size=16,
        max_epochs=8,
        patience=0,
        lr=2e-3,
        random_state=0,
        progress=False,
    ).fit(X, y)
    rec = [h["reconstruction"] for h in model.history_]
    assert len(rec) == 8
    assert rec[-1] < 0.5 * rec[0], rec
    # The trained decoder reconstructs held-in images better than the untrained one.
    x = torch.from_numpy(X[:32]).float() / 127.5 - 1
    with torch.no_grad():
        trained = torch.mean((model.decoder_(model.encoder_(x)) - x) ** 2)
    assert float(trained) < rec[0]


def test_fixed_random_state_reproduces_the_cpu_run_bit_for_bit(shapes):
    X, y = shapes
    a = DeepSMOTE(random_state=3, **TINY).fit(X, y)
    b = DeepSMOTE(random_state=3, **TINY).fit(X, y)
    assert state_equal(a.encoder_.state_dict(), b.encoder_.state_dict())
    assert state_equal(a.decoder_.state_dict(), b.decoder_.state_dict())
    assert torch.equal(a.latents_, b.latents_)
    assert [h["loss"] for h in a.history_] == [h["loss"] for h in b.history_]


def test_different_random_states_give_different_weights(shapes):
    X, y = shapes
    a = DeepSMOTE(random_state=1, **TINY).fit(X, y)
    b = DeepSMOTE(random_state=2, **TINY).fit(X, y)
    assert not torch.equal(a.latents_, b.latents_)


def test_training_does_not_touch_the_global_rng(shapes):
    X, y = shapes
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    DeepSMOTE(random_state=0, **TINY).fit(X, y)
    assert torch.equal(torch.rand(3), expected)


def run(images, labels, progress=False, **config):
    torch.manual_seed(0)
    enc, dec = Encoder((1, 16, 16), 8, hidden=4), Decoder((1, 16, 16), 8, hidden=4)
    history = fit_autoencoder(
        enc,
        dec,
        images,
        labels,
        lambda b: b.float() / 127.5 - 1,
        config=TrainingConfig(batch_size=16, **config),
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        progress=progress,
    )
    return enc, dec, history


def test_the_progress_bar_ticks_per_batch_with_the_running_loss(shapes, capsys):
    X, y = shapes  # 92 images in batches of 16: 6 steps per epoch (the last one of 12 rows)
    run(torch.from_numpy(X), torch.from_numpy(y), progress=True, max_epochs=2, patience=0)
    bar = capsys.readouterr().err.split("\r")[-1]
    assert "12/12" in bar and "batch" in bar and "epoch=2/2" in bar and "loss=" in bar, bar


def test_the_progress_bar_leaves_the_weights_bit_for_bit_the_same(shapes, capsys):
    X, y = shapes
    images, labels = torch.from_numpy(X), torch.from_numpy(y)
    quiet = run(images, labels, progress=False, max_epochs=2, patience=0)
    shown = run(images, labels, progress=True, max_epochs=2, patience=0)
    assert "DeepSMOTE fit" in capsys.readouterr().err
    assert state_equal(quiet[0].state_dict(), shown[0].state_dict())
    assert state_equal(quiet[1].state_dict(), shown[1].state_dict())
    assert quiet[2][-1]["loss"] == shown[2][-1]["loss"]


def test_plateau_stops_before_max_epochs(shapes):
    X, y = shapes
    # A relative improvement of 90% per epoch never happens: stop after `patience` epochs.
    _, _, history = run(
        torch.from_numpy(X), torch.from_numpy(y), max_epochs=20, patience=2, min_delta=0.9
    )
    assert len(history) == 3


def test_best_epoch_weights_are_kept(shapes):
    X, y = shapes
    images, labels = torch.from_numpy(X), torch.from_numpy(y)
    # A large learning rate makes the loss curve bumpy, so the best epoch is often not the last.
    enc, dec, history = run(images, labels, max_epochs=4, patience=0, lr=0.05)
    best = int(np.argmin([h["loss"] for h in history]))
    # The same run stopped right after the best epoch ends with the same weights.
    enc_best, dec_best, _ = run(images, labels, max_epochs=best + 1, patience=0, lr=0.05)
    assert state_equal(enc.state_dict(), enc_best.state_dict())
    assert state_equal(dec.state_dict(), dec_best.state_dict())


def test_penalty_weight_zero_reports_no_penalty(shapes):
    X, y = shapes
    _, _, history = run(torch.from_numpy(X), torch.from_numpy(y), max_epochs=1, penalty_weight=0.0)
    assert history[0]["penalty"] == 0
    assert history[0]["loss"] == history[0]["reconstruction"]


def test_bf16_autocast_trains_on_cpu_about_as_well_as_fp32(shapes):
    X, y = shapes
    images, labels = torch.from_numpy(X), torch.from_numpy(y)
    options = dict(max_epochs=4, patience=0, lr=2e-3)
    enc, dec, bf16 = run(images, labels, precision="bf16", channels_last=True, **options)
    _, _, fp32 = run(images, labels, precision="fp32", **options)
    rec = [h["reconstruction"] for h in bf16]
    assert all(np.isfinite(rec)) and rec == sorted(rec, reverse=True), rec  # falls every epoch
    assert 0.5 < rec[-1] / fp32[-1]["reconstruction"] < 2.0
    # The trained weights come back in float32 and the default memory format.
    weights = [p for p in [*enc.parameters(), *dec.parameters()] if p.ndim == 4]
    assert all(p.dtype == torch.float32 and p.is_contiguous() for p in weights)


def test_precision_resolution():
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) is None
    assert resolve_precision("fp32", cpu) is None
    assert resolve_precision("bf16", cpu) is torch.bfloat16
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp16", cpu)


@pytest.mark.parametrize(
    "kwargs,exc",
    [
        (dict(batch_size=0), ValueError),
        (dict(batch_size=True), TypeError),
        (dict(lr=0), ValueError),
        (dict(max_epochs=-1), ValueError),
        (dict(patience=-1), ValueError),
        (dict(precision="fp8"), ValueError),
    ],
)
def test_bad_training_options_are_rejected(kwargs, exc):
    with pytest.raises(exc, match=next(iter(kwargs))):
        TrainingConfig(**kwargs)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_with_autocast(shapes):
    X, y = shapes
    model = DeepSMOTE(device="cuda", random_state=0, **TINY).fit(X, y)
    assert np.isfinite(model.history_[-1]["loss"])
    assert model.device_.type == "cuda" and model.latents_.device.type == "cpu"
    plan = model.plan({2: 16}, random_state=0)
    on_gpu = model.synthesizer_.images(plan)
    on_cpu = model.synthesizer_.to("cpu").images(plan)
    assert on_gpu.shape == (16, 1, 16, 16) and on_gpu.dtype == torch.uint8
    # The same weights on two devices: equal up to float rounding (one 8-bit step).
    assert (on_gpu.int() - on_cpu.int()).abs().max() <= 1
    # Forked DataLoader workers decode on the CPU copy and never touch CUDA.
    from torch.utils.data import DataLoader, TensorDataset

    from torch_deepsmote import OversampledDataset

    ds = OversampledDataset(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), model)
    loader = DataLoader(ds, batch_size=32, num_workers=2, multiprocessing_context="fork")
    forked = torch.cat([images for images, _ in loader])[ds.n_real :]
    served = ds.synthesizer.to("cpu").images(ds.plan())
    assert torch.equal(forked, served)
