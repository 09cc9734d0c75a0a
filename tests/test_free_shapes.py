"""Networks of any shape for `xnorflow explore` (issue #29): MLPs of given hidden widths,
narrower CNNs, and a hold-out validation set for the float trainers; built bit-exactly."""

from __future__ import annotations

import csv
import json

import pytest

from xnorflow.cli import main
from xnorflow.train.configs import ConfigError, TrainConfig, VispaConfig
from xnorflow.train.models import CONV_TOPOLOGIES, build_model


def test_a_free_mlp_has_the_widths_given():
    model = build_model("mlp", (64,), 10, hidden=[96, 48, 24])
    widths = [m.out_features for m in model.modules() if hasattr(m, "out_features")]
    assert widths == [96, 48, 24, 10]
    assert VispaConfig(model="mlp", hidden=[32]).describe().startswith("MLP 32 W1A1")


def test_channel_scale_narrows_every_convolution_and_hidden_layer():
    half = CONV_TOPOLOGIES["cnv"].scaled(0.5)
    assert half.blocks == ((32, 32), (64, 64), (128, 128)) and half.hidden == (256, 256)
    assert CONV_TOPOLOGIES["vgg-small"].scaled(0.01).blocks == ((1, 1), (3, 3), (5, 5))
    assert TrainConfig(model="cnv", channel_scale=0.5).describe().startswith("CNV x0.5 W1A1")


@pytest.mark.parametrize("options, message", [
    ({"model": "mlp"}, "--model mlp needs --hidden"),
    ({"model": "sfc", "hidden": [64]}, "--model sfc has its own widths"),
    ({"model": "sfc", "channel_scale": 0.5}, "--channel-scale is for cnv and vgg-small"),
])
def test_shapes_that_do_not_fit_together_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**options)


def test_a_held_out_validation_set_is_reported_and_the_mlp_builds_bit_exactly(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--model", "mlp", "--hidden", "96,48", "--holdout", "300",
                 "--epochs", "2", "--out", str(run), "--no-progress"]) == 0
    assert "val acc" in capsys.readouterr().out
    summary = json.loads((run / "summary.json").read_text())
    assert 0 < summary["final_val_acc"] <= 1 and summary["config"]["holdout"] == 300
    with open(run / "metrics.csv") as f:
        assert all(float(row["val_acc"]) > 0 for row in csv.DictReader(f))
    assert main(["build", str(run), "--out", str(tmp_path / "build"), "--verify", "50",
                 "--no-progress"]) == 0
    assert "folded dataflow: class 50/50 identical" in capsys.readouterr().out


def test_a_quarter_width_cnv_trains_and_builds_bit_exactly(tmp_path, capsys):
    run = tmp_path / "cnv"
    assert main(["train", "--model", "cnv", "--channel-scale", "0.25", "--epochs", "1",
                 "--out", str(run), "--no-progress"]) == 0
    assert main(["build", str(run), "--out", str(tmp_path / "build"), "--verify", "20",
                 "--no-progress"]) == 0
    assert "folded dataflow: class 20/20 identical" in capsys.readouterr().out
