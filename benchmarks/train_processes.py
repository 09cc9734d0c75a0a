"""Benchmark: CPU training speed of the convolutional networks through the command line, one and
several processes (DDP over gloo), and the same with the code before the device/data-pipeline
change (issue #28).

Every row is ``xnorflow train --model M --dataset mnist`` on a folder of the first ``--images``
MNIST training images and ``--test-images`` test images (IDX files written by the script), run
as a user runs it: ``--nproc N`` for N processes (each then gets cores / N threads, as torchrun
gives them), no ``--threads``. The rate is the training images per second of the epochs after
the first (the first holds the start-up), read from the run's ``metrics.csv`` (an epoch's wall
time, its test pass over the small test set included). ``--before REV`` adds a 1-process row of
the code at git revision REV (``git archive``, imported with ``PYTHONPATH``), the same command.
``--lfc-recipe-epochs E`` adds rows of ``--recipe lfc-mnist`` on the whole MNIST folder, E
epochs of its 80 (seconds per epoch; the recipe's wall time is 80 of them). Updates
BENCHMARKS.md.

    python benchmarks/train_processes.py --data-dir ../shared/data/mnist --before 76f196c \
        --lfc-recipe-epochs 3
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from _markdown import ROOT, command_line, update_section

sys.path.insert(0, str(ROOT / "tests"))
from small_data import write_mnist_subset  # noqa: E402  (the tests' IDX writer)

TAG = "train-processes"


def train_rate(options: list[str], images: int, epochs: int, nproc: int, out: Path,
               pythonpath: str | None = None) -> tuple[float, float]:
    """Training images/s and seconds per epoch of the epochs after the first of one
    ``xnorflow train OPTIONS`` run."""
    command = [sys.executable, "-m", "xnorflow.cli", "train", *options, "--epochs", str(epochs),
               "--no-progress", "--out", str(out)]
    if nproc > 1:
        command += ["--nproc", str(nproc)]
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    with open(out / "metrics.csv") as f:
        seconds = [float(row["seconds"]) for row in csv.DictReader(f)][1:]
    return images * len(seconds) / sum(seconds), sum(seconds) / len(seconds)


def checkout(revision: str, into: Path) -> str:
    """The code at ``revision`` as an importable ``xnorflow`` package under ``into``; returns
    the PYTHONPATH entry."""
    package = into / "xnorflow"
    package.mkdir(parents=True)
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], check=True,
                             capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(package)], input=archive, check=True)
    return str(into)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="MNIST IDX folder")
    p.add_argument("--models", nargs="+", default=["cnv", "vgg-small"])
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--test-images", type=int, default=200)
    p.add_argument("--epochs", type=int, default=3, help="the first is not timed")
    p.add_argument("--nproc", type=int, nargs="+", default=[1, 2])
    p.add_argument("--before", metavar="REV", help="also time the code at this git revision")
    p.add_argument("--lfc-recipe-epochs", type=int, default=0, metavar="E",
                   help="also time E epochs of `--recipe lfc-mnist` on the whole data set")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "train_processes"))
    args = p.parse_args(argv)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = write_mnist_subset(Path(args.data_dir), tmp / "data", args.images,
                                  args.test_images)
        rows = [(model, ["--model", model, "--dataset", "mnist", "--data-dir", str(data),
                         "--batch-size", "100"], args.images, args.epochs)
                for model in args.models]
        if args.lfc_recipe_epochs:
            rows.append(("lfc-mnist recipe", ["--recipe", "lfc-mnist", "--data-dir",
                                              args.data_dir], 60_000, args.lfc_recipe_epochs))
        old = checkout(args.before, tmp / "before") if args.before else None
        for name, options, images, epochs in rows:
            setups = ([(f"before ({args.before}), 1 process", 1, old)] if old else []) + \
                     [(f"{n} process{'es' if n > 1 else ''}", n, None) for n in args.nproc]
            for label, nproc, pythonpath in setups:
                run = tmp / f"{len(results)}"
                rate, seconds = train_rate(options, images, epochs, nproc, run, pythonpath)
                results[f"{name} | {label}"] = {"images_per_s": rate, "epoch_seconds": seconds,
                                                "epochs_timed": epochs - 1}
                print(f"{name:16s} {label:30s} {rate:7.1f} images/s  {seconds:6.1f} s/epoch",
                      flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "rates.json").write_text(json.dumps(results, indent=2))
    cores = os.cpu_count()
    lines = [f"Command: `{command_line('train_processes.py', argv)}`", "",
             f"`xnorflow train --model M --dataset mnist` on the first {args.images:,} MNIST "
             f"training images ({args.test_images} test images), batch 100, {args.epochs} "
             f"epochs; images/s of epochs 2-{args.epochs} (wall time, test pass included). "
             f"This machine: {cores} cores, no GPU; N processes get {cores}/N threads each "
             f"(as torchrun gives them).", "",
             "| model | code, processes | training images/s | seconds per epoch |",
             "|---|---|---|---|"]
    for key, r in results.items():
        model, label = key.split(" | ")
        lines.append(f"| {model} | {label} | {r['images_per_s']:,.1f} | "
                     f"{r['epoch_seconds']:,.1f} |")
    if args.lfc_recipe_epochs:
        lines += ["", f"lfc-mnist recipe rows: the whole MNIST training set (60,000 images, "
                      f"affine augmentation, dropout 0.2) and its 10,000 test images, "
                      f"{args.lfc_recipe_epochs} epochs of the recipe's 80, epochs "
                      f"2-{args.lfc_recipe_epochs} timed."]
    section = "\n".join(lines) + "\n"
    print(section)
    update_section(TAG, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
