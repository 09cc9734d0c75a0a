"""`xnorflow explore` as an Optuna study: free MLP shapes and all three trainers on digits, every
trial trained, folded to fit and checked bit-exactly; the study continued, joined by workers
(SQLite here, PostgreSQL in test_explore_postgres.py), a killed worker's trial retried, Ctrl-C
leaving the study intact; studies of other settings or other code refused."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest

from xnorflow.cli import main
from xnorflow.explore.pareto import pareto_front
from xnorflow.explore.study import CODE_ATTR, default_storage

CLI = [sys.executable, "-m", "xnorflow.cli"]
# small networks of the three trainers: a few seconds per trial on digits
SMALL = ["--epochs", "1", "--verify", "20", "--depths", "1", "--widths", "64", "128",
         "--lb-widths", "35", "75", "--group-sizes", "35", "--no-progress"]
STATES = optuna.trial.TrialState


def study_of(folder: Path, name: str = "xnorflow"):
    return optuna.load_study(study_name=name, storage=default_storage(folder))


def test_pareto_front_keeps_the_points_nothing_beats_in_all_three():
    def point(name, acc, fps, peak, fits=True, identical=True):
        return {"name": name, "fits": fits, "identical": identical, "test_accuracy": acc,
                "estimated_fps": fps, "peak_share": peak}

    points = [point("slow-accurate", 0.9, 1e3, 0.5), point("fast", 0.8, 1e5, 0.5),
              point("dominated", 0.8, 1e4, 0.5), point("tie", 0.9, 1e3, 0.5),
              point("small", 0.8, 1e4, 0.2), point("misfit", 0.99, 1e6, 0.1, fits=False),
              point("differs", 0.99, 1e6, 0.1, identical=False)]
    assert pareto_front(points) == {"slow-accurate", "fast", "tie", "small"}


@pytest.fixture(scope="module")
def exploration(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("explore") / "x"
    assert main(["explore", "--out", str(out), "--trials", "4", "--algos", "proxconnect",
                 "vispa", "local-binary", *SMALL]) == 0
    return out


def test_every_trial_is_trained_folded_to_fit_and_checked(exploration):
    with open(exploration / "pareto.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    for row in rows:
        assert row["bit-exact check"] == "identical on 20 images", row
        assert float(row["peak use"].rstrip("%")) <= 80 and row["budget"] == "80%"
    assert any(row["Pareto"] == "yes" for row in rows)
    page = (exploration / "pareto.html").read_text()
    assert page.count("<circle") == 4 and "sortBy" in page
    assert (exploration / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    trials = study_of(exploration).get_trials(states=(STATES.COMPLETE,))
    assert len(trials) == 4
    for trial in trials:   # the study's numbers are those of the trial's own build
        build = json.loads(Path(trial.user_attrs["report"]).with_name(
            "build_summary.json").read_text())
        assert trial.values[1] == build["estimated_fps"] == trial.user_attrs["estimated_fps"]
        assert trial.values[2] == max(build["utilization"].values())
        assert build["folding"]["mode"] == "fit"
        assert Path(trial.user_attrs["folder"]).parent == exploration / "trials" / "xnorflow"
        assert trial.constraints == {"resources_over_budget": trial.values[2] - 0.8,
                                     "differs_from_pytorch": 0.0}


def test_the_same_command_continues_the_study_and_keeps_every_trial(exploration, capsys):
    before = {t.number: (t.values, t.user_attrs) for t in study_of(exploration).get_trials()}
    assert main(["explore", "--out", str(exploration), "--trials", "1", "--algos",
                 "proxconnect", "vispa", "local-binary", *SMALL]) == 0
    after = {t.number: (t.values, t.user_attrs) for t in study_of(exploration).get_trials()}
    assert len(after) == 5 and all(after[n] == before[n] for n in before)
    assert "this command ran 1 trial" in capsys.readouterr().out


def test_other_settings_are_refused_with_the_difference(exploration, capsys):
    assert main(["explore", "--out", str(exploration), "--trials", "1", "--algos",
                 "proxconnect", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "was created with other settings" in err
    assert "space.algos: the study has ['proxconnect', 'vispa', 'local-binary']" in err


def test_a_worker_takes_the_study_settings_and_joins_from_its_own_folder(exploration, tmp_path,
                                                                       capsys):
    storage = default_storage(exploration)
    assert main(["explore", "--out", str(tmp_path / "w"), "--storage", storage, "--worker",
                 "--epochs", "3"]) == 2
    assert "--epochs: a --worker takes the study's own settings" in capsys.readouterr().err
    count = len(study_of(exploration).get_trials())
    assert main(["explore", "--out", str(tmp_path / "w"), "--storage", storage, "--worker",
                 "--trials", "1", "--no-progress"]) == 0
    trials = study_of(exploration).get_trials()
    assert len(trials) == count + 1
    assert Path(trials[-1].user_attrs["folder"]).is_relative_to(tmp_path / "w")
    assert main(["explore", "--out", str(tmp_path / "v"), "--storage", storage, "--worker",
                 "--study", "nobody"]) == 1
    assert "there is no study 'nobody'" in capsys.readouterr().err


def test_a_worker_of_other_code_is_refused(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["explore", "--out", str(out), "--trials", "0", *SMALL]) == 0
    study = study_of(out)
    study.set_user_attr(CODE_ATTR, {**study.user_attrs[CODE_ATTR], "source": "0123abcd"})
    assert main(["explore", "--out", str(tmp_path / "w"), "--storage", default_storage(out),
                 "--worker", "--trials", "1"]) == 1
    err = capsys.readouterr().err
    assert "was started by other code" in err and "source: the study has '0123abcd'" in err


def test_an_unreachable_storage_is_named_without_its_password(tmp_path, capsys):
    url = "postgresql://explorer:secret@127.0.0.1:9/studies"
    assert main(["explore", "--out", str(tmp_path / "x"), "--storage", url, *SMALL]) == 1
    err = capsys.readouterr().err
    assert "postgresql://explorer:***@127.0.0.1:9/studies: cannot open the study database" in err
    assert "secret" not in err and "Traceback" not in err


def test_the_grid_sampler_gives_the_results_of_plain_runs(tmp_path, capsys):
    """--sampler grid walks the named networks as the earlier grid did: a trial's accuracy is
    that of `xnorflow train` with the same options, its FPS that of `xnorflow build`."""
    from xnorflow.stages.build import BuildOptions, build_stage
    from xnorflow.stages.train import train_run
    from xnorflow.train.configs import TrainConfig

    out = tmp_path / "grid"
    argv = ["explore", "--out", str(out), "--sampler", "grid", "--models", "tfc",
            "--quantizers", "bnn", "bnn++", "--epochs", "1", "--verify", "20", "--no-progress"]
    assert main(argv) == 0
    trials = {t.params["candidate"]: t for t in study_of(out).get_trials()}
    assert sorted(trials) == ["tfc/bnn", "tfc/bnn++"]
    run = train_run(TrainConfig(model="tfc", quantizer="bnn++", epochs=1), tmp_path / "run",
                    progress=False, verbose=False)
    built = build_stage(tmp_path / "run", tmp_path / "build", BuildOptions(), verify=20,
                        progress=False)
    assert trials["tfc/bnn++"].values[0] == run.history[-1].test_acc
    assert trials["tfc/bnn++"].values[1] == built.summary.estimated_fps
    capsys.readouterr()
    assert main(argv) == 0   # the grid is done: nothing more to run
    assert "this command ran 0 trials" in capsys.readouterr().out


def test_a_network_that_cannot_fit_is_recorded_as_infeasible_without_training(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["explore", "--out", str(out), "--trials", "2", "--budgets", "0.002",
                 *SMALL]) == 4
    printed = capsys.readouterr().out
    assert "does not fit: even folded as far as FINN can, it needs LUT" in printed
    assert "no trial fits the board within its budget" in printed
    trials = study_of(out).get_trials()
    assert [t.state for t in trials] == [STATES.COMPLETE] * 2
    assert all(t.constraints["resources_over_budget"] > 0 for t in trials)
    assert not (out / "trials").exists() or not any((out / "trials").rglob("model.pt"))


def test_bad_options_are_refused_at_the_door(tmp_path, capsys):
    for argv, message in [(["--algos", "sgd"], "argument --algos: invalid choice: 'sgd'"),
                          (["--budgets", "0"], "argument --budgets: 0 must be in (0, 1]"),
                          (["--widths", "0"], "argument --widths: 0 must be >= 1")]:
        with pytest.raises(SystemExit) as exited:
            main(["explore", "--out", str(tmp_path / "x"), *argv])
        assert exited.value.code == 2
        assert message in capsys.readouterr().err
    assert main(["explore", "--out", str(tmp_path / "x"), "--sampler", "grid"]) == 2
    assert "--sampler grid walks named networks" in capsys.readouterr().err
    assert main(["explore", "--out", str(tmp_path / "x"), "--algos", "local-binary",
                 "--lb-widths", "64"]) == 2
    assert "needs an odd width" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_explore_does_not_write_into_a_folder_it_did_not_make(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["explore", "--out", str(mine), *SMALL]) == 1
    assert "already holds files xnorflow did not write" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


# ------------------------------------------------------------------------ several processes
def start(args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([*CLI, "explore", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def wait_for_run(folder: Path, process: subprocess.Popen, seconds: float = 120) -> Path:
    """The run folder of the first trial of ``folder`` once its training has begun."""
    end = time.monotonic() + seconds
    while True:
        found = list(folder.glob("trials/*/*/run/.xnorflow.json"))
        if found:
            return found[0].parent
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < end, "no trial started"
        time.sleep(0.05)


def test_two_workers_share_one_sqlite_study(tmp_path):
    first = tmp_path / "first"
    assert main(["explore", "--out", str(first), "--trials", "0", *SMALL]) == 0
    storage = default_storage(first)
    workers = [start(["--out", str(tmp_path / f"w{i}"), "--storage", storage, "--worker",
                      "--trials", "2", "--no-progress"]) for i in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    trials = study_of(first).get_trials()
    assert [t.state for t in trials] == [STATES.COMPLETE] * 4
    assert len({t.user_attrs["worker"] for t in trials}) == 2
    assert len({t.user_attrs["folder"] for t in trials}) == 4


@pytest.mark.slow   # ~3 min; two workers on SQLite and on PostgreSQL stay fast
def test_a_killed_workers_trial_is_run_again_by_the_next_worker(tmp_path):
    first = tmp_path / "first"
    assert main(["explore", "--out", str(first), "--trials", "0", "--epochs", "30",
                 "--depths", "1", "--widths", "1024", "--verify", "20", "--no-progress"]) == 0
    storage = default_storage(first)
    doomed = start(["--out", str(tmp_path / "doomed"), "--storage", storage, "--worker",
                    "--heartbeat", "1", "--trials", "1"])
    killed_run = wait_for_run(tmp_path / "doomed", doomed)
    os.killpg(doomed.pid, signal.SIGKILL)
    doomed.communicate()
    time.sleep(2.5)   # more than twice the heartbeat: the trial is stale
    again = start(["--out", str(tmp_path / "next"), "--storage", storage, "--worker",
                   "--heartbeat", "1", "--trials", "1"])
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    lost, retried = study_of(first).get_trials()
    assert lost.state == STATES.FAIL and retried.state == STATES.COMPLETE
    assert retried.params == lost.params
    assert retried.system_attrs["failed_trial"] == lost.number
    assert Path(retried.user_attrs["folder"]).is_relative_to(tmp_path / "next")
    assert not (killed_run / "model.pt").exists()   # the half-trained run was not trusted
    assert "its worker stopped sending a heartbeat" in out


def test_ctrl_c_in_a_worker_fails_its_trial_queues_it_again_and_keeps_the_study(tmp_path):
    out = tmp_path / "x"
    argv = ["--out", str(out), "--trials", "1", "--epochs", "30", "--depths", "1", "--widths",
            "1024", "--verify", "20", "--no-progress"]
    process = start(argv)
    wait_for_run(out, process)
    os.killpg(process.pid, signal.SIGINT)
    printed, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert "queued again, the study is intact" in err and "Traceback" not in err
    interrupted, waiting = study_of(out).get_trials()
    assert interrupted.state == STATES.FAIL and interrupted.user_attrs["interrupted"]
    assert waiting.state == STATES.WAITING and waiting.params == interrupted.params
