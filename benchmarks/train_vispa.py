"""Benchmark: VISPA at several covariance ranks against a ProxConnect++ pair at the same budget.

Accuracy mode trains every (method, seed) with identical model, data, epochs and batch size and
reports the deployed sign(m) network's test accuracy (what FINN gets) and, for VISPA, the
paper's L-sample ensemble; wall time per run. Scaling mode measures time per training step and
the peak memory of training per rank, each rank in its own process.

    python benchmarks/train_vispa.py --model lfc --dataset mnist --data-dir ../shared/data/mnist \
        --epochs 20 --ranks 0 4 16 --seeds 0
    python benchmarks/train_vispa.py --scaling --model lfc --dataset mnist \
        --data-dir ../shared/data/mnist --ranks 0 1 4 16 64
    python benchmarks/train_vispa.py --activations float --binarization none --ranks 8 ...  # W1A32
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from _markdown import ROOT, command_line, update_section
from _memory import reset_peak_rss, status_mib

from xnorflow.train.configs import VISPA_SETTINGS, TrainConfig, VispaConfig
from xnorflow.train.trainer import Trainer
from xnorflow.train.vispa import VispaTrainer


def train_one(method: str, seed: int, args, out: Path) -> dict:
    common = dict(model=args.model, dataset=args.dataset, data_dir=args.data_dir,
                  epochs=args.epochs, batch_size=args.batch_size, seed=seed,
                  binarization=args.binarization)
    if method.startswith("vispa-"):
        rank, lr, dropout = vispa_settings(method, args.activations)
        config = VispaConfig(**common, rank=rank, lr=lr, dropout=dropout,
                             activations=args.activations,
                             ensemble_samples=args.ensemble_samples,
                             ensemble_eval=args.ensemble_eval)
        trainer = VispaTrainer(config, out, show_progress=args.progress, verbose=False)
    else:
        config = TrainConfig(**common, quantizer=method, dropout=args.pc_dropout, lr=args.pc_lr)
        trainer = Trainer(config, out, show_progress=args.progress, verbose=False)
    if (out / "checkpoint.pt").exists():
        trainer.resume()
    history = trainer.fit()
    summary = json.loads((out / "summary.json").read_text())
    ensemble = next((v for k, v in summary.items() if k.startswith("ensemble_")), None)
    best = next((v for k, v in summary.items() if k.startswith("best_epoch_ensemble_")), None)
    return {"method": method, "seed": seed, "config": asdict(config),
            "deployed_test_acc": history[-1].test_acc, "ensemble_test_acc": ensemble,
            "best_epoch_ensemble_test_acc": best, "best_ensemble_epoch":
                summary.get("best_ensemble_epoch"),
            "train_seconds": sum(r.seconds for r in history)}


# runs with the authors' lr (per --activations) and no dropout keep short names
DEFAULT_DROPOUT = 0.0


def default_lr(activations: str) -> float:
    return VISPA_SETTINGS[activations]["lr"]


def vispa_method(rank: int, lr: float, dropout: float, activations: str) -> str:
    if (lr, dropout) == (default_lr(activations), DEFAULT_DROPOUT):
        return f"vispa-{rank}"
    return f"vispa-{rank}-lr{lr:g}-drop{dropout:g}"


def vispa_settings(method: str, activations: str) -> tuple[int, float, float]:
    parts = method.split("-")
    if len(parts) == 2:
        return int(parts[1]), default_lr(activations), DEFAULT_DROPOUT
    return int(parts[1]), float(parts[2][2:]), float(parts[3][4:])


def method_name(method: str, activations: str) -> str:
    if not method.startswith("vispa-"):
        return f"PC++ {method}"
    rank, lr, dropout = vispa_settings(method, activations)
    return f"VISPA rank {rank}, lr {lr:g}, dropout {dropout:g}"


def accuracy_table(runs: list[dict], args, command: str) -> str:
    w1a1 = args.activations == "binary"
    lines = [f"Command: `{command}`", "",
             f"{args.model.upper()} {'W1A1' if w1a1 else 'W1A32'} on {args.dataset}, "
             f"{args.epochs} epochs, batch {args.batch_size}, inputs {args.binarization}, mean "
             f"± std over seeds (n). VISPA: SGD momentum 0.9, wd "
             f"{VISPA_SETTINGS[args.activations]['weight_decay']:g}, 5 warm-up epochs + cosine, "
             f"S = 100, {'ApproxSign' if w1a1 else 'ReLU (float)'} activations; the "
             f"deployed network is sign(m) after the last epoch (ours); the ensemble averages "
             f"the logits of {args.ensemble_samples} sampled networks after the last epoch; "
             f"'best epoch' "
             f"is the authors' protocol, the ensemble evaluated every epoch and the best epoch "
             f"reported (chosen on the test set; neither ensemble is a single deployable "
             f"network). PC++ pairs: Adam lr {args.pc_lr} cosine, dropout {args.pc_dropout}.",
             "",
             "| method | n | deployed network (sign(m), last epoch) | ensemble, last epoch | "
             "ensemble, best epoch (authors' protocol) | train time per run |",
             "|---|---|---|---|---|---|"]
    spread = lambda v: statistics.stdev(v) if len(v) > 1 else 0.0  # noqa: E731

    def cell(values: list[float]) -> str:
        return f"{statistics.mean(values):.2f} ± {spread(values):.2f}" if values else "–"

    for method in dict.fromkeys(r["method"] for r in runs):
        rows = [r for r in runs if r["method"] == method]
        acc = [100 * r["deployed_test_acc"] for r in rows]
        ens = [100 * r["ensemble_test_acc"] for r in rows if r["ensemble_test_acc"] is not None]
        best = [100 * r["best_epoch_ensemble_test_acc"] for r in rows
                if r.get("best_epoch_ensemble_test_acc") is not None]
        lines.append(f"| {method_name(method, args.activations)} | {len(rows)} | {cell(acc)} | "
                     f"{cell(ens)} | "
                     f"{cell(best)} | "
                     f"{statistics.mean(r['train_seconds'] for r in rows) / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def scaling_child(rank: int, args) -> dict:
    from xnorflow.train.data import load_dataset
    from xnorflow.train.vispa import build_vispa_model

    torch.set_num_threads(args.threads)
    data = load_dataset(args.dataset, args.data_dir, args.binarization)
    x = torch.from_numpy(data.train.images[:args.batch_size * (args.steps + 1)])
    y = torch.from_numpy(data.train.labels[:args.batch_size * (args.steps + 1)])
    config = VispaConfig(model=args.model, rank=rank)
    model = build_vispa_model(config, data.image_shape, data.num_classes).train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(i):
        idx = slice(i * args.batch_size, (i + 1) * args.batch_size)
        loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step(0)
    before = status_mib("VmRSS")
    reset_peak_rss()
    start = time.perf_counter()
    for i in range(1, args.steps + 1):
        step(i)
    seconds = (time.perf_counter() - start) / args.steps
    parameters = sum(p.numel() for p in model.parameters())
    return {"rank": rank, "ms_per_step": 1000 * seconds, "parameters": parameters,
            "peak_rss_mib": status_mib("VmHWM"), "rss_before_mib": before}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="lfc")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", required=True)
    p.add_argument("--binarization", default="threshold")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--ranks", type=int, nargs="+", default=[0, 4, 16])
    p.add_argument("--pc-pairs", nargs="*", default=[])
    p.add_argument("--pc-lr", type=float, default=5e-3)
    p.add_argument("--pc-dropout", type=float, default=0.2)
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--ensemble-samples", type=int, default=40)
    p.add_argument("--ensemble-eval", choices=["final", "every-epoch"], default="final",
                   help="every-epoch: also report the authors' best-epoch ensemble")
    p.add_argument("--activations", choices=tuple(VISPA_SETTINGS), default="binary",
                   help="VISPA's activations: binary (W1A1) or float (the authors' W1A32 "
                   "setting: ReLU, their rank, lr and weight decay unless given)")
    p.add_argument("--vispa-lrs", type=float, nargs="+", default=None,
                   help="default: the authors' lr for --activations")
    p.add_argument("--vispa-dropouts", type=float, nargs="+", default=[DEFAULT_DROPOUT])
    p.add_argument("--tag", default=None, help="section and results folder (default: "
                   "vispa-MODEL-DATASET)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--scaling", action="store_true")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--child-rank", type=int, help=argparse.SUPPRESS)
    p.add_argument("--progress", action="store_true")
    args = p.parse_args(argv)
    args.vispa_lrs = args.vispa_lrs or [default_lr(args.activations)]
    torch.set_num_threads(args.threads)
    if args.child_rank is not None:
        print(json.dumps(scaling_child(args.child_rank, args)))
        return 0
    command = command_line("train_vispa.py", argv)
    tag = args.tag or f"vispa-{args.model}-{args.dataset}"
    if args.scaling:
        rows = []
        for rank in args.ranks:
            child = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child-rank",
                                    str(rank)], capture_output=True, text=True, check=True)
            rows.append(json.loads(child.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
        lines = [f"Command: `{command}`", "",
                 f"{args.model.upper()} W1A1 VISPA training steps on {args.dataset} (batch "
                 f"{args.batch_size}, {args.threads} thread(s), SGD momentum), one process per "
                 f"rank; peak resident memory while training.", "",
                 "| rank K | trainable parameters | ms per step | peak RSS MiB |",
                 "|---|---|---|---|"]
        for r in rows:
            lines.append(f"| {r['rank']} | {r['parameters']:,} | {r['ms_per_step']:.1f} | "
                         f"{r['peak_rss_mib']:.0f} |")
        section = "\n".join(lines) + "\n"
        update_section(tag + "-scaling", section)
        print(section)
        return 0
    out = ROOT / "benchmarks" / "results" / tag
    out.mkdir(parents=True, exist_ok=True)
    store = out / "runs.json"
    runs = json.loads(store.read_text()) if store.exists() else []
    # runs of the other activations setting (e.g. W1A1 beside W1A32) are neither reused nor shown
    same_acts = lambda r: r["config"].get("activations", "binary") == args.activations  # noqa: E731
    done = {(r["method"], r["seed"]) for r in runs if same_acts(r)}
    methods = [vispa_method(k, lr, d, args.activations) for k in args.ranks for lr in args.vispa_lrs
               for d in args.vispa_dropouts] + list(args.pc_pairs)
    for method in methods:
        for seed in args.seeds:
            if (method, seed) in done:
                continue
            runs.append(train_one(method, seed, args, out / f"{method}-seed{seed}"))
            store.write_text(json.dumps(runs, indent=1))
            r = runs[-1]
            print(f"{method} seed {seed}: deployed {r['deployed_test_acc']:.2%}, ensemble "
                  f"{r['ensemble_test_acc']}", flush=True)
    shown = sorted((r for r in runs if r["method"] in methods and same_acts(r)),
                   key=lambda r: methods.index(r["method"]))  # rows in the command's order
    section = accuracy_table(shown, args, command)
    update_section(tag, section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
