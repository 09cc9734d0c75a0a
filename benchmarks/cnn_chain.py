"""Benchmark: a CNV trained on MNIST or Fashion-MNIST, through the whole chain on all 10,000
test images.

Trains FINN's CNV (W1A1, ProxConnect++ pair, bipolar 28x28 input padded to 32x32 by the first
convolution) for a stated budget of epochs with `xnorflow train`'s stage function, then builds it
for a Pynq-Z1 at a target frame rate with `xnorflow build`'s stage function: every stage
(QONNX, FINN-ONNX, streamlined, hardware layers, folded dataflow) is executed on all test images
and compared with PyTorch, and the generated HLS layers are C-simulated (cppsim, g++) on
``--cppsim`` of them (a seeded stratified sample). Records test accuracy, training images/s,
per-stage identical counts, wall times and the FINN estimates; updates BENCHMARKS.md.

    python benchmarks/cnn_chain.py --dataset mnist --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

from _markdown import ROOT, command_line, update_section

from xnorflow.hw.finn.options import BuildOptions
from xnorflow.stages.build import build_stage
from xnorflow.stages.train import train_run
from xnorflow.train.configs import TrainConfig
from xnorflow.train.runs import MODEL_FILE, open_run


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="mnist", choices=("mnist", "fashion-mnist"))
    p.add_argument("--data-dir", required=True)
    p.add_argument("--model", default="cnv")
    p.add_argument("--quantizer", default="bnn")
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--target-fps", type=int, default=1000)
    p.add_argument("--verify", type=int, default=10000)
    p.add_argument("--cppsim", type=int, default=100)
    p.add_argument("--finn-hlslib", default=str(ROOT.parent / "shared" / "deps" / "finn-hlslib"))
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cnn_chain"))
    args = p.parse_args(argv)
    out = Path(args.out) / f"{args.model}-{args.dataset}"
    run = out / "run"
    config = TrainConfig(model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                         quantizer=args.quantizer, epochs=args.epochs, lr=args.lr, seed=0)
    start = time.perf_counter()
    if (run / MODEL_FILE).exists():  # reuse a finished run only if it is this configuration
        recorded = open_run(run).config
        differs = [k for k, v in config.__dict__.items()
                   if k != "data_dir" and getattr(recorded, k) != v]
        if differs:
            sys.exit(f"{run} holds a run with other settings ({', '.join(differs)}); "
                     f"pass another --out or move that run away")
    else:
        train_run(config, run, progress=False)
    train_seconds = time.perf_counter() - start
    history = json.loads((run / "summary.json").read_text())
    with open(run / "metrics.csv") as f:
        epoch_seconds = [float(row["seconds"]) for row in csv.DictReader(f)]
    # an epoch's wall time includes its pass over the 10,000 test images
    images_per_second = 60000 * len(epoch_seconds) / sum(epoch_seconds)
    start = time.perf_counter()
    result = build_stage(run, out / "build", BuildOptions(target_fps=args.target_fps),
                         verify=args.verify, cppsim=args.cppsim, finn_hlslib=args.finn_hlslib,
                         progress=False)
    build_seconds = time.perf_counter() - start
    summary = result.summary
    record = {"config": {k: v for k, v in config.__dict__.items() if k != "data_dir"},
              "test_accuracy": history["final_test_acc"], "epochs": args.epochs,
              "train_images_per_second": images_per_second,
              "train_wall_seconds": train_seconds, "build_wall_seconds": build_seconds,
              "stages": summary.verification, "cppsim": summary.cppsim,
              "estimated_fps": summary.estimated_fps, "resources": summary.resources,
              "utilization": summary.utilization}
    (out / "cnn_chain.json").write_text(json.dumps(record, indent=2))
    for line in result.lines():
        print(line, flush=True)
    lines = [f"Command: `{command_line('cnn_chain.py', argv)}`", "",
             f"{args.model.upper()} W1A1 ({args.quantizer}) trained {args.epochs} epoch(s) on "
             f"{args.dataset} (60,000 images, bipolar input, threshold 0.5), seed 0, on this "
             f"machine (2 cores): test accuracy **{record['test_accuracy']:.2%}**, "
             f"{images_per_second:,.0f} training images/s (epoch wall time, test pass "
             f"included). Built for Pynq-Z1 at "
             f"--target-fps {args.target_fps} ({summary.estimated_fps:,.0f} FPS estimated, "
             f"LUT {summary.utilization.get('LUT', 0):.0%}, BRAM_18K "
             f"{summary.utilization.get('BRAM_18K', 0):.0%}); build and verification "
             f"{build_seconds / 60:.1f} min.", "",
             "| stage | images | identical to PyTorch | accuracy |", "|---|---|---|---|"]
    for stage in summary.verification:
        lines.append(f"| {stage['stage']} | {stage['images']:,} | "
                     f"{stage['argmax_matches']:,} ({stage['output']}) | "
                     f"{stage['accuracy']:.2%} |")
    sim = summary.cppsim
    if sim:
        lines.append(f"| cppsim (g++, HLS layers) | {sim['comparison']['images']:,} | "
                     f"{sim['comparison']['argmax_matches']:,}; {sim['equal_to_python']:,} "
                     f"equal to FINN's Python execution | "
                     f"{sim['comparison']['accuracy']:.2%} |")
        python = sorted({reason for reason in sim["python"].values()})
        lines += ["", f"cppsim compiled {len(sim['compiled']) + len(sim['cached'])} HLS layers "
                      f"({sim['compile_seconds']:.0f} s) and simulated "
                      f"{sim['comparison']['images'] / sim['simulate_seconds']:.2f} images/s; "
                      f"{len(sim['python'])} layers ran in FINN's Python execution: "
                      + "; ".join(python) + "."]
    section = "\n".join(lines) + "\n"
    (out / "cnn_chain.md").write_text(section)
    print(section)
    update_section(f"{args.model}-chain-{args.dataset}", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
