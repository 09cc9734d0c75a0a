"""Benchmark: FINN's C simulation (cppsim) of every generated layer on the whole MNIST test set.

For SFC and LFC W1A1 (trained here for a few epochs if the run folder does not exist yet),
`xnorflow build --cppsim 10000` compiles every generated MVAU with g++ (no Vitis) and runs the
folded dataflow design on all 10,000 test images, compared layer by layer with FINN's Python
execution and with PyTorch. Records identical counts, compile time, images/s and wall time, once
with an empty compile cache and (``--cached``) once more with the layers cached. Updates
BENCHMARKS.md.

    python benchmarks/cppsim_chain.py --models sfc lfc
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

from _markdown import ROOT, command_line, update_section

from xnorflow.hw.finn.options import BuildOptions
from xnorflow.stages.build import build_stage
from xnorflow.stages.train import train_run
from xnorflow.train.configs import TrainConfig
from xnorflow.train.runs import open_run

RESULTS = ROOT / "benchmarks" / "results" / "cppsim_chain"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["sfc", "lfc"])
    p.add_argument("--cached", nargs="*", default=["sfc"],
                   help="models built a second time on their cached layers (the simulation "
                        "is the same; LFC's second pass costs 25 minutes)")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--target-fps", type=int, default=100_000)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    p.add_argument("--finn-hlslib", default=str(ROOT.parent / "shared" / "deps" / "finn-hlslib"))
    args = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    rows, records = [], {}
    with tempfile.TemporaryDirectory() as cache:
        os.environ["XNORFLOW_CACHE_DIR"] = cache  # start from an empty compile cache
        for name in args.models:
            run = RESULTS / f"{name}-run"
            if not (run / "model.pt").exists():
                train_run(TrainConfig(model=name, dataset="mnist", data_dir=args.data_dir,
                                      epochs=args.epochs), run)
            attempts = ("empty cache", "cached") if name in args.cached else ("empty cache",)
            for attempt in attempts:
                build = RESULTS / f"{name}-build"
                start = time.perf_counter()
                result = build_stage(run, build, BuildOptions(target_fps=args.target_fps),
                                     verify=0, cppsim=args.images, finn_hlslib=args.finn_hlslib)
                wall = time.perf_counter() - start
                sim = result.cppsim
                print(sim.summary(), flush=True)
                records[f"{name} {attempt}"] = {**sim.as_dict(), "wall_seconds": wall}
                n = sim.comparison.images
                head = open_run(run).config.head
                rows.append(
                    f"| {name.upper()} ({head} head) | {attempt} | {n:,} | "
                    f"{sim.comparison.argmax_matches:,} | "
                    f"{sim.equal_to_python:,} | "
                    f"{', '.join(str(m.differing) for m in sim.layers)} | "
                    f"{len(sim.compile.compiled)} / {len(sim.compile.cached)} | "
                    f"{sim.compile.seconds:.0f} s | {n / sim.simulate_seconds:,.1f} | "
                    f"{wall / 60:.1f} min |")
            shutil.rmtree(RESULTS / f"{name}-build")  # tens of MB of generated code
    (RESULTS / "cppsim.json").write_text(json.dumps(records, indent=2))
    section = "\n".join([
        f"Command: `{command_line('cppsim_chain.py', argv)}`", "",
        f"W1A1 MLPs trained {args.epochs} epochs on MNIST (bnn pair), built for Pynq-Z1 at "
        f"target {args.target_fps:,} FPS; every generated MVAU compiled with g++ against "
        f"finn-hlslib and the hls4ml ap_types (no Vitis) and executed on "
        f"{args.images:,} test images (seeded stratified sample); 2 cores (2 compile workers, "
        f"2 simulation lanes).", "",
        "| model | compile cache | images | argmax = PyTorch | output = FINN Python | images "
        "with a differing layer output (per layer) | layers compiled / reused | compile | "
        "images/s | wall time (build + cppsim) |",
        "|---|---|---|---|---|---|---|---|---|---|", *rows]) + "\n"
    print(section)
    update_section("cppsim-chain", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
