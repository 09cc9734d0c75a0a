"""The command line as a user meets it: every bad input ends with a message and an exit code,
never a traceback, and no file of the user's (or of an earlier stage) is lost."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from xnorflow.cli import main
from xnorflow.outputs import HIDDEN
from xnorflow.train.runs import CHECKPOINT, load_record

XNORFLOW = Path(sys.executable).parent / "xnorflow"  # the installed console script


def snapshot(folder: Path) -> dict:
    """Every file under ``folder`` with its bytes (to prove nothing was lost or changed),
    except xnorflow's own bookkeeping of what it wrote."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in HIDDEN}


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


def exit_code(argv: list[str]) -> int:
    """The command's exit code, whether the parser exits (bad options) or main returns."""
    try:
        return main(argv)
    except SystemExit as exit_:
        return exit_.code


def test_console_script_help_lists_stages_and_options():
    out = subprocess.run([str(XNORFLOW), "train", "--help"], capture_output=True, text=True,
                         check=True).stdout
    words = " ".join(out.split())  # undo argparse's line wrapping
    for text in ("--quantizer", "bnn++", "SignSwish", "--resume", "--data-dir", "digits",
                 "--threads", "local-binary options", "(default: 10 for proxconnect, 10 for "
                 "vispa, 50 for local-binary)"):
        assert text in words, text
    top = subprocess.run([str(XNORFLOW), "--help"], capture_output=True, text=True).stdout
    assert all(stage in top for stage in ("train", "export", "build", "deploy", "hls"))
    assert "exit codes" in top


# ------------------------------------------------------------------------------ train
def test_train_refuses_to_overwrite_then_resumes_after_ctrl_c(tmp_path, capsys,
                                                              ctrl_c_in_epoch_2):
    run = tmp_path / "run"
    args = ["train", "--model", "tfc", "--epochs", "2", "--out", str(run), "--no-progress"]
    assert main(args) == 130
    err = capsys.readouterr().err
    assert f"continue with: xnorflow train --resume --out {run}" in err.replace("Continue",
                                                                                 "continue")
    assert load_record(run / CHECKPOINT)["epoch"] == 1
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    ctrl_c_in_epoch_2()      # trains normally again

    before = snapshot(run)
    assert main(args) == 1
    assert "already holds a run; pass --resume" in capsys.readouterr().err
    assert snapshot(run) == before
    assert main(["train", "--resume", "--out", str(run), "--quantizer", "bc"]) == 2  # a usage error
    assert "--quantizer: the run has 'bnn', now 'bc'" in capsys.readouterr().err
    assert snapshot(run) == before
    assert main(["train", "--resume", "--out", str(run), "--no-progress"]) == 0
    assert "resumed" in capsys.readouterr().out
    assert json.loads((run / "summary.json").read_text())["epochs_trained"] == 2


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs: 0 must be >= 1"),
    (["--batch-size", "0"], "--batch-size: 0 must be >= 1"),
    (["--lr", "-0.1"], "--lr: -0.1 must be > 0"),
    (["--lr", "nan"], "--lr: nan must be a finite number > 0"),
    (["--dropout", "1"], "--dropout: 1 must be in [0, 1)"),
    (["--seed", "-1"], "--seed: -1 must be in [0, 2147483647]"),
    (["--seed", "x"], "--seed: 'x' is not an integer"),
    (["--threads", "-2"], "--threads: -2 must be >= 0"),
    (["--algo", "vispa", "--rank", "-1"], "--rank: -1 must be >= 0"),
    (["--algo", "local-binary", "--widths", "35,0"], "--widths: 0 must be >= 1"),
    (["--algo", "local-binary", "--widths", ","], "--widths: ',' is not comma-separated integers"),
    (["--algo", "local-binary", "--weight-bits", "40"], "--weight-bits: 40 must be in [3, 31]"),
    (["--algo", "local-binary", "--reinforcement", "1.5"], "--reinforcement: 1.5 must be in"),
    (["--widths", "35,35"], "--widths: only for --algo local-binary, not --algo proxconnect"),
    (["--algo", "local-binary", "--quantizer", "bnn"], "--quantizer: only for --algo "
                                                       "proxconnect, not --algo local-binary"),
])
def test_bad_train_options_exit_2_before_anything_is_written(tmp_path, capsys, args, message):
    assert exit_code(["train", *args, "--out", str(tmp_path / "run")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_bad_data_is_named(tmp_path, capsys):
    code = main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "missing"),
                 "--out", str(tmp_path / "run")])
    assert code == 1
    err = capsys.readouterr().err
    assert "missing: data directory not found" in err and "--data-dir" in err
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------ export
def test_export_never_writes_over_the_run_or_a_foreign_file(digits_tfc_run, tmp_path, capsys):
    run = copy_run(digits_tfc_run, tmp_path)
    before = snapshot(run)
    for target in ("model.pt", "checkpoint.pt"):
        assert main(["export", str(run), "--out", str(run / target)]) == 1
        assert "is an input of `xnorflow export`" in capsys.readouterr().err
    foreign = tmp_path / "theirs.onnx"
    foreign.write_text("someone else's graph")
    assert main(["export", str(run), "--out", str(foreign), "--verify", "0"]) == 1
    assert "exists and was not written by xnorflow" in capsys.readouterr().err
    assert foreign.read_text() == "someone else's graph"
    assert snapshot(run) == before
    assert main(["export", str(run), "--verify", "100", "--no-progress"]) == 0
    assert main(["export", str(run), "--verify", "100", "--no-progress"]) == 0  # its own file
    out = capsys.readouterr().out
    assert "QONNX: argmax 100/100 identical" in out and "[torch.onnx]" not in out
    assert {k: v for k, v in snapshot(run).items() if k in before} == before


def test_ctrl_c_during_export_writes_nothing(digits_tfc_run, tmp_path, capsys, monkeypatch):
    import xnorflow.export.run_export as run_export

    def interrupted(model):
        raise KeyboardInterrupt

    monkeypatch.setattr(run_export, "export_qonnx_model", interrupted)
    run = copy_run(digits_tfc_run, tmp_path)
    before = snapshot(run)
    assert main(["export", str(run)]) == 130
    assert "interrupted; no QONNX file was written" in capsys.readouterr().err
    assert snapshot(run) == before


def test_foreign_or_damaged_model_files_get_a_message(tmp_path, capsys):
    import torch

    folder = tmp_path / "notarun"
    folder.mkdir()
    torch.save(torch.nn.Linear(4, 2).state_dict(), folder / "model.pt")
    assert main(["export", str(folder)]) == 1
    assert "a bare PyTorch state_dict (2 tensors, e.g. 'weight')" in capsys.readouterr().err
    (folder / "model.pt").write_bytes(b"\x80\x02garbage")
    assert main(["build", str(folder), "--target-fps", "1000"]) == 1
    assert "not a PyTorch file, or a damaged" in capsys.readouterr().err
    assert main(["build", str(tmp_path), "--target-fps", "1000"]) == 1
    assert "no trained model (model.pt)" in capsys.readouterr().err


# ------------------------------------------------------------------------------ build
@pytest.mark.parametrize("args, message", [
    (["--target-fps", "0"], "--target-fps: 0 must be > 0"),
    (["--target-fps", "-3"], "--target-fps: -3 must be > 0"),
    (["--clock-mhz", "0", "--target-fps", "1"], "--clock-mhz: 0 must be in [1, 1000]"),
    (["--verify", "-1", "--target-fps", "1"], "--verify: -1 must be >= 0"),
    (["--board", "Pynq-Z9", "--target-fps", "1"], "invalid choice: 'Pynq-Z9'"),
])
def test_bad_build_options_exit_2(digits_tfc_run, capsys, args, message):
    assert exit_code(["build", str(digits_tfc_run), *args]) == 2
    assert message in capsys.readouterr().err


def test_build_refuses_a_folder_it_did_not_make(digits_tfc_run, tmp_path, capsys):
    mine = tmp_path / "mine"
    (mine / "report").mkdir(parents=True)
    (mine / "report" / "notes.txt").write_text("my notes")
    (mine / "codegen").mkdir()
    assert main(["build", str(digits_tfc_run), "--target-fps", "1000", "--out", str(mine)]) == 1
    assert "already holds files xnorflow did not write (codegen, report)" in \
        capsys.readouterr().err
    assert snapshot(mine) == {"report/notes.txt": b"my notes"}
    assert main(["build", str(digits_tfc_run), "--target-fps", "1000", "--out",
                 str(digits_tfc_run)]) == 1
    assert "is an xnorflow run folder, not a build folder" in capsys.readouterr().err
    assert main(["build", str(digits_tfc_run), "--target-fps", "1", "--folding-config",
                 "x.json"]) == 2
    assert "give at most one of --target-fps" in capsys.readouterr().err


def test_build_states_its_target_and_rebuilds_only_its_own_folder(digits_tfc_run, tmp_path,
                                                                  capsys, monkeypatch):
    monkeypatch.delenv("XILINX_VIVADO", raising=False)
    run = copy_run(digits_tfc_run, tmp_path)
    run_files = snapshot(run)
    code = main(["build", str(run), "--target-fps", "100000", "--until", "bitfile",
                 "--verify", "50", "--no-progress"])
    captured = capsys.readouterr()
    assert code == 3  # stopped before the Vivado steps, build kept
    for step in ("step_synthesize_bitfile", "step_make_driver", "step_create_stitched_ip"):
        assert step in captured.err
    assert "synthesis image with the Xilinx tools mounted" in captured.err
    assert "folded dataflow: class 50/50 identical to PyTorch's argmax" in captured.out
    assert "output: the class index, selected on chip" in captured.out
    assert "target 100,000 FPS reached" in captured.out
    assert "resources fit Pynq-Z1" in captured.out
    build = run / "build-Pynq-Z1"
    assert (build / "build_report.md").exists()
    assert list((build / "codegen").glob("*/top_MVAU_hls_*.cpp"))
    assert (build / "report" / "estimate_layer_cycles.json").exists()
    (build / "report" / "stale.json").write_text("{}")  # pretend an earlier build left it

    # the same folder again, now with a target no folding reaches: warning and exit 4
    code = main(["build", str(run), "--target-fps", "1000000000", "--until", "estimates",
                 "--verify", "0"])
    captured = capsys.readouterr()
    assert code == 4, captured.err
    assert "target 1,000,000,000 FPS MISSED" in captured.out
    assert "warning: the design misses its --target-fps" in captured.err
    assert not (build / "report" / "stale.json").exists()  # the earlier build's, replaced
    assert main(["build", str(run), "--target-fps", "1000000000", "--until", "estimates",
                 "--verify", "0", "--allow-misfit"]) == 0
    summary = json.loads((build / "build_summary.json").read_text())
    assert summary["target_met"] is False and summary["target_fps"] == 1_000_000_000
    assert {k: v for k, v in snapshot(run).items() if k in run_files} == run_files


def test_ctrl_c_during_the_finn_build_removes_the_partial_build(digits_tfc_run, tmp_path,
                                                                capsys, monkeypatch):
    """FINN's builder swallows KeyboardInterrupt and reports a failed build; xnorflow reports
    the interrupt (exit 130) and removes what the interrupted build wrote."""
    import xnorflow.hw.finn.steps as steps

    def interrupted(model, cfg):
        raise KeyboardInterrupt

    interrupted.__name__ = "step_round_and_clip_thresholds"
    monkeypatch.setitem(steps.STEPS_AFTER, "step_streamline", [interrupted])
    run_files = snapshot(digits_tfc_run)
    out = tmp_path / "build"
    code = main(["build", str(digits_tfc_run), "--target-fps", "1000", "--out", str(out),
                 "--verify", "0"])
    err = capsys.readouterr().err
    assert code == 130 and "interrupted; the partial build was removed" in err
    assert "FINN build failed" not in err
    assert not out.exists()
    assert snapshot(digits_tfc_run) == run_files


def test_a_failing_finn_step_is_a_message_not_a_traceback(digits_tfc_run, tmp_path, capsys,
                                                         monkeypatch):
    import xnorflow.hw.finn.steps as steps

    def broken(model, cfg):
        raise AssertionError("thresholds out of range in MultiThreshold_0")

    broken.__name__ = "step_round_and_clip_thresholds"
    monkeypatch.setitem(steps.STEPS_AFTER, "step_streamline", [broken])
    code = main(["build", str(digits_tfc_run), "--target-fps", "1000", "--out",
                 str(tmp_path / "b"), "--verify", "0"])
    err = capsys.readouterr().err
    assert code == 1
    assert ("FINN step step_round_and_clip_thresholds failed: AssertionError: thresholds out "
            "of range in MultiThreshold_0") in err
    assert "Traceback" not in err and "build_dataflow.log" in err


# ------------------------------------------------------------------------------ local binary
def test_local_binary_train_export_and_resume_on_digits(tmp_path, capsys):
    out = tmp_path / "bmlp"
    args = ["train", "--algo", "local-binary", "--widths", "75,35", "--group-sizes", "25,35",
            "--epochs", "6", "--out", str(out), "--no-progress"]
    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == "local-binary" and summary["epochs_trained"] == 6
    assert summary["final_test_acc"] > 0.45  # 10 classes: chance is 0.1 (66 % after 8 epochs)
    # a local binary run may be lengthened: its schedule does not depend on the length
    assert main(["train", "--resume", "--out", str(out), "--epochs", "7", "--no-progress"]) == 0
    assert json.loads((out / "summary.json").read_text())["epochs_trained"] == 7
    assert main(["export", str(out), "--verify", "200", "--no-progress"]) == 0
    assert "argmax 200/200 identical" in capsys.readouterr().out


def test_local_binary_option_errors_are_clear(tmp_path, capsys):
    assert main(["train", "--algo", "local-binary", "--widths", "100", "--out",
                 str(tmp_path / "c")]) == 2   # a bad option, refused before any work
    assert "pass --group-sizes" in capsys.readouterr().err
    for value in ("none", "uint8"):  # the trainer takes +-1 pixels only
        assert main(["train", "--algo", "local-binary", "--binarization", value, "--out",
                     str(tmp_path / "d")]) == 2
        assert f"--binarization {value!r} is not one of threshold, centered-sign, median" in \
            capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_a_recipe_sets_its_options_and_explicit_options_win(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--recipe", "lfc-mnist", "--dataset", "digits", "--model", "tfc",
                 "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    config = json.loads((run / "summary.json").read_text())["config"]
    assert (config["augment"], config["dropout"], config["quantizer"]) == ("affine", 0.2, "bnn")
    assert (config["dataset"], config["model"], config["epochs"]) == ("digits", "tfc", 1)
    assert main(["train", "--recipe", "lfc-mnist", "--resume", "--out", str(run)]) == 2
    assert "--recipe sets the options of a new run" in capsys.readouterr().err
