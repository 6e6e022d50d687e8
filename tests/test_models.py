import pytest
import torch

from torch_deepsmote.models import Decoder, Encoder, default_latent_dim, encoder_sides


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_28x28_models_match_published_parameter_counts():
    assert n_params(Encoder((1, 28, 28))) == 2_909_228
    assert n_params(Decoder((1, 28, 28))) == 10_176_129


def test_28x28_decoder_has_published_layers():
    dec = Decoder((1, 28, 28))
    convs = [m for m in dec.deconv if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (512, 256, (4, 4), (1, 1)),
        (256, 128, (4, 4), (1, 1)),
        (128, 1, (4, 4), (2, 2)),
    ]
    assert isinstance(dec.deconv[-1], torch.nn.Tanh)
    assert dec.fc[0].out_features == 512 * 7 * 7


def test_encoder_convolutions_have_no_bias_and_leaky_relu():
    enc = Encoder((1, 28, 28))
    convs = [m for m in enc.conv if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 4 and all(c.bias is None for c in convs)
    assert [c.out_channels for c in convs] == [64, 128, 256, 512]
    assert all(m.negative_slope == 0.2 for m in enc.conv if isinstance(m, torch.nn.LeakyReLU))


def test_colour_32x32_uses_latent_600_and_mirrored_decoder():
    enc, dec = Encoder((3, 32, 32)), Decoder((3, 32, 32))
    assert enc.latent_dim == dec.latent_dim == 600 == default_latent_dim((3, 32, 32))
    assert enc.fc.in_features == 512 * 2 * 2
    convs = [m for m in dec.deconv if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [
        (512, 256),
        (256, 128),
        (128, 64),
        (64, 3),
    ]


@pytest.mark.parametrize(
    "shape",
    [
        (1, 28, 28),
        (3, 32, 32),
        (1, 8, 8),
        (2, 9, 13),
        (4, 128, 128),
        (3, 100, 70),
        (1, 17, 31),
        (3, 64, 48),
        (1, 8, 128),
        (4, 33, 33),
    ],
)
def test_decode_of_encode_has_the_input_shape(shape):
    enc, dec = Encoder(shape, 16, hidden=4), Decoder(shape, 16, hidden=4)
    x = torch.rand(2, *shape) * 2 - 1
    out = dec(enc(x))
    assert out.shape == x.shape
    assert out.min() >= -1 and out.max() <= 1


def test_encoder_depth_rule():
    assert encoder_sides(28, 28)[-1] == (1, 1)
    assert encoder_sides(8, 8) == [(4, 4), (2, 2), (1, 1)]
    assert encoder_sides(128, 128)[-1] == (4, 4)  # one extra layer for large images
    assert len(encoder_sides(64, 64)) == 4


def test_latent_dim_and_hidden_are_arguments():
    enc = Encoder((1, 28, 28), latent_dim=32, hidden=16)
    assert enc(torch.zeros(2, 1, 28, 28)).shape == (2, 32)
    assert [m.out_channels for m in enc.conv if isinstance(m, torch.nn.Conv2d)] == [16, 32, 64, 128]


@pytest.mark.parametrize("shape", [(1, 4, 4), (5, 28, 28), (28, 28), (0, 28, 28)])
def test_unsupported_image_shape_is_rejected(shape):
    with pytest.raises(ValueError, match="image_shape"):
        Encoder(shape)


@pytest.mark.parametrize("kwargs", [dict(latent_dim=0), dict(hidden=-1)])
def test_bad_sizes_are_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        Decoder((1, 28, 28), **kwargs)
