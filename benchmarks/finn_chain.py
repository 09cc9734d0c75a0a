"""Benchmark: the bit-exact chain on the whole test set.

Takes a trained run (default: the LFC W1A1 'bnn' run of train_quantizers.py), builds it with
FINN for Pynq-Z1 and executes every stage (QONNX, FINN-ONNX, streamlined, HW layers, folded
dataflow) on all test images, recording how many match PyTorch. Updates BENCHMARKS.md.

    python benchmarks/finn_chain.py --run benchmarks/results/quantizers/bnn-seed0
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from _markdown import ROOT, command_line, update_section

from xnorflow.hw.finn.options import BuildOptions
from xnorflow.stages.build import build_stage
from xnorflow.train.runs import open_run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=str(ROOT / "benchmarks/results/quantizers/bnn-seed0"))
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--target-fps", type=int, default=100_000)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "finn_chain"))
    args = p.parse_args(argv)
    run = open_run(args.run)
    start = time.perf_counter()
    result = build_stage(args.run, Path(args.out) / "build",
                         BuildOptions(target_fps=args.target_fps), args.images, args.data_dir,
                         progress=True)
    report, comparisons = result.report, result.comparisons
    seconds = time.perf_counter() - start
    for name in ("build_report.md", "cycles_per_layer.png"):  # the build folder is not committed
        shutil.copy(report.parent / name, Path(args.out) / name)
    (Path(args.out) / "chain.json").write_text(json.dumps([c.as_dict() for c in comparisons],
                                                          indent=2))
    cfg = run.config
    lines = [f"Command: `{command_line('finn_chain.py', argv)}`", "",
             f"{run.describe()}, trained {cfg.epochs} epochs, {args.images:,} test images (seeded "
             f"stratified sample), "
             f"FINN build for Pynq-Z1 at "
             f"target {args.target_fps:,} FPS; {seconds / 60:.1f} min for export, build and "
             f"all executions.", "",
             "| stage | images | argmax identical | logits within 1e-5 rel / 1e-4 abs | "
             "max abs diff | accuracy |", "|---|---|---|---|---|---|"]
    for c in comparisons:
        lines.append(f"| {c.stage} | {c.images:,} | {c.argmax_matches:,} "
                     f"({c.argmax_matches / c.images:.2%}) | {c.logits_match:,} | "
                     f"{c.max_abs_diff:.1e} | {c.accuracy:.2%} |")
    section = "\n".join(lines) + "\n"
    section += ("\nBuild report of this run: "
                "[build_report.md](benchmarks/results/finn_chain/build_report.md)\n")
    print(section)
    update_section("finn-chain", section)
    return 0 if all(c.identical for c in comparisons) else 1


if __name__ == "__main__":
    sys.exit(main())
