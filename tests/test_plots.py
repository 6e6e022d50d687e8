"""The pictures of torch_deepsmote.app.plots and the report that writes them."""

import json
import sys

import pytest
import torch
from helpers import FIT, make_shapes
from PIL import Image

from torch_deepsmote import DeepSMOTE
from torch_deepsmote.app import plots
from torch_deepsmote.app.report import format_table, write_report
from torch_deepsmote.quality import assess


@pytest.fixture(scope="module")
def fit_8x8():
    """(a DeepSMOTE fitted for two epochs, its images): two classes of 8x8 images, 20 and 8."""
    X, y = make_shapes((20, 8), size=8)
    return DeepSMOTE(**dict(FIT, max_epochs=2)).fit(X, y), X


def test_real_vs_synthetic_has_a_row_per_class_of_real_then_synthetic(fit_8x8):
    model, X = fit_8x8
    grid = plots.real_vs_synthetic(model, X, n=3, scale=2)
    assert grid.shape == (3, 2 * 18 + 2, 6 * 18 + 2) and 0 <= grid.min() and grid.max() <= 1
    first = grid[0, 2:18:2, 2:18:2]  # the first cell, back to 8 x 8: a real image of class 0
    real = torch.from_numpy(X[:20, 0]).float() / 255
    assert torch.isclose(real, first, atol=1e-6).flatten(1).all(1).any()
    assert grid.shape == plots.real_vs_synthetic(model, X, n=3, scale=2).shape


def test_save_grid_writes_names_left_of_the_rows(fit_8x8, tmp_path):
    model, X = fit_8x8
    grid = plots.real_vs_synthetic(model, X, n=2, scale=1)
    plots.save_grid(grid, tmp_path / "plain.png")
    plots.save_grid(grid, tmp_path / "named.png", ["circle", "square"])
    with Image.open(tmp_path / "plain.png") as plain, Image.open(tmp_path / "named.png") as named:
        assert plain.size == (grid.shape[2], grid.shape[1])
        assert named.height == plain.height and named.width > plain.width


def test_figures_are_matplotlib_figures(fit_8x8, tmp_path):
    pytest.importorskip("matplotlib")
    import numpy as np

    from torch_deepsmote.quality import latent_pca

    model, X = fit_8x8
    result = assess(model, X)
    names = {0: "stripes", 1: "bars"}
    counts = plots.plot_counts({0: 20, 1: 8}, {0: 20, 1: 20}, names)
    bars = [patch.get_height() for patch in counts.axes[0].patches]
    assert bars == [20, 8, 20, 20]  # real, then real + synthetic, per class
    assert [t.get_text() for t in counts.axes[0].get_xticklabels()] == ["stripes", "bars"]
    history = plots.plot_history(model.history_)
    lines = {line.get_label(): list(line.get_ydata()) for line in history.axes[0].lines}
    assert any(ys == [h["loss"] for h in model.history_] for ys in lines.values())
    # Latent space: one point set per class and kind (class 0 has no synthetic codes), each
    # of at most max_points of that class's codes on the real codes' principal axes.
    latent = plots.plot_latent_space(result, names, max_points=5)
    sets = {c.get_label(): torch.as_tensor(c.get_offsets()) for c in latent.axes[0].collections}
    assert list(sets) == ["stripes (real)", "bars (real)", "bars (synthetic)"]
    real, synthetic = latent_pca(result.real_codes, result.synthetic_codes)
    for label, codes, of in (
        ("stripes (real)", real, result.real_labels == 0),
        ("bars (real)", real, result.real_labels == 1),
        ("bars (synthetic)", synthetic, result.plan.labels == 1),
    ):
        points = sets[label].float()
        assert len(points) == 5 and len({tuple(p) for p in points.tolist()}) == 5
        assert torch.cdist(points, codes[of]).min(1).values.max() < 1e-6
    # Quality: each panel's bars are the table's numbers per class (None drawn as a gap).
    quality = plots.plot_quality(result.table, names)

    def column(key):
        return [float("nan") if row[key] is None else row[key] for row in result.table]

    expected = [
        column("reconstruction_rms"),
        column("real_nearest_rms") + column("synthetic_nearest_rms"),
        column("label_fidelity") + column("near_copy_share"),
    ]
    heights = [[patch.get_height() for patch in ax.patches] for ax in quality.axes]
    assert [len(h) for h in heights] == [2, 4, 4]
    assert all(np.allclose(h, e, equal_nan=True) for h, e in zip(heights, expected))
    assert np.isnan(heights[1][2]) and not np.isnan(heights[1][3])  # class 0 has none
    for ax in quality.axes:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["stripes", "bars"]
    for figure in (counts, history, latent, quality):
        figure.savefig(tmp_path / "f.png")
        assert (tmp_path / "f.png").stat().st_size > 1000


def test_without_matplotlib_figures_say_how_to_install_it(fit_8x8, tmp_path, monkeypatch):
    model, X = fit_8x8
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if it were not installed
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    with pytest.raises(ImportError, match=r"pip install 'torch-deepsmote\[plots\]'"):
        plots.plot_history(model.history_)
    report = write_report(tmp_path, model, X)  # the grid and the numbers still come
    assert report["figures"] == ["real_vs_synthetic.png"]
    assert "torch-deepsmote[plots]" in report["figures_skipped"]["reason"]
    assert json.loads((tmp_path / "report.json").read_text())["figures_skipped"]


def test_format_table_has_a_line_per_class(fit_8x8, tmp_path):
    model, X = fit_8x8
    text = format_table(write_report(tmp_path, model, X, {0: "stripes", 1: "bars"}))
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["class", "real", "+new"]
    assert lines[1].split()[:3] == ["stripes", "20", "0"] and lines[2].split()[:3] == [
        "bars",
        "8",
        "12",
    ]
