"""Ctrl-C at any moment of a stage, the first seconds included (while torch and FINN import):
exit code 130, one message, no traceback, and no half-written output."""

import shutil
import signal
import subprocess
import sys
import time

import pytest

CLI = [sys.executable, "-m", "xnorflow.cli"]


def interrupt_after(args: list[str], seconds: float) -> subprocess.CompletedProcess:
    process = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    time.sleep(seconds)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def assert_one_interrupt_message(done: subprocess.CompletedProcess) -> None:
    if done.returncode == 0 and "interrupted" not in done.stderr:
        pytest.skip("the stage finished before the signal")  # a fast machine: nothing to check
    assert done.returncode == 130, done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.count("interrupted") == 1, done.stderr


def stage_args(stage: str, run, tmp_path) -> list[str]:
    return {"train": ["train", "--out", str(tmp_path / "new-run"), "--epochs", "50"],
            "export": ["export", str(run), "--out", str(tmp_path / "m.onnx")],
            "build": ["build", str(run), "--out", str(tmp_path / "build"), "--verify", "0"],
            }[stage]


def check_nothing_half_written(stage: str, run, tmp_path, before: dict) -> None:
    assert {p.name: p.stat().st_mtime_ns for p in run.iterdir()} == before
    if stage == "export":
        assert not (tmp_path / "m.onnx").exists()
    if stage == "build":
        assert not (tmp_path / "build").exists()
    if stage == "train" and (tmp_path / "new-run").exists():  # resumable, or not there
        assert (tmp_path / "new-run" / "checkpoint.pt").is_file()


def interrupt_stage_of_a_copied_run(stage: str, seconds: float, digits_tfc_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(digits_tfc_run, run)
    before = {p.name: p.stat().st_mtime_ns for p in run.iterdir()}
    assert_one_interrupt_message(interrupt_after(stage_args(stage, run, tmp_path), seconds))
    check_nothing_half_written(stage, run, tmp_path, before)


@pytest.mark.parametrize("stage,seconds", [("export", 1.0), ("build", 2.0), ("train", 1.5)])
def test_ctrl_c_while_the_stage_starts(stage, seconds, digits_tfc_run, tmp_path):
    interrupt_stage_of_a_copied_run(stage, seconds, digits_tfc_run, tmp_path)


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [0.5, 2.5, 3.5, 4.5, 6.0, 10.0])
@pytest.mark.parametrize("stage", ["export", "build", "train"])
def test_ctrl_c_at_any_moment(stage, seconds, digits_tfc_run, tmp_path):
    interrupt_stage_of_a_copied_run(stage, seconds, digits_tfc_run, tmp_path)


@pytest.fixture(scope="module")
def digits_build(digits_tfc_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("interrupts") / "build"
    done = subprocess.run([*CLI, "build", str(digits_tfc_run), "--out", str(out), "--verify",
                           "0", "--no-progress"], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.slow
@pytest.mark.parametrize("seconds", [1.0, 2.5, 4.0])
def test_ctrl_c_during_deploy(seconds, digits_build, tmp_path):
    bundle = tmp_path / "bundle"
    assert_one_interrupt_message(interrupt_after(["deploy", str(digits_build), "--out",
                                                  str(bundle)], seconds))
    if bundle.exists():  # every file whole: no temporary files left behind
        assert not [p.name for p in bundle.rglob("*.tmp")]


def test_a_ctrl_c_inside_a_callback_is_noted_not_printed(capsys, monkeypatch):
    """Python cannot raise from a garbage-collection or weakref callback; it prints what such a
    callback raised. Ctrl-C landing there is noted (the stage stops at its next step) and not
    printed as a trace; any other error there still is."""
    from xnorflow import interrupts
    from xnorflow.cli import _unraisable

    class RaisesWhenCollected:
        def __init__(self, error):
            self.error = error

        def __del__(self):
            raise self.error

    monkeypatch.setattr(sys, "unraisablehook", _unraisable)
    interrupts.note()
    try:
        RaisesWhenCollected(KeyboardInterrupt())  # collected at once: __del__ raises
        assert capsys.readouterr().err == ""
        RaisesWhenCollected(ValueError("a real bug"))
        assert "a real bug" in capsys.readouterr().err
        with pytest.raises(KeyboardInterrupt):
            interrupts.check()  # the next step of the stage raises it again
    finally:
        interrupts.clear()
