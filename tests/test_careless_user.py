"""What a careless user does to the command line, fed through it: two commands into one
folder, a rebuild that fails, sizes that cannot fit, odd option values. Each case checks the
exit code, the message and the files."""

import json
import shlex
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from xnorflow.cli import main
from xnorflow.outputs import HIDDEN, LOCK, PREVIOUS

CLI = [sys.executable, "-m", "xnorflow.cli"]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name not in HIDDEN}


def copy_run(run: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(run, tmp_path / "run"))


# ------------------------------------------------------------------ one command per folder
HOLDER = textwrap.dedent("""
    import sys, time
    from xnorflow.outputs import claim_folder
    claim_folder(sys.argv[1], sys.argv[2])
    print("held", flush=True)
    time.sleep(120)
""")


@pytest.fixture
def held_folder(tmp_path):
    """A folder that another live xnorflow process is writing (kind given by the test)."""
    holders = []

    def hold(kind: str) -> Path:
        path = tmp_path / f"held-{kind}"
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), kind],
                                  stdout=subprocess.PIPE, text=True)
        assert holder.stdout.readline().strip() == "held"
        holders.append(holder)
        return path

    yield hold
    for holder in holders:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("command, kind", [
    (["train", "--epochs", "1"], "run"),
    (["build", "{run}", "--verify", "0"], "build"),
    (["hls", "--widths", "35,35", "--group-sizes", "7,7"], "hls"),
])
def test_a_folder_another_command_is_writing_is_refused(command, kind, held_folder,
                                                        digits_tfc_run, capsys):
    out = held_folder(kind)
    before = snapshot(out)
    args = [a.format(run=digits_tfc_run) for a in command] + ["--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert f"{out} is in use by another xnorflow command (pid" in err
    assert "would mix their outputs" in err and "Traceback" not in err
    assert snapshot(out) == before


def test_two_trainings_into_one_folder_the_second_is_refused_and_the_first_kept(tmp_path):
    out = tmp_path / "run"
    train = [*CLI, "train", "--model", "tfc", "--epochs", "15", "--out", str(out),
             "--no-progress"]
    first = subprocess.Popen([*train, "--seed", "1"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    for _ in range(600):  # until the first holds the folder
        if (out / LOCK).is_file() or first.poll() is not None:
            break
        time.sleep(0.05)
    second = subprocess.run([*train, "--seed", "2"], capture_output=True, text=True)
    first_out, first_err = first.communicate(timeout=300)
    assert first.returncode == 0, first_err
    assert second.returncode == 1
    assert "is in use by another xnorflow command" in second.stderr
    assert json.loads((out / "summary.json").read_text())["config"]["seed"] == 1


# ------------------------------------------------------------------ rebuilds keep the good build
def test_a_failing_rebuild_keeps_the_earlier_build_whole(digits_tfc_run, tmp_path):
    """Two commands, as a user runs them (in one process FINN's log handler of the first build
    would go on writing into the kept log)."""
    run = copy_run(digits_tfc_run, tmp_path)
    out = tmp_path / "build"
    build = [*CLI, "build", str(run), "--out", str(out), "--verify", "20", "--until",
             "estimates", "--no-progress"]
    first = subprocess.run(build, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("folded dataflow: class 20/20 identical") == 1  # once a stage
    before = snapshot(out)
    folding = tmp_path / "folding.json"
    folding.write_text(json.dumps({"MVAU_hls_0": {"PE": 3, "SIMD": 1}}))  # 3 divides no width
    second = subprocess.run([*build, "--folding-config", str(folding)], capture_output=True,
                            text=True)
    assert second.returncode == 1
    err = second.stderr
    assert "PE" in err and f"The earlier build in {out} is kept as it was" in err
    failed_log = out / "build_dataflow.failed.log"
    assert str(failed_log) in err and failed_log.is_file()
    after = snapshot(out)
    assert after.pop("build_dataflow.failed.log")
    assert after == before  # the report, the graphs, the HLS sources: all as they were
    assert not (out / PREVIOUS).exists()


# ------------------------------------------------------------------ sizes refused from the shape
def test_hls_refuses_a_design_too_large_before_allocating_it(tmp_path, capsys, monkeypatch):
    import xnorflow.train.local_binary.model as model

    def no_allocation(*args, **kwargs):
        raise AssertionError("the weights were allocated before the size was checked")

    monkeypatch.setattr(model, "init_state", no_allocation)
    out = tmp_path / "hls"
    assert main(["hls", "--widths", "100000,100000", "--group-sizes", "100,100", "--out",
                 str(out)]) == 1
    err = capsys.readouterr().err
    assert "needs 170438.8 Mbit of on-chip memory" in err and "Use narrower layers" in err
    assert not out.exists()


# ------------------------------------------------------------------ odd option values
@pytest.mark.parametrize("args, message", [
    (["build", "RUN", "--clock-mhz", "1e-9"], "--clock-mhz: 1e-09 must be in [1, 1000]"),
    (["train", "--algo", "local-binary", "--widths", "35,,35", "--out", "X"],
     "--widths: '35,,35' is not comma-separated integers"),
    (["hls", "--widths", "35,35,", "--out", "X"], "'35,35,' is not comma-separated integers"),
])
def test_option_values_that_make_no_sense_are_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as stopped:
        main(args)
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err


def test_more_threads_than_cores_is_said(tmp_path, capsys):
    assert main(["train", "--model", "tfc", "--epochs", "1", "--threads", "1000", "--out",
                 str(tmp_path / "run"), "--no-progress"]) == 0
    assert "warning: --threads 1000 is more than the" in capsys.readouterr().err


def test_a_folder_as_folding_config_is_named_as_a_folder(digits_tfc_run, tmp_path, capsys):
    assert main(["build", str(digits_tfc_run), "--folding-config", str(tmp_path), "--out",
                 str(tmp_path / "b")]) == 1
    assert f"{tmp_path} is a folder; --folding-config takes a JSON file" in \
        capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_the_suggested_validate_command_survives_spaces_in_the_path(tmp_path):
    from xnorflow.stages.deploy import DeployResult

    bundle = tmp_path / "my bundle"
    line = DeployResult(bundle, 10, False).lines()[-1]
    command = line.split("check it here: ", 1)[1]
    assert shlex.split(command) == ["python", str(bundle / "validate.py"), "--simulate"]


def test_export_without_verification_drops_the_stale_report(digits_tfc_run, tmp_path, capsys):
    run = copy_run(digits_tfc_run, tmp_path)
    assert main(["export", str(run), "--verify", "50", "--no-progress"]) == 0
    report = run / "model.qonnx.verify.json"
    assert json.loads(report.read_text())["images"] == 50
    assert main(["export", str(run), "--verify", "0", "--no-progress"]) == 0
    assert not report.exists() and (run / "model.qonnx.onnx").is_file()


def test_a_file_as_data_dir_is_named_as_a_file(tmp_path, capsys):
    not_a_folder = tmp_path / "mnist.tar.gz"
    not_a_folder.write_bytes(b"\x1f\x8b")
    assert main(["train", "--dataset", "mnist", "--data-dir", str(not_a_folder), "--out",
                 str(tmp_path / "run")]) == 1
    assert f"{not_a_folder} is a file, not a folder" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
