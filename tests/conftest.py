"""Shared fixtures: small images of simple shapes per class (helpers.py makes them)."""

from __future__ import annotations

import pytest
import torch
from helpers import FIT, make_shapes

from torch_deepsmote import DeepSMOTE

# Two threads is all the CI machine has; more only adds contention.
torch.set_num_threads(min(2, torch.get_num_threads()))


@pytest.fixture(scope="session")
def shapes():
    """Three imbalanced classes of 16x16 grey uint8 images: 60, 24 and 8 images."""
    return make_shapes((60, 24, 8))


@pytest.fixture(scope="session")
def fitted(shapes):
    """A DeepSMOTE fitted on ``shapes`` for two epochs, shared by the session."""
    X, y = shapes
    return DeepSMOTE(**dict(FIT, max_epochs=2)).fit(X, y)
