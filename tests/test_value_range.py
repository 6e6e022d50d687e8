"""The value range every synthetic image is made in: declared, or found without letting one
odd image set it."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import CLI_TINY, FIT, TINY, make_shapes
from sklearn.base import clone
from torch.utils.data import TensorDataset

from torch_deepsmote import DeepSMOTE, OversampledDataset
from torch_deepsmote._pixels import range_faults
from torch_deepsmote.reading import read_dataset


def unit_floats(counts=(30, 10)):
    """Float images in [0, 1] (never 1.0 itself: the nominal range is the point)."""
    X, y = make_shapes(counts, size=16)
    return X.astype(np.float32) / 255, y


def one_image_on_the_0_255_scale():
    X, y = unit_floats()
    X[3] = X[3] * 255  # one image saved on the other scale
    return X, y


def one_pixel_of_1e30():
    X, y = unit_floats()
    X[7, 0, 2, 2] = 1e30
    return X, y


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (one_image_on_the_0_255_scale, r"`X` image 3 has pixel values in \[0, 255\], far outside"),
        (one_pixel_of_1e30, r"`X` image 7 has pixel values in \[0, 1e\+30\], far outside"),
    ],
)
def test_one_odd_image_is_refused_by_name_instead_of_rescaling_every_synthetic_image(make, message):
    X, y = make()
    with pytest.raises(ValueError, match=message + r".*value_range=\(low, high\)"):
        DeepSMOTE(**FIT).fit_resample(X, y)


@pytest.mark.parametrize("make", [one_image_on_the_0_255_scale, one_pixel_of_1e30])
def test_an_odd_dataset_item_is_a_bad_item_that_skip_leaves_out(make):
    X, y = make()
    odd = 3 if make is one_image_on_the_0_255_scale else 7
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    with pytest.raises(ValueError, match=rf"dataset item {odd} has pixel values .*on_bad_item"):
        read_dataset(dataset)
    skipped = rf"Skipped 1 bad dataset item\(s\) of 40 \(indices {odd}\)"
    with pytest.warns(UserWarning, match=skipped):
        ds = OversampledDataset(dataset, on_bad_item="skip", **FIT)
    assert ds.n_real == 39 and odd not in ds.real_indices.tolist()
    assert (ds.model.image_format_.low, ds.model.image_format_.high) == (0.0, 1.0)
    synthetic = torch.stack([ds[i][0] for i in range(ds.n_real, len(ds))])
    assert 0 <= float(synthetic.min()) and float(synthetic.max()) <= 1


def test_an_odd_item_streamed_to_disk_is_left_out_of_the_store(tmp_path):
    X, y = one_image_on_the_0_255_scale()
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    with pytest.warns(UserWarning, match=r"indices 3\)"):
        read = read_dataset(dataset, on_bad_item="skip", store=tmp_path / "images.h5")
    kept = [i for i in range(40) if i != 3]
    assert read.indices.tolist() == kept and len(read.images) == 39
    assert torch.equal(read.images[torch.arange(39)], torch.from_numpy(X[kept]))
    assert (read.image_format.low, read.image_format.high) == (0.0, 1.0)


def test_a_long_tail_is_not_an_outlier():
    rng = np.random.default_rng(0)
    # CT numbers: most images reach 1500 HU, 1 % reach 3071 (metal), all start at -1024.
    highs = np.where(np.arange(500) < 5, 3071.0, rng.uniform(900, 1500, 500))
    assert range_faults(torch.int16, torch.full((500,), -1024.0), torch.tensor(highs)) == []
    # Microscopy: dim and bright images, a few saturated at 65535.
    highs = np.where(np.arange(300) < 3, 65535.0, rng.uniform(500, 30000, 300))
    lows = torch.tensor(rng.uniform(90, 110, 300))
    assert range_faults(torch.uint16, lows, torch.tensor(highs)) == []
    # 12-bit data with one image scaled to 16 bits is refused: it would set the range.
    highs = torch.full((300,), 4095.0)
    highs[10] = 65535
    assert [i for i, _ in range_faults(torch.uint16, torch.zeros(300), highs)] == [10]
    # uint8 has a nominal range: a bright image among dark ones changes nothing.
    highs = torch.full((300,), 10.0)
    highs[0] = 255
    assert range_faults(torch.uint8, torch.zeros(300), highs) == []


def test_a_declared_value_range_is_the_scale_and_pixels_outside_it_are_refused():
    X, y = unit_floats()
    X = X * 0.5  # 0..0.5, inside the declared (0, 1)
    model = DeepSMOTE(value_range=(0, 1), **FIT)
    X_res, _ = model.fit_resample(X, y)
    assert (model.image_format_.low, model.image_format_.high) == (0.0, 1.0)
    assert X_res.min() >= 0 and X_res.max() <= 1
    X[5, 0, 0, 0] = 1.5
    with pytest.raises(ValueError, match=r"`X` image 5 .* outside value_range=\(0, 1\)"):
        DeepSMOTE(value_range=(0, 1), **FIT).fit(X, y)
    # A dataset item outside it is a bad item.
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    with pytest.raises(ValueError, match=r"dataset item 5 .* outside value_range=\(0, 1\)"):
        OversampledDataset(dataset, value_range=(0, 1), **FIT)
    with pytest.warns(UserWarning, match=r"indices 5\)"):
        ds = OversampledDataset(dataset, value_range=(0, 1), on_bad_item="skip", **FIT)
    assert ds.n_real == 39 and (ds.model.image_format_.low, ds.model.image_format_.high) == (0, 1)


def test_a_declared_range_keeps_12_bit_data_on_its_nominal_scale():
    X, y = make_shapes((30, 10), size=16)
    X = (X.astype(np.uint16) * 4095 // 255 // 2).astype(np.uint16)  # 12-bit, lower half used
    model = DeepSMOTE(value_range=(0, 4095), **FIT).fit(X, y)
    assert (model.image_format_.low, model.image_format_.high) == (0.0, 4095.0)
    assert DeepSMOTE(**FIT).fit(X, y).image_format_.high == float(X.max())  # the data's own


def test_value_range_is_a_checked_parameter_that_changes_the_training_key():
    model = DeepSMOTE(value_range=(0, 4095))
    assert clone(model).get_params()["value_range"] == (0, 4095)
    assert model.training_fingerprint() != DeepSMOTE().training_fingerprint()
    for bad, error in [((1, 0), ValueError), ((0, float("inf")), ValueError), (5, TypeError)]:
        with pytest.raises(error, match="`value_range` should be"):
            DeepSMOTE(value_range=bad)


def test_a_declared_range_admits_an_odd_image_everywhere_the_model_reads_it():
    from torch_deepsmote.app.plots import real_vs_synthetic

    X, y = one_image_on_the_0_255_scale()
    model = DeepSMOTE(value_range=(0, 255), **FIT).fit(X, y)  # the user says: it is real
    assert model.encode(X).shape == (40, TINY["latent_dim"])
    assert real_vs_synthetic(model, X, n=2).shape[0] == 3


def test_the_command_line_names_an_odd_image_and_takes_value_range(tmp_path, capsys):
    from torch_deepsmote.app.model_dir import load_model_dir
    from torch_deepsmote.cli import main

    X, y = one_pixel_of_1e30()
    np.savez(tmp_path / "odd.npz", images=X, labels=y)
    assert main(["fit", str(tmp_path / "odd.npz"), "--out", str(tmp_path / "m1"), *CLI_TINY]) == 1
    assert "`X` image 7 has pixel values in [0, 1e+30], far outside" in capsys.readouterr().err
    X, y = unit_floats()
    np.savez(tmp_path / "half.npz", images=X * 0.5, labels=y)
    out = tmp_path / "m2"
    argv = ["fit", str(tmp_path / "half.npz"), "--out", str(out), "--value-range", "0", "1"]
    assert main([*argv, *CLI_TINY]) == 0
    model = load_model_dir(out).model
    assert model.value_range == (0.0, 1.0) and model.image_format_.high == 1.0
