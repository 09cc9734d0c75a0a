"""The ``xnorflow`` command: one sub-command per stage, each ``parse -> one stage function ->
print``.

Options come from the declarations of the run configurations and the build/HLS options
(:mod:`xnorflow.options`): their ranges are checked here, at the door (exit 2), and the parser
imports none of torch, Brevitas or FINN, so ``--help`` and option errors answer at once. A stage
imports what it needs when it runs.

Exit codes: 0 done; 1 an error (message, no traceback) or a stage whose outputs differ; 2 bad
options; 3 the build stopped before the steps that need Vivado; 4 the design misses its
--target-fps or does not fit the board (unless --allow-misfit); 130 interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import warnings
from dataclasses import fields
from pathlib import Path

from . import interrupts
from .errors import UsageError, XnorflowError
from .options import (
    AT_LEAST_0,
    AT_LEAST_1,
    POSITIVE,
    add_dataclass,
    add_field,
    add_list_field,
    argument_type,
    given,
    option_name,
    ranged,
)
from .outputs import release_folders

EPILOG = """examples:
  xnorflow train --out runs/digits                        # built-in scikit-learn digits, SFC
  xnorflow train --model sfc --quantizer bnn++ --dataset mnist \\
                 --data-dir ../shared/data/mnist --epochs 10 --out runs/sfc-mnist
  xnorflow train --recipe lfc-mnist --data-dir ../shared/data/mnist \\
                 --out runs/lfc-recipe                    # LFC W1A1 MNIST (BENCHMARKS.md)
  xnorflow train --resume --out runs/sfc-mnist            # continue an interrupted run
  xnorflow train --algo local-binary --widths 525,525 --dataset fashion-mnist \\
                 --data-dir ../shared/data/fashion-mnist --holdout 10000 --out runs/bmlp
"""


# ------------------------------------------------------------------------------ train
def _train_option_owners() -> dict[str, list]:
    from .train.configs import RUN_KINDS

    owners: dict[str, list] = {}
    for cls in RUN_KINDS.values():
        for f in cls.user_options():
            owners.setdefault(f.name, []).append(cls)
    return owners


def _add_train_parser(sub) -> None:
    from .train.configs import RECIPES, RUN_KINDS

    kinds = "; ".join(f"--algo {algo}: {cls.summary}" for algo, cls in RUN_KINDS.items())
    p = sub.add_parser("train", help="train a 1-bit (W1A1) network",
                       usage="xnorflow train --out RUN [--algo ALGO] [--resume] [options]",
                       description=f"Train a W1A1 network. {kinds}. Writes checkpoint.pt (every "
                                   f"epoch, atomically), metrics.csv, curves.png, model.pt and "
                                   f"summary.json into --out.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--algo", choices=tuple(RUN_KINDS), default=None,
                   help="training algorithm (default: proxconnect; on --resume: the run's)")
    p.add_argument("--out", required=True, help="run folder for checkpoints, logs and plots "
                                                "(new or empty, or the run to --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out with the settings its checkpoint records "
                        "(bit-identical to an uninterrupted run); only options that cannot "
                        "change the result may be given")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    dist = p.add_argument_group(
        "several processes (proxconnect and vispa; DDP over gloo on CPUs, NCCL on GPUs)")
    dist.add_argument("--nproc", type=ranged("int", AT_LEAST_1), default=None,
                      help="processes on this machine that train the run together, each on "
                           "its share of every --batch-size batch (the same as `torchrun "
                           "--nproc-per-node N -m xnorflow.cli train ...`)")
    dist.add_argument("--nnodes", type=ranged("int", AT_LEAST_1), default=1,
                      help="machines of the run, each started with the same command and "
                           "--rdzv (default: 1)")
    dist.add_argument("--rdzv", metavar="HOST:PORT", default=None,
                      help="where the machines of a --nnodes run meet: a free port on the "
                           "first machine; --out must be a folder they share")
    p.add_argument("--recipe", choices=tuple(RECIPES),
                   help="a measured set of options (options given explicitly win): "
                        + "; ".join(f"{name}: " + " ".join(
                            f"--{k.replace('_', '-')} {v}" for k, v in values.items())
                            for name, values in RECIPES.items())
                        + " (BENCHMARKS.md: its accuracy and cost)")
    groups: dict[tuple, argparse._ArgumentGroup] = {}
    for name, owners in _train_option_owners().items():
        algos = tuple(cls.algo for cls in owners)
        if algos not in groups:
            title = ("options of every trainer" if len(algos) == len(RUN_KINDS)
                     else f"{' and '.join(algos)} options")
            groups[algos] = p.add_argument_group(title)
        f = next(f for f in owners[0].user_options() if f.name == name)
        add_field(groups[algos], f, {cls.algo: cls.shown_default(name) for cls in owners})
    p.set_defaults(handler=_train, interrupted=_train_interrupted)


def _warn_oversubscribed(threads: int | None) -> None:
    cores = os.cpu_count() or 1
    if threads and threads > cores:
        print(f"warning: --threads {threads} is more than the {cores} cores of this machine; "
              f"the threads take turns on them, which is slower than --threads {cores}",
              file=sys.stderr)


def _launch_processes(args) -> bool:
    """Whether this command starts the processes of a distributed run (rather than being
    one of them, started by torchrun or by such a command)."""
    if args.rdzv:
        from .train.launch import check_rdzv

        check_rdzv(args.rdzv)
    if "WORLD_SIZE" in os.environ:
        return False
    if args.nnodes > 1 and not args.rdzv:
        raise UsageError(f"--nnodes {args.nnodes}: give --rdzv HOST:PORT, a free port on the "
                         f"first machine, to every machine of the run")
    if args.rdzv and args.nnodes == 1:
        raise UsageError("--rdzv is where several machines meet; give --nnodes with it")
    return (args.nproc or 1) * args.nnodes > 1


def _train(args) -> int:
    from .stages.train import new_run_config, resume_run, train_run

    options = given(args, _train_option_owners())
    if _launch_processes(args):
        if options.get("algo", args.algo) == "local-binary":
            raise UsageError("--nproc: --algo local-binary trains in one process (its engine "
                             "is a bit-packed CPU loop); drop --nproc")
        from .train.launch import launch

        return launch(args.argv, args.nproc or 1, args.nnodes, args.rdzv,
                      threads_given="threads" in options, run_folder=args.out)
    _warn_oversubscribed(options.get("threads"))
    progress = not args.no_progress
    if args.resume:
        if args.recipe:
            raise UsageError("--recipe sets the options of a new run; a resumed run keeps the "
                             "options its checkpoint records")
        outcome = resume_run(args.out, {**options, **({"algo": args.algo} if args.algo else {})},
                             progress)
    else:
        outcome = train_run(new_run_config(options, args.algo, args.recipe), args.out, progress)
    if outcome.main_process:
        for line in outcome.lines():
            print(line)
    return 0


def _train_interrupted(args) -> str:
    from .train.distributed import resume_command
    from .train.runs import CHECKPOINT

    if (Path(args.out) / CHECKPOINT).is_file():
        return (f"interrupted; the last finished epoch is in {Path(args.out) / CHECKPOINT}. "
                f"Continue with: {resume_command(args.out)}")
    return "interrupted before the first epoch finished; nothing to resume, start the run again"


# ------------------------------------------------------------------------------ export, build
def _add_run_arguments(p, verify_default: int) -> None:
    """Arguments of the stages that start from a trained run."""
    p.add_argument("run", help="run folder of `xnorflow train` (or its model.pt)")
    p.add_argument("--verify", type=ranged("int", AT_LEAST_0), default=verify_default,
                   metavar="N", help="compare with PyTorch on N test images (a seeded sample "
                                     "holding every class), 0 to skip (default: %(default)s)")
    p.add_argument("--data-dir", help="where the run's data set lives now, if it moved")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _add_export_parser(sub) -> None:
    p = sub.add_parser("export", help="export a trained run to QONNX and verify it",
                       description="Export a trained 1-bit model to QONNX (BipolarQuant "
                                   "quantizers, input marked BIPOLAR), clean it up with qonnx "
                                   "and compare the QONNX graph with the PyTorch model on real "
                                   "test images.")
    p.add_argument("--out", help="QONNX file to write (default: RUN/model.qonnx.onnx); never "
                                 "one of the run's own files")
    _add_run_arguments(p, verify_default=1000)
    p.set_defaults(handler=_export,
                   interrupted=lambda args: "interrupted; no QONNX file was written or changed")


def _export(args) -> int:
    from .stages.export import export_stage

    result = export_stage(args.run, args.out, args.verify, args.data_dir,
                          progress=not args.no_progress)
    for line in result.lines():
        print(line)
    return 0 if result.identical else 1


def _add_build_parser(sub) -> None:
    from .hw.finn.options import BuildOptions
    from .hw.rtl.options import RtlOptions

    p = sub.add_parser("build", help="compile a trained run with FINN to an XNOR dataflow design",
                       description="Export the run to QONNX, then run FINN's build_dataflow: "
                                   "streamline (batch-norm -> thresholds), XNOR-popcount binary "
                                   "MVAU layers, dataflow partition, folding (by default the "
                                   "fastest design within --budget of --board; or the "
                                   "cheapest that reaches --target-fps; or a JSON), "
                                   "resource/cycle estimates and HLS code generation. Every "
                                   "stage is executed and compared with PyTorch on real test "
                                   "images; a Markdown/HTML report with the layer table, the "
                                   "target and the resources against the board is written to "
                                   "--out.",
                       epilog="exit codes: 0 done; 1 error or a stage differs from PyTorch; 2 "
                              "bad options; 3 stopped before the Vivado steps (--until bitfile "
                              "needs Vivado and Vitis HLS, the FINN Docker image; everything "
                              "built so far is kept); 4 the design misses --target-fps, does "
                              "not fit the board or misses its clock after place and route "
                              "(see --allow-misfit), or no folding fits "
                              "--budget; 130 interrupted.")
    p.add_argument("--out", help="build folder (default: RUN/build-BOARD); new, empty, or an "
                                 "earlier xnorflow build")
    add_dataclass(p, BuildOptions)
    p.add_argument("--allow-misfit", action="store_true",
                   help="exit 0 even if the design misses --target-fps, does not fit the "
                        "board or misses its clock after place and route (the warning is still "
                        "printed)")
    p.add_argument("--cppsim", type=ranged("int", AT_LEAST_0), default=0, metavar="N",
                   help="compile every generated layer with g++ (FINN's C simulation, no Vitis "
                        "needed) and run the design on N test images (a seeded sample holding "
                        "every class), compared layer by layer with FINN's Python execution "
                        "and with PyTorch (default: 0, off)")
    p.add_argument("--backend", choices=("hls", "rtl"), default="hls",
                   help="hls: FINN's HLS code (synthesis needs Vitis HLS); rtl: also the "
                        "accelerator as Verilog (xnorflow's XNOR MVAU, max-pool, LabelSelect and "
                        "width converters; finn-rtllib's FIFOs, sliding windows and padding), "
                        "simulated cycle-accurately with Verilator "
                        "against FINN and PyTorch (every layer, cycles per frame, FIFO depths "
                        "sized by simulation), synthesized with yosys, and a Vivado project "
                        "script to a bitstream without HLS (default: hls)")
    rtl = p.add_argument_group("with --backend rtl")
    add_dataclass(rtl, RtlOptions)
    p.add_argument("--finn-hlslib", metavar="DIR",
                   help="finn-hlslib checkout for --cppsim (default: $FINN_DEPS/finn-hlslib, "
                        "else the one `python -m xnorflow.hw.finn.deps` fetches into "
                        "xnorflow's cache)")
    _add_run_arguments(p, verify_default=200)
    p.set_defaults(handler=_build, interrupted=lambda args: (
        "interrupted; the partial build was removed and an earlier build in the folder was put "
        "back as it was; runs and your files are untouched. Run the command again to build."))


def _build(args) -> int:
    from .hw.finn.options import BuildOptions
    from .hw.rtl.options import RtlOptions
    from .stages.build import build_stage

    options = BuildOptions(**given(args, [f.name for f in fields(BuildOptions)]))
    rtl_given = given(args, [f.name for f in fields(RtlOptions)])
    if rtl_given and args.backend != "rtl":
        names = ", ".join(option_name(name) for name in rtl_given)
        raise UsageError(f"{names} {'set' if len(rtl_given) > 1 else 'sets'} the RTL backend;"
                         f" add --backend rtl")
    if "baud" in rtl_given and not options.is_ecp5:
        raise UsageError(f"--baud sets an ECP5 board's UART link; {options.board} talks to "
                         f"its processor over AXI (drop --baud, or choose --board ULX3S)")
    rtl_options = RtlOptions(**rtl_given) if args.backend == "rtl" else None
    result = build_stage(args.run, args.out, options, args.verify, args.data_dir,
                         progress=not args.no_progress, cppsim=args.cppsim,
                         finn_hlslib=args.finn_hlslib, rtl_options=rtl_options)
    for line in result.lines():
        print(line)
    for line in result.warnings():
        print(line, file=sys.stderr)
    return result.exit_code(allow_misfit=args.allow_misfit)


# ------------------------------------------------------------------------------ deploy
def _add_deploy_parser(sub) -> None:
    p = sub.add_parser("deploy", help="write the bundle a PYNQ board runs (driver settings, "
                                      "packed test images, validate.py)",
                       description="From a finished `xnorflow build` whose accelerator selects "
                                   "the class: FINN's driver preparation (IODMA insertion, "
                                   "partitioning, settings.json; no Vivado needed), test "
                                   "images (a seeded sample holding every class) packed as the "
                                   "driver sends them, PyTorch's classes, validate.py and a "
                                   "README; the bitfile when the "
                                   "build has one. `python BUNDLE/validate.py --simulate` checks "
                                   "the bundle on this machine.",
                       epilog="exit codes: 0 done; 1 error (or --host: the board's classes "
                              "differ); 2 bad options; 130 interrupted.")
    p.add_argument("build", help="build folder of `xnorflow build`")
    p.add_argument("--out", required=True, help="bundle folder: new, empty, or an earlier "
                                                "bundle")
    p.add_argument("--images", type=ranged("int", AT_LEAST_1), default=1000, metavar="N",
                   help="test images to pack into the bundle (default: %(default)s)")
    p.add_argument("--data-dir", help="where the run's data set lives now, if it moved")
    p.add_argument("--host", metavar="USER@BOARD",
                   help="then copy the bundle to the board with scp and run validate.py there "
                        "over ssh (keys, no password prompt)")
    p.set_defaults(handler=_deploy, interrupted=lambda args: (
        "interrupted; the bundle may be incomplete: run the command again to rewrite it"))


def _deploy(args) -> int:
    from .hw.deploy.bundle import copy_to_board
    from .stages.deploy import deploy_stage

    result = deploy_stage(args.build, args.out, args.images, args.data_dir)
    for line in result.lines():
        print(line)
    if args.host and result.uart is not None:
        raise UsageError(f"--host copies a bundle to a PYNQ board; the {result.uart[0]} has no "
                         f"processor: this machine drives it over USB (the lines above say "
                         f"how). The bundle is written.")
    if args.host:
        print(copy_to_board(result.bundle, args.host), end="")
    return 0


# ------------------------------------------------------------------------------ hls
HLS_FRESH_OPTIONS = ("group_sizes", "weight_bits", "dataset", "seed")


def _add_hls_parser(sub) -> None:
    from .hw.hls.generator import HlsOptions
    from .train.configs import LocalBinaryConfig

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
    widths = next(f for f in fields(LocalBinaryConfig) if f.name == "widths")
    source.add_argument("--widths", type=argument_type(str(widths.type), widths.metadata),
                        metavar="WIDTHS", help="hidden widths of a fresh BMLP (initialized with "
                                               "--seed); input size and classes from --dataset")
    fresh = p.add_argument_group("with --widths (a fresh BMLP)")
    add_dataclass(fresh, LocalBinaryConfig, HLS_FRESH_OPTIONS)
    p.add_argument("--data-dir", help="where the data set lives (or moved to)")
    p.add_argument("--out", required=True, help="folder for the generated design (new, empty, "
                                                 "or an earlier xnorflow hls design)")
    add_dataclass(p, HlsOptions)
    p.add_argument("--clock-ns", type=ranged("float", POSITIVE), default=10.0,
                   help="clock period for synthesis (default: %(default)s)")
    p.add_argument("--csim-steps", type=ranged("int", AT_LEAST_0), default=0, metavar="N",
                   help="compile with g++ and compare N training steps with Python (0: only "
                        "generate)")
    p.add_argument("--csim-infer", type=ranged("int", AT_LEAST_1), default=500, metavar="N",
                   help="test images for the inference check of the C simulation "
                        "(default: %(default)s)")
    p.set_defaults(handler=_hls, interrupted=lambda args: (
        f"interrupted; every file in {args.out} is complete (old or new); the C simulation did "
        f"not finish"))


def _hls(args) -> int:
    from .hw.hls.generator import HlsOptions
    from .stages.hls import hls_stage
    from .train.configs import LocalBinaryConfig

    fresh_given = given(args, HLS_FRESH_OPTIONS)
    fresh = None
    if args.trainer and fresh_given:
        raise UsageError(f"{', '.join(map(option_name, fresh_given))}: only with --widths (a "
                         f"fresh BMLP); a --trainer run brings its own")
    if args.widths:
        fresh = LocalBinaryConfig(widths=args.widths, data_dir=args.data_dir, **fresh_given)
    # batch_max not given: None, i.e. the run's batch size
    options = HlsOptions(**{**given(args, [f.name for f in fields(HlsOptions)]),
                            "batch_max": args.batch_max})
    result = hls_stage(args.out, options, run=args.trainer, fresh=fresh, data_dir=args.data_dir,
                       clock_ns=args.clock_ns, csim_steps=args.csim_steps,
                       csim_infer=args.csim_infer)
    for line in result.lines():
        print(line)
    return 0 if result.identical else 1


# ------------------------------------------------------------------------------ explore
EXPLORE_EPILOG = """examples:
  xnorflow explore --out explore/digits --algos proxconnect vispa local-binary --trials 12
  xnorflow explore --out explore/digits --worker --trials 6      # a second worker joins
  xnorflow explore --out explore/grid --sampler grid --models tfc sfc --quantizers bnn bnn++
  xnorflow explore --out explore/m1 --storage postgresql://user:pw@db-host/xnorflow \\
                   --study mnist --dataset mnist --data-dir /data/mnist --holdout 10000
  xnorflow explore --out explore/m2 --storage postgresql://user:pw@db-host/xnorflow \\
                   --study mnist --worker --data-dir /data/mnist   # on another machine

exit codes: 0 done; 1 error, a failed trial or a design that differs from PyTorch; 2 bad
options or a study of other settings; 130 interrupted (the trial is queued again).
"""


def _add_explore_parser(sub) -> None:
    from .explore.settings import ExploreOptions
    from .explore.space import SearchSpace

    p = sub.add_parser("explore", help="search networks, trainers and foldings for the Pareto "
                                       "front of accuracy, FPS and resources (Optuna study)",
                       description="Each trial of an Optuna study draws a trainer and its "
                                   "network (free MLP depths and widths, named networks, CNN "
                                   "channel scales, ProxConnect++ pairs, VISPA ranks, local "
                                   "binary group sizes) and a folding budget, trains it, "
                                   "builds it with FINN folded to fit --board (checking every "
                                   "stage against PyTorch on --verify test images), and "
                                   "reports accuracy, estimated FPS and peak resource use "
                                   "to the study. A network that cannot fit is found before "
                                   "training and recorded as infeasible. The study lives in "
                                   "--storage (an SQLite file in --out by default, or any "
                                   "SQL database for workers on many machines); run the "
                                   "command again to continue it, or --worker elsewhere to "
                                   "join it. Writes pareto.md/.csv, an interactive "
                                   "pareto.html and pareto.png into --out.",
                       epilog=EXPLORE_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True, help="this worker's exploration folder (trial runs "
                                                "and builds, outputs, the default study file): "
                                                "new, empty, or an earlier one")
    study = p.add_argument_group("the study")
    study.add_argument("--storage", metavar="URL", help="SQLAlchemy URL of the study database, "
                       "e.g. postgresql://user:password@host/db (default: sqlite in --out)")
    study.add_argument("--study", default=None, metavar="NAME",
                       help="study name (default: xnorflow)")
    study.add_argument("--worker", action="store_true",
                       help="join the existing study with its own settings (no search or "
                            "training options): one of many workers, on any machine")
    study.add_argument("--trials", type=ranged("int", AT_LEAST_0), default=None,
                       help="trials this command runs (default: the rest of the grid, or 10)")
    study.add_argument("--heartbeat", type=ranged("int", AT_LEAST_1), default=None,
                       metavar="SECONDS", help="how often a worker signals it is alive; a trial "
                                               "silent for twice that is run again (default: "
                                               "60)")
    search = p.add_argument_group("what the study searches (stored in it)")
    for f in fields(SearchSpace):
        add_list_field(search, f)
    trials = p.add_argument_group("every trial (stored in the study)")
    for f in fields(ExploreOptions):
        add_field(trials, f, {"": f.default})
    p.add_argument("--no-progress", action="store_true", help="no line per trial")
    p.set_defaults(handler=_explore, interrupted=lambda args: (
        "interrupted; the trial under way was marked failed and queued again, the study is "
        "intact. Run the same command (or a --worker) to continue."))


def _explore(args) -> int:
    from .explore.settings import ExploreOptions
    from .explore.space import SearchSpace
    from .stages.explore import HEARTBEAT_SECONDS, explore

    names = [f.name for f in fields(ExploreOptions) if f.name != "data_dir"] + \
        [f.name for f in fields(SearchSpace)]
    if args.worker:
        given_settings = given(args, names)
        if given_settings:
            raise UsageError(f"{', '.join(map(option_name, given_settings))}: a --worker takes "
                             f"the study's own settings; give only --storage, --study, "
                             f"--data-dir, --trials and --heartbeat")
        options = space = None
    else:
        space = SearchSpace(**given(args, [f.name for f in fields(SearchSpace)]))
        options = ExploreOptions(**given(args, [f.name for f in fields(ExploreOptions)]))
    from .explore.study import DEFAULT_STUDY

    result = explore(options, space, args.out, storage=args.storage,
                     study_name=args.study or DEFAULT_STUDY, worker=args.worker,
                     trials=args.trials, heartbeat=args.heartbeat or HEARTBEAT_SECONDS,
                     data_dir=args.data_dir, progress=not args.no_progress)
    for line in result.lines():
        print(line)
    return result.exit_code


# ------------------------------------------------------------------------------ main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="xnorflow",
        description="Train binary neural networks and compile them to XNOR-popcount FPGA "
                    "dataflow accelerators with FINN.",
        epilog="exit codes: 0 done, 1 error, 2 bad options, 3 stopped before Vivado, 4 design "
               "misses its target or board, 130 interrupted")
    sub = parser.add_subparsers(title="stages", dest="command", required=True)
    _add_train_parser(sub)
    _add_export_parser(sub)
    _add_build_parser(sub)
    _add_deploy_parser(sub)
    _add_hls_parser(sub)
    _add_explore_parser(sub)
    return parser


_MAIN_PID = os.getpid()


def _interrupt(signum, frame):
    """Ctrl-C (SIGINT) and SIGTERM (a job scheduler, `kill`) end a stage the same way: its
    clean-up runs. The flag remembers the interrupt even where a library turns the
    KeyboardInterrupt into another error (an import cut short) or swallows it. Worker processes
    forked by FINN or PyTorch inherit this handler; their pools stop them with SIGTERM, which
    must end them as it would have without xnorflow."""
    if os.getpid() != _MAIN_PID:
        if signum == signal.SIGTERM:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        raise KeyboardInterrupt
    interrupts.note()
    if not interrupts.deferred():
        raise KeyboardInterrupt


def _unraisable(unraisable) -> None:
    """A Ctrl-C that landed in a callback Python cannot raise from (garbage collection, a
    weakref): noted, so the stage stops at its next step; not printed as a trace."""
    if isinstance(unraisable.exc_value, KeyboardInterrupt) and interrupts.pending():
        return
    sys.__unraisablehook__(unraisable)


def main(argv: list[str] | None = None) -> int:
    global _MAIN_PID
    args = build_parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    if "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1:
        from .train.launch import die_with_launcher

        die_with_launcher()
        # a process of a distributed run: stop where all processes agree; rank 0 speaks
        interrupts.defer()
        args.quiet = os.environ.get("RANK", "0") != "0"
    previous = {}
    if threading.current_thread() is threading.main_thread():
        _MAIN_PID = os.getpid()
        interrupts.clear()
        previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    unraisable_hook, sys.unraisablehook = sys.unraisablehook, _unraisable
    # Brevitas warns at import about an optional CUDA kernel package xnorflow does not use.
    warnings.filterwarnings("ignore", message="fast_hadamard_transform package not found")
    try:
        code = _run_stage(args)
    finally:
        for sig, handler in previous.items():
            # the command line: the work is done or undone now, and a Ctrl-C in the
            # interpreter's shutdown must not turn that into a death by SIGINT
            signal.signal(sig, signal.SIG_IGN if argv is None else handler)
        release_folders()
        sys.unraisablehook = unraisable_hook
    if argv is None and (interrupts.pending() or "WORLD_SIZE" in os.environ):
        # (a process of a distributed run: see xnorflow.train.distributed, "Leaving")
        # The command line after Ctrl-C: its message is out and every output is whole. Leave
        # now, so that nothing in the interpreter's shutdown (a library's exit hook meeting
        # the interrupt) can turn exit 130 into a death by SIGINT or a second message.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _expected(err: BaseException) -> bool:
    """An error that rank 0 of a distributed run reports for all processes: a message of
    xnorflow's, Ctrl-C, or a collective that another process broke by stopping."""
    if isinstance(err, (XnorflowError, KeyboardInterrupt)):
        return True
    from .train.distributed import broke

    return broke(err)


def _interrupted(args) -> int:
    print(f"\n{args.interrupted(args)}", file=sys.stderr)
    return 130


def _run_stage(args) -> int:
    try:
        code = args.handler(args)
    except BaseException as err:
        if getattr(args, "quiet", False) and _expected(err):
            return 130 if interrupts.pending() else getattr(err, "exit_code", 1)
        if (interrupts.pending() or isinstance(err, KeyboardInterrupt)) and \
                not getattr(err, "overrides_interrupt", False):
            return _interrupted(args)
        if isinstance(err, XnorflowError):
            print(f"error: {err}", file=sys.stderr)
            return err.exit_code
        if isinstance(err, OSError):  # the file system refused: permissions, a full disk
            print(f"error: {err.strerror or err} ({err.filename or 'file system'}); nothing "
                  f"half-written was left behind", file=sys.stderr)
            return 1
        raise
    return _interrupted(args) if interrupts.pending() else code


if __name__ == "__main__":
    sys.exit(main())
