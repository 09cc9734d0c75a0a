"""Benchmark: FINN estimates for SFC, LFC (784 bipolar inputs) and CNV (32x32x3 8-bit pixels)
W1A1 on Pynq-Z1 at 100 MHz.

For each model: (a) the fastest folding FINN's SetFolding finds that still fits the xc7z020
(target FPS doubled until the LUT or BRAM estimate exceeds the device), and (b) maximum
unfolding (every MVAU at PE = MH, SIMD = MW; every window generator, pool and padding unit at
full channel parallelism, window generators emitting a whole window per cycle). Estimates only
(no synthesis): FPS, latency, LUT, BRAM_18K. Writes JSON and a Markdown table, and updates
BENCHMARKS.md.

    python benchmarks/finn_estimates.py --models sfc lfc
    python benchmarks/finn_estimates.py --models cnv --section cnv-estimates \
        --out benchmarks/results/cnv_estimates
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from _markdown import ROOT, command_line, update_section

from xnorflow.export.qonnx_export import export_qonnx_model, save_model
from xnorflow.hw.finn.build import run_build
from xnorflow.hw.finn.options import BuildOptions
from xnorflow.hw.finn.report import summarize
from xnorflow.train.models import build_model

PUBLISHED = {
    "sfc": "FINN paper (FPGA'17), SFC-max on ZC706 at 200 MHz: 12.3 M FPS, 0.31 us",
    "lfc": "BNN-PYNQ LFC W1A1 on Pynq-Z1 (measured): 356,633 FPS, 28,360 LUT, 110 BRAM36 "
           "(= 220 BRAM_18K)",
    "cnv": "finn-examples CNV W1A1 on Pynq-Z1 (measured): 3,020 FPS at 84.19 % CIFAR-10 "
           "accuracy; Brevitas' CNV 1W1A reaches 84.22 %",
}
SHAPES = {"cnv": ((3, 32, 32), "uint8")}  # MLPs: 784 bipolar inputs


def estimate(qonnx: Path, work: Path, options: BuildOptions) -> dict:
    run_build(qonnx, work, options)
    summary = summarize(work, options.clock_mhz, options.fpga_part, board=options.board)
    keys = ("estimated_fps", "estimated_latency_us", "resources", "fits_device", "bottleneck",
            "layers")
    return {key: value for key, value in summary.as_dict().items() if key in keys}


def fastest_fitting(qonnx: Path, work: Path, board: str, clock_mhz: float) -> dict | None:
    """Highest target FPS whose estimates fit with FINN's SetFolding: doubling from 1,000,
    then bisection."""
    def attempt(fps: int) -> dict:
        result = estimate(qonnx, work, BuildOptions(board=board, clock_mhz=clock_mhz,
                                                    target_fps=fps, folding_search="finn",
                                                    until="estimates"))
        return {**result, "target_fps": fps}

    best, low, high = None, 0, 1000
    while True:
        result = attempt(high)
        if not result["fits_device"]:
            break
        best, low = result, high
        if result["estimated_fps"] < high / 2:  # folding saturated: FINN cannot go faster
            return best
        high *= 2
    for _ in range(5):  # bisection between the last fitting and the first failing target
        middle = (low + high) // 2
        result = attempt(middle)
        if result["fits_device"]:
            best, low = result, middle
        else:
            high = middle
    return best


def maximum_unfolding(folded: Path, qonnx: Path, work: Path, board: str,
                      clock_mhz: float) -> dict:
    """PE = MH and SIMD = MW in every MVAU of the folded graph ``folded`` (one cycle per output
    pixel), the other layers at full channel parallelism, RTL window generators in
    ``parallel_window`` mode (a whole window per cycle). Weights embedded in the logic (a
    weight stream of MW * MH bits per cycle exceeds HLS' 8191-bit limit)."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    full = {"MVAU": lambda op: {"PE": op.get_nodeattr("MH"), "SIMD": op.get_nodeattr("MW"),
                                "mem_mode": "internal_embedded"},
            "ConvolutionInputGenerator": lambda op: {"SIMD": op.get_nodeattr("IFMChannels")},
            "FMPadding": lambda op: {"SIMD": op.get_nodeattr("NumChannels")},
            "Pool": lambda op: {"PE": op.get_nodeattr("Channels")},
            "LabelSelect": lambda op: {"PE": op.get_nodeattr("Labels")}}
    folding = {"Defaults": {}}
    for node in ModelWrapper(str(folded)).graph.node:
        kind = node.op_type.rsplit("_", 1)[0]
        if kind in full:
            folding[node.name] = full[kind](getCustomOp(node))
        if node.op_type == "ConvolutionInputGenerator_rtl":  # a whole window per cycle
            folding[node.name]["parallel_window"] = 1
    work.mkdir(parents=True, exist_ok=True)
    (work / "max_folding.json").write_text(json.dumps(folding))
    options = BuildOptions(board=board, clock_mhz=clock_mhz,
                           folding_config=str(work / "max_folding.json"), until="estimates")
    return {**estimate(qonnx, work, options), "target_fps": "max"}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["sfc", "lfc"])
    p.add_argument("--board", default="Pynq-Z1")
    p.add_argument("--clock-mhz", type=float, default=100.0)
    p.add_argument("--section", default="finn-estimates", help="BENCHMARKS.md section")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "finn_estimates"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.models:
        torch.manual_seed(0)
        shape, pixels = SHAPES.get(name, ((784,), "bipolar"))
        model = build_model(name, shape, 10, "bnn", pixels=pixels).eval()  # shapes decide
        with tempfile.TemporaryDirectory() as tmp:
            qonnx = Path(tmp) / "model.onnx"
            save_model(export_qonnx_model(model), qonnx)
            fits = fastest_fitting(qonnx, Path(tmp) / "fit", args.board, args.clock_mhz)
            folded = Path(tmp) / "fit" / "intermediate_models" / "step_check_folding.onnx"
            results[name] = {
                "fits": fits,
                "max": maximum_unfolding(folded, qonnx, Path(tmp) / "max", args.board,
                                         args.clock_mhz)}
        print(name, json.dumps({k: {kk: v[kk] for kk in ("estimated_fps", "resources")}
                                for k, v in results[name].items()}), flush=True)
    (out / "estimates.json").write_text(json.dumps(results, indent=2))
    lines = [f"Command: `{command_line('finn_estimates.py', argv)}`", "",
             f"FINN estimates (no synthesis) for {args.board} "
             f"({BuildOptions(board=args.board).fpga_part}) at "
             f"{args.clock_mhz:g} MHz; W1A1, 10 classes; MLPs take 784 bipolar inputs, CNV "
             f"32x32x3 8-bit pixels (an 8-bit first layer, as FINN's CNV). 'fits' = the "
             f"highest target FPS whose LUT/BRAM estimates fit the device with FINN's "
             f"SetFolding (doubling from 1,000, then bisection; xnorflow's own search is "
             f"compared in the folding section); 'max' = full unfolding, PE = MH and "
             f"SIMD = MW in every MVAU (other layers at full channel parallelism), weights "
             f"embedded in logic. LUT/BRAM are FINN's "
             f"analytical estimates, typically above post-synthesis figures.", "",
             "| model | folding | PE/SIMD per MVAU | est. FPS | latency | LUT | BRAM_18K | "
             "fits xc7z020 |", "|---|---|---|---|---|---|---|---|"]
    for name, variants in results.items():
        for variant, r in variants.items():
            if r is None:
                lines.append(f"| {name.upper()} | {variant} | - | - | - | - | - | "
                             f"no folding fits |")
                continue
            folds = ", ".join(f"{layer['pe']}/{layer['simd']}" for layer in r["layers"]
                              if layer["op"].startswith("MVAU"))
            lines.append(f"| {name.upper()} | {variant} | {folds} | {r['estimated_fps']:,.0f} | "
                         f"{r['estimated_latency_us']:.2f} us | {r['resources']['LUT']:,.0f} | "
                         f"{r['resources']['BRAM_18K']:,.0f} | "
                         f"{'yes' if r['fits_device'] else 'no'} |")
    lines += ["", "Published, for comparison (measured on hardware, not estimates):"]
    lines += [f"- {PUBLISHED[n]}" for n in results if n in PUBLISHED]
    section = "\n".join(lines) + "\n"
    (out / "estimates.md").write_text(section)
    print(section)
    update_section(args.section, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
