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


def test_export_and_build_a_digits_run(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    run = tmp_path / "run"
    assert main(["train", "--model", "tfc", "--epochs", "2", "--out", str(run),
                 "--no-progress"]) == 0
    assert main(["export", str(run), "--verify", "100", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "QONNX: argmax 100/100 identical" in out and (run / "model.qonnx.onnx").exists()
    code = main(["build", str(run), "--target-fps", "100000", "--until", "bitfile",
                 "--verify", "50", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 3  # stopped before the Vivado steps, build kept
    assert "step_synthesize_bitfile" in captured.err
    assert "folded dataflow: argmax 50/50 identical" in captured.out
    assert (run / "build-Pynq-Z1" / "build_report.md").exists()


def test_build_errors_are_clear(tmp_path, capsys):
    assert main(["build", str(tmp_path), "--target-fps", "1000"]) == 1
    assert "no trained model" in capsys.readouterr().err
    run = tmp_path / "run"
    main(["train", "--model", "tfc", "--epochs", "1", "--out", str(run), "--no-progress"])
    assert main(["build", str(run), "--board", "Pynq-Z9", "--target-fps", "1000"]) == 1
    assert "unknown board 'Pynq-Z9'" in capsys.readouterr().err


def test_local_binary_train_export_and_resume_on_digits(tmp_path, capsys):
    out = tmp_path / "bmlp"
    args = ["train", "--algo", "local-binary", "--widths", "75,35", "--group-sizes", "25,35",
            "--epochs", "6", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "local-binary" and summary["epochs_trained"] == 6
    assert summary["final_test_acc"] > 0.45  # 10 classes: chance is 0.1 (66 % after 8 epochs)
    assert main(args[:-3] + ["--epochs", "7", "--out", str(out), "--resume"]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs_trained"] == 7
    assert main(["export", str(out), "--verify", "200", "--no-progress"]) == 0
    assert "argmax 200/200 identical" in capsys.readouterr().out


def test_local_binary_option_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--algo", "local-binary", "--quantizer", "bnn",
                 "--out", str(tmp_path / "a")]) == 1
    assert "--quantizer: only for --algo proxconnect" in capsys.readouterr().err
    assert main(["train", "--widths", "35,35", "--out", str(tmp_path / "b")]) == 1
    assert "--widths: only for --algo local-binary" in capsys.readouterr().err
    assert main(["train", "--algo", "local-binary", "--widths", "100", "--out",
                 str(tmp_path / "c")]) == 1
    assert "pass --group-sizes" in capsys.readouterr().err
    assert main(["train", "--algo", "local-binary", "--binarization", "none", "--out",
                 str(tmp_path / "d")]) == 1
    assert "needs +-1 inputs" in capsys.readouterr().err
