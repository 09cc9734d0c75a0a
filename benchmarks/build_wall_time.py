"""Benchmark: wall time of `xnorflow build` from a trained checkpoint to FINN's estimates.

Times the command a user runs (process start, imports, QONNX export, FINN build), once with
`--until estimates` and once with `--until hw-codegen`, without the PyTorch comparison
(`--verify 0`), and once more with the default 200-image verification. Updates BENCHMARKS.md.

    python benchmarks/build_wall_time.py --run benchmarks/results/quantizers/bnn-seed0
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _markdown import ROOT, command_line, update_section

VARIANTS = (("estimates", 0), ("hw-codegen", 0), ("hw-codegen", 200))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", default=str(ROOT / "benchmarks/results/quantizers/bnn-seed0"))
    p.add_argument("--target-fps", type=int, default=100_000)
    args = p.parse_args(argv)
    xnorflow = Path(sys.executable).parent / "xnorflow"
    rows = []
    for until, verify in VARIANTS:
        with tempfile.TemporaryDirectory() as tmp:
            command = [str(xnorflow), "build", args.run, "--out", tmp, "--target-fps",
                       str(args.target_fps), "--until", until, "--verify", str(verify),
                       "--no-progress"]
            start = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True)
            seconds = time.perf_counter() - start
        rows.append(f"| `--until {until} --verify {verify}` | {seconds:.1f} s |")
        print(rows[-1], flush=True)
    section = "\n".join([
        f"Command: `{command_line('build_wall_time.py', argv)}`", "",
        f"`xnorflow build RUN --target-fps {args.target_fps:,}` (Pynq-Z1, 100 MHz) with RUN = "
        f"the LFC W1A1 checkpoint `{Path(args.run).name}`, whole process; goal: under 2 "
        f"minutes to the estimates.", "",
        "| variant | wall time |", "|---|---|", *rows]) + "\n"
    print(section)
    update_section("build-wall-time", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
