"""What a careless user does to the command line, fed through it: two commands into one
folder, a rebuild that fails, sizes that cannot fit, odd option values. Each case checks the
exit code, the message and the files."""

import json
import shlex
import shutil
import signal
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


# ------------------------------------------------------------------ passwords of --storage
@pytest.mark.parametrize("url, shown", [
    ("postgresql://u@h/x?password=secretpw", "postgresql://u@h/x?password=***"),
    ("postgresql://u:secretpw@h:5432/x?sslmode=require&PASSWORD=secretpw",
     "postgresql://u:***@h:5432/x?sslmode=require&PASSWORD=***"),
    ("postgresql://u:se@cretpw@h/x", "postgresql://u:***@h/x"),    # an unescaped '@'
    ("postgresql://:secretpw@h", "postgresql://:***@h"),            # no user name
    ("mysql+pymysql://u@h/x?passwd=secretpw", "mysql+pymysql://u@h/x?passwd=***"),
    ("postgresql//u:secretpw@h", "***@h"),                          # no URL SQLAlchemy reads
    ("sqlite:////tmp/my runs/study.db", "sqlite:////tmp/my runs/study.db"),
])
def test_a_storage_url_is_shown_without_its_password(url, shown):
    from xnorflow.explore.study import masked

    assert masked(url) == shown


def test_an_unreachable_storage_hides_a_password_given_as_a_parameter(tmp_path, capsys):
    url = "postgresql://explorer@127.0.0.1:9/studies?password=secretpw"
    assert main(["explore", "--out", str(tmp_path / "x"), "--storage", url, "--epochs", "1",
                 "--no-progress"]) == 1
    captured = capsys.readouterr()
    assert "postgresql://explorer@127.0.0.1:9/studies?password=***: cannot open" in captured.err
    assert "secretpw" not in captured.out + captured.err


# ---------------------------------------------------- printed commands paste as they are
def test_the_resume_command_after_ctrl_c_survives_spaces_and_quotes(tmp_path, capsys,
                                                                     ctrl_c_in_epoch_2):
    run = tmp_path / "my runs" / "it's here"
    assert main(["train", "--model", "tfc", "--epochs", "2", "--out", str(run),
                 "--no-progress"]) == 130
    command = capsys.readouterr().err.split("Continue with: ", 1)[1].strip()
    words = shlex.split(command)
    assert words == ["xnorflow", "train", "--resume", "--out", str(run)]
    ctrl_c_in_epoch_2()      # trains normally again
    assert main([*words[1:], "--no-progress"]) == 0      # pasted as printed: it continues
    assert (run / "model.pt").is_file()


def test_the_resume_command_of_several_processes_is_quoted_too():
    from xnorflow.train.distributed import resume_command

    command = resume_command("/data/my runs/a", nproc=2, nnodes=1)
    assert shlex.split(command) == ["xnorflow", "train", "--resume", "--out", "/data/my runs/a",
                                    "--nproc", "2"]


# ---------------------------------------------------- malformed values: exit 2, before any work
@pytest.mark.parametrize("rdzv, problem", [
    ("127.0.0.1:abc", "the port 'abc' is not a number"),
    (":99999", "the port 99999 is not in 1-65535; no host before ':'"),
    (":::", "no port after ':'; an IPv6 address goes in brackets"),
    ("node0", "no port"),
])
def test_a_malformed_rdzv_is_a_usage_error(rdzv, problem, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--nproc", "1", "--nnodes", "2", "--rdzv", rdzv, "--out",
                 str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        f"error: --rdzv {rdzv!r}: {problem}. Give HOST:PORT, the first machine's name or "
        f"address and a free port on it (e.g. node0:29500, or [fe80::1]:29500 for an IPv6 "
        f"address), the same on every machine.")
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize("storage, message", [
    ("notaurl", "--storage notaurl: not a database URL; give an SQLAlchemy URL such as "
                "postgresql://USER:PASSWORD@HOST/DB"),
    ("postgresql://u:se@cretpw@h/x", "--storage postgresql://u:***@h/x: the password holds "
                                     "an '@'"),
    ("postgresql://u:pw@h:99999/x", "--storage postgresql://u:***@h:99999/x: port 99999 is "
                                    "not in 1-65535"),
    ("nosuchdb://u:pw@h/x", "--storage nosuchdb://u:***@h/x: SQLAlchemy knows no database "
                            "'nosuchdb'"),
])
def test_a_malformed_storage_is_a_usage_error(storage, message, tmp_path, capsys,
                                              monkeypatch):
    import xnorflow.stages.explore as stage

    def no_data(*args, **kwargs):
        raise AssertionError("the data was loaded before --storage was checked")

    monkeypatch.setattr(stage, "_data_identity", no_data)
    out = tmp_path / "x"
    assert main(["explore", "--out", str(out), "--storage", storage, "--no-progress"]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {message}") and captured.err.count("\n") == 1
    assert "cretpw" not in captured.err and ":pw@" not in captured.err
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["hls", "--widths", "7"], "error: --widths 7: no published group size for width 7; pass "
                               "--group-sizes, one per layer (the paper used 35: 35, "),
    (["hls", "--widths", "35,35", "--group-sizes", "7"],
     "error: --widths 35,35 has 2 hidden layers but --group-sizes 7 has 1 size; give one "
     "group size per layer"),
    (["hls", "--widths", "35", "--group-sizes", "9,9"], "has 1 hidden layer but --group-sizes "
                                                        "9,9 has 2 sizes"),
    (["hls", "--widths", "7", "--group-sizes", "9"], "error: --group-sizes: group size 9 for "
                                                     "the hidden width 7; need 1 <= group size "
                                                     "<= width"),
    (["train", "--algo", "local-binary", "--widths", "7"], "no published group size for "
                                                           "width 7"),
])
def test_group_sizes_that_do_not_fit_the_widths_are_usage_errors(args, message, tmp_path,
                                                                 capsys):
    out = tmp_path / "out"
    assert main([*args, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert message in captured.err and captured.err.count("\n") == 1
    assert captured.out == "" and not out.exists()


@pytest.mark.parametrize("args, message", [
    (["train", "--lr", "inf"], "--lr: inf must be a finite number > 0"),
    (["train", "--lr", "nan"], "--lr: nan must be a finite number > 0"),
    (["train", "--algo", "vispa", "--momentum", "nan"],
     "--momentum: nan must be a finite number in [0, 1)"),
    (["hls", "--widths", "35", "--clock-ns", "inf"], "--clock-ns: inf must be a finite number"),
    (["build", "RUN", "--clock-mhz=-inf"], "--clock-mhz: -inf must be a finite number in "
                                           "[1, 1000]"),
    (["explore", "--budgets", "0.5", "nan"], "--budgets: nan must be a finite number in (0, 1]"),
])
def test_infinite_or_nan_numbers_are_named_as_such(args, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as stopped:
        main([*args, "--out", str(out)])
    assert stopped.value.code == 2
    assert message in capsys.readouterr().err and not out.exists()


def test_a_configuration_built_in_python_refuses_infinity_the_same_way():
    from xnorflow.options import ConfigError
    from xnorflow.train.configs import TrainConfig

    with pytest.raises(ConfigError, match=r"--lr inf must be a finite number > 0"):
        TrainConfig(lr=float("inf"))


# ---------------------------------------------------- a ternary run is valid, not damaged
@pytest.fixture(scope="module")
def authors_run(tmp_path_factory) -> Path:
    """A local binary run of the authors' ternary convention (one epoch, one layer of 35)."""
    run = tmp_path_factory.mktemp("authors") / "run"
    assert main(["train", "--algo", "local-binary", "--convention", "authors", "--widths", "35",
                 "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    return run


@pytest.mark.parametrize("stage", ["export", "build"])
def test_a_run_of_the_authors_convention_is_refused_as_ternary_not_damaged(stage, authors_run,
                                                                           tmp_path, capsys):
    before = snapshot(authors_run)
    out = tmp_path / ("model.onnx" if stage == "export" else "build")
    assert main([stage, str(authors_run), "--out", str(out), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: the run {authors_run} (BMLP 35 W1A1 (local binary, authors' "
                          f"ternary convention, digits)) cannot be exported or built with "
                          f"FINN: it was trained with --convention authors, so its weights")
    assert "--convention bipolar" in err and "damaged" not in err
    assert not out.exists() and snapshot(authors_run) == before


# ---------------------------------------------------- refusals that do not need the work come first
@pytest.fixture
def interrupted_run(tmp_path) -> Path:
    """A digits TFC run of 3 epochs stopped after its first (as Ctrl-C leaves it)."""
    from xnorflow.train.configs import TrainConfig
    from xnorflow.train.trainer import Trainer

    run = tmp_path / "run"
    Trainer(TrainConfig(model="tfc", epochs=3), run, show_progress=False,
            verbose=False).fit(stop_after=1)
    return run


def test_resume_refuses_a_user_file_among_its_outputs_before_training(interrupted_run,
                                                                      capsys, monkeypatch):
    from xnorflow.train.trainer import Trainer

    def no_training(*args, **kwargs):
        raise AssertionError("an epoch was trained before the outputs were checked")

    monkeypatch.setattr(Trainer, "train_epoch", no_training)
    (interrupted_run / "summary.json").write_text('{"mine": true}')
    before = snapshot(interrupted_run)
    assert main(["train", "--resume", "--out", str(interrupted_run), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == (f"error: {interrupted_run / 'summary.json'} exists and was not "
                           f"written by xnorflow; `xnorflow train` will not replace it. Move it "
                           f"away or choose another output path.")
    assert snapshot(interrupted_run) == before


def test_a_run_recorded_on_cuda_resumed_without_a_gpu_names_the_run_not_the_user(
        interrupted_run, capsys):
    import torch

    from xnorflow.train.runs import load_record, save_record

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: the recorded device is there")
    checkpoint = interrupted_run / "checkpoint.pt"
    record = load_record(checkpoint, content="checkpoint")
    record["config"]["device"] = record["device"] = "cuda"   # as a run trained with --device cuda
    save_record(record, checkpoint)
    before = snapshot(interrupted_run)
    assert main(["train", "--resume", "--out", str(interrupted_run), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: the run in {interrupted_run} was trained with --device cuda, "
                          f"which --resume keeps unless --device is given: this machine has no "
                          f"usable GPU; ")
    assert err.rstrip().endswith("Use --device cpu (or auto).") and err.count("\n") == 1
    assert snapshot(interrupted_run) == before
    assert main(["train", "--resume", "--out", str(interrupted_run), "--device", "cpu",
                 "--no-progress"]) == 0      # as the message says: it continues on the CPU
    assert "the run continues with device cuda -> cpu from epoch 1" in capsys.readouterr().out


# ---------------------------------------------------- a refused command leaves no folder behind
@pytest.mark.parametrize("args, message", [
    (["--storage", "postgresql://u@127.0.0.1:1/x", "--epochs", "1"],
     "error: --storage postgresql://u@127.0.0.1:1/x: cannot open the study database"),
    (["--worker"], "error: there is no study 'xnorflow' in this storage to join as a --worker"),
])
def test_a_refused_explore_removes_the_folder_it_made(args, message, tmp_path, capsys):
    out = tmp_path / "exploration"
    assert main(["explore", "--out", str(out), *args, "--no-progress"]) == 1
    assert capsys.readouterr().err.startswith(message)
    assert not out.exists()
    out.mkdir()       # a folder the user made is left where it is
    assert main(["explore", "--out", str(out), *args, "--no-progress"]) == 1
    assert out.is_dir() and not (out / "study.db").exists()


# ---------------------------------------------------- several processes: what the machine holds
def test_more_processes_than_the_machine_holds_are_refused_before_any_starts(tmp_path, capsys):
    from xnorflow.train.launch import usable_cores

    out = tmp_path / "run"
    cores = usable_cores()
    assert main(["train", "--nproc", "64", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: --nproc 64: this machine has {cores} core")
    assert f"at most {cores} process" in err and f"Use --nproc {cores} or fewer" in err
    assert "--nnodes" in err and err.count("\n") == 1 and not out.exists()


def test_processes_that_memory_cannot_hold_are_refused(tmp_path, capsys, monkeypatch):
    import xnorflow.train.launch as launch

    monkeypatch.setattr(launch, "usable_cores", lambda: 8)
    monkeypatch.setattr(launch, "available_megabytes", lambda: 1000)
    assert main(["train", "--nproc", "4", "--out", str(tmp_path / "run")]) == 2
    assert ("--nproc 4: this machine has 8 cores and 1.0 GiB of memory available (a process "
            "takes about 450 MB); at most 2 processes fit") in capsys.readouterr().err


def descendants(pid: int) -> list:
    import psutil

    return psutil.Process(pid).children(recursive=True)


def gone_within(processes: list, seconds: float) -> list:
    """The processes still alive after ``seconds`` (then killed, not left to the machine)."""
    import psutil

    _, alive = psutil.wait_procs(processes, timeout=seconds)
    for process in alive:
        process.kill()
    return alive


def start_two_processes(run: Path, **pipes) -> subprocess.Popen:
    """`train --nproc 2` of TFC on digits, long enough to be stopped while training."""
    return subprocess.Popen([*CLI, "train", "--model", "tfc", "--epochs", "500", "--batch-size",
                             "50", "--threads", "1", "--no-progress", "--nproc", "2", "--out",
                             str(run)], start_new_session=True, text=True, **pipes)


def wait_until(condition, process: subprocess.Popen, seconds: float = 180) -> None:
    end = time.monotonic() + seconds
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "the run did not get there"
        time.sleep(0.05)


@pytest.mark.parametrize("when", ["starting", "training"])
def test_sigterm_to_the_launcher_ends_the_run_and_its_processes_within_seconds(when, tmp_path):
    run = tmp_path / "run"
    launcher = start_two_processes(run, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if when == "starting":   # its processes exist but have not trained
        wait_until(lambda: len(descendants(launcher.pid)) >= 2, launcher)
    else:
        wait_until((run / "checkpoint.pt").is_file, launcher)
    processes = descendants(launcher.pid)
    sent = time.monotonic()
    launcher.send_signal(signal.SIGTERM)
    out, err = launcher.communicate(timeout=60)
    assert time.monotonic() - sent < 20 and launcher.returncode == 130, err
    assert gone_within(processes, 5) == []
    assert "Traceback" not in err


def test_a_launcher_killed_outright_takes_its_processes_with_it(tmp_path):
    run = tmp_path / "run"
    launcher = start_two_processes(run, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until((run / "checkpoint.pt").is_file, launcher)
    processes = [p for p in descendants(launcher.pid) if "xnorflow.cli" in p.cmdline()]
    assert len(processes) == 2
    launcher.kill()          # kill -9: no clean-up of its own
    launcher.wait()
    assert gone_within(processes, 10) == []
    assert (run / "checkpoint.pt").is_file()   # the last finished epoch is kept
