"""Benchmark: the local binary trainer at the paper's widths and budget, several seeds, next to
the paper's numbers and a float-SGD MLP of the same size.

Colombo et al. (arXiv 2412.00119) protocol on Fashion-MNIST: the training images re-split into
50k train / 10k held out (seeded shuffle), pixels binarized at the global training median,
2 hidden layers, batch 100, 50 epochs; the reported accuracy is the held-out split at the last
epoch, mean of 10 runs. The float-SGD reference follows their SGD baseline: ReLU MLP of the
same widths without biases, plain SGD lr 0.01, batch 100, the same binarized inputs.

    python benchmarks/local_binary_accuracy.py --dataset fashion-mnist \
        --data-dir ../shared/data/fashion-mnist --holdout 10000 --seeds 0 1 2 3 4 5 6 7 8 9

``--authors-widths 35 75`` also trains the authors' ternary convention at those widths
(``--convention authors``: their initialization, zeros in the local classifiers, sign(0) = 0)
with the same seeds, in its own column. Finished runs are kept in --out/runs.json and skipped
when the command is run again.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
from _markdown import ROOT, command_line, update_section
from _papers import LOCAL_BINARY_FASHION as PAPER_FASHION
from _papers import LOCAL_BINARY_FASHION_STD as PAPER_FASHION_STD

from xnorflow.train.configs import LocalBinaryConfig
from xnorflow.train.data import load_dataset
from xnorflow.train.local_binary.trainer import LocalBinaryTrainer, prepare_data

# runs.json method name of each --convention
METHODS = {"bipolar": "local-binary", "authors": "local-binary-authors"}


def float_sgd(config: LocalBinaryConfig, lr: float, seed: int) -> dict:
    """The float reference: ReLU MLP, same widths, no bias, plain SGD on the same +-1 inputs."""
    dataset, val = prepare_data(config, load_dataset(config.dataset, config.data_dir,
                                                     config.binarization))
    torch.manual_seed(seed)
    widths = [dataset.in_features, *config.widths]
    layers: list[torch.nn.Module] = []
    for fan_in, width in zip(widths, widths[1:]):
        layers += [torch.nn.Linear(fan_in, width, bias=False), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers, torch.nn.Linear(widths[-1], dataset.num_classes,
                                                         bias=False))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    x, y = torch.from_numpy(dataset.train.images), torch.from_numpy(dataset.train.labels)
    start = time.perf_counter()
    for epoch in range(config.epochs):
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for i in range(0, len(y), config.batch_size):
            idx = order[i:i + config.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    seconds = time.perf_counter() - start

    def accuracy(split) -> float:
        with torch.no_grad():
            return float((model(torch.from_numpy(split.images)).argmax(1).numpy()
                          == split.labels).mean())

    return {"val_acc": accuracy(val) if val else None, "test_acc": accuracy(dataset.test),
            "train_seconds": seconds}


def local_binary(config: LocalBinaryConfig, out: Path, progress: bool) -> dict:
    trainer = LocalBinaryTrainer(config, out, show_progress=progress, verbose=False)
    if (out / "checkpoint.pt").exists():
        trainer.resume()
    history = trainer.fit()
    last = history[-1]
    return {"val_acc": last.val_acc, "test_acc": last.test_acc,
            "train_seconds": sum(r.seconds for r in history),
            "max_abs_weight": last.max_abs_weight, "weight_limit": trainer.shape.weight_limit,
            "val_curve": [r.val_acc for r in history], "test_curve": [r.test_acc for r in history]}


def summarize(runs: list[dict], method: str, width: int, key: str) -> tuple[float, float, int]:
    values = [100 * r[key] for r in runs if r["method"] == method and r["width"] == width
              and r[key] is not None]
    if not values:
        return float("nan"), float("nan"), 0
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return statistics.mean(values), spread, len(values)


def cell(mean: float, std: float, n: int) -> str:
    return f"{mean:.2f} ± {std:.2f}" if n else "–"


def markdown(runs: list[dict], args, command: str) -> str:
    key = "val_acc" if args.holdout else "test_acc"
    split = (f"held-out {args.holdout:,} of the training images (paper protocol)" if args.holdout
             else "official test set")
    lines = [f"Command: `{command}`", "",
             f"{args.dataset}, 2 hidden layers, {args.epochs} epochs, batch 100, accuracy on the "
             f"{split} after the last epoch, mean ± std over seeds (n = runs). Local binary: "
             f"median-binarized inputs, r = 0.25, p_r = 0.5, the paper's gamma, 16-bit "
             f"saturating hidden weights. Float SGD: ReLU MLP of the same widths, no bias, "
             f"SGD lr {args.sgd_lr}, same inputs.", ""]
    paper = args.dataset == "fashion-mnist" and args.holdout
    authors = any(r["method"] == METHODS["authors"] for r in runs)
    head = "| widths | local binary (ours) | n | max \\|W\\| (limit) |"
    rule = "|---|---|---|---|"
    if authors:
        head, rule = head + " authors' convention | n |", rule + "---|---|"
    head, rule = head + " float SGD | n |", rule + "---|---|"
    if paper:
        head, rule = head + " paper (BMLP) |", rule + "---|"
    lines += [head, rule]
    for width in args.widths:
        m, s, n = summarize(runs, "local-binary", width, key)
        biggest = max((max(r["max_abs_weight"]) for r in runs
                       if r["method"] == "local-binary" and r["width"] == width), default=0)
        row = f"| {width}-{width} | {cell(m, s, n)} | {n} | {biggest:,} (32,767) |"
        if authors:
            am, as_, an = summarize(runs, METHODS["authors"], width, key)
            row += f" {cell(am, as_, an)} | {an} |"
        fm, fs, fn = summarize(runs, "float-sgd", width, key)
        row += f" {cell(fm, fs, fn)} | {fn} |"
        if paper:
            row += (f" {PAPER_FASHION.get(width, float('nan')):.2f} ± "
                    f"{PAPER_FASHION_STD.get(width, float('nan')):.2f} |")
        lines.append(row)
    for method, what in (("local-binary", "bipolar, bit-packed engine"),
                         (METHODS["authors"], "authors' convention, reference engine")):
        seconds = sum(r["train_seconds"] for r in runs if r["method"] == method)
        if seconds:
            lines.append(f"\nLocal binary training time, all runs ({what}): "
                         f"{seconds / 60:.1f} min on {args.threads} thread(s).")
    return "\n".join(lines) + "\n"


def plot(runs: list[dict], args, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    key = "val_curve" if args.holdout else "test_curve"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for width in args.widths:
        curves = [r[key] for r in runs if r["method"] == "local-binary" and r["width"] == width]
        theirs = [r[key] for r in runs if r["method"] == METHODS["authors"]
                  and r["width"] == width]
        if theirs:
            mean = 100 * np.mean(np.array(theirs, float), axis=0)
            ax.plot(range(1, len(mean) + 1), mean, linestyle="--",
                    label=f"{width}-{width}, authors' convention")
        if curves:
            mean = 100 * np.mean(np.array(curves, float), axis=0)
            ax.plot(range(1, len(mean) + 1), mean, label=f"{width}-{width}")
            if args.dataset == "fashion-mnist" and args.holdout and width in PAPER_FASHION:
                ax.scatter([len(mean)], [PAPER_FASHION[width]], marker="x", color="black")
    ax.set(xlabel="epoch", ylabel="accuracy [%]",
           title=f"local binary BMLP on {args.dataset} (mean over seeds; x = paper)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--holdout", type=int, default=0)
    p.add_argument("--widths", type=int, nargs="+", default=list(PAPER_FASHION))
    p.add_argument("--seeds", type=int, nargs="+", default=list(range(10)))
    p.add_argument("--sgd-seeds", type=int, nargs="*", default=[0, 1, 2])
    p.add_argument("--authors-widths", type=int, nargs="*", default=[],
                   help="widths at which to train the authors' convention too (xnorflow train "
                        "--convention authors)")
    p.add_argument("--sgd-lr", type=float, default=0.01)
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", default=None)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    import numba
    numba.set_num_threads(args.threads)
    tag = f"local-binary-{args.dataset}" + ("-holdout" if args.holdout else "")
    out = Path(args.out or ROOT / "benchmarks" / "results" / tag)
    out.mkdir(parents=True, exist_ok=True)
    store = out / "runs.json"
    runs = json.loads(store.read_text()) if store.exists() else []
    done = {(r["method"], r["width"], r["seed"]) for r in runs}
    jobs = [(METHODS["authors"], w, s) for w in args.authors_widths for s in args.seeds]
    jobs += [("local-binary", w, s) for w in args.widths for s in args.seeds]
    jobs += [("float-sgd", w, s) for w in args.widths for s in args.sgd_seeds]
    for method, width, seed in jobs:
        if (method, width, seed) in done:
            continue
        convention = "authors" if method == METHODS["authors"] else "bipolar"
        config = LocalBinaryConfig(widths=[width, width], dataset=args.dataset,
                                   data_dir=args.data_dir, holdout=args.holdout,
                                   epochs=args.epochs, seed=seed, convention=convention)
        if method != "float-sgd":
            folder = f"{width}-seed{seed}" + ("-authors" if convention == "authors" else "")
            result = local_binary(config, out / folder, args.progress)
        else:
            result = float_sgd(config, args.sgd_lr, seed)
        runs.append({"method": method, "width": width, "seed": seed, **result,
                     "config": asdict(config)})
        store.write_text(json.dumps(runs, indent=1))
        shown = result["val_acc"] if args.holdout else result["test_acc"]
        print(f"{method} {width}-{width} seed {seed}: {shown:.2%} "
              f"({result['train_seconds']:.0f} s)", flush=True)
    section = markdown(runs, args, command_line("local_binary_accuracy.py", argv))
    (out / "table.md").write_text(section)
    plot(runs, args, out / "curves.png")
    section += f"\n![curves](benchmarks/results/{tag}/curves.png)\n"
    update_section(tag, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
