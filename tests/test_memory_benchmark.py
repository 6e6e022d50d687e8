"""benchmarks/memory.py: one measurement per fresh process, its JSON and its table."""

from __future__ import annotations

import json

import pytest

from benchmarks import memory


def test_synthetic_images_are_the_same_on_every_read_and_imbalanced():
    dataset = memory.SyntheticImages(500)
    image, label = dataset[123]
    again, _ = memory.SyntheticImages(500)[123]
    assert image.shape == (1, 16, 16) and str(image.dtype) == "torch.uint8"
    assert bool((image == again).all()) and label == dataset.targets[123]
    counts = [dataset.targets.count(c) for c in dataset.classes]
    assert sum(counts) == 500 and counts == sorted(counts, reverse=True) and counts[-1] > 0


def test_quick_run_writes_one_record_per_size_and_path(tmp_path):
    report = memory.run((300,), tuple(memory.PATHS), tmp_path, log=lambda record: None)
    stored = json.loads(next(tmp_path.glob("memory-*.json")).read_text())
    assert stored == report == memory.load(tmp_path)
    assert len(report["records"]) == len(memory.PATHS)
    for record in report["records"]:
        assert set(record) == set(memory.FIELDS) and record["n"] == 300
        assert record["peak_rss_mb"] >= record["baseline_rss_mb"] > 0 and record["wall_s"] > 0
    text = memory.render(report, "python -m benchmarks.memory --quick")
    assert text.startswith(memory.SECTION + "\n") and "| 300 |" in text


def test_measure_refuses_an_unknown_path():
    with pytest.raises(ValueError, match="path='nope'"):
        memory.measure(10, "nope")
