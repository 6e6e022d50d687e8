"""DeepSMOTE(log_dir=...): TensorBoard logs of the fit (skipped where TensorBoard is missing)."""

import importlib.util

import pytest
from helpers import TINY

from torch_deepsmote import DeepSMOTE

HAVE_TENSORBOARD = importlib.util.find_spec("tensorboard") is not None


def test_log_dir_is_stored_as_given_and_cloned(tmp_path):
    sklearn = pytest.importorskip("sklearn.base")
    model = DeepSMOTE(log_dir=tmp_path)
    assert model.log_dir is tmp_path and sklearn.clone(model).get_params()["log_dir"] == tmp_path
    with pytest.raises(TypeError, match="log_dir"):
        DeepSMOTE(log_dir=3)


@pytest.mark.skipif(HAVE_TENSORBOARD, reason="tensorboard is installed")
def test_without_tensorboard_the_fit_says_how_to_install_it(shapes, tmp_path):
    X, y = shapes
    with pytest.raises(ImportError, match=r"pip install 'torch-deepsmote\[tensorboard\]'"):
        DeepSMOTE(log_dir=tmp_path, **TINY).fit(X, y)


@pytest.mark.skipif(not HAVE_TENSORBOARD, reason="needs pip install 'torch-deepsmote[tensorboard]'")
def test_the_fit_logs_loss_terms_per_epoch_and_image_grids(shapes, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    X, y = shapes
    DeepSMOTE(log_dir=tmp_path, random_state=0, **{**TINY, "max_epochs": 2, "patience": 0}).fit(
        X, y
    )
    events = EventAccumulator(str(tmp_path)).Reload()
    assert [s.step for s in events.Scalars("loss/reconstruction")] == [0, 1]
    assert {"loss/loss", "loss/penalty", "seconds_per_epoch"} <= set(events.Tags()["scalars"])
    assert [image.step for image in events.Images("real_vs_synthetic")] == [0]
