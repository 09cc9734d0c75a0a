"""Benchmark: every ProxConnect++ quantizer pair on one model/data set at a fixed budget.

Trains each pair with identical settings, records final and best test accuracy of the deployed
(sign-binarized) network and wall time, writes JSON + a Markdown table + a plot into --out and
replaces the matching section of BENCHMARKS.md (between ``<!-- quantizers:<tag> -->`` markers),
together with the exact command line that produced it. Results already in the tag's JSON are
reused, so a long benchmark can be split over processes and finished by one last invocation.

    python benchmarks/train_quantizers.py --model lfc --dataset mnist \
        --data-dir ../shared/data/mnist --epochs 20 --dropout 0.2 --lr 5e-3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path

import torch
from _markdown import ROOT, command_line, percent_mean_std, update_section

from xnorflow.train.configs import AUGMENTATIONS, TrainConfig
from xnorflow.train.pairs import PAIRS
from xnorflow.train.trainer import Trainer


def run(args) -> list[dict]:
    """Train every (pair, seed) not yet in the tag's store, keeping the stored ones: a benchmark
    can be split over several processes with the same tag (disjoint pairs or seeds), and the
    last invocation, with every pair and seed, writes the whole table."""
    store = Path(args.out) / f"{args.tag}.json"
    results = []
    for pair in args.pairs:
        for seed in args.seeds:
            config = TrainConfig(model=args.model, quantizer=pair,
                                 act_quantizer=args.act_quantizer, dataset=args.dataset,
                                 data_dir=args.data_dir, epochs=args.epochs,
                                 batch_size=args.batch_size, lr=args.lr, dropout=args.dropout,
                                 augment=args.augment, binarization=args.binarization,
                                 seed=seed)
            stored = stored_result(store, pair, seed)
            if stored is not None:
                if stored["config"] != asdict(config):
                    raise SystemExit(f"{store} holds {pair} seed {seed} trained with other "
                                     f"settings; choose another --tag")
                results.append(stored)
                print(f"{pair} seed {seed}: stored, final {stored['final_test_acc']:.2%}")
                continue
            out = Path(args.out) / args.tag / f"{pair}-seed{seed}"
            trainer = Trainer(config, out, show_progress=args.progress)
            if (out / "checkpoint.pt").exists():
                trainer.resume()  # a benchmark interrupted half-way continues where it stopped
            start = time.perf_counter()
            history = trainer.fit()
            results.append({"pair": pair, "seed": seed, "config": asdict(config),
                            "final_test_acc": history[-1].test_acc,
                            "best_test_acc": max(r.test_acc for r in history),
                            "train_seconds": sum(r.seconds for r in history),
                            "wall_seconds_this_invocation": time.perf_counter() - start,
                            "curve": [r.test_acc for r in history]})
            merge_into_store(store, results[-1])
            print(f"{pair} seed {seed}: final {history[-1].test_acc:.2%}", flush=True)
    return results


def stored_result(store: Path, pair: str, seed: int) -> dict | None:
    runs = json.loads(store.read_text()) if store.exists() else []
    return next((r for r in runs if (r["pair"], r["seed"]) == (pair, seed)), None)


def merge_into_store(store: Path, result: dict) -> None:
    # re-read just before writing: another process of the same tag may have added its runs
    runs = json.loads(store.read_text()) if store.exists() else []
    runs = [r for r in runs if (r["pair"], r["seed"]) != (result["pair"], result["seed"])]
    tmp = store.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(runs + [result], indent=2))
    tmp.replace(store)


def markdown(results: list[dict], args, command: str) -> str:
    by_pair: dict[str, list[dict]] = {}
    for r in results:
        by_pair.setdefault(r["pair"], []).append(r)
    activations = (args.act_quantizer
                   or "xnorflow's default (bnn for bc and pc, the pair's own otherwise)")
    lines = [f"Command: `{command}`", "",
             f"{args.model.upper()} W1A1 on {args.dataset}, {args.epochs} epochs, batch "
             f"{args.batch_size}, Adam lr {args.lr} cosine to 0, dropout {args.dropout}, "
             f"augmentation {args.augment}, inputs {args.binarization or 'threshold'}, "
             f"activations: {activations}, seeds {args.seeds}; "
             f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} "
             f"threads, torch {torch.__version__}. Accuracy is the deployed sign(w) network on "
             f"the full test split after the last epoch (mean ± std over seeds); 'best epoch' "
             f"is the mean of each run's best epoch, for reference only (chosen on the test "
             f"set).", "",
             "| pair | runs | final test acc | best epoch acc | train time / run |",
             "|---|---|---|---|---|"]
    for pair, runs in by_pair.items():
        seconds = statistics.fmean(r["train_seconds"] for r in runs)
        final = percent_mean_std([r["final_test_acc"] for r in runs])
        best = percent_mean_std([r["best_test_acc"] for r in runs])
        lines.append(f"| {pair} | {len(runs)} | {final} | {best} | {seconds / 60:.1f} min |")
    return "\n".join(lines) + "\n"


def plot(results: list[dict], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for r in results:
        ax.plot(range(1, len(r["curve"]) + 1), [100 * a for a in r["curve"]],
                label=f"{r['pair']} (seed {r['seed']})")
    ax.set(xlabel="epoch", ylabel="test accuracy [%]", title=title)
    ax.set_ylim(bottom=max(0, min(100 * min(r["curve"]) for r in results) - 1))
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="lfc")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    p.add_argument("--pairs", nargs="+", default=list(PAIRS), choices=list(PAIRS))
    p.add_argument("--act-quantizer", choices=list(PAIRS), default=None,
                   help="one pair for all activations (default: each run's own pair)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=5e-3)
    p.add_argument("--dropout", type=float, default=0.2)
    p.add_argument("--augment", default="standard", choices=AUGMENTATIONS)
    p.add_argument("--binarization", default=None,
                   help="input binarization (default: xnorflow's, threshold for MNIST)")
    p.add_argument("--tag", default=None, help="name of the results and of the BENCHMARKS "
                   "section (default: MODEL-DATASET[-act-PAIR][-shift])")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "quantizers"))
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice, all cores)")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--no-update", action="store_true", help="do not edit BENCHMARKS.md")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    command = command_line("train_quantizers.py", argv)
    tag = args.tag = args.tag or (f"{args.model}-{args.dataset}"
                                  + (f"-act-{args.act_quantizer}" if args.act_quantizer else "")
                                  + ("-shift" if args.augment == "shift" else ""))
    results = run(args)
    out = Path(args.out)
    plot(results, out / f"{tag}.png", f"{args.model.upper()} W1A1, {args.dataset}")
    section = markdown(results, args, command)
    (out / f"{tag}.md").write_text(section)
    print(section)
    if not args.no_update:
        update_section(f"quantizers:{tag}", section + f"\n![test accuracy per epoch](benchmarks/"
                                                      f"results/quantizers/{tag}.png)\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
