"""Benchmark: `xnorflow build --backend rtl` (issue #27): the RTL design simulated by Verilator on
MNIST test images, its cycles per frame measured, its size synthesized by yosys.

For each model (MLPs trained a few epochs on MNIST, CNV one epoch; runs kept under
benchmarks/results/rtl_chain/), the default build (the fastest folding within 80 % of a Pynq-Z1)
with ``--backend rtl --rtlsim N``: images identical to PyTorch and to FINN's Python execution,
simulated images/s, cycles per frame measured against FINN's estimate, FIFO depths, yosys
counts against FINN's estimates, and the wall time of the whole build. Then the same design's
C simulation (``--cppsim``) on ``--cppsim-images`` images, for its images/s on this machine.
Updates BENCHMARKS.md.

    python benchmarks/rtl_chain.py --models lfc sfc --images 10000
    python benchmarks/rtl_chain.py --models cnv --images 200 --cppsim-images 20
    python benchmarks/rtl_chain.py --report      # the tables again from the saved results
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from _markdown import ROOT, command_line, update_section

from xnorflow.hw.finn.options import BuildOptions
from xnorflow.hw.rtl.options import RtlOptions
from xnorflow.stages.build import build_stage
from xnorflow.stages.train import train_run
from xnorflow.train.configs import TrainConfig

RESULTS = ROOT / "benchmarks" / "results" / "rtl_chain"
EPOCHS = {"tfc": 2, "sfc": 2, "lfc": 2, "cnv": 1}
# post-place-and-route figures BNN-PYNQ publishes for its own foldings (ANCHORS.md)
PUBLISHED = {"lfc": "BNN-PYNQ LFC: 512 cycles/frame, 28,360 LUT, 220 BRAM_18K (110 BRAM36)",
             "cnv": "BNN-PYNQ CNV: ~3,086 FPS at 100 MHz (~32,400 cycles), 26,072 LUT, 248 "
                    "BRAM_18K (124 BRAM36)"}


def measure(name: str, images: int, cppsim_images: int, data_dir: str, hlslib: str) -> dict:
    run = RESULTS / f"{name}-run"
    if not (run / "model.pt").exists():
        train_run(TrainConfig(model=name, dataset="mnist", data_dir=data_dir,
                              epochs=EPOCHS[name]), run, progress=False)
    start = time.perf_counter()
    built = build_stage(run, RESULTS / f"{name}-build", BuildOptions(), verify=0,
                        rtl_options=RtlOptions(rtlsim=images), progress=True)
    wall = time.perf_counter() - start
    rtl = json.loads((RESULTS / f"{name}-build" / "report" / "rtl.json").read_text())
    estimates = json.loads((RESULTS / f"{name}-build" / "report" /
                            "estimate_layer_resources.json").read_text())["total"]
    record = {"wall_seconds": wall, "rtl": rtl, "finn_estimate": estimates,
              "estimated_fps": built.summary.estimated_fps}
    if cppsim_images:
        start = time.perf_counter()
        simulated = build_stage(run, RESULTS / f"{name}-cppsim", BuildOptions(), verify=0,
                                cppsim=cppsim_images, finn_hlslib=hlslib, progress=True)
        record["cppsim_images_per_second"] = (cppsim_images /
                                              max(simulated.cppsim.simulate_seconds, 1e-9))
        record["cppsim_identical"] = simulated.cppsim.identical
        record["cppsim_wall_seconds"] = time.perf_counter() - start
    return record


def rate_text(images_per_second: float) -> str:
    """Whole images/s from 100 up, else three significant digits (CNV's cppsim is ~0.03)."""
    return (f"{images_per_second:,.0f}" if images_per_second >= 100
            else f"{images_per_second:.3g}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["lfc", "sfc"])
    p.add_argument("--images", type=int, default=10000)
    p.add_argument("--cppsim-images", type=int, default=200)
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    p.add_argument("--finn-hlslib", default=str(ROOT.parent / "shared" / "deps" / "finn-hlslib"))
    p.add_argument("--report", action="store_true",
                   help="only rewrite BENCHMARKS.md from the saved results")
    args = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / "rtl_chain.json"
    records = json.loads(saved.read_text()) if saved.is_file() else {}
    for name in ([] if args.report else args.models):
        records[name] = {**measure(name, args.images, args.cppsim_images, args.data_dir,
                                   args.finn_hlslib), "command": command_line("rtl_chain.py",
                                                                              argv)}
        saved.write_text(json.dumps(records, indent=2, default=str))
    lines = ["Each row: its own command (below the tables). Default folding (the fastest "
             "within 80 % of a Pynq-Z1, 100 MHz), `build --backend rtl`: the design in "
             "Verilog (xnorflow's XNOR MVAU, LabelSelect, max-pool and width converters, "
             "finn-rtllib's FIFOs, sliding windows and padding), simulated by Verilator 5.48 on "
             "MNIST test images, synthesized by yosys 0.70 `synth_xilinx` (pre-place-and-"
             "route). This machine: 2 cores.", "",
             "| model | images | = PyTorch | = FINN Python | every layer identical | gaps + "
             "back-pressure | RTL images/s | cppsim images/s | speed-up | build wall time |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in records.items():
        sim = r["rtl"]["simulation"]
        cpp = r.get("cppsim_images_per_second")
        rate = sim["images_per_second"]
        layers = all(layer["alone_identical"] and not layer["images_differing"]
                     for layer in sim["layers"])
        lines.append(
            f"| {name.upper()} | {sim['images']:,} | {sim['comparison']['argmax_matches']:,} | "
            f"{sim['identical_to_python']:,} | {'yes' if layers else 'NO'} | "
            f"{'identical' if sim['stress']['identical'] else 'DIFFERENT'} | "
            f"{rate_text(rate)} | {rate_text(cpp) if cpp else '-'} | "
            f"{f'{rate / cpp:,.0f}x' if cpp else '-'} | "
            f"{r['wall_seconds'] / 60:.1f} min |")
    lines += ["", "| model | cycles/frame measured | FINN estimate | latency (cycles) | LUT "
              "(yosys / FINN est.) | FF (yosys) | BRAM_18K (yosys / FINN est.) | published |",
              "|---|---|---|---|---|---|---|---|"]
    for name, r in records.items():
        sim, design, est = (r["rtl"]["simulation"], r["rtl"]["synthesis"]["design"],
                            r["finn_estimate"])
        lines.append(f"| {name.upper()} | {sim['cycles_per_frame']:,.1f} | "
                     f"{sim['estimated_cycles']:,} | {sim['latency_cycles']:,} | "
                     f"{design['LUT']:,} / {est.get('LUT', 0):,.0f} | {design['FF']:,} | "
                     f"{design['BRAM_18K']:,} / {est.get('BRAM_18K', 0):,.0f} | "
                     f"{PUBLISHED.get(name, '-')} |")
    lines += ["", *[f"- {name.upper()}: `{r['command']}`" for name, r in records.items()]]
    update_section("rtl-chain", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
