"""Benchmark: test accuracy with the TensorNorm head (one scalar affine; the class is selected on
chip) against the per-class batch-norm head (the affine stays on the host), same seeds.

    python benchmarks/head_accuracy.py --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

from _markdown import ROOT, command_line, update_section

from xnorflow.stages.train import train_run
from xnorflow.train.configs import TrainConfig, VispaConfig

RESULTS = ROOT / "benchmarks" / "results" / "head_accuracy.json"
HEADS = ("tensor-norm", "batch-norm")


def setups(data_dir: str) -> dict[str, callable]:
    """Name -> config for a head and seed."""
    return {
        "SFC bnn, MNIST, 2 epochs": lambda head, seed: TrainConfig(
            model="sfc", quantizer="bnn", dataset="mnist", data_dir=data_dir, epochs=2,
            head=head, seed=seed),
        "TFC bnn, digits, 10 epochs": lambda head, seed: TrainConfig(
            model="tfc", quantizer="bnn", epochs=10, head=head, seed=seed),
        "TFC VISPA rank 4, digits, 10 epochs": lambda head, seed: VispaConfig(
            model="tfc", epochs=10, ensemble_samples=0, head=head, seed=seed),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    args = p.parse_args(argv)
    results = {}
    for name, make in setups(args.data_dir).items():
        for head in HEADS:
            accuracies = []
            for seed in args.seeds:
                with tempfile.TemporaryDirectory() as tmp:
                    outcome = train_run(make(head, seed), Path(tmp) / "run", progress=False)
                    accuracies.append(outcome.summary["final_test_acc"])
                print(f"{name} | {head} | seed {seed}: {accuracies[-1]:.2%}", flush=True)
            results[f"{name} | {head}"] = accuracies
    RESULTS.write_text(json.dumps(results, indent=2))
    rows = []
    for key, accs in results.items():
        name, head = key.split(" | ")
        spread = statistics.stdev(accs) if len(accs) > 1 else 0.0
        rows.append(f"| {name} | {head} | {statistics.mean(accs):.2%} +- {spread:.2%} | "
                    f"{', '.join(f'{a:.2%}' for a in accs)} |")
    section = "\n".join([
        f"Command: `{command_line('head_accuracy.py', argv)}`", "",
        "Final test accuracy (official test sets: MNIST 10,000, digits 360) with the two output "
        "normalizations, same seeds, 2 threads.", "",
        "| network | head | mean +- std | per seed |", "|---|---|---|---|", *rows])
    print(section)
    update_section("head-accuracy", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
