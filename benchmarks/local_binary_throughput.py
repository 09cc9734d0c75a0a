"""Benchmark: training throughput (samples/s) and memory of the bit-packed local binary trainer vs
its integer reference and vs float SGD on the same MLP, on real data, in one run.

Each method runs in its own child process (same imports, same data, same thread count) so that
peak memory is measured per method: the peak resident set size of the process and how much it
grew during training. Throughput counts training steps only (batch 100, the paper's), after a
warm-up step that also triggers numba's compilation.

    python benchmarks/local_binary_throughput.py --data-dir ../shared/data/fashion-mnist --threads 2
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import numpy as np
from _markdown import ROOT, command_line, update_section
from _memory import reset_peak_rss, status_mib

METHODS = ("packed", "reference", "float-sgd")


def measure(method: str, args) -> dict:
    """Runs in the child process."""
    import numba
    import torch

    from xnorflow.train.data import load_dataset
    from xnorflow.train.local_binary import reference
    from xnorflow.train.local_binary.model import (
        BMLPShape,
        default_group_sizes,
        init_state,
        reinforcement_threshold,
    )
    from xnorflow.train.local_binary.packed import PackedBMLP, pack_inputs

    torch.set_num_threads(args.threads)
    numba.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir, "median")
    x = data.train.images.astype(np.int8)
    y = data.train.labels.astype(np.int64)
    widths = (args.width, args.width)
    shape = BMLPShape(x.shape[1], widths, 10, default_group_sizes(widths))
    batches = args.reference_batches if method == "reference" else args.batches
    order = np.random.default_rng(0).permutation(len(y))
    batch = [order[i * 100:(i + 1) * 100] for i in range(batches + 1)]
    thresholds = [reinforcement_threshold(0.5, 0.0, f) for f in shape.fan_ins]
    if method == "float-sgd":
        model = torch.nn.Sequential(torch.nn.Linear(x.shape[1], args.width, bias=False),
                                    torch.nn.ReLU(), torch.nn.Linear(args.width, args.width,
                                                                     bias=False),
                                    torch.nn.ReLU(), torch.nn.Linear(args.width, 10, bias=False))
        optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
        xt, yt = torch.from_numpy(data.train.images), torch.from_numpy(y)

        def step(i):
            loss = torch.nn.functional.cross_entropy(model(xt[batch[i]]), yt[batch[i]])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    elif method == "packed":
        engine = PackedBMLP(init_state(shape, 0))
        bits = pack_inputs(x)

        def step(i):
            engine.train_step(x[batch[i]], bits[batch[i]], y[batch[i]], thresholds, i, 0)
    else:
        state = init_state(shape, 0)

        def step(i):
            reference.train_step(state, x[batch[i]], y[batch[i]], thresholds, i, 0)
    step(0)  # warm-up (numba compiles or loads its cache here)
    before = status_mib("VmRSS")
    reset_peak_rss()
    start = time.perf_counter()
    for i in range(1, batches + 1):
        step(i)
    seconds = time.perf_counter() - start
    peak = status_mib("VmHWM")
    return {"method": method, "samples_per_s": batches * 100 / seconds, "batches": batches,
            "seconds": seconds, "rss_before_mib": before, "peak_rss_mib": peak,
            "training_growth_mib": peak - before}


LABELS = {"packed": "local binary, bit-packed (numba)",
          "reference": "local binary, integer reference (NumPy)",
          "float-sgd": "float SGD, same MLP (PyTorch)"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--width", type=int, default=525)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, default=500)
    p.add_argument("--reference-batches", type=int, default=30)
    p.add_argument("--child", choices=METHODS, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child, args)))
        return 0
    results = []
    for method in METHODS:
        child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", method],
                               capture_output=True, text=True, check=True)
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    out = ROOT / "benchmarks" / "results" / "local_binary_throughput.json"
    out.write_text(json.dumps({"machine": platform.processor() or platform.machine(),
                               "args": vars(args), "results": results}, indent=2))
    sgd = next(r for r in results if r["method"] == "float-sgd")["samples_per_s"]
    lines = [f"Command: `{command_line('local_binary_throughput.py', argv)}`", "",
             f"Training steps on real {args.dataset} (batch 100), MLP 784-{args.width}-"
             f"{args.width}-10, {args.threads} thread(s), this machine ({os.cpu_count()} "
             f"cores). Each method in its own process with the same imports and data; memory = "
             f"peak resident set size while training, and how much of it training added on "
             f"top of the loaded process (model state, optimizer, temporaries).", "",
             "| trainer | samples/s | vs float SGD | peak RSS while training, MiB "
             "| added by training, MiB |",
             "|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {LABELS[r['method']]} | {r['samples_per_s']:,.0f} | "
                     f"{r['samples_per_s'] / sgd:.2f}x | {r['peak_rss_mib']:.0f} | "
                     f"{r['training_growth_mib']:.1f} |")
    section = "\n".join(lines) + "\n"
    update_section(f"local-binary-throughput-{args.threads}t", section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
