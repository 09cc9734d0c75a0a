"""Benchmark: FINN estimates for SFC and LFC W1A1 on Pynq-Z1 at 100 MHz.

For each model: (a) the fastest folding FINN's SetFolding finds that still fits the xc7z020
(target FPS doubled until the LUT or BRAM estimate exceeds the device), and (b) maximum
unfolding (every MVAU at PE = MH, SIMD = MW). Estimates only (no synthesis): FPS, latency,
LUT, BRAM_18K. Writes JSON and a Markdown table, and updates BENCHMARKS.md.

    python benchmarks/finn_estimates.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
from brevitas.nn import QuantLinear

from _markdown import ROOT, command_line, update_section
from xnorflow.export.qonnx_export import export_qonnx_model, save_model
from xnorflow.hw.build import BuildOptions, run_build
from xnorflow.hw.report import summarize
from xnorflow.train.models import build_model

PUBLISHED = {
    "sfc": "FINN paper (FPGA'17), SFC-max on ZC706 at 200 MHz: 12.3 M FPS, 0.31 us",
    "lfc": "BNN-PYNQ LFC W1A1 on Pynq-Z1 (measured): 356,633 FPS, 28,360 LUT, 110 BRAM36 "
           "(= 220 BRAM_18K)",
}


def estimate(qonnx: Path, work: Path, options: BuildOptions) -> dict:
    run_build(qonnx, work, options)
    summary = summarize(work, options.clock_mhz, options.fpga_part, board=options.board)
    return {key: summary[key] for key in ("estimated_fps", "estimated_latency_us", "resources",
                                          "fits_device", "bottleneck", "layers")}


def fastest_fitting(qonnx: Path, work: Path, board: str, clock_mhz: float) -> dict | None:
    """Highest target FPS whose estimates fit: doubling from 1,000, then bisection."""
    def attempt(fps: int) -> dict:
        result = estimate(qonnx, work, BuildOptions(board=board, clock_mhz=clock_mhz,
                                                    target_fps=fps, until="estimates"))
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


def maximum_unfolding(model: torch.nn.Module, qonnx: Path, work: Path, board: str,
                      clock_mhz: float) -> dict:
    """PE = MH and SIMD = MW in every layer: one cycle per layer and frame. Weights embedded in
    the logic (a weight stream of MW * MH bits per cycle exceeds HLS' 8191-bit limit)."""
    shapes = [(m.in_features, m.out_features) for m in model.modules()
              if isinstance(m, QuantLinear)]
    folding = {"Defaults": {}, **{f"MVAU_hls_{i}": {"PE": mh, "SIMD": mw,
                                                    "mem_mode": "internal_embedded"}
                                  for i, (mw, mh) in enumerate(shapes)}}
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
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "finn_estimates"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.models:
        torch.manual_seed(0)
        model = build_model(name, 784, 10, "bnn").eval()  # shapes decide the estimates
        with tempfile.TemporaryDirectory() as tmp:
            qonnx = Path(tmp) / "model.onnx"
            save_model(export_qonnx_model(model), qonnx)
            results[name] = {
                "fits": fastest_fitting(qonnx, Path(tmp) / "fit", args.board, args.clock_mhz),
                "max": maximum_unfolding(model, qonnx, Path(tmp) / "max", args.board,
                                         args.clock_mhz)}
        print(name, json.dumps({k: {kk: v[kk] for kk in ("estimated_fps", "resources")}
                                for k, v in results[name].items()}), flush=True)
    (out / "estimates.json").write_text(json.dumps(results, indent=2))
    lines = [f"Command: `{command_line('finn_estimates.py', argv)}`", "",
             f"FINN estimates (no synthesis) for {args.board} "
             f"({BuildOptions(board=args.board).fpga_part}) at "
             f"{args.clock_mhz:g} MHz; W1A1, 784 bipolar inputs, 10 classes. 'fits' = the "
             f"highest target FPS whose LUT/BRAM estimates fit the device (doubling from "
             f"1,000, then bisection); 'max' = full unfolding, PE = MH and "
             f"SIMD = MW in every layer, weights embedded in logic. LUT/BRAM are FINN's "
             f"analytical estimates, typically above post-synthesis figures.", "",
             "| model | folding | PE/SIMD per layer | est. FPS | latency | LUT | BRAM_18K | "
             "fits xc7z020 |", "|---|---|---|---|---|---|---|---|"]
    for name, variants in results.items():
        for variant, r in variants.items():
            if r is None:
                lines.append(f"| {name.upper()} | {variant} | - | - | - | - | - | no folding fits |")
                continue
            folds = ", ".join(f"{l['pe']}/{l['simd']}" for l in r["layers"])
            lines.append(f"| {name.upper()} | {variant} | {folds} | {r['estimated_fps']:,.0f} | "
                         f"{r['estimated_latency_us']:.2f} us | {r['resources']['LUT']:,.0f} | "
                         f"{r['resources']['BRAM_18K']:,.0f} | "
                         f"{'yes' if r['fits_device'] else 'no'} |")
    lines += ["", "Published, for comparison (measured on hardware, not estimates):"]
    lines += [f"- {PUBLISHED[n]}" for n in results if n in PUBLISHED]
    section = "\n".join(lines) + "\n"
    (out / "estimates.md").write_text(section)
    print(section)
    update_section("finn-estimates", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
