"""Benchmark: wall time of `xnorflow build --backend rtl` next to the plain build of the same run
(issue #39), split into FINN (export, build, verification), Verilator compiles, simulation and
yosys; then the same RTL build again into the same folder (a rebuild of an unchanged design).

Each build is the command a user runs (a new process). The RTL builds start from an empty
xnorflow cache (a fresh XNORFLOW_CACHE_DIR), so the first one compiles and synthesizes
everything; the rebuild shares that cache. ``--pythonpath`` runs another checkout of xnorflow
(a folder holding an ``xnorflow`` package) for a before/after comparison on the same machine.
Results go to benchmarks/results/rtl_build_time/ and BENCHMARKS.md.

    python benchmarks/rtl_build_time.py --run runs/digits --name digits
    python benchmarks/rtl_build_time.py --run benchmarks/results/rtl_chain/lfc-run --name lfc
    python benchmarks/rtl_build_time.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _markdown import ROOT, command_line, update_section

RESULTS = ROOT / "benchmarks" / "results" / "rtl_build_time"


def timed_build(run: str, out: Path, extra: list[str], env: dict) -> float:
    command = [sys.executable, "-m", "xnorflow.cli", "build", run, "--out", str(out),
               "--no-progress", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode not in (0, 4):   # 4: a misfit is still a finished build
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return seconds


def split(out: Path, wall: float) -> dict:
    """FINN / Verilator compile / simulation / yosys of an RTL build, from its rtl.json."""
    rtl = json.loads((out / "report" / "rtl.json").read_text())
    sim, synth = rtl["simulation"], rtl["synthesis"]
    return {"wall": wall, "finn": wall - rtl["seconds"], "compile": sim["compile_seconds"],
            "simulate": sim["simulate_seconds"],
            "design_lut": synth["design"]["LUT"], "design_bram": synth["design"]["BRAM_18K"],
            "cycles": sim["cycles_per_frame"], "identical": rtl["identical"],
            "reused": f"{synth.get('reused', 0)}/{synth.get('modules', len(synth['layers']))}"}


def measure(run: str, images: int, pythonpath: str | None) -> dict:
    env = dict(os.environ)
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    with tempfile.TemporaryDirectory() as tmp:
        env["XNORFLOW_CACHE_DIR"] = str(Path(tmp) / "cache")
        plain = timed_build(run, Path(tmp) / "plain", [], env)
        print(f"plain build: {plain:.0f} s", flush=True)
        rtl_args = ["--backend", "rtl", "--rtlsim", str(images)]
        out = Path(tmp) / "rtl"
        first = split(out, timed_build(run, out, rtl_args, env))
        print(f"RTL build: {first}", flush=True)
        again = split(out, timed_build(run, out, rtl_args, env))
        print(f"RTL rebuild: {again}", flush=True)
    return {"plain": plain, "rtl": first, "rebuild": again}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="a trained run folder")
    p.add_argument("--name", help="the row's name (e.g. digits, lfc)")
    p.add_argument("--label", default="now", help="e.g. before, now")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--pythonpath", help="a folder holding another checkout as `xnorflow`")
    p.add_argument("--report", action="store_true", help="only rewrite BENCHMARKS.md")
    args = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / "rtl_build_time.json"
    records = json.loads(saved.read_text()) if saved.is_file() else {}
    if not args.report:
        key = f"{args.name}/{args.label}"
        records[key] = {**measure(args.run, args.images, args.pythonpath),
                        "images": args.images, "command": command_line("rtl_build_time.py", argv)}
        saved.write_text(json.dumps(records, indent=2))
    lines = ["`xnorflow build RUN` and `xnorflow build RUN --backend rtl --rtlsim N` (default "
             "folding for a Pynq-Z1, default `--synth hierarchical`), each a new process on "
             "this machine (2 cores), the RTL builds from an empty xnorflow cache; then the "
             "RTL build again into its folder (an unchanged design). FINN = export, FINN's "
             "build and the 200-image verification (the build's wall time less the RTL "
             "backend's); Verilator compile and simulation from `report/rtl.json`; yosys = the "
             "rest of the RTL backend (synthesis and the Vivado script), wall time.", "",
             "| run | code | plain build | RTL build | ratio | FINN | Verilator compile | "
             "simulation | yosys | RTL rebuild (yosys reused) | yosys LUT / BRAM_18K |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for key, r in records.items():
        name, label = key.split("/")
        first, again = r["rtl"], r["rebuild"]
        yosys = first["wall"] - first["finn"] - first["compile"] - first["simulate"]
        lines.append(
            f"| {name} | {label} | {r['plain']:.0f} s | {first['wall']:.0f} s | "
            f"{first['wall'] / r['plain']:.1f}x | {first['finn']:.0f} s | "
            f"{first['compile']:.0f} s | {first['simulate']:.1f} s | {yosys:.0f} s | "
            f"{again['wall']:.0f} s ({again['reused']}) | {first['design_lut']:,} / "
            f"{first['design_bram']:,} |")
    lines += ["", *[f"- {key}: `{r['command']}`" for key, r in records.items()]]
    update_section("rtl-build-time", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
