"""BENCHMARKS.md's opening summary: the headline figures, each next to its published anchor and
the section (and script) it comes from, read from the result files the benchmark scripts
write. Nothing here is typed in by hand except the anchors, which cite their source.

    python benchmarks/summary.py

Figures whose results are missing are shown as "not measured" rather than left out, so the
table also says what is still open.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path

from _markdown import ROOT, command_line, percent_mean_std, update_section
from _papers import LOCAL_BINARY_FASHION, LOCAL_BINARY_FASHION_STD

RESULTS = ROOT / "benchmarks" / "results"
# LFC-MNIST training results of train_quantizers.py: tag -> recipe in words
LFC_RECIPES = {
    "lfc-mnist-affine": "BNN pair, `--augment affine`, dropout 0.2, 80 epochs",
    "lfc-mnist-affine-drop0.1": "BNN pair, `--augment affine`, dropout 0.1, 80 epochs",
    "lfc-mnist-shift": "BNN pair, `--augment shift`, dropout 0.2, 80 epochs",
    "lfc-mnist-act-bnn": "PC/BC weights + BNN activations, dropout 0.2, 20 epochs",
    "lfc-mnist": "every pair, dropout 0.2, 20 epochs",
    "lfc-mnist-10ep": "every pair but bc (= bnn), dropout 0.2, 10 epochs",
}


def load(path: Path):
    return json.loads(path.read_text()) if path.exists() else None


def mean_std(fractions: list[float]) -> str:
    """'mean ± std% (n = k)' of accuracies given as fractions."""
    return f"{percent_mean_std(fractions)} (n = {len(fractions)})"


def by_pair(runs: list[dict]) -> dict[str, list[dict]]:
    grouped: dict[str, list[dict]] = {}
    for r in runs:
        grouped.setdefault(r["pair"], []).append(r)
    return grouped


def pair_label(run: dict) -> str:
    """The pair, and the activations' pair where it differs (runs before the bnn default for
    bc/pc activations recorded None: the pair itself)."""
    act = run["config"].get("act_quantizer") or run["pair"]
    return run["pair"] if act == run["pair"] else f"{run['pair']}/{act}"


def best_lfc() -> tuple[float, str, int] | None:
    """(mean final accuracy, recipe, seeds) of the best LFC-MNIST recipe with at least 3
    seeds."""
    best = None
    for tag, recipe in LFC_RECIPES.items():
        for pair, runs in by_pair(load(RESULTS / "quantizers" / f"{tag}.json") or []).items():
            if len(runs) < 3:
                continue
            mean = statistics.fmean(r["final_test_acc"] for r in runs)
            if best is None or mean > best[0]:
                best = (mean, f"{recipe} ({pair_label(runs[0])})", len(runs))
    return best


# the 80-epoch recipes of the "LFC W1A1 MNIST: the recipe" section, in the summary's order
LFC_RECIPE_TAGS = ("lfc-mnist-affine", "lfc-mnist-affine-drop0.1", "lfc-mnist-shift")


def lfc_rows() -> list[str]:
    rows = []
    for tag in LFC_RECIPE_TAGS:
        for pair, runs in by_pair(load(RESULTS / "quantizers" / f"{tag}.json") or []).items():
            # no time here: the recorded wall time depends on what else shared the cores (the
            # section states the time of a run on its own)
            rows.append(f"| LFC W1A1 MNIST, {LFC_RECIPES[tag]} ({pair}) | "
                        f"{mean_std([r['final_test_acc'] for r in runs])} | Brevitas "
                        f"`bnn_pynq` 98.88 % (1000 epochs); FINN paper 98.4 % | "
                        f"[recipe](#lfc-w1a1-mnist-the-recipe) |")
    if not rows:
        rows.append("| LFC W1A1 MNIST, best recipe | not measured | Brevitas `bnn_pynq` 98.88 % "
                    "| [recipe](#lfc-w1a1-mnist-the-recipe) |")
    return rows


def pair_rows(tag: str, what: str, anchor: str) -> list[str]:
    """One row: every pair's final accuracy in results ``tag``; ``anchor`` is its section."""
    runs = by_pair(load(RESULTS / "quantizers" / f"{tag}.json") or [])
    if not runs:
        return [f"| {what}: BNN vs BNN++ | not measured | PC++ paper: BNN++ >= BNN | "
                f"[pairs](#{anchor}) |"]
    cells = ", ".join(f"{pair_label(rs[0])} {mean_std([r['final_test_acc'] for r in rs])}"
                      for rs in runs.values())
    return [f"| {what}, PC++ pairs | {cells} | PC++ paper: BNN++ competitive with or "
            f"better than BNN | [pairs](#{anchor}) |"]


def vispa_rows() -> list[str]:
    runs = load(RESULTS / "vispa-sfc-fashion-mnist-tuning" / "runs.json")
    if not runs:
        return ["| VISPA SFC Fashion-MNIST, tuned | not measured | VISPA paper: beats STE | "
                "[VISPA](#vispa-vs-the-best-proxconnect-pair) |"]
    best = max(runs, key=lambda r: r["deployed_test_acc"])
    authors = [r for r in runs if r.get("best_epoch_ensemble_test_acc") is not None]
    best_authors = max(authors, key=lambda r: r["best_epoch_ensemble_test_acc"], default=None)
    text = f"sign(m) {100 * best['deployed_test_acc']:.2f} % ({best['method']}, seed 0)"
    if best_authors:
        text += (f"; authors' protocol {100 * best_authors['best_epoch_ensemble_test_acc']:.2f} "
                 f"% ({best_authors['method']})")
    rows = [f"| VISPA SFC W1A1 Fashion-MNIST, 10 epochs, rank 4, best of the lr sweep | {text} "
            f"| VISPA paper: better than STE training; here the best PC++ pair at the same "
            f"budget | [VISPA](#vispa-vs-the-best-proxconnect-pair) |"]
    for tag, what, anchor, section in VISPA_SEED_TABLES:
        by_method: dict[str, list[dict]] = {}
        for r in load(RESULTS / tag / "runs.json") or []:
            by_method.setdefault(r["method"], []).append(r)
        if not by_method:
            continue
        # one row per table: sign(m) at each rank, the authors' protocol at its best rank; rank
        # and lr are read from the runs (a table holds one lr)
        settings = sorted(by_method.values(), key=lambda rs: rs[0]["config"]["rank"])
        lr = settings[0][0]["config"]["lr"]
        text = "sign(m): " + ", ".join(
            f"rank {rs[0]['config']['rank']} {mean_std([r['deployed_test_acc'] for r in rs])}"
            for rs in settings)
        authors = {rs[0]["config"]["rank"]: [r["best_epoch_ensemble_test_acc"] for r in rs]
                   for rs in settings if rs[0].get("best_epoch_ensemble_test_acc") is not None}
        if authors:
            rank = max(authors, key=lambda k: statistics.fmean(authors[k]))
            text += f"; authors' protocol, best rank ({rank}): {mean_std(authors[rank])}"
        rows.append(f"| VISPA {what}, 10 epochs, lr {lr:g} | {text} | {anchor} | "
                    f"[VISPA](#{section}) |")
    return rows


# VISPA over seeds, one row per table: results tag, what, anchor, section
VISPA_SEED_TABLES = (
    ("vispa-sfc-fashion-mnist-lr2", "SFC W1A1 Fashion-MNIST",
     "the best PC++ pair at the same budget: BNN++ (SFC pairs row)",
     "vispa-on-mlps-learning-rate-and-dropout-and-the-authors-protocol"),
    ("vispa-lfc-mnist-lr2", "LFC W1A1 MNIST",
     "the best PC++ pair at the same budget (LFC pairs row)",
     "vispa-on-mlps-learning-rate-and-dropout-and-the-authors-protocol"),
    ("vispa-sfc-fashion-mnist-w1a32", "SFC W1A32 Fashion-MNIST (authors' recipe)",
     "VISPA paper's W1A32 setting; not buildable by FINN",
     "vispa-w1a32-the-authors-weights-only-recipe"),
)


def local_binary_rows() -> list[str]:
    runs = load(RESULTS / "local-binary-fashion-mnist-holdout" / "runs.json") or []
    rows = []
    for width, paper in LOCAL_BINARY_FASHION.items():
        paper_std = LOCAL_BINARY_FASHION_STD[width]
        cells = []
        for method, name in (("local-binary", "ours"), ("local-binary-authors",
                                                         "authors' convention")):
            values = [r["val_acc"] for r in runs if r["method"] == method and r["width"] == width]
            if values:
                cells.append(f"{name} {mean_std(values)}")
        rows.append(f"| Local binary BMLP {width}-{width}, Fashion-MNIST (paper protocol) | "
                    f"{'; '.join(cells) or 'not measured'} | paper {paper:.2f} ± {paper_std:.2f}"
                    f" % (10 runs) | [local binary](#local-binary-trainer-gradient-free-colombo"
                    f"-et-al-accuracy-at-the-papers-widths) |")
    return rows


def hardware_rows() -> list[str]:
    rows = []
    folding = load(RESULTS / "folding_vs_finn" / "folding_vs_finn.json")
    if folding:
        fastest = folding["lfc"].get("fastest", {}).get("ours-1.0")
        if fastest:
            rows.append(f"| LFC W1A1 on Pynq-Z1, fastest fitting folding (FINN estimates) | "
                        f"{fastest['fps']:,.0f} FPS, {fastest['lut']:,.0f} LUT, "
                        f"{fastest['bram']:,.0f} BRAM_18K | BNN-PYNQ: 512 cycles/frame, ~40k "
                        f"LUT / 161 BRAM_18K (FINN's estimate of its folding) | "
                        f"[folding](#folding-that-fits-xnorflows-balanced-search-against-finns-"
                        f"setfolding) |")
    cppsim = load(RESULTS / "cppsim_chain" / "cppsim.json")
    for name, entry in (cppsim or {}).items():
        comparison = entry.get("comparison", {})
        if name.startswith("lfc") and comparison.get("images"):
            rows.append(f"| Bit-exact: LFC, PyTorch vs g++-compiled FINN layers (cppsim), MNIST "
                        f"test set | {comparison['argmax_matches']:,}/{comparison['images']:,} "
                        f"identical classes | every stage identical | [cppsim](#c-simulation-of"
                        f"-the-generated-hardware-cppsim-on-the-whole-mnist-test-set) |")
    rtl = (load(RESULTS / "rtl_chain" / "rtl_chain.json") or {}).get("lfc")
    if rtl:
        sim, design = rtl["rtl"]["simulation"], rtl["rtl"]["synthesis"]["design"]
        rows.append(f"| LFC W1A1 as RTL (Verilator, yosys), MNIST test set | "
                    f"{sim['comparison']['argmax_matches']:,}/{sim['images']:,} identical "
                    f"classes; {sim['cycles_per_frame']:,.0f} cycles/frame measured; "
                    f"{design['LUT']:,} LUT, {design['BRAM_18K']:,} BRAM_18K (yosys, before "
                    f"place and route) | BNN-PYNQ: 512 cycles/frame, 28,360 LUT, 220 BRAM_18K "
                    f"(after place and route) | [RTL](#the-accelerator-as-rtl-verilator-and-"
                    f"yosys-on-mnist) |")
    return rows


def main(argv: list[str] | None = None) -> int:
    best = best_lfc()
    lines = [f"Command: `{command_line('summary.py', argv)}` (reads the results of the "
             f"scripts named in each section)", ""]
    if best:
        lines += [f"Best LFC W1A1 MNIST: {100 * best[0]:.2f}%", "",
                  f"(mean of {best[2]} seeds, final epoch, deployed sign network on the 10,000 "
                  f"test images: {best[1]})", ""]
    else:
        lines += ["Best LFC W1A1 MNIST: no recipe has 3 finished seeds yet.", ""]
    lines += ["| figure | xnorflow (measured here) | anchor | section |", "|---|---|---|---|"]
    lines += lfc_rows()
    lines += pair_rows("lfc-mnist-10ep", "LFC W1A1 MNIST, 10 epochs",
                       "training-proxconnect-quantizer-pairs-three-seeds")
    lines += pair_rows("sfc-fashion-mnist", "SFC W1A1 Fashion-MNIST, 10 epochs",
                       "training-proxconnect-quantizer-pairs-three-seeds")
    lines += vispa_rows()
    lines += local_binary_rows()
    lines += hardware_rows()
    section = "\n".join(lines) + "\n"
    update_section("summary", section)
    print(section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
