"""Benchmark: how much a seeded training run varies with the seed and with the thread count.

Trains the slow test's network (SFC W1A1, bnn++, 5 epochs, dropout 0.1, MNIST) for several seeds
at each thread count and records the test accuracy on the first 2,000 test images (what the slow
end-to-end test checks) and on all 10,000. The slow test's accuracy floor is chosen from this
spread; the thread-count rows show why a run records its thread count. Updates BENCHMARKS.md.

    python benchmarks/seed_variance.py --seeds 0-7 --threads 2 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import torch
from _markdown import ROOT, command_line, update_section

from xnorflow.train.configs import TrainConfig
from xnorflow.train.data import load_dataset
from xnorflow.train.trainer import Trainer, evaluate

FIRST = 2000  # the images the slow test verifies


def seeds_of(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=seeds_of, default=seeds_of("0-7"), help="e.g. 0-7")
    p.add_argument("--threads", type=int, nargs="+", default=[2, 1])
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "seed_variance.json"))
    args = p.parse_args(argv)
    dataset = load_dataset("mnist", args.data_dir)
    x = torch.from_numpy(dataset.test.images[:FIRST])
    y = torch.from_numpy(dataset.test.labels[:FIRST])
    rows = []
    for threads in args.threads:
        for seed in args.seeds:
            config = TrainConfig(model="sfc", quantizer="bnn++", dataset="mnist",
                                 data_dir=args.data_dir, epochs=5, dropout=0.1, seed=seed,
                                 threads=threads)
            with tempfile.TemporaryDirectory() as tmp:
                trainer = Trainer(config, Path(tmp) / "run", dataset=dataset,
                                  show_progress=False, verbose=False)
                trainer.fit()
            rows.append({"threads": threads, "seed": seed,
                         "acc_first_2000": evaluate(trainer.model, x, y)[1],
                         "test_acc": trainer.history[-1].test_acc})
            print(json.dumps(rows[-1]), flush=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))

    lines = [f"Command: `{command_line('seed_variance.py', argv)}`", "",
             "SFC W1A1 (bnn++, 5 epochs, dropout 0.1, lr 5e-3) on MNIST, the network of the slow "
             "end-to-end test. Accuracy of the deployed sign network in %.", "",
             "| threads | seeds | first 2,000 test images: mean ± std (min..max) | all 10,000: "
             "mean ± std (min..max) |", "|---|---|---|---|"]
    for threads in args.threads:
        mine = [r for r in rows if r["threads"] == threads]
        cells = []
        for key in ("acc_first_2000", "test_acc"):
            values = [100 * r[key] for r in mine]
            spread = statistics.stdev(values) if len(values) > 1 else 0.0
            cells.append(f"{statistics.mean(values):.2f} ± {spread:.2f} "
                         f"({min(values):.2f}..{max(values):.2f})")
        lines.append(f"| {threads} | {len(mine)} | {cells[0]} | {cells[1]} |")
    same_seed = [(a, b) for a in rows for b in rows
                 if a["seed"] == b["seed"] and a["threads"] < b["threads"]]
    if same_seed:
        differ = sum(a["acc_first_2000"] != b["acc_first_2000"] for a, b in same_seed)
        lines += ["", f"Same seed at different thread counts: {differ} of {len(same_seed)} pairs "
                      f"end with a different accuracy on the first 2,000 images (float sums "
                      f"are split differently across threads; each run is reproducible at its "
                      f"own recorded thread count)."]
    section = "\n".join(lines) + "\n"
    print(section)
    update_section("seed-variance", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
