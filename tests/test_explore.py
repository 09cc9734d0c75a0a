"""`xnorflow explore`: a grid of candidates trained, folded to fit a board, checked bit-exactly,
and shown as a Pareto front; continued after a kill; bad grids refused before any training."""

from __future__ import annotations

import csv
import json

import pytest

from xnorflow.cli import main
from xnorflow.explore.pareto import pareto_front

GRID = ["--models", "tfc", "--quantizers", "bnn", "bnn++", "--epochs", "1", "--verify", "20",
        "--no-progress"]


def test_pareto_front_keeps_the_points_nothing_beats_in_both():
    points = [{"name": n, "fits": f, "test_accuracy": a, "estimated_fps": s}
              for n, f, a, s in [("slow-accurate", True, 0.9, 1e3), ("fast", True, 0.8, 1e5),
                                 ("dominated", True, 0.8, 1e4), ("tie", True, 0.9, 1e3),
                                 ("misfit", False, 0.99, 1e6)]]
    assert pareto_front(points) == {"slow-accurate", "fast", "tie"}


@pytest.fixture(scope="module")
def exploration(tmp_path_factory):
    out = tmp_path_factory.mktemp("explore") / "x"
    assert main(["explore", "--out", str(out), *GRID]) == 0
    return out


def test_explore_writes_the_table_and_plots_of_every_candidate(exploration, capsys):
    with open(exploration / "pareto.csv") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["candidate"] for r in rows) == ["tfc-bnn", "tfc-bnn++"]
    for row in rows:
        assert row["bit-exact check"] == "identical on 20 images"
        assert float(row["LUT use"].rstrip("%")) <= 80  # folded to fit the default budget
    # same architecture, same folding: the more accurate one dominates
    best, other = sorted(rows, key=lambda r: -float(r["test accuracy"].rstrip("%")))
    assert best["est. FPS"] == other["est. FPS"] and best["Pareto"] == "yes"
    assert other["Pareto"] == ("yes" if other["test accuracy"] == best["test accuracy"]
                               else "dominated")
    page = (exploration / "pareto.html").read_text()
    assert page.count("<circle") == 2 and "<title>tfc-bnn" in page and "sortBy" in page
    assert (exploration / "pareto.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    results = [json.loads(p.read_text()) for p in (exploration / "results").glob("*.json")]
    assert len(results) == 2
    for result in results:  # the numbers come from the candidate's own build report
        build = json.loads((exploration / result["report"]).with_name(
            "build_summary.json").read_text())
        assert result["estimated_fps"] == build["estimated_fps"]
        assert build["folding"]["mode"] == "fit"


def test_explore_again_reuses_every_finished_candidate(exploration, capsys):
    models = {p: p.stat().st_mtime_ns for p in exploration.glob("runs/*/model.pt")}
    results = {p: p.read_text() for p in exploration.glob("results/*.json")}
    assert main(["explore", "--out", str(exploration), *GRID]) == 0
    assert {p: p.stat().st_mtime_ns for p in exploration.glob("runs/*/model.pt")} == models
    assert {p: p.read_text() for p in exploration.glob("results/*.json")} == results
    printed = capsys.readouterr().out
    assert "tfc-bnn: " in printed and "tfc-bnn++: " in printed


def test_a_killed_exploration_continues_where_it_stopped(tmp_path, monkeypatch, capsys):
    import xnorflow.stages.build as pipeline

    out = tmp_path / "x"
    real_build = pipeline.build_stage
    calls = []

    def killed_on_the_second_build(*args, **kwargs):
        calls.append(args[0])
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_build(*args, **kwargs)

    monkeypatch.setattr(pipeline, "build_stage", killed_on_the_second_build)
    assert main(["explore", "--out", str(out), *GRID]) == 130
    assert "finished candidates are kept" in capsys.readouterr().err
    finished = {p: p.read_text() for p in (out / "results").glob("*.json")}
    assert len(finished) == 1 and len(list((out / "runs").glob("*/model.pt"))) == 2
    builds = sorted(p.name for p in (out / "builds").iterdir())
    assert len(builds) == 1  # the second build was stopped before it began
    monkeypatch.setattr(pipeline, "build_stage", real_build)
    assert main(["explore", "--out", str(out), *GRID]) == 0
    assert {p: p.read_text() for p in finished} == finished  # the finished one is kept as is
    assert len(list((out / "results").glob("*.json"))) == 2


def test_a_run_killed_mid_training_resumes_to_the_same_network(tmp_path, capsys):
    """A kill between two epochs, and one after model.pt but before summary.json: both runs
    continue from the checkpoint to the network an uninterrupted run trains."""
    import torch

    from xnorflow.explore.candidates import ExploreOptions, grid
    from xnorflow.train.trainer import Trainer

    out = tmp_path / "x"
    argv = ["explore", "--out", str(out), "--models", "tfc", "--quantizers", "bnn", "bnn++",
            "--epochs", "2", "--verify", "10", "--no-progress"]
    assert main(argv) == 0
    bnn, bnnpp = grid(ExploreOptions(models=["tfc"], quantizers=["bnn", "bnn++"], epochs=2))
    runs = {c.name: out / "runs" / f"{c.name}-{c.key()}" for c in (bnn, bnnpp)}
    finished = {name: torch.load(run / "model.pt", weights_only=False)
                for name, run in runs.items()}
    # tfc-bnn: killed after its first epoch
    for path in runs["tfc-bnn"].iterdir():
        if path.name != ".xnorflow.json":
            path.unlink()
    Trainer(bnn.config, runs["tfc-bnn"], show_progress=False, verbose=False).fit(stop_after=1)
    assert not (runs["tfc-bnn"] / "model.pt").exists()
    # tfc-bnn++: killed after writing model.pt, before summary.json
    (runs["tfc-bnn++"] / "summary.json").unlink()
    for result in (out / "results").glob("*.json"):
        result.unlink()
    assert main(argv) == 0
    for name, run in runs.items():
        again = torch.load(run / "model.pt", weights_only=False)
        state, before = again["model"], finished[name]["model"]
        assert state.keys() == before.keys()
        assert all(torch.equal(state[k], before[k]) for k in state), name
        assert (run / "summary.json").is_file()


def test_a_grid_that_cannot_fit_is_refused_before_training(tmp_path, capsys):
    out = tmp_path / "x"
    assert main(["explore", "--out", str(out), "--models", "sfc", "tfc", "--budget", "0.01",
                 "--no-progress"]) == 4
    err = capsys.readouterr().err
    assert "no candidate of the grid fits Pynq-Z1 within 1% of its resources" in err
    assert "The smallest, tfc, needs LUT" in err and "Nothing was trained" in err
    assert not list((out / "runs").iterdir())


@pytest.mark.parametrize("argv, message", [
    (["--board", "Pynq-Z9"], "argument --board: invalid choice: 'Pynq-Z9'"),
    (["--budget", "0"], "argument --budget: 0 must be in (0, 1]"),
    (["--budget", "1.5"], "argument --budget: 1.5 must be in (0, 1]"),
    (["--models", "resnet"], "argument --models: invalid choice: 'resnet'"),
])
def test_bad_options_are_refused_with_the_reason(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as exited:
        main(["explore", "--out", str(tmp_path / "x"), *argv])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_explore_does_not_write_into_a_folder_it_did_not_make(tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("mine")
    assert main(["explore", "--out", str(mine), *GRID]) == 1
    assert "already holds files xnorflow did not write" in capsys.readouterr().err
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]
