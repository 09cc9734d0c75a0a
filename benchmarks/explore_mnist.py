"""Benchmark: `xnorflow explore` on MNIST for a Pynq-Z1 (issue #29).

Three measurements, each a mode of this script (results under benchmarks/results/explore_mnist,
BENCHMARKS.md updated):

- ``grid``: the grid of named networks, TFC, SFC and LFC x the ProxConnect++ pairs bnn, bnn++ and
  bc (9 trials, ``--sampler grid``), 2 epochs each on the 60,000 training images, folded to fit
  80 % of the board, every stage checked on 1,000 test images; its wall time is the budget of:
- ``nsga2``: NSGA-II over free MLP shapes (1-3 hidden layers of 64-1024) and the same pairs, same
  epochs, budget and checks, trials run until the grid's wall time is used up. Compared with the
  grid by the hypervolume its feasible trials dominate (accuracy, log10 FPS, 1 - peak share,
  from the reference point below; and the same without the peak share) and side by side;
- ``workers``: trials per hour of one worker and of two worker processes on this machine (a
  study of free MLPs, 1 epoch, 200 checked images; two workers get one thread each).

    python benchmarks/explore_mnist.py grid --data-dir ../shared/data/mnist
    python benchmarks/explore_mnist.py nsga2 --data-dir ../shared/data/mnist
    python benchmarks/explore_mnist.py workers --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _markdown import ROOT, command_line, update_section

from xnorflow.explore.pareto import feasible, objectives, pareto_front
from xnorflow.explore.settings import ExploreOptions
from xnorflow.explore.space import SearchSpace
from xnorflow.stages.explore import explore

RESULTS = ROOT / "benchmarks" / "results" / "explore_mnist"
PAIRS = ["bnn", "bnn++", "bc"]
# the reference point of the hypervolume in (accuracy, log10 FPS, 1 - peak share): accuracy
# 90 %, 10,000 FPS, the whole device used
REFERENCE = (0.90, 4.0, 0.0)


def coordinates(point: dict) -> tuple[float, float, float]:
    """(accuracy, log10 FPS, 1 - peak share): larger is better in each."""
    acc, fps, peak = objectives(point)
    return acc, math.log10(fps), 1.0 - peak


def hypervolume(points: list[dict], use_peak: bool = True) -> float:
    """Volume dominated by the feasible points above :data:`REFERENCE` (exact: the points are
    sorted by accuracy, each slice's area is the union of rectangles)."""
    boxes = [tuple(c - r for c, r in zip(coordinates(p), REFERENCE)) for p in points
             if feasible(p)]
    if not use_peak:   # the same volume with every point using nothing of the device
        boxes = [(a, f, 1.0) for a, f, _ in boxes]
    boxes = [(a, f, k) for a, f, k in boxes if a > 0 and f > 0 and k > 0]
    boxes.sort(key=lambda b: -b[0])
    volume = 0.0
    for i, (acc, _, _) in enumerate(boxes):
        below = boxes[i + 1][0] if i + 1 < len(boxes) else 0.0
        area, best = 0.0, 0.0
        for _, f, k in sorted(boxes[:i + 1], key=lambda b: -b[1]):   # 2D union, by FPS
            if k > best:
                area += f * (k - best)
                best = k
        volume += area * (acc - below)
    return volume


def run_study(kind: str, data_dir: str, work: Path, minutes: float | None = None) -> dict:
    options = ExploreOptions(dataset="mnist", data_dir=data_dir, epochs=2, verify=1000,
                             sampler="grid" if kind == "grid" else "nsga2", population=6)
    space = (SearchSpace(models=["tfc", "sfc", "lfc"], quantizers=PAIRS) if kind == "grid"
             else SearchSpace(models=["mlp"], depths=[1, 2, 3],
                              widths=[64, 128, 256, 512, 1024], quantizers=PAIRS))
    start = time.perf_counter()
    if kind == "grid":
        result = explore(options, space, work, progress=True)
    else:   # one trial at a time until the grid's wall time is used up
        while True:
            result = explore(options, space, work, trials=1, progress=True)
            if time.perf_counter() - start >= 60 * minutes:
                break
    return {"seconds": time.perf_counter() - start, "points": result.points}


def markdown_table(points: list[dict]) -> list[str]:
    front = pareto_front(points)
    lines = ["| trial | test accuracy | est. FPS | peak use | Pareto |", "|---|---|---|---|---|"]
    for p in sorted(points, key=lambda p: (p["name"] not in front, -p.get("test_accuracy", 0))):
        if not feasible(p):
            lines.append(f"| {p['name']} | - | - | - | {p.get('note', 'failed')} |")
            continue
        acc, fps, peak = objectives(p)
        lines.append(f"| {p['name']} | {acc:.2%} | {fps:,.0f} | {peak:.0%} | "
                     f"{'yes' if p['name'] in front else 'dominated'} |")
    return lines


def compare(argv) -> None:
    grid = json.loads((RESULTS / "grid.json").read_text())
    nsga2 = json.loads((RESULTS / "nsga2.json").read_text()) if (
        RESULTS / "nsga2.json").is_file() else None
    lines = [f"Commands: `{command_line('explore_mnist.py', ['grid', *argv[1:]])}`, then the "
             f"same with `nsga2` (`report` redraws this from the saved results). MNIST "
             f"(60,000 training images, threshold binarization), 2 "
             f"epochs per trial, ProxConnect++ pairs {', '.join(PAIRS)}, folded to fit 80 % of "
             f"a Pynq-Z1, every stage checked on 1,000 test images; accuracy on the 10,000 "
             f"test images. Hypervolume: dominated volume of the feasible trials in (accuracy "
             f"- 0.90) x (log10 FPS - 4) x (1 - peak share), and in (accuracy - 0.90) x (log10 "
             f"FPS - 4) alone.", "",
             "| search | trials | wall time | trials on the front | hypervolume (3 objectives) "
             "| hypervolume (accuracy, FPS) | best accuracy |", "|---|---|---|---|---|---|---|"]
    for name, found in (("grid of named networks (tfc, sfc, lfc)", grid),
                        ("NSGA-II, free MLP shapes", nsga2)):
        if found is None:
            continue
        points = found["points"]
        best = max((objectives(p)[0] for p in points if feasible(p)), default=0.0)
        lines.append(f"| {name} | {len(points)} | {found['seconds'] / 60:.1f} min | "
                     f"{len(pareto_front(points))} | {hypervolume(points):.4f} | "
                     f"{hypervolume(points, use_peak=False):.4f} | {best:.2%} |")
    lines += ["", "Grid:", "", *markdown_table(grid["points"])]
    if nsga2:
        lines += ["", "NSGA-II:", "", *markdown_table(nsga2["points"])]
    update_section("explore-mnist", "\n".join(lines) + "\n")


def workers(data_dir: str, trials: int, argv) -> None:
    """Trials per hour of one worker, then of two worker processes, on the same study kind."""
    rates = {}
    for count in (1, 2):
        with tempfile.TemporaryDirectory() as tmp:
            first = Path(tmp) / "first"
            options = ExploreOptions(dataset="mnist", data_dir=data_dir, epochs=1, verify=200,
                                     seed=count)
            explore(options, SearchSpace(depths=[1, 2], widths=[64, 256, 1024]), first,
                    trials=0, progress=False)
            env = dict(os.environ)
            if count > 1:
                env["OMP_NUM_THREADS"] = "1"   # one core each
            start = time.perf_counter()
            processes = [subprocess.Popen(
                [sys.executable, "-m", "xnorflow.cli", "explore", "--out", str(Path(tmp) / f"w{i}"),
                 "--storage", f"sqlite:///{first / 'study.db'}", "--worker", "--data-dir",
                 data_dir, "--trials", str(trials), "--no-progress"], env=env,
                stdout=subprocess.DEVNULL) for i in range(count)]
            for p in processes:
                if p.wait() != 0:
                    raise SystemExit(f"a worker failed ({p.returncode})")
            seconds = time.perf_counter() - start
            rates[count] = {"trials": count * trials, "seconds": seconds,
                            "per_hour": 3600 * count * trials / seconds}
            print(count, rates[count], flush=True)
    (RESULTS / "workers.json").write_text(json.dumps(rates, indent=2))
    lines = [f"Command: `{command_line('explore_mnist.py', argv)}`", "",
             f"Free MLPs (1-2 hidden layers of 64, 256 or 1024), MNIST, 1 epoch, 200 checked "
             f"images per trial, NSGA-II; each worker runs {trials} trials. This machine: "
             f"{os.cpu_count()} cores; two workers get one thread each.", "",
             "| workers | trials | wall time | trials per hour |", "|---|---|---|---|"]
    for count, r in rates.items():
        lines.append(f"| {count} | {r['trials']} | {r['seconds'] / 60:.1f} min | "
                     f"{r['per_hour']:.0f} |")
    update_section("explore-workers", "\n".join(lines) + "\n")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("mode", choices=("grid", "nsga2", "workers", "report"),
                   help="report: the comparison again from the saved results")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--trials", type=int, default=6, help="per worker (mode workers)")
    p.add_argument("--work", default="/tmp/xnorflow-explore-mnist",
                   help="exploration folders (kept: a killed benchmark continues)")
    args = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.mode == "workers":
        workers(args.data_dir, args.trials, argv)
        return 0
    if args.mode == "report":
        compare(argv)
        return 0
    minutes = None
    if args.mode == "nsga2":
        minutes = json.loads((RESULTS / "grid.json").read_text())["seconds"] / 60
    found = run_study(args.mode, args.data_dir, Path(args.work) / args.mode, minutes)
    (RESULTS / f"{args.mode}.json").write_text(json.dumps(found, indent=2))
    for name in ("pareto.md", "pareto.html", "pareto.png"):
        shutil.copyfile(Path(args.work) / args.mode / name, RESULTS / f"{args.mode}-{name}")
    compare(argv)
    return 0


if __name__ == "__main__":
    sys.exit(main())
