"""The speed paths (issue 4) compute what the plain layers and exact search compute."""

import pytest
import torch
from torch import nn

from torch_deepsmote.models import Decoder, DownConv2d, Encoder
from torch_deepsmote.training import TrainingConfig, fit_autoencoder


def plain_conv(conv):
    ref = nn.Conv2d(conv.in_channels, conv.out_channels, 4, 2, 1, bias=conv.bias is not None)
    ref.load_state_dict(conv.state_dict())
    return ref


@pytest.mark.parametrize("side", [(2, 2), (3, 3), (2, 3), (3, 2), (4, 4), (7, 7)])
@pytest.mark.parametrize("bias", [False, True])
def test_down_conv_matches_plain_conv_in_value_and_gradient(side, bias):
    torch.manual_seed(0)
    conv = DownConv2d(6, 5, 4, 2, 1, bias=bias)
    ref = plain_conv(conv)
    x = torch.randn(4, 6, *side, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_()
    out, out_ref = conv(x), ref(x_ref)
    assert out.shape == out_ref.shape
    torch.testing.assert_close(out, out_ref, rtol=1e-5, atol=1e-5)
    grad = torch.randn_like(out)
    out.backward(grad)
    out_ref.backward(grad)
    torch.testing.assert_close(x.grad, x_ref.grad, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(conv.weight.grad, ref.weight.grad, rtol=1e-5, atol=1e-5)


def test_down_conv_takes_channels_last_input():
    conv = DownConv2d(4, 3, 4, 2, 1, bias=False)
    x = torch.randn(2, 4, 3, 3)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(conv(channels_last), plain_conv(conv)(x), rtol=1e-5, atol=1e-5)


def test_paper_encoder_keeps_its_layers_and_parameter_count():
    enc = Encoder((1, 28, 28))
    convs = [m for m in enc.conv if isinstance(m, nn.Conv2d)]
    assert len(convs) == 4 and all(isinstance(m, DownConv2d) for m in convs)
    assert sum(p.numel() for p in enc.parameters()) == 2909228
    assert sum(p.numel() for p in Decoder((1, 28, 28)).parameters()) == 10176129


def test_fit_callback_sees_every_epoch_and_training_mode_is_restored():
    torch.manual_seed(0)
    enc, dec = Encoder((1, 8, 8), 4, hidden=2), Decoder((1, 8, 8), 4, hidden=2)
    images = torch.randint(0, 256, (24, 1, 8, 8), dtype=torch.uint8)
    labels = torch.tensor([0] * 16 + [1] * 8)
    seen = []

    def callback(record):
        seen.append(record["epoch"])
        enc.eval()
        assert "seconds" in record

    modes = []
    original_forward = enc.forward

    def forward(x):
        modes.append(enc.training)
        return original_forward(x)

    enc.forward = forward
    history = fit_autoencoder(
        enc,
        dec,
        images,
        labels,
        lambda x: x.float() / 127.5 - 1,
        config=TrainingConfig(batch_size=8, max_epochs=3, patience=0),
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        progress=False,
        callback=callback,
    )
    assert seen == [0, 1, 2] == [h["epoch"] for h in history]
    assert all(modes)  # every training step after a callback ran in training mode
