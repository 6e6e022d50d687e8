import pytest
import torch
import torch.nn.functional as F

from torch_deepsmote.losses import DeepSMOTELoss, penalty_loss, reconstruction_loss
from torch_deepsmote.models import Decoder, Encoder


def models(seed=0):
    torch.manual_seed(seed)
    return Encoder((1, 12, 12), 6, hidden=4), Decoder((1, 12, 12), 6, hidden=4)


def grads(module):
    return [
        p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in module.parameters()
    ]


def test_penalty_equals_published_permuted_loss():
    # The published code: codes detached, then codes and targets rolled by one place.
    enc, dec = models()
    x = torch.rand(10, 1, 12, 12) * 2 - 1
    roll = torch.cat([torch.arange(1, 10), torch.tensor([0])])
    codes = enc(x).detach()
    published = F.mse_loss(dec(codes[roll]), x[roll])
    enc2, dec2 = models()
    ours = penalty_loss(enc2, dec2, x)
    torch.testing.assert_close(ours, published)


def test_penalty_does_not_train_the_encoder_by_default():
    enc, dec = models()
    x = torch.rand(8, 1, 12, 12) * 2 - 1
    penalty_loss(enc, dec, x).backward()
    assert all(float(g.abs().sum()) == 0 for g in grads(enc))
    assert any(float(g.abs().sum()) > 0 for g in grads(dec))


def test_penalty_trains_the_encoder_when_asked():
    enc, dec = models()
    x = torch.rand(8, 1, 12, 12) * 2 - 1
    penalty_loss(enc, dec, x, encoder_grad=True).backward()
    assert any(float(g.abs().sum()) > 0 for g in grads(enc))


def test_loss_is_reconstruction_plus_weighted_penalty():
    x = torch.rand(8, 1, 12, 12) * 2 - 1
    c = x[:4]
    enc, dec = models()
    rec = reconstruction_loss(enc, dec, x)
    enc, dec = models()
    pen = penalty_loss(enc, dec, c)
    for weight in (0.0, 1.0, 2.5):
        enc, dec = models()
        terms = DeepSMOTELoss(penalty_weight=weight)(enc, dec, x, c)
        torch.testing.assert_close(terms.reconstruction, rec)
        torch.testing.assert_close(terms.total, rec + weight * pen if weight else rec)


def test_loss_without_class_batch_is_reconstruction_only():
    enc, dec = models()
    x = torch.rand(8, 1, 12, 12) * 2 - 1
    terms = DeepSMOTELoss()(enc, dec, x)
    assert float(terms.penalty) == 0 and terms.total is terms.reconstruction


@pytest.mark.parametrize(
    "kwargs,exc",
    [
        (dict(penalty_weight=-1.0), ValueError),
        (dict(penalty_weight="1"), TypeError),
        (dict(penalty_encoder_grad=1), TypeError),
    ],
)
def test_bad_loss_options_are_rejected(kwargs, exc):
    with pytest.raises(exc, match=next(iter(kwargs))):
        DeepSMOTELoss(**kwargs)
