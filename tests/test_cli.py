import json

import pytest

from torch_deepsmote.cli import build_parser, main


def test_demo_runs_on_the_bundled_data_and_writes_its_outputs(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "1", "--hidden", "4", "--out", str(out), "--quiet"]) == 0
    assert (out / "real_vs_synthetic.png").stat().st_size > 0
    assert (out / "deepsmote.pt").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts_before"] == [1000, 500, 250, 187, 125, 87, 50, 25, 15, 10]
    assert summary["counts_after"] == [1000] * 10
    assert "per class [1000, 1000" in capsys.readouterr().out


def test_parser_requires_a_command_and_names_the_choices(capsys):
    with pytest.raises(SystemExit) as stop:
        build_parser().parse_args([])
    assert stop.value.code == 2  # argparse's usage error
    err = capsys.readouterr().err
    assert "usage: torch-deepsmote" in err and "demo" in err and "required" in err


@pytest.mark.slow
def test_demo_with_the_paper_model(tmp_path):
    assert main(["demo", "--epochs", "2", "--out", str(tmp_path), "--quiet"]) == 0
