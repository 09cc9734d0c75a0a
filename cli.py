"""The ``xnorflow`` command: one sub-command per stage of the flow."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from .train.checkpoint import CheckpointError
from .train.data import BINARIZATIONS, DATASETS, DatasetError
from .train.models import MLP_WIDTHS
from .train.quantizers import PAIRS

EPILOG = """examples:
  xnorflow train --out runs/digits                        # built-in scikit-learn digits, SFC
  xnorflow train --model sfc --quantizer bnn++ --dataset mnist \\
                 --data-dir ../shared/data/mnist --epochs 10 --out runs/sfc-mnist
  xnorflow train --resume --out runs/sfc-mnist --epochs 20  # continue an interrupted run
  xnorflow train --algo local-binary --widths 525,525 --dataset fashion-mnist \\
                 --data-dir ../shared/data/fashion-mnist --holdout 10000 --out runs/bmlp
"""

ALGOS = ("proxconnect", "vispa", "local-binary")
_GRADIENT = ("proxconnect", "vispa")
# Options that only some trainers understand (dest -> algos); others refuse them.
ALGO_OPTIONS = {"model": _GRADIENT, "lr": _GRADIENT, "weight_decay": _GRADIENT,
                "dropout": _GRADIENT,
                "quantizer": ("proxconnect",), "act_quantizer": ("proxconnect",),
                "rank": ("vispa",), "scale": ("vispa",), "activations": ("vispa",),
                "warmup_epochs": ("vispa",), "ensemble_samples": ("vispa",),
                "widths": ("local-binary",), "group_sizes": ("local-binary",),
                "margin_ratio": ("local-binary",), "reinforcement": ("local-binary",),
                "weight_bits": ("local-binary",), "holdout": ("local-binary",),
                "engine": ("local-binary",)}


def _int_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated integers, "
                                         f"e.g. 525,525") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected positive integers, e.g. 525,525")
    return values


def _add_train_parser(sub) -> None:
    from .train.local_binary.trainer import ENGINES, LocalBinaryConfig
    from .train.trainer import TrainConfig
    from .train.vispa import VispaConfig

    pc = {f.name: f.default for f in fields(TrainConfig)}
    lb = LocalBinaryConfig()
    vi = VispaConfig()
    pairs = "; ".join(f"{name}: {pair.description}" for name, pair in PAIRS.items())
    p = sub.add_parser("train", help="train a 1-bit (W1A1) network",
                       description="Train a W1A1 MLP. --algo proxconnect (default): a FINN-family "
                                   "Brevitas MLP with a ProxConnect++ forward/backward quantizer "
                                   "pair. --algo vispa: the same MLP trained by Gaussian "
                                   "variational inference with a rank-K covariance (Orecchia et "
                                   "al. 2024). --algo local-binary: a binary MLP trained without "
                                   "gradients by local binary error signals and integer hidden "
                                   "weights (Colombo et al. 2024). Writes checkpoint.pt (every "
                                   "epoch, atomically), metrics.csv, curves.png, model.pt and "
                                   "summary.json into --out.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=ALGOS, default="proxconnect", help="default: %(default)s")
    p.add_argument("--dataset", choices=DATASETS, default=pc["dataset"],
                   help="digits ships with scikit-learn; the others are read from --data-dir "
                        "(default: %(default)s)")
    p.add_argument("--data-dir", default=None,
                   help="folder with the IDX files (mnist, fashion-mnist) or cifar-10-batches-py")
    p.add_argument("--binarization", choices=BINARIZATIONS, default=None,
                   help=f"input pixels to +-1: threshold at 0.5, sign of the pixel minus the "
                        f"training mean, or > the global training-pixel median (default: "
                        f"{pc['binarization']} for proxconnect, {lb.binarization} for "
                        f"local-binary)")
    p.add_argument("--epochs", type=int, default=None,
                   help=f"length of the run; may be raised with --resume (default: "
                        f"{pc['epochs']} for proxconnect, {lb.epochs} for local-binary)")
    p.add_argument("--batch-size", type=int, default=pc["batch_size"],
                   help="default: %(default)s")
    p.add_argument("--seed", type=int, default=pc["seed"], help="default: %(default)s")
    p.add_argument("--out", required=True, help="run folder for checkpoints, logs and plots")
    p.add_argument("--resume", action="store_true",
                   help="continue from --out/checkpoint.pt (bit-identical to an uninterrupted run)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    g = p.add_argument_group("proxconnect and vispa options")
    g.add_argument("--model", choices=sorted(MLP_WIDTHS),
                   help=f"TFC/SFC/LFC: 3 hidden layers of 64/256/1024 neurons (default: "
                        f"{pc['model']})")
    g.add_argument("--quantizer", choices=sorted(PAIRS),
                   help=f"PC++ quantizer pair for weights and activations. {pairs} "
                        f"(default: {pc['quantizer']})")
    g.add_argument("--act-quantizer", choices=sorted(PAIRS),
                   help="a different PC++ pair for the activations, e.g. --quantizer bc "
                        "--act-quantizer bnn (default: the --quantizer pair)")
    g.add_argument("--lr", type=float,
                   help=f"learning rate, cosine-annealed to 0 (default: Adam {pc['lr']} for "
                        f"proxconnect, SGD {vi.lr} after {vi.warmup_epochs} warm-up epochs for "
                        f"vispa)")
    g.add_argument("--weight-decay", type=float,
                   help=f"default: {pc['weight_decay']} (proxconnect), {vi.weight_decay} (vispa)")
    g.add_argument("--dropout", type=float,
                   help=f"dropout after each hidden activation (default: {pc['dropout']})")

    g = p.add_argument_group("vispa options")
    g.add_argument("--rank", type=int,
                   help=f"K, rank of the weight covariance; 0 = the paper's LP special case "
                        f"(latent weights, STE, clipping) (default: {vi.rank})")
    g.add_argument("--scale", type=float,
                   help=f"S in the unit diagonal m^2 + |z|^2 / S = 1 (default: {vi.scale})")
    g.add_argument("--activations", choices=("binary", "float"),
                   help="binary: W1A1 (sign, ApproxSign gradient); float: weights-only "
                        "binarization with ReLU, not buildable by FINN (default: binary)")
    g.add_argument("--warmup-epochs", type=int, help=f"default: {vi.warmup_epochs}")
    g.add_argument("--ensemble-samples", type=int,
                   help=f"L: sampled networks averaged for the reported ensemble accuracy "
                        f"(the deployed network is sign(m)) (default: {vi.ensemble_samples})")

    g = p.add_argument_group("local-binary options")
    g.add_argument("--widths", type=_int_list,
                   help=f"hidden layer widths, odd so that sign never ties (default: "
                        f"{','.join(map(str, lb.widths))})")
    g.add_argument("--group-sizes", type=_int_list,
                   help="gamma per layer: at most one neuron per group of gamma is updated per "
                        "wrong sample (default: the paper's value for widths 35, 75, 135, 255, "
                        "525, 1035)")
    g.add_argument("--margin-ratio", type=float,
                   help=f"r: a sample is wrong if its readout margin < floor(r * width) "
                        f"(default: {lb.margin_ratio})")
    g.add_argument("--reinforcement", type=float,
                   help=f"p_r of the metaplastic reinforcement (default: {lb.reinforcement})")
    g.add_argument("--weight-bits", type=int,
                   help=f"signed, saturating hidden-weight width (default: {lb.weight_bits})")
    g.add_argument("--holdout", type=int,
                   help="training samples held out as validation, e.g. 10000 for the paper's "
                        "Fashion-MNIST protocol (default: 0)")
    g.add_argument("--engine", choices=ENGINES,
                   help="bit-packed (fast) or integer reference step; both give identical "
                        "weights (default: packed)")
    p.set_defaults(handler=_train)


def _algo_options(args) -> dict:
    """The algorithm-specific options the user gave; refuse those of the other trainer."""
    given = {k: getattr(args, k) for k in ALGO_OPTIONS if getattr(args, k) is not None}
    foreign = [k for k in given if args.algo not in ALGO_OPTIONS[k]]
    if foreign:
        names = ", ".join("--" + k.replace("_", "-") for k in foreign)
        raise UsageError(f"{names}: only for --algo {' or '.join(ALGO_OPTIONS[foreign[0]])}, "
                         f"not --algo {args.algo}")
    shared = {"dataset": args.dataset, "data_dir": args.data_dir, "batch_size": args.batch_size,
              "seed": args.seed}
    for key in ("binarization", "epochs"):
        if getattr(args, key) is not None:
            shared[key] = getattr(args, key)
    return {**shared, **given}


class UsageError(ValueError):
    """Command-line options that do not fit together."""


def _train(args) -> int:
    options = _algo_options(args)
    if args.algo == "local-binary":
        from .train.local_binary.trainer import CHECKPOINT, LocalBinaryConfig, LocalBinaryTrainer
        trainer = LocalBinaryTrainer(LocalBinaryConfig(**options), args.out,
                                     show_progress=not args.no_progress)
    elif args.algo == "vispa":
        from .train.trainer import CHECKPOINT
        from .train.vispa import VispaConfig, VispaTrainer
        trainer = VispaTrainer(VispaConfig(**options), args.out,
                               show_progress=not args.no_progress)
    else:
        from .train.trainer import CHECKPOINT, TrainConfig, Trainer
        trainer = Trainer(TrainConfig(**options), args.out, show_progress=not args.no_progress)
    if args.resume:
        trainer.resume()
        print(f"resumed {args.out}/{CHECKPOINT} at epoch {len(trainer.history)}")
    elif (trainer.out_dir / CHECKPOINT).exists():
        print(f"error: {args.out} already holds a run; pass --resume to continue it or choose "
              f"another --out", file=sys.stderr)
        return 2
    history = trainer.fit()
    best = max(history, key=lambda r: r.test_acc)
    print(f"done: final test accuracy {history[-1].test_acc:.2%} (best {best.test_acc:.2%} at "
          f"epoch {best.epoch}); outputs in {args.out}")
    if args.algo == "vispa":
        import json
        summary = json.loads((trainer.out_dir / "summary.json").read_text())
        ensemble = {k: v for k, v in summary.items() if k.startswith("ensemble_")}
        for key, value in ensemble.items():
            print(f"VISPA {key.replace('_', ' ')}: {value:.2%} (sampled networks, averaged "
                  f"logits; the deployed sign(m) network has {history[-1].test_acc:.2%})")
    return 0


def _add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a trained run to QONNX and verify it",
                       description="Export a trained 1-bit model to QONNX (BipolarQuant "
                                   "quantizers, input marked BIPOLAR), clean it up with qonnx "
                                   "and compare the QONNX graph with the PyTorch model on real "
                                   "test images.")
    p.add_argument("--out", help="QONNX file to write (default: RUN/model.qonnx.onnx)")
    _add_run_arguments(p, verify_default=1000)
    p.set_defaults(handler=_export)


def _add_run_arguments(p, verify_default: int) -> None:
    """Arguments of the stages that start from a trained run."""
    p.add_argument("run", help="run folder of `xnorflow train` (or its model.pt)")
    p.add_argument("--verify", type=int, default=verify_default, metavar="N",
                   help="compare with PyTorch on the first N test images, 0 to skip "
                        "(default: %(default)s)")
    p.add_argument("--data-dir", help="where the run's data set lives now, if it moved")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _export(args) -> int:
    from .export.run_export import open_run, export_run

    run = open_run(args.run)
    out = Path(args.out) if args.out else run.model_file.parent / "model.qonnx.onnx"
    reference = run.reference(args.verify, args.data_dir) if args.verify else None
    result = export_run(run, out, reference, progress=not args.no_progress)
    print(f"wrote {out}")
    if result is None:
        return 0
    print(result.summary())
    return 0 if result.identical else 1


def _add_build_parser(sub) -> None:
    from .hw.build import UNTIL_CHOICES, BuildOptions

    d = BuildOptions()
    p = sub.add_parser("build", help="compile a trained run with FINN to an XNOR dataflow design",
                       description="Export the run to QONNX, then run FINN's build_dataflow: "
                                   "streamline (batch-norm -> thresholds), XNOR-popcount binary "
                                   "MVAU layers, dataflow partition, folding for --target-fps, "
                                   "resource/cycle estimates and HLS code generation. Every "
                                   "stage is executed and compared with PyTorch on real test "
                                   "images; a Markdown/HTML report with the layer table is "
                                   "written to --out.",
                       epilog="--until bitfile needs Vivado and Vitis HLS (the FINN Docker "
                              "image); without them the build stops before those steps with a "
                              "message and keeps everything it built (exit code 3).")
    p.add_argument("--out", help="build folder (default: RUN/build-BOARD)")
    p.add_argument("--board", default=d.board, help="FINN board name (default: %(default)s)")
    p.add_argument("--target-fps", type=int, help="frames/s FINN's folding should reach")
    p.add_argument("--folding-config", help="per-layer PE/SIMD JSON instead of --target-fps")
    p.add_argument("--clock-mhz", type=float, default=d.clock_mhz, help="default: %(default)s")
    p.add_argument("--mvau-wwidth-max", type=int, default=d.mvau_wwidth_max,
                   help="cap on PE*SIMD weight bits per layer when folding (default: %(default)s)")
    p.add_argument("--until", choices=UNTIL_CHOICES, default=d.until,
                   help="last output to produce (default: %(default)s)")
    _add_run_arguments(p, verify_default=200)
    p.set_defaults(handler=_build)


def _build(args) -> int:
    from .export.run_export import open_run
    from .hw.build import BuildOptions
    from .hw.pipeline import build_run

    run = open_run(args.run)
    out = Path(args.out) if args.out else run.model_file.parent / f"build-{args.board}"
    options = BuildOptions(board=args.board, clock_mhz=args.clock_mhz, target_fps=args.target_fps,
                           folding_config=args.folding_config,
                           mvau_wwidth_max=args.mvau_wwidth_max, until=args.until)
    report, comparisons, stopped = build_run(run, out, options, args.verify, args.data_dir,
                                             progress=not args.no_progress)
    for comparison in comparisons:
        print(comparison.summary())
    print(f"report: {report}")
    if stopped:
        print(f"stopped: {stopped}", file=sys.stderr)
        return 3
    return 0 if all(c.identical for c in comparisons) else 1


def _add_hls_parser(sub) -> None:
    from .hw.hls_trainer import HlsOptions

    d = HlsOptions()
    p = sub.add_parser("hls", help="emit the local binary trainer as HLS C++ and C-simulate it",
                       description="Generate Vitis-HLS-style C++ of the local binary trainer for "
                                   "one BMLP shape: XNOR-popcount forward, local binary errors, "
                                   "saturating integer weight updates, inference; two top "
                                   "functions, a testbench, a vitis_hls Tcl script and a README "
                                   "with the memory it needs. --csim-steps N compiles it with "
                                   "g++ and checks N training steps and the inference against "
                                   "the Python trainer, bit for bit.",
                       epilog="examples:\n"
                              "  xnorflow hls --trainer runs/bmlp --out hls/bmlp --pe 5 "
                              "--csim-steps 20\n"
                              "  xnorflow hls --widths 35,35 --dataset mnist --data-dir "
                              "../shared/data/mnist --out hls/35 --csim-steps 50",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--trainer", metavar="RUN",
                        help="a run folder (or model.pt) of `xnorflow train --algo local-binary`: "
                             "shape, classifiers and weights come from it")
    source.add_argument("--widths", type=_int_list,
                        help="hidden widths of a fresh BMLP (initialized with --seed); the input "
                             "size and classes come from --dataset")
    p.add_argument("--group-sizes", type=_int_list, help="with --widths: gamma per layer")
    p.add_argument("--weight-bits", type=int, default=16,
                   help="with --widths: hidden-weight bits (default: %(default)s)")
    p.add_argument("--dataset", choices=DATASETS, default="digits",
                   help="with --widths: data for the shape and the C simulation")
    p.add_argument("--data-dir", help="where the data set lives (or moved to)")
    p.add_argument("--seed", type=int, default=0, help="with --widths: default %(default)s")
    p.add_argument("--out", required=True, help="folder for the generated design")
    p.add_argument("--pe", type=int, default=d.pe,
                   help="neurons per cycle; divides every width (default: %(default)s)")
    p.add_argument("--simd", type=int, default=d.simd,
                   help="inputs per cycle; divides the input size and every width "
                        "(default: %(default)s)")
    p.add_argument("--batch-max", type=int, default=None,
                   help="largest batch the design buffers (default: the run's batch size, 100)")
    p.add_argument("--part", help="FPGA part for the Tcl script (default: the smallest "
                                  "supported device that fits)")
    p.add_argument("--clock-ns", type=float, default=10.0, help="default: %(default)s")
    p.add_argument("--csim-steps", type=int, default=0, metavar="N",
                   help="compile with g++ and compare N training steps with Python (0: only "
                        "generate)")
    p.add_argument("--csim-infer", type=int, default=500, metavar="N",
                   help="test images for the inference check of the C simulation "
                        "(default: %(default)s)")
    p.set_defaults(handler=_hls)


def _hls(args) -> int:
    from .hw.hls_csim import compare_with_python, training_batches
    from .hw.hls_trainer import HlsOptions, generate
    from .train.local_binary.brevitas_model import load_bmlp_run
    from .train.local_binary.model import init_state
    from .train.local_binary.trainer import LocalBinaryConfig, prepare_data

    dataset = None
    if args.trainer:
        state, config = load_bmlp_run(args.trainer)
        if args.data_dir:
            config.data_dir = args.data_dir
    else:
        config = LocalBinaryConfig(widths=args.widths, group_sizes=args.group_sizes,
                                   weight_bits=args.weight_bits, dataset=args.dataset,
                                   data_dir=args.data_dir, seed=args.seed)
        dataset, _ = prepare_data(config)
        state = init_state(config.shape(dataset.in_features, dataset.num_classes), config.seed)
    options = HlsOptions(pe=args.pe, simd=args.simd,
                         batch_max=args.batch_max or config.batch_size, part=args.part)
    design = generate(state, args.out, options, args.clock_ns)
    fits = ", ".join(f"{k}: {v}" for k, v in design.estimate.fits.items())
    print(f"wrote {design.directory} (target part {design.part}); hidden weights "
          f"{design.estimate.weight_bits / 1e6:.2f} Mbit, ~{design.estimate.bram18} BRAM18 "
          f"({fits})")
    if not args.csim_steps:
        return 0
    if options.batch_max < config.batch_size:
        raise UsageError(f"--batch-max {options.batch_max} is smaller than the run's batch size "
                         f"{config.batch_size}")
    if dataset is None:
        dataset, _ = prepare_data(config)
    batches = training_batches(dataset.train.images, dataset.train.labels, args.csim_steps,
                               config.batch_size, config.seed, config.reinforcement,
                               fan_ins=state.shape.fan_ins)
    result = compare_with_python(design, state, batches, config.seed,
                                 dataset.test.images[:args.csim_infer])
    print(result.summary())
    return 0 if result.identical else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xnorflow",
        description="Train binary neural networks and compile them to XNOR-popcount FPGA "
                    "dataflow accelerators with FINN.")
    sub = parser.add_subparsers(title="stages", dest="command", required=True)
    _add_train_parser(sub)
    _add_export_parser(sub)
    _add_build_parser(sub)
    _add_hls_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .export.qonnx_export import UnsupportedModelError
    from .hw.build import BuildError
    from .hw.hls_trainer import HlsError
    from .train.local_binary.model import BMLPError
    from .train.trainer import TrainingDiverged

    try:
        return args.handler(args)
    except (DatasetError, CheckpointError, TrainingDiverged, UnsupportedModelError,
            BuildError, BMLPError, UsageError, HlsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ninterrupted; the last finished epoch is in the checkpoint, continue with --resume",
              file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
