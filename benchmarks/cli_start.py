"""Benchmark: how fast the command answers before any stage runs.

Times the installed ``xnorflow`` console script for ``--help``, ``train --help`` and an option
error (``train --epochs 0``, exit 2), whole process, median and maximum of repeated runs.
Goal: under 1 s (the parser imports no deep-learning framework). Updates BENCHMARKS.md.

    python benchmarks/cli_start.py --repeat 10
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _markdown import command_line, update_section

CASES = (("xnorflow --help", ["--help"], 0),
         ("xnorflow train --help", ["train", "--help"], 0),
         ("xnorflow build --help", ["build", "--help"], 0),
         ("xnorflow train --epochs 0 --out x (exit 2)",
          ["train", "--epochs", "0", "--out", "x"], 2))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=10)
    args = p.parse_args(argv)
    xnorflow = Path(sys.executable).parent / "xnorflow"
    rows = []
    for label, arguments, expected in CASES:
        seconds = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            done = subprocess.run([str(xnorflow), *arguments], capture_output=True)
            seconds.append(time.perf_counter() - start)
            if done.returncode != expected:
                raise SystemExit(f"{label}: exit {done.returncode}, expected {expected}")
        rows.append(f"| `{label}` | {statistics.median(seconds):.2f} s | {max(seconds):.2f} s |")
        print(rows[-1], flush=True)
    section = "\n".join([
        f"Command: `{command_line('cli_start.py', argv)}`", "",
        f"Whole process of the installed console script, {args.repeat} runs each; goal: under "
        f"1 s.", "", "| command | median | max |", "|---|---|---|", *rows]) + "\n"
    print(section)
    update_section("cli-start", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
