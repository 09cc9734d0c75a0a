"""One trial of an exploration: draw a candidate, check that it can fit the board at all, train
it, build it folded to fit, check every stage bit-exactly, and give the study its objectives.

A trial's files are ``trials/<study>/<number>/run`` and ``.../build`` in the worker's
exploration folder; a trial number is never reused, so a retried trial (its worker was killed)
trains afresh in a new folder. Everything the study's outputs show is stored with the trial
(its user attributes), so any worker, on any machine, can write the Pareto table.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..errors import XnorflowError
from ..hw.finn.folding import NoFittingFolding
from ..hw.finn.options import BuildOptions
from .space import Candidate, SearchSpace, grid_candidates, suggest
from .study import worker_id

PREFLIGHT_ATTR = "preflight "   # + a digest: a study attribute, shared by the workers
LARGE = 1e6   # the peak share reported for a design with no finite size (Optuna wants numbers)


@dataclass
class TrialContext:
    """What every trial of this process needs: the study's settings and this worker's
    folder and data."""

    study_name: str
    folder: Path                  # this worker's exploration folder
    settings: dict                # the study's (see stages.explore.ExploreOptions.settings)
    common: dict                  # options of every candidate's run configuration
    shape: tuple                  # (image_shape, num_classes) of the data set

    @property
    def space(self) -> SearchSpace:
        return SearchSpace(**self.settings["space"])

    @property
    def grid(self) -> dict[str, Candidate] | None:
        if self.settings["sampler"] != "grid":
            return None
        return grid_candidates(self.space, self.common)

    def build_options(self, budget: float) -> BuildOptions:
        return BuildOptions(board=self.settings["board"], clock_mhz=self.settings["clock_mhz"],
                            budget=budget, until="estimates")

    def trial_folder(self, number: int) -> Path:
        return self.folder / "trials" / self.study_name / f"{number:04d}"


def draw(trial, ctx: TrialContext) -> Candidate:
    grid = ctx.grid
    if grid is not None:
        return grid[trial.suggest_categorical("candidate", list(grid))]
    return suggest(trial, ctx.space, ctx.common)


def _digest(value) -> str:
    import hashlib

    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:12]


def architecture(config) -> dict:
    """What decides a candidate's hardware: its network's shape and input layer, not its
    weights (so not its trainer or quantizer pair)."""
    if config.algo == "local-binary":
        return {"bmlp": list(config.widths)}
    return {"model": config.model, "hidden": config.hidden,
            "channel_scale": config.channel_scale, "head": config.head,
            "pixels": "uint8" if config.binarization == "uint8" else "bipolar"}


def untrained_network(config, image_shape, num_classes):
    """The candidate's deployed network with its initial weights, as FINN would get it."""
    if config.algo == "local-binary":
        import numpy as np

        from ..train.local_binary.brevitas_model import to_brevitas
        from ..train.local_binary.model import init_state

        shape = config.shape(int(np.prod(image_shape)), num_classes)
        return to_brevitas(init_state(shape, config.seed)).eval()
    from ..train.trainer import model_for

    return model_for(config, image_shape, num_classes).eval()


def preflight(candidate: Candidate, ctx: TrialContext, study) -> dict:
    """Whether the candidate's architecture can fit the board within its budget, folded as
    far as FINN can, before any training: {"fits", "need", "peak"}. Shared by every worker
    through the study (the design's size does not depend on the weights)."""
    from ..export.qonnx_export import export_qonnx_model, save_model
    from ..hw.finn.build import run_build

    build = ctx.build_options(candidate.budget)
    key = PREFLIGHT_ATTR + _digest({"architecture": architecture(candidate.config),
                                    "shape": ctx.shape, "build": asdict(build)})
    known = study.user_attrs.get(key)
    if known is not None:
        return known
    network = untrained_network(candidate.config, *ctx.shape)
    with tempfile.TemporaryDirectory() as tmp:   # nothing is left behind if killed
        save_model(export_qonnx_model(network), Path(tmp) / "model.onnx")
        try:
            run_build(Path(tmp) / "model.onnx", Path(tmp) / "build", build, quiet=True)
            verdict = {"fits": True}
        except NoFittingFolding as err:
            verdict = {"fits": False, "need": err.need, "peak": err.peak}
    study.set_user_attr(key, verdict)
    return verdict


def objective(trial, ctx: TrialContext) -> tuple[float, float, float]:
    """The trial's objectives: (accuracy, estimated FPS, peak resource share). A candidate
    that cannot fit is recorded, not dropped: its values are (0, 0, its smallest peak share)
    and its constraint says by how much it misses the budget (see :func:`_constrain`)."""
    trial.set_user_attr("worker", worker_id())
    try:
        return _evaluate(trial, ctx)
    except KeyboardInterrupt:   # said while the trial can still be updated (then: FAIL)
        trial.set_user_attr("interrupted", True)
        raise


def _evaluate(trial, ctx: TrialContext) -> tuple[float, float, float]:
    from ..stages.build import build_stage
    from ..stages.train import train_run
    from ..train.runs import SUMMARY_JSON

    candidate = draw(trial, ctx)
    config = candidate.config
    attrs = {"name": candidate.name, "algo": config.algo, "budget": candidate.budget,
             "config": {k: v for k, v in asdict(config).items() if k != "data_dir"}}
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    verdict = preflight(candidate, ctx, trial.study)
    if not verdict["fits"]:
        note = f"does not fit: even folded as far as FINN can, it needs {verdict['need']}"
        peak = min(float(verdict["peak"]), LARGE)
        _record(trial, fits=False, note=note)
        _constrain(trial, peak - candidate.budget, identical=True)
        return 0.0, 0.0, peak
    folder = ctx.trial_folder(trial.number)
    trial.set_user_attr("folder", str(folder.resolve()))
    start = time.perf_counter()
    try:
        train_run(config, folder / "run", progress=False, verbose=False)
        summary = json.loads((folder / "run" / SUMMARY_JSON).read_text())
        train_seconds = time.perf_counter() - start
        start = time.perf_counter()
        result = build_stage(folder / "run", folder / "build",
                             ctx.build_options(candidate.budget),
                             verify=ctx.settings["verify"], data_dir=ctx.common["data_dir"],
                             progress=False)
    except NoFittingFolding as err:   # the preflight said it fits; say so if not
        peak = min(float(err.peak), LARGE)
        _record(trial, fits=False, note=f"does not fit: {err.need}")
        _constrain(trial, peak - candidate.budget, identical=True)
        return 0.0, 0.0, peak
    except XnorflowError as err:
        trial.set_user_attr("error", str(err).splitlines()[0])
        raise
    s = result.summary
    checked = s.verification[-1]["images"] if s.verification else 0
    peak = max(s.utilization.values(), default=0.0)
    accuracy = summary["final_val_acc"] if config.holdout else summary["final_test_acc"]
    _record(trial, fits=bool(s.fits_device), test_accuracy=summary["final_test_acc"],
            val_accuracy=summary.get("final_val_acc"), accuracy=accuracy,
            estimated_fps=s.estimated_fps, latency_us=s.estimated_latency_us,
            resources=s.resources, utilization=s.utilization, peak_share=peak,
            bottleneck=s.bottleneck, identical=result.identical,
            check=(f"{'identical' if result.identical else 'DIFFERS'} on {checked} images"
                   if checked else "not checked"),
            report=str((folder / "build" / "build_report.html").resolve()),
            train_seconds=train_seconds, build_seconds=time.perf_counter() - start)
    _constrain(trial, peak - candidate.budget, result.identical)
    return float(accuracy), float(s.estimated_fps), float(peak)


def _constrain(trial, over_budget: float, identical: bool) -> None:
    """The trial's constraints (feasible when <= 0), which NSGA-II and TPE rank by: its peak
    resource share minus its budget, and whether a stage of its build differs from
    PyTorch."""
    trial.set_constraint("resources_over_budget", over_budget)
    trial.set_constraint("differs_from_pytorch", 0.0 if identical else 1.0)


def _record(trial, **attrs) -> None:
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
