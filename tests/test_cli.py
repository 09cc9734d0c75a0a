import json
import subprocess
import sys
from pathlib import Path

from xnorflow.cli import main

XNORFLOW = Path(sys.executable).parent / "xnorflow"  # the installed console script


def test_console_script_help_lists_stages_and_pairs():
    out = subprocess.run([str(XNORFLOW), "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    for word in ("--quantizer", "bnn++", "SignSwish", "--resume", "--data-dir", "digits"):
        assert word in out
    top = subprocess.run([str(XNORFLOW), "--help"], capture_output=True, text=True).stdout
    assert "train" in top


def test_train_on_builtin_digits_then_refuse_overwrite_then_resume(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "--model", "tfc", "--epochs", "1", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    assert json.loads((out / "summary.json").read_text())["epochs_trained"] == 1
    assert main(args) == 2
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert main(args[:-3] + ["--epochs", "2", "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs_trained"] == 2


def test_bad_data_dir_is_a_clear_error(tmp_path, capsys):
    code = main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "run")])
    assert code == 1
    err = capsys.readouterr().err
    assert "missing: data directory not found" in err and "--data-dir" in err
