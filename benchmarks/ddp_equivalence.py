"""Benchmark: how a run of several processes (DDP over gloo, ``xnorflow train --nproc 2``) relates
to a one-process run of the same global batch (issue #28).

The same ``xnorflow train`` command (model, data, seed, ``--batch-size`` = the global batch) is
run as three set-ups on this machine:

- 1 process, 2 threads (the reference: the default on a 2-core machine);
- 1 process, 1 thread (the same computation summed in another order: the floor of what a
  change of float summation order alone does);
- 2 processes of 1 thread each (DDP: each process its half of every batch, the gradients
  averaged, batch-norm statistics over the global batch).

For every seed it reports each set-up's final test accuracy of the deployed sign network, and
against the reference run of that seed: the share of binary weights with the same sign and the
share of the 10,000 test images given the same class. Updates BENCHMARKS.md.

    python benchmarks/ddp_equivalence.py --data-dir ../shared/data/mnist --epochs 5 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from _markdown import ROOT, command_line, percent_mean_std, update_section

from xnorflow.export.run_export import reference_for
from xnorflow.train.runs import open_run

TAG = "ddp-equivalence"
SETUPS = {  # label: extra command-line options
    "1 process, 2 threads": ["--threads", "2"],
    "1 process, 1 thread": ["--threads", "1"],
    "2 processes, 1 thread each": ["--nproc", "2", "--threads", "1"],
}
REFERENCE = "1 process, 2 threads"


def train(common: list[str], extra: list[str], out: Path) -> None:
    command = [sys.executable, "-m", "xnorflow.cli", "train", *common, *extra, "--no-progress",
               "--out", str(out)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")


def outcome(run_folder: Path) -> dict:
    """Sign of every binary weight, predicted class of every test image, test accuracy."""
    run = open_run(run_folder)
    model = run.model()
    reference = reference_for(run, model, 10 ** 9)
    signs = {name: (w > 0) for name, w in model.state_dict().items()
             if name.endswith("weight") and w.dim() == 2}
    return {"signs": signs, "classes": reference.logits.argmax(1),
            "accuracy": float((reference.logits.argmax(1) == reference.labels).mean())}


def agreement(a: dict, b: dict) -> tuple[float, float]:
    same = sum(int((a["signs"][k] == b["signs"][k]).sum()) for k in a["signs"])
    total = sum(v.numel() for v in a["signs"].values())
    return same / total, float(np.mean(a["classes"] == b["classes"]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True, help="MNIST IDX folder")
    p.add_argument("--model", default="sfc")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ddp_equivalence"))
    args = p.parse_args(argv)
    rows: dict[str, list] = {label: [] for label in SETUPS}
    with tempfile.TemporaryDirectory() as tmp, torch.no_grad():
        for seed in args.seeds:
            common = ["--model", args.model, "--dataset", "mnist", "--data-dir", args.data_dir,
                      "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                      "--seed", str(seed)]
            found = {}
            for label, extra in SETUPS.items():
                folder = Path(tmp) / f"{seed}-{len(found)}"
                train(common, extra, folder)
                found[label] = outcome(folder)
            for label, result in found.items():
                signs, classes = agreement(result, found[REFERENCE])
                rows[label].append({"seed": seed, "accuracy": result["accuracy"],
                                    "same_sign": signs, "same_class": classes})
                print(f"seed {seed} {label:28s} acc {100 * result['accuracy']:.2f} %  "
                      f"same sign {100 * signs:.2f} %  same class {100 * classes:.2f} %",
                      flush=True)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    lines = [f"Command: `{command_line('ddp_equivalence.py', argv)}`", "",
             f"{args.model.upper()} W1A1 (bnn pair) on MNIST, {args.epochs} epochs, global batch "
             f"{args.batch_size}, seeds {', '.join(map(str, args.seeds))}; the same command "
             f"with each set-up. Agreement is with the reference run ({REFERENCE}) of the same "
             f"seed, on all 10,000 test images.", "",
             "| set-up | test accuracy | binary weights with the reference's sign | test "
             "images with the reference's class |", "|---|---|---|---|"]
    for label, found in rows.items():
        signs = [r["same_sign"] for r in found]
        classes = [r["same_class"] for r in found]
        lines.append(f"| {label} | {percent_mean_std([r['accuracy'] for r in found])} | "
                     f"{100 * statistics.fmean(signs):.2f} % (min {100 * min(signs):.2f}) | "
                     f"{100 * statistics.fmean(classes):.2f} % (min {100 * min(classes):.2f}) |")
    section = "\n".join(lines) + "\n"
    print(section)
    update_section(TAG, section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
