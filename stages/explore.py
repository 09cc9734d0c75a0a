"""`xnorflow explore`: a multi-objective Optuna study over trainers, network shapes, quantizer
pairs, VISPA ranks, local binary group sizes and folding budgets. Each trial is trained, folded
to fit the board and checked bit-exactly (:mod:`xnorflow.explore.trials`); the study keeps
every result in its database (:mod:`xnorflow.explore.study`), so any number of workers on any
number of machines can join it, and the Pareto table and plots are written from it
(:mod:`xnorflow.explore.pareto`)."""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from ..errors import XnorflowError
from ..explore.settings import ExploreOptions, common_run_options
from ..explore.space import SearchSpace
from ..explore.study import (
    DEFAULT_STUDY,
    STALE_RETRIES,
    STUDY_FILE,
    StudyError,
    check_storage_url,
    default_storage,
    make_sampler,
    masked,
    open_storage,
    open_study,
    retry_trial,
    worker_id,
)
from ..outputs import OwnedFolder, claim_folder, holds_folders
from ..progress import note

FOLDER_KIND = "exploration"
STAGE = "explore"
OUTPUTS = ("trials", "study.db", "pareto.md", "pareto.csv", "pareto.html", "pareto.png")
DEFAULT_TRIALS = 10      # per command, for the samplers other than grid
HEARTBEAT_SECONDS = 60


@dataclass
class Exploration:
    folder: Path
    storage: str
    study: str
    points: list[dict]
    ran: int                              # trials this command ran
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """1 if a trial failed (not interrupted, not a lost worker) or a design differs from
        PyTorch; 4 if trials finished but none fits the board within its budget; else 0."""
        from ..explore.pareto import feasible

        bad = [p for p in self.points if p.get("failed") == "error" or p.get("identical") is False]
        if bad:
            return 1
        finished = [p for p in self.points if not p.get("failed")]
        return 4 if finished and not any(feasible(p) for p in finished) else 0

    def lines(self) -> list[str]:
        from ..explore.pareto import pareto_front, point_line

        front = pareto_front(self.points)
        lines = [point_line(p, p["name"] in front) for p in self.points]
        if self.exit_code == 4:
            lines.append("no trial fits the board within its budget: try smaller networks "
                         "(--widths, --depths, --channel-scales), a larger --board or higher "
                         "--budgets")
        return lines + [
            f"{len(front)} of {len(self.points)} trials on the Pareto front; this command ran "
            f"{self.ran} trial{'s' if self.ran != 1 else ''} in {self.seconds:.0f} s; study "
            f"{self.study!r} in {masked(self.storage)}; outputs: "
            + ", ".join(str(o) for o in self.outputs)]


def _data_identity(dataset: str, data_dir: str | None) -> tuple[str, tuple]:
    from ..train.data import fingerprint, load_dataset

    data = load_dataset(dataset, data_dir)
    return fingerprint(data), (tuple(data.image_shape), data.num_classes)


@holds_folders
def explore(options: ExploreOptions | None, space: SearchSpace | None, out: str | Path, *,
            storage: str | None = None, study_name: str = DEFAULT_STUDY, worker: bool = False,
            trials: int | None = None, heartbeat: int = HEARTBEAT_SECONDS,
            data_dir: str | None = None, progress: bool = True) -> Exploration:
    """Create (or continue) the study ``study_name`` with ``options`` and ``space`` and run
    ``trials`` trials of it in this process; ``worker``: join the existing study with its own
    settings (``options`` and ``space`` are then None; ``data_dir`` is this machine's copy of
    its data). Writes the study's Pareto table and plots into ``out``."""
    from ..explore.pareto import write_outputs
    from ..explore.trials import TrialContext

    start = time.perf_counter()
    if storage is not None:
        check_storage_url(storage)   # a malformed URL is a bad option: refused before any work
    data_dir = data_dir if worker else options.data_dir
    if not worker:
        fingerprint, shape = _data_identity(options.dataset, data_dir)
        settings = options.settings(space, fingerprint)
        if settings["sampler"] == "grid":  # a grid that cannot be walked: refused now
            from ..explore.space import grid_candidates

            grid_candidates(space, common_run_options(settings, data_dir))
    created = not Path(out).exists()
    owned = claim_folder(out, FOLDER_KIND)
    folder = owned.path
    with _undone_if_refused(owned, created):
        for name in OUTPUTS:  # refused before any work if the user put a file of that name here
            owned.target(name, STAGE)
        url = storage or default_storage(folder)
        store = open_storage(url, heartbeat)
        study, settings = open_study(store, study_name, None if worker else settings, worker)
        if worker:
            fingerprint, shape = _data_identity(settings["dataset"], data_dir)
            if fingerprint != settings["data_fingerprint"]:
                raise StudyError(f"the data of --dataset {settings['dataset']}"
                                 f"{f' in {data_dir}' if data_dir else ''} is not the data the "
                                 f"study {study_name!r} was started on (another fingerprint); "
                                 f"give --data-dir a copy of that data.")
        ctx = TrialContext(study_name, folder, settings, common_run_options(settings, data_dir),
                           shape)
        grid = ctx.grid
    # a command samples reproducibly from --seed and the trials already in the study (so that
    # continuing a study does not draw its first trials again); workers draw streams of their
    # own, so that two of them do not propose the same trials
    seed = None if worker else settings["seed"] * 1_000_003 + len(study.trials)
    study.sampler = make_sampler(settings, seed, list(grid) if grid else None)
    ran = _run_trials(study, ctx, trials, grid, progress)
    title = (f"xnorflow explore: {settings['dataset']}, {settings['board']}, "
             f"{settings['epochs']} epoch(s), study {study_name!r}")
    points = _points(study)
    outputs = write_outputs(points, folder, title, settings["holdout"] > 0)
    return Exploration(folder, url, study_name, points, ran, outputs,
                       time.perf_counter() - start)


@contextmanager
def _undone_if_refused(owned: OwnedFolder, created: bool) -> Iterator[None]:
    """A command refused (or stopped) before its first trial leaves nothing it made: not the
    study file it opened (if that was new), nor the folder (if it made it: its marker and lock
    are then all that is in it). A folder it did not make stays."""
    study_file = owned.path / STUDY_FILE
    new_study = not study_file.exists()
    try:
        yield
    except BaseException:
        if new_study:
            study_file.unlink(missing_ok=True)
        if created:
            owned.abandon()
        raise


def _grid_left(study, grid) -> bool:
    """Whether a grid point is neither finished nor running, or a retry waits."""
    import optuna

    states = optuna.trial.TrialState
    taken = {t.params.get("candidate") for t in study.get_trials(deepcopy=False)
             if t.state in (states.COMPLETE, states.RUNNING, states.FAIL)}
    waiting = study.get_trials(deepcopy=False, states=(states.WAITING,))
    return bool(set(grid) - taken) or bool(waiting)


def _run_trials(study, ctx, trials: int | None, grid, progress: bool) -> int:
    from ..explore.pareto import point_line
    from ..explore.trials import objective

    limit = trials if trials is not None else (len(grid) if grid else DEFAULT_TRIALS)
    ran = 0
    while ran < limit and (grid is None or _grid_left(study, grid)):
        try:
            study.optimize(lambda trial: objective(trial, ctx), n_trials=1,
                           catch=(XnorflowError,))
        except KeyboardInterrupt:
            _retry_interrupted(study)
            raise
        ran += 1
        if progress:
            mine = [t for t in study.get_trials(deepcopy=False)
                    if t.user_attrs.get("worker") == worker_id() and t.state.is_finished()]
            if mine:
                note(f"[{ran}/{limit}] " + point_line(_point(mine[-1])))
    return ran


def _retry_interrupted(study) -> None:
    """After Ctrl-C: the trial Optuna just marked failed (the objective marked it
    interrupted) is queued again with its parameters, as a lost worker's trial is, so that
    continuing the study trains it afresh."""
    import optuna

    failed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.FAIL,))
    mine = [t for t in failed if t.user_attrs.get("worker") == worker_id()
            and t.user_attrs.get("interrupted")]
    if mine:
        retry_trial(study, mine[-1])


def _point(trial) -> dict:
    """One row of the outputs from a finished trial."""
    import optuna

    attrs = dict(trial.user_attrs)
    name = f"#{trial.number} {attrs.get('name', '?')}"
    if trial.state == optuna.trial.TrialState.COMPLETE:
        return {**attrs, "name": name, "trial": trial.number}
    if attrs.get("interrupted"):
        why, kind = "interrupted (Ctrl-C); queued again", "interrupted"
    elif "error" in attrs:
        why, kind = f"failed: {attrs['error']}", "error"
    else:
        why, kind = ("its worker stopped sending a heartbeat (killed or lost); queued again "
                     f"(at most {STALE_RETRIES} times)"), "lost"
    return {"name": name, "trial": trial.number, "fits": False, "failed": kind, "note": why}


def _points(study) -> list[dict]:
    import optuna

    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.FAIL)
    return [_point(t) for t in study.get_trials(deepcopy=False, states=done)]
