"""Workers of one `xnorflow explore` study on a real PostgreSQL server (started on loopback by
the ``postgres_url`` fixture): the study created by one command, two worker processes in
folders of their own, every trial complete, the outputs written from the database."""

from __future__ import annotations

import csv
import subprocess
import sys

import optuna

from xnorflow.cli import main

SMALL = ["--epochs", "1", "--verify", "20", "--depths", "1", "--widths", "64", "128",
         "--algos", "proxconnect", "local-binary", "--lb-widths", "35", "--no-progress"]


def test_two_workers_on_a_postgresql_study(postgres_url, tmp_path):
    assert main(["explore", "--out", str(tmp_path / "first"), "--storage", postgres_url,
                 "--study", "pg", "--trials", "1", *SMALL]) == 0
    workers = [subprocess.Popen([sys.executable, "-m", "xnorflow.cli", "explore", "--out",
                                 str(tmp_path / f"w{i}"), "--storage", postgres_url,
                                 "--study", "pg", "--worker", "--trials", "2",
                                 "--no-progress"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for i in range(2)]
    for worker in workers:
        out, err = worker.communicate(timeout=600)
        assert worker.returncode == 0, err
    study = optuna.load_study(study_name="pg", storage=postgres_url)
    trials = study.get_trials()
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 5
    assert len({t.user_attrs["worker"] for t in trials}) == 3
    with open(tmp_path / "w1" / "pareto.csv") as f:   # any worker writes the whole study
        assert len(list(csv.DictReader(f))) >= 3
