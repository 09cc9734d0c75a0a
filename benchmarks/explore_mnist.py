"""Benchmark: `xnorflow explore` over MLP candidates on MNIST for a Pynq-Z1.

The grid: TFC, SFC and LFC (three hidden layers of 64/256/1024) x the ProxConnect++ pairs
bnn, bnn++ and bc (9 candidates), each trained for --epochs on the 60,000 MNIST training
images, folded to fit 80 % of the Pynq-Z1 and checked bit-exactly on --verify test images.
Records the Pareto table, the plot and the wall time; updates BENCHMARKS.md.

    python benchmarks/explore_mnist.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

from _markdown import ROOT, command_line, update_section

from xnorflow.explore.candidates import ExploreOptions
from xnorflow.stages.explore import explore


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--models", nargs="+", default=["tfc", "sfc", "lfc"])
    p.add_argument("--quantizers", nargs="+", default=["bnn", "bnn++", "bc"])
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--verify", type=int, default=1000)
    p.add_argument("--work", default="/tmp/xnorflow-explore-mnist",
                   help="exploration folder (kept, so a killed benchmark continues)")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "explore_mnist"))
    args = p.parse_args(argv)
    options = ExploreOptions(dataset="mnist", data_dir=args.data_dir, models=args.models,
                             quantizers=args.quantizers, epochs=args.epochs,
                             verify=args.verify)
    start = time.perf_counter()
    result = explore(options, args.work, progress=True)
    seconds = time.perf_counter() - start
    for line in result.lines():
        print(line)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("pareto.md", "pareto.csv", "pareto.html", "pareto.png"):
        shutil.copyfile(Path(args.work) / name, out / name)
    table = (out / "pareto.md").read_text().split("\n", 2)[2]  # without its title
    table = table.replace("![Pareto front](pareto.png)",
                          "![Pareto front](benchmarks/results/explore_mnist/pareto.png)")
    section = "\n".join([
        f"Command: `{command_line('explore_mnist.py', argv)}`", "",
        f"{len(result.points)} candidates ({', '.join(args.models)} x "
        f"{', '.join(args.quantizers)}), {args.epochs} epoch(s) each on MNIST (60,000 images, "
        f"threshold binarization), folded to fit 80 % of a Pynq-Z1, every stage checked on "
        f"{args.verify:,} test images. Wall time on this machine (2 cores): "
        f"**{seconds / 60:.1f} min** for the whole exploration (training, preflight, builds, "
        f"checks, plots). Accuracy: the deployed network on the 10,000 test images.", "",
        table.strip(), ""])
    update_section("explore-mnist", section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
