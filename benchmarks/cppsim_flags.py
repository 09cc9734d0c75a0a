"""Benchmark: FINN's cppsim compile flags (-O3 -fno-inline, CompileCppSim) against xnorflow's
(-O2), same sources, same harness, same simulation lanes: compile time, images/s, and whether
the outputs are identical. SFC W1A1 on N MNIST test images (a seeded stratified sample).

    python benchmarks/cppsim_flags.py --images 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
from _markdown import ROOT, command_line, update_section

from xnorflow.export.run_export import reference_for
from xnorflow.hw.finn.options import BuildOptions
from xnorflow.hw.sim.cppsim import CXXFLAGS, OUTPUTS_FILE, Toolchain, simulate_build
from xnorflow.stages.build import build_stage
from xnorflow.stages.train import train_run
from xnorflow.train.configs import TrainConfig
from xnorflow.train.runs import open_run

RUN = ROOT / "benchmarks" / "results" / "cppsim_chain" / "sfc-run"
RESULTS = ROOT / "benchmarks" / "results" / "cppsim_flags.json"
FINN_FLAGS = ("-std=c++17", "-O3", "-fno-inline", "-w")  # FINN's compile script, C++ standard ours


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=1000)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    p.add_argument("--finn-hlslib", default=str(ROOT.parent / "shared" / "deps" / "finn-hlslib"))
    args = p.parse_args(argv)
    if not (RUN / "model.pt").exists():
        train_run(TrainConfig(model="sfc", dataset="mnist", data_dir=args.data_dir, epochs=2),
                  RUN)
    run = open_run(RUN)
    reference = reference_for(run, run.model(), args.images, args.data_dir)
    records, outputs = {}, {}
    with tempfile.TemporaryDirectory() as work:
        build = Path(work) / "build"
        build_stage(RUN, build, BuildOptions(target_fps=100_000), verify=0, progress=False)
        base = Toolchain.find(args.finn_hlslib)
        for name, flags in (("FINN (CompileCppSim)", FINN_FLAGS), ("xnorflow", CXXFLAGS)):
            os.environ["XNORFLOW_CACHE_DIR"] = str(Path(work) / f"cache-{len(records)}")
            sim = simulate_build(build, reference.images, reference.logits, reference.labels,
                                 base.with_flags(flags), progress=False)
            outputs[name] = np.load(build / "cppsim" / OUTPUTS_FILE)
            records[name] = {"flags": " ".join(flags), "compile_seconds": sim.compile.seconds,
                             "images_per_second": args.images / sim.simulate_seconds,
                             "identical_to_pytorch": sim.comparison.argmax_matches,
                             "equal_to_python": sim.equal_to_python}
            print(name, records[name], flush=True)
    same = bool(np.array_equal(*outputs.values()))
    RESULTS.write_text(json.dumps({"records": records, "outputs_identical": same}, indent=2))
    rows = [f"| {name} | `{r['flags']}` | {r['compile_seconds']:.0f} s | "
            f"{r['images_per_second']:.1f} | {r['identical_to_pytorch']:,} / {args.images:,} |"
            for name, r in records.items()]
    speedup = (records["xnorflow"]["images_per_second"]
               / records["FINN (CompileCppSim)"]["images_per_second"])
    section = "\n".join([
        f"Command: `{command_line('cppsim_flags.py', argv)}`", "",
        f"SFC W1A1 (benchmarks/results/cppsim_chain/sfc-run), every layer compiled into an empty "
        f"cache, {args.images:,} MNIST test images (seeded stratified sample), 2 simulation lanes, "
        f"the same sources and harness; only the compiler flags differ.", "",
        "| flags of | g++ flags | compile (4 layers, 2 at a time) | images/s | argmax = "
        "PyTorch |", "|---|---|---|---|---|", *rows, "",
        f"Simulation {speedup:.1f}x faster with xnorflow's flags; outputs of the two "
        f"{'identical on every image' if same else 'DIFFER'}."])
    print(section)
    update_section("cppsim-flags", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
