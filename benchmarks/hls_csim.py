"""Benchmark: the generated HLS trainer in C simulation (g++) on the paper's network size, real
MNIST batches; agreement with the Python trainer after every step and C-sim speed.

    python benchmarks/hls_csim.py --data-dir ../shared/data/mnist --widths 525 525 --steps 20
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

import numba
from _markdown import ROOT, command_line, update_section

from xnorflow.hw.hls.csim import compare_with_python, training_batches
from xnorflow.hw.hls.generator import HlsOptions, generate
from xnorflow.train.data import load_dataset
from xnorflow.train.local_binary.model import BMLPShape, default_group_sizes, init_state


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--widths", type=int, nargs="+", default=[525, 525])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--infer", type=int, default=1000)
    p.add_argument("--pe", type=int, default=5)
    p.add_argument("--simd", type=int, default=7)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    numba.set_num_threads(1)  # the C simulation is single-threaded: compare like with like
    data = load_dataset("mnist", args.data_dir, "median")
    widths = tuple(args.widths)
    shape = BMLPShape(data.in_features, widths, data.num_classes, default_group_sizes(widths))
    state = init_state(shape, args.seed)
    batches = training_batches(data.train.images, data.train.labels, args.steps, 100,
                               args.seed, fan_ins=shape.fan_ins)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        design = generate(state, tmp, HlsOptions(pe=args.pe, simd=args.simd))
        result = compare_with_python(design, state, batches, args.seed,
                                     data.test.images[:args.infer])
        seconds = time.perf_counter() - start
    out = ROOT / "benchmarks" / "results" / "hls_csim.json"
    out.write_text(json.dumps({"args": vars(args), "identical": result.identical,
                               "steps": result.steps, "identical_steps": result.identical_steps,
                               "infer_identical": result.infer_identical,
                               "csim_samples_per_s": result.csim_samples_per_s,
                               "python_samples_per_s": result.python_samples_per_s,
                               "wall_seconds": seconds}, indent=2))
    arch = "-".join(map(str, (shape.in_features, *widths, shape.num_classes)))
    section = "\n".join([
        f"Command: `{command_line('hls_csim.py', argv)}`", "",
        f"BMLP {arch} (gamma {list(shape.group_sizes)}, 16-bit hidden weights), generated with "
        f"PE = {args.pe}, SIMD = {args.simd}, compiled with g++ -O2 against hls4ml's ap_types, "
        f"first {args.steps} training batches (100 real MNIST images each) of epoch 1, then "
        f"inference on {args.infer:,} test images.", "",
        "| check | result |", "|---|---|",
        f"| training steps with identical weights, predictions and error counts | "
        f"{result.identical_steps}/{result.steps} |",
        f"| inference predictions identical | {result.infer_identical:,}/"
        f"{result.infer_samples:,} |",
        f"| C-sim training speed | {result.csim_samples_per_s:,.0f} samples/s |",
        f"| Python bit-packed trainer, 1 thread, same steps | "
        f"{result.python_samples_per_s:,.0f} samples/s |",
        f"| wall time (generate, compile, simulate, compare) | {seconds:.0f} s |", ""])
    update_section("hls-csim", section)
    print(section)
    return 0 if result.identical else 1


if __name__ == "__main__":
    sys.exit(main())
