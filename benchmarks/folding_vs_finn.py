"""Benchmark: xnorflow's balanced folding search against FINN's SetFolding, on FINN estimates.

For LFC and SFC (784 bipolar inputs) and CNV (32x32x3 8-bit pixels), W1A1, Pynq-Z1 at 100 MHz:

1. at each target frame rate (doubling from --start-fps until neither search fits the device),
   the design each search builds for that target: FPS, LUT, BRAM_18K, and whether it fits;
2. the fastest design that fits the whole device (budget 100 %): FINN = the highest target
   whose SetFolding design fits (doubling, then bisection, as `finn_estimates.py`); xnorflow =
   `xnorflow build` without a target at --budget 1.0 (and at its default 0.8).

Every design is a real `xnorflow build --until estimates` of an untrained network (the folding
does not depend on the weights' values). Writes JSON and Markdown, updates BENCHMARKS.md.

    python benchmarks/folding_vs_finn.py
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from _markdown import ROOT, command_line, update_section
from finn_estimates import SHAPES, estimate, fastest_fitting

from xnorflow.export.qonnx_export import export_qonnx_model, save_model
from xnorflow.hw.finn.options import BuildOptions
from xnorflow.train.models import build_model

START = {"lfc": 10_000, "sfc": 10_000, "cnv": 1_000}


def _design(qonnx: Path, work: Path, board: str, clock: float, **options) -> dict:
    result = estimate(qonnx, work, BuildOptions(board=board, clock_mhz=clock, until="estimates",
                                                **options))
    peak = max(result["resources"].get(k, 0) / v for k, v in
               {"LUT": 53_200, "BRAM_18K": 280}.items())
    return {"fps": result["estimated_fps"], "lut": result["resources"].get("LUT", 0),
            "bram": result["resources"].get("BRAM_18K", 0), "fits": result["fits_device"],
            "peak": peak,
            "folds": [f"{layer['pe']}/{layer['simd']}" for layer in result["layers"]
                      if layer["op"].startswith("MVAU")]}


def compare(name: str, board: str, clock: float, work: Path) -> dict:
    torch.manual_seed(0)
    shape, pixels = SHAPES.get(name, ((784,), "bipolar"))
    qonnx = work / f"{name}.onnx"
    save_model(export_qonnx_model(build_model(name, shape, 10, "bnn", pixels=pixels).eval()),
               qonnx)
    rows, target = [], START.get(name, 10_000)
    while True:
        start = time.perf_counter()
        finn = _design(qonnx, work / "finn", board, clock, target_fps=target,
                       folding_search="finn")
        ours = _design(qonnx, work / "ours", board, clock, target_fps=target, budget=1.0)
        rows.append({"target": target, "finn": finn, "ours": ours})
        print(name, target, "finn", finn["fps"], finn["lut"], finn["bram"], "ours", ours["fps"],
              ours["lut"], ours["bram"], f"{time.perf_counter() - start:.0f} s", flush=True)
        if (not finn["fits"] and not ours["fits"]) or target > 4 * max(finn["fps"], ours["fps"]):
            break  # beyond the device, or beyond what any folding reaches
        target *= 2
    finn_best = fastest_fitting(qonnx, work / "finn-fit", board, clock)
    fastest = {
        "finn": None if finn_best is None else {
            "fps": finn_best["estimated_fps"], "lut": finn_best["resources"].get("LUT", 0),
            "bram": finn_best["resources"].get("BRAM_18K", 0), "target": finn_best["target_fps"],
            "folds": [f"{layer['pe']}/{layer['simd']}" for layer in finn_best["layers"]
                      if layer["op"].startswith("MVAU")]},
        "ours-1.0": _design(qonnx, work / "fit-1.0", board, clock, budget=1.0),
        "ours-0.8": _design(qonnx, work / "fit-0.8", board, clock, budget=0.8)}
    return {"targets": rows, "fastest": fastest}


def _cells(design: dict) -> str:
    return (f"{design['fps']:,.0f} | {design['lut']:,.0f} | {design['bram']:,.0f} | "
            f"{'yes' if design['fits'] else 'no'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", nargs="+", default=["lfc", "sfc", "cnv"])
    p.add_argument("--board", default="Pynq-Z1")
    p.add_argument("--clock-mhz", type=float, default=100.0)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "folding_vs_finn"))
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.models:
            results[name] = compare(name, args.board, args.clock_mhz, Path(tmp) / name)
    (out / "folding_vs_finn.json").write_text(json.dumps(results, indent=2))

    lines = [f"Command: `{command_line('folding_vs_finn.py', argv)}`", "",
             f"FINN estimates (no synthesis), {args.board} (xc7z020: 53,200 LUT, 280 "
             f"BRAM_18K) at {args.clock_mhz:g} MHz, untrained W1A1 networks (the folding does "
             f"not depend on weight values). Per target: the design FINN's SetFolding builds "
             f"(`--folding-search finn`) and the one xnorflow's balanced search builds "
             f"(`--target-fps N --budget 1.0`), on the same graph.", ""]
    for name, result in results.items():
        lines += [f"**{name.upper()}**, same target:", "",
                  "| target FPS | FINN FPS | FINN LUT | FINN BRAM_18K | FINN fits | xnorflow FPS "
                  "| xnorflow LUT | xnorflow BRAM_18K | xnorflow fits | peak use FINN -> "
                  "xnorflow |", "|---|---|---|---|---|---|---|---|---|---|"]
        for row in result["targets"]:
            lines.append(f"| {row['target']:,} | {_cells(row['finn'])} | {_cells(row['ours'])} "
                         f"| {row['finn']['peak']:.0%} -> {row['ours']['peak']:.0%} |")
        fastest = result["fastest"]
        finn = fastest["finn"]
        lines += ["", "Fastest design that fits:", "",
                  "| search | FPS | LUT | BRAM_18K | PE/SIMD per MVAU |", "|---|---|---|---|---|"]
        if finn:
            lines.append(f"| FINN SetFolding, highest fitting target ({finn['target']:,}) | "
                         f"{finn['fps']:,.0f} | {finn['lut']:,.0f} | {finn['bram']:,.0f} | "
                         f"{', '.join(finn['folds'])} |")
        for key, label in (("ours-1.0", "xnorflow, budget 100 %"),
                           ("ours-0.8", "xnorflow, budget 80 % (default)")):
            d = fastest[key]
            lines.append(f"| {label} | {d['fps']:,.0f} | {d['lut']:,.0f} | {d['bram']:,.0f} | "
                         f"{', '.join(d['folds'])} |")
        lines.append("")
    lines += ["Anchor: BNN-PYNQ's LFC W1A1 folding runs at 512 cycles per frame (about 195k FPS "
              "at 100 MHz); FINN estimates that folding at about 40k LUT and 161 BRAM_18K."]
    section = "\n".join(lines) + "\n"
    (out / "folding_vs_finn.md").write_text(section)
    print(section)
    update_section("folding-vs-finn", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
