"""Benchmark: timing closure of the RTL design (issue #38), measured after place and route with
the open flow on an ECP5 LFE5U-85F at speed grade 6 (nextpnr-ecp5 0.11.1 from PyPI, seed 1).

For one trained run: `xnorflow build RUN --backend rtl --place-route ecp5` (the default board,
Pynq-Z1, so the folding is FINN's fit for the xc7z020 and the ECP5 is the open stand-in; a new
process, an empty xnorflow cache), then, for the "before" row, the same design with the MVAU of
an earlier commit (``--before``, the unpipelined one) swapped into a copy of its HDL, through
the same yosys synth_ecp5 and nextpnr-ecp5. Cycles per frame and the first frame's latency come
from the build's Verilator simulation; ``--before-pythonpath`` (a folder holding the earlier
checkout as ``xnorflow``) also runs that checkout's RTL simulation for its latency. Next to
them: yosys' xc7z020 counts of the same RTL (hierarchical), FINN's estimates, and BNN-PYNQ's
published post-route figures for LFC and CNV (Vivado, xc7z020). Results go to
benchmarks/results/timing_closure/ and BENCHMARKS.md.

    python benchmarks/timing_closure.py --run runs/tfc --name tfc-digits
    python benchmarks/timing_closure.py --report
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _markdown import ROOT, command_line, update_section

RESULTS = ROOT / "benchmarks" / "results" / "timing_closure"
BEFORE = "64ad4d9"      # the last commit with the single-cycle ROM -> popcount -> accumulate MVAU
# BNN-PYNQ's post-route figures on the Pynq-Z1 (Vivado, 100 MHz), ../shared/ANCHORS.md
PUBLISHED = {"lfc": "28,360 LUT, 110 BRAM36 (BNN-PYNQ)", "cnv": "26,072 LUT, 124 BRAM36 "
                                                                 "(BNN-PYNQ)"}


def build(run: str, out: Path, images: int, env: dict, extra: list[str]) -> float:
    command = [sys.executable, "-m", "xnorflow.cli", "build", run, "--out", str(out),
               "--backend", "rtl", "--rtlsim", str(images), "--verify", str(images),
               "--no-progress", *extra]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode not in (0, 4):   # 4: misses its clock (or board): still measured
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stderr}")
    return time.perf_counter() - start


def before_mvau(out: Path, commit: str, board: str | None) -> dict:
    """The built design with ``commit``'s MVAU through the same ECP5 flow: alone on the
    stand-in, or inside ``board``'s top (UART link, PLL, pins) as the build placed it."""
    from xnorflow.hw.rtl.board import BOARDS, write_board_files
    from xnorflow.hw.rtl.design import Design
    from xnorflow.hw.rtl.ecp5 import LFE5U_85F, place_and_route, synthesize_netlist
    from xnorflow.hw.rtl.options import RtlOptions
    from xnorflow.hw.rtl.stitch import TOP

    old = subprocess.run(["git", "show", f"{commit}:hw/rtl/hdl/xnorflow_mvau.sv"], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "rtl"
        shutil.copytree(out / "rtl", copy, ignore=shutil.ignore_patterns("*.bit", "synth"))
        (copy / "hdl" / "xnorflow_mvau.sv").write_text(old)
        design = Design.load(copy)
        layers = tuple(i.name for i in design.instances)
        if board is None:
            netlist, synth = synthesize_netlist(design.hdl, design.files, TOP, print)
            placed = place_and_route(netlist, LFE5U_85F, 100.0, print, layers=layers)
        else:
            files = write_board_files(design, BOARDS[board], 100.0, RtlOptions().baud)
            netlist, synth = synthesize_netlist(design.hdl, files.files, files.top, print,
                                                primitives=(files.pll,))
            placed = place_and_route(netlist, BOARDS[board].part, files.clock_mhz, print,
                                     pins=files.pins, layers=layers)
    return {**placed.as_dict(), "synth_seconds": synth}


def old_latency(run: str, images: int, pythonpath: str, env: dict, data: list[str]) -> dict:
    env = {**env, "PYTHONPATH": pythonpath}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "b"
        build(run, out, images, env, ["--synth", "none", *data])
        sim = json.loads((out / "report" / "rtl.json").read_text())["simulation"]
    return {"latency_cycles": sim["latency_cycles"], "cycles_per_frame": sim["cycles_per_frame"]}


def measure(run: str, images: int, commit: str | None, pythonpath: str | None,
            data: list[str], board: str | None, save) -> dict:
    """The build's figures, handed to ``save`` as soon as they are known (the 'before' row,
    as long again, comes after)."""
    env = dict(os.environ)
    with tempfile.TemporaryDirectory() as tmp:
        env["XNORFLOW_CACHE_DIR"] = str(Path(tmp) / "cache")
        out = Path(tmp) / "build"
        target = ["--board", board] if board else []
        wall = build(run, out, images, env, ["--place-route", "ecp5", *target, *data])
        rtl = json.loads((out / "report" / "rtl.json").read_text())
        summary = json.loads((out / "build_summary.json").read_text())
        print(f"now: {rtl['place_route']['fmax_mhz']:.1f} MHz in {wall:.0f} s", flush=True)
        sim = rtl["simulation"]
        record = {"now": rtl["place_route"], "before": None, "wall": wall, "board": board,
                  "cycles_per_frame": sim["cycles_per_frame"],
                  "latency_cycles": sim["latency_cycles"], "finn_cycles": sim["estimated_cycles"],
                  "identical": rtl["identical"], "yosys_xc7": rtl["synthesis"]["design"],
                  "finn_estimate": summary["resources"], "before_simulation": None}
        save(record)
        os.environ["XNORFLOW_CACHE_DIR"] = env["XNORFLOW_CACHE_DIR"]
        if commit:
            record["before"] = before_mvau(out, commit, board)
            print(f"before: {record['before']['fmax_mhz']:.1f} MHz", flush=True)
    if pythonpath:
        record["before_simulation"] = old_latency(run, images, pythonpath, env, data)
    return record


def _target(record: dict) -> str:
    if not record.get("board"):
        return "stand-in (accelerator alone)"
    made = "bitstream" in record["now"]["seconds"]     # ecppack ran
    return f"{record['board']} (UART link, PLL{', bitstream' if made else ''})"


def _use(placed: dict | None) -> str:
    if not placed:
        return "not measured"
    u = placed["utilisation"]
    return (f"{u['LUT4']['used']:,} / {u['FF']['used']:,} / {u['EBR']['used']} / "
            f"{u['DSP']['used']}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", help="a trained run folder")
    p.add_argument("--name", help="the row's name, e.g. tfc-digits, lfc-mnist")
    p.add_argument("--images", type=int, default=100)
    p.add_argument("--before", default=BEFORE, help="commit whose MVAU is the 'before' row")
    p.add_argument("--no-before", action="store_true", help="measure only the current design")
    p.add_argument("--reuse-before", action="store_true",
                   help="keep the row's earlier 'before' measurement (valid while nothing but "
                        "the MVAU changed since it was taken)")
    p.add_argument("--board", help="an ECP5 board (ULX3S): the design behind its UART link, "
                                    "with a bitstream, instead of alone on the stand-in")
    p.add_argument("--before-pythonpath", help="a folder holding that commit as `xnorflow`, "
                                               "for its simulated latency")
    p.add_argument("--data-dir", help="where the run's data set lives (MNIST runs)")
    p.add_argument("--report", action="store_true", help="only rewrite BENCHMARKS.md")
    args = p.parse_args(argv)
    RESULTS.mkdir(parents=True, exist_ok=True)
    saved = RESULTS / "timing_closure.json"
    records = json.loads(saved.read_text()) if saved.is_file() else {}
    if not args.report:
        data = ["--data-dir", args.data_dir] if args.data_dir else []
        earlier = records.get(args.name, {})
        before = None if args.no_before or args.reuse_before else args.before

        def save(record: dict) -> None:
            # re-read: another measurement may have landed meanwhile (one row per process)
            records.update(json.loads(saved.read_text()) if saved.is_file() else {})
            records[args.name] = {**record, "command": command_line("timing_closure.py", argv)}
            if args.reuse_before:
                for key in ("before", "before_simulation"):
                    records[args.name][key] = earlier.get(key)
            saved.write_text(json.dumps(records, indent=2))

        save(measure(args.run, args.images, before, args.before_pythonpath, data, args.board,
                     save))
    lines = ["Post-route on an ECP5 LFE5U-85F, speed grade 6 (nextpnr-ecp5 0.11.1, seed 1, "
             "constraint 100 MHz). Target 'stand-in': the RTL of `xnorflow build RUN --backend "
             "rtl --place-route ecp5` alone on the chip, at the default folding for a Pynq-Z1; "
             "target 'ULX3S': `--board ULX3S`, the accelerator behind its UART link with the "
             "PLL and the board's pins, folded to fill the ECP5, and its bitstream. Before = "
             "the same design with the MVAU of commit " + BEFORE + " (ROM read, XNOR-popcount "
             "and accumulation in one cycle); a row measured with `--reuse-before` keeps the "
             "'before' of its earlier measurement, valid because nothing but the MVAU changed "
             "since. Utilisation LUT4 / FF / EBR / DSP as nextpnr counts them (a carry cell "
             "is two LUT4s). FPS at Fmax = Fmax / measured cycles per frame (Verilator). "
             "Latency: first input word to the first frame's last output word, cycles. The "
             "runs: `xnorflow train --out runs/digits` (SFC), `--model tfc --out "
             "runs/tfc-digits` and `--model lfc --dataset mnist --data-dir DIR --epochs 1 "
             "--out runs/lfc-mnist`; `--before-pythonpath` holds the earlier commit "
             "(`git worktree add /tmp/before " + BEFORE + "; mkdir /tmp/pp; ln -s /tmp/before "
             "/tmp/pp/xnorflow`) for its simulated latency. Wall times were measured with other "
             "jobs on the 2 cores: upper bounds.", "",
             "| design | target | Fmax before | Fmax now | LUT4 / FF / EBR / DSP before | now | "
             "critical path now | cycles/frame (FINN est.) | FPS at Fmax now | latency "
             "before -> now | yosys xc7z020 LUT / FF / BRAM_18K | FINN est. LUT / BRAM_18K "
             "| published (Vivado, xc7z020) | synth + P&R wall now |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name, r in records.items():
        now, before = r["now"], r["before"]
        path = now["critical_path"] or {}
        fps = now["fmax_mhz"] * 1e6 / r["cycles_per_frame"]
        old = (r.get("before_simulation") or {}).get("latency_cycles")
        xc7, finn = r["yosys_xc7"], r["finn_estimate"]
        secs = now["seconds"]
        was = f"{before['fmax_mhz']:.1f} MHz" if before else "not measured"
        lines.append(
            f"| {name} | {_target(r)} | {was} | "
            f"**{now['fmax_mhz']:.1f} MHz** | "
            f"{_use(before)} | {_use(now)} | {path.get('ns', 0):.1f} ns, {path.get('start')} "
            f"-> {path.get('end')} | {r['cycles_per_frame']:,.0f} ({r['finn_cycles']:,}) | "
            f"{fps:,.0f} | {old if old is not None else '-'} -> {r['latency_cycles']:,} | "
            f"{xc7['LUT']:,} / {xc7['FF']:,} / {xc7['BRAM_18K']:,} | "
            f"{finn.get('LUT', 0):,.0f} / {finn.get('BRAM_18K', 0):,.0f} | "
            f"{PUBLISHED.get(name.split('-')[0], '-')} | "
            f"{secs.get('synthesis', 0):.0f} + {secs.get('place and route', 0):.0f} s |")
    lines += ["", *[f"- {name}: `{r['command']}`" for name, r in records.items()]]
    update_section("timing-closure", "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
