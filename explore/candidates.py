"""`xnorflow explore`: train a grid of candidate networks, fold each to fit a board, and show
accuracy against frame rate and resources as a Pareto front.

The exploration folder (kind "exploration") holds::

    exploration.json          what was asked (grid, data set, board, budget)
    runs/<candidate>/         a training run per candidate (resumable, like `xnorflow train`)
    builds/<candidate>/       its FINN build, folded to fit (like `xnorflow build`)
    results/<candidate>.json  its figures, written once the build is done
    preflight/<model>.json    whether an architecture can fit at all (before any training)
    pareto.md/.csv/.html/.png the table and the plots

A candidate's folder names carry a hash of everything that makes its result (its training
configuration; for builds and results also the board, clock, budget and checked images), so a
killed exploration continues where it stopped: finished results are read back, an interrupted
run resumes from its last checkpoint, an interrupted build starts again.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import UsageError, XnorflowError
from ..hw.finn.folding import NoFittingFolding
from ..hw.finn.options import BuildOptions, board_option, budget_option, clock_option
from ..options import AT_LEAST_0, AT_LEAST_1, option, validate_fields
from ..outputs import write_text
from ..train.configs import CONV_MODELS, MLP_WIDTHS
from ..train.data import DATASETS
from ..train.pairs import PAIRS

FOLDER_KIND = "exploration"
STAGE = "explore"
OUTPUTS = ("runs", "builds", "results", "preflight", "exploration.json", "pareto.md",
           "pareto.csv", "pareto.html", "pareto.png")
EXPLORE_ALGOS = ("proxconnect", "vispa")   # the trainers whose networks FINN builds by name


class NothingFits(XnorflowError):
    """No candidate of the grid fits the board within the budget."""

    exit_code = 4


@dataclass
class ExploreOptions:
    dataset: str = option("digits", "data set of every candidate (digits ships with "
                          "scikit-learn)", choices=DATASETS)
    data_dir: str | None = option(None, "folder with the data set's files")
    models: list[str] = option(["tfc", "sfc"], "named networks to try",
                               choices=tuple(MLP_WIDTHS) + CONV_MODELS)
    quantizers: list[str] = option(["bnn", "bnn++"], "ProxConnect++ pairs to try "
                                   "(proxconnect candidates)", choices=tuple(PAIRS))
    algos: list[str] = option(["proxconnect"], "trainers to try", choices=EXPLORE_ALGOS)
    epochs: int = option(2, "training budget of every candidate", range=AT_LEAST_1)
    seed: int = option(0, "seed of every candidate", range=AT_LEAST_0)
    board: str = board_option("board every candidate is folded for")
    budget: float = budget_option("share of each device resource a design may use")
    clock_mhz: float = clock_option()
    verify: int = option(100, "test images each built design is checked on against PyTorch "
                         "(bit-exact, every stage)", range=AT_LEAST_0)

    def __post_init__(self):
        validate_fields(self)

    def build_options(self) -> BuildOptions:
        return BuildOptions(board=self.board, clock_mhz=self.clock_mhz, budget=self.budget,
                            until="estimates")


@dataclass
class Candidate:
    name: str          # readable, e.g. "sfc-bnn++" or "vispa-sfc"
    config: object     # the RunConfig it trains

    def key(self) -> str:
        settings = {k: v for k, v in asdict(self.config).items() if k != "data_dir"}
        return _digest({"algo": self.config.algo, **settings})


def _digest(value) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:10]


def grid(options: ExploreOptions) -> list[Candidate]:
    """Every candidate of the grid: each proxconnect model with each quantizer pair, each VISPA
    model once (VISPA's weights are its own; it has no pair to choose). Refuses a grid whose
    candidates cannot be trained, naming the option, or that names a network FINN cannot
    build (before anything is written)."""
    from ..export.run_export import check_buildable
    from ..train.configs import TrainConfig, VispaConfig

    for model in dict.fromkeys(options.models):
        check_buildable(model, f"the exploration's --models {' '.join(options.models)}")

    common = dict(dataset=options.dataset, data_dir=options.data_dir, epochs=options.epochs,
                  seed=options.seed)
    found = []
    for algo in dict.fromkeys(options.algos):
        for model in dict.fromkeys(options.models):
            if algo == "vispa":
                found.append(Candidate(f"vispa-{model}", VispaConfig(model=model, **common)))
                continue
            for quantizer in dict.fromkeys(options.quantizers):
                found.append(Candidate(f"{model}-{quantizer}",
                                       TrainConfig(model=model, quantizer=quantizer, **common)))
    if not found:
        raise UsageError("the grid is empty: give at least one --models entry (and one "
                         "--quantizers entry for proxconnect)")
    return found


# ---------------------------------------------------------------------------------- preflight
def _architecture(config) -> tuple[str, str, str]:
    pixels = "uint8" if getattr(config, "binarization", None) == "uint8" else "bipolar"
    return config.model, getattr(config, "head", "tensor-norm"), pixels


def preflight(candidates: list[Candidate], options: ExploreOptions, folder: Path,
              shape: tuple[tuple[int, ...], int]) -> dict[tuple, dict]:
    """Fold an untrained network of each architecture for the board before anything is
    trained: the design's size does not depend on the weights' values, so an architecture that
    cannot fit is known (and skipped) at once. Architecture -> {"fits", "need" or "fps"}."""
    from ..export.qonnx_export import export_qonnx_model, save_model
    from ..hw.finn.build import run_build
    from ..hw.finn.report import summarize
    from ..train.configs import TrainConfig
    from ..train.trainer import model_for

    build = options.build_options()
    verdicts = {}
    for architecture in dict.fromkeys(_architecture(c.config) for c in candidates):
        model, head, pixels = architecture
        key = _digest({"architecture": architecture, "shape": shape, "build": asdict(build)})
        path = folder / "preflight" / f"{model}-{key}.json"
        if path.is_file():
            verdicts[architecture] = json.loads(path.read_text())
            continue
        config = TrainConfig(model=model, head=head, dataset=options.dataset,
                             binarization="uint8" if pixels == "uint8" else None)
        network = model_for(config, *shape).eval()
        with tempfile.TemporaryDirectory() as tmp:  # nothing left in the folder if killed
            save_model(export_qonnx_model(network), Path(tmp) / "model.onnx")
            try:
                run_build(Path(tmp) / "model.onnx", Path(tmp) / "build", build, quiet=True)
                summary = summarize(Path(tmp) / "build", build.clock_mhz, build.fpga_part)
                verdict = {"fits": True, "estimated_fps": summary.estimated_fps}
            except NoFittingFolding as err:
                verdict = {"fits": False, "need": err.need, "peak": err.peak}
        write_text(path, json.dumps(verdict))
        verdicts[architecture] = verdict
    return verdicts


# ------------------------------------------------------------------------------ a candidate
def _train(candidate: Candidate, run_dir: Path, data_dir: str | None) -> float:
    """Train (or finish, or reuse) the candidate's run; the seconds spent now. A run is done
    when its summary is written (the last file a run writes); one killed before that resumes
    from its checkpoint, which also rewrites a finished run's model and summary."""
    from ..stages.train import resume_run, train_run
    from ..train.runs import CHECKPOINT, SUMMARY_JSON

    start = time.perf_counter()
    if (run_dir / SUMMARY_JSON).is_file():
        return 0.0
    if (run_dir / CHECKPOINT).is_file():  # the data may have moved since: a resumable change
        resume_run(run_dir, {"data_dir": data_dir}, progress=False, verbose=False)
    else:
        train_run(candidate.config, run_dir, progress=False, verbose=False)
    return time.perf_counter() - start


def evaluate_candidate(candidate: Candidate, options: ExploreOptions, folder: Path) -> dict:
    """Train, fold to fit and check one candidate; its result record (also written to
    results/)."""
    from ..stages.build import build_stage
    from ..train.runs import SUMMARY_JSON

    build = options.build_options()
    key = candidate.key()
    build_key = _digest({"train": key, "build": asdict(build), "verify": options.verify})
    result_path = folder / "results" / f"{candidate.name}-{build_key}.json"
    if result_path.is_file():
        return json.loads(result_path.read_text())
    run_dir = folder / "runs" / f"{candidate.name}-{key}"
    train_seconds = _train(candidate, run_dir, options.data_dir)
    summary = json.loads((run_dir / SUMMARY_JSON).read_text())
    record = {"name": candidate.name, "algo": candidate.config.algo,
              "model": candidate.config.model,
              "quantizer": getattr(candidate.config, "quantizer", None),
              "run": str(run_dir.relative_to(folder)),
              "test_accuracy": summary["final_test_acc"], "train_seconds": train_seconds}
    start = time.perf_counter()
    build_dir = folder / "builds" / f"{candidate.name}-{build_key}"
    try:
        result = build_stage(run_dir, build_dir, build, verify=options.verify,
                             data_dir=options.data_dir, progress=False)
    except NoFittingFolding as err:
        record.update(fits=False, note=f"does not fit: even folded as far as FINN can, it "
                                       f"needs {err.need}")
    except XnorflowError as err:  # not kept: the next run tries again
        return {**record, "fits": False, "failed": True,
                "note": f"build failed: {str(err).splitlines()[0]} (see {build_dir})"}
    else:
        s = result.summary
        checked = s.verification[-1]["images"] if s.verification else 0
        record.update(
            fits=bool(s.fits_device), estimated_fps=s.estimated_fps,
            latency_us=s.estimated_latency_us, resources=s.resources,
            utilization=s.utilization, bottleneck=s.bottleneck,
            identical=result.identical,
            check=(f"{'identical' if result.identical else 'DIFFERS'} on {checked} images"
                   if checked else "not checked"),
            report=str((build_dir / "build_report.html").relative_to(folder)))
    record["build_seconds"] = time.perf_counter() - start
    write_text(result_path, json.dumps(record, indent=2))
    return record
