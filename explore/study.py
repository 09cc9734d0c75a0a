"""The Optuna study behind `xnorflow explore`: where it is stored, what it records about itself,
and who may join it.

A study lives in an SQL database that Optuna manages (an SQLite file inside the exploration
folder by default; any SQLAlchemy URL, e.g. ``postgresql://...``, for workers on many
machines). xnorflow adds two user attributes when it creates a study:

- ``xnorflow_settings``: the search space, data set, trainer budget, board and checks (what
  makes one trial comparable with another); a later command or worker with other settings is
  refused with the differences;
- ``xnorflow_code``: the version and a digest of xnorflow's source and of the libraries that
  make a result (torch, Brevitas, QONNX, finn-plus); a worker running other code is refused.

Workers send a heartbeat; a trial whose worker went silent (killed, machine lost) is failed by
the next worker that starts a trial and enqueued again with the same parameters
(``RetryHeartbeatStaleTrialCallback``), so it is trained again from scratch in a folder of its
own: a half-written run is never trusted.
"""

from __future__ import annotations

import functools
import hashlib
import re
from pathlib import Path

from ..errors import UsageError, XnorflowError

STUDY_FILE = "study.db"
DEFAULT_STUDY = "xnorflow"
SETTINGS_ATTR = "xnorflow_settings"
CODE_ATTR = "xnorflow_code"
# accuracy (validation with a hold-out, else test) up, FPS up, peak resource share down
DIRECTIONS = ("maximize", "maximize", "minimize")
OBJECTIVES = ("accuracy", "estimated_fps", "peak_share")
SAMPLERS = ("nsga2", "tpe", "random", "grid")
STALE_RETRIES = 3     # how often a trial whose worker went silent is tried again


class StudyError(XnorflowError):
    """The study's storage cannot be used, or the study is not the one asked for."""


@functools.cache
def worker_id() -> str:
    """This process among the study's workers: host and process id."""
    import os
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


def default_storage(folder: Path) -> str:
    return f"sqlite:///{(Path(folder) / STUDY_FILE).resolve()}"


# query parameters that carry a password (psycopg's and libpq's, PyMySQL's)
SECRET_QUERY_KEYS = ("password", "passwd")


def masked(url: str) -> str:
    """``url`` as every message and file shows it: the password hidden wherever it is (after
    the user name, or as a query parameter), read as SQLAlchemy reads the URL."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):   # not a URL SQLAlchemy reads: hide all before an '@'
        scheme, sep, rest = url.rpartition("://")
        shown = f"{scheme}{sep}***@{rest.rpartition('@')[2]}" if "@" in rest else url
        return re.sub(rf"(?i)\b({'|'.join(SECRET_QUERY_KEYS)})=[^&]*", r"\1=***", shown)
    if parsed.host and "@" in parsed.host:
        # an unescaped '@' in the password: SQLAlchemy splits at the first one, the rest of
        # the password would be shown as the host
        parsed = parsed.set(host=parsed.host.rpartition("@")[2], password="***")
    shown = parsed.set(query={}).render_as_string(hide_password=True)
    # written out, not rendered: rendering would percent-escape every value ('***', a path)
    query = [f"{key}={'***' if key.lower() in SECRET_QUERY_KEYS else value}"
             for key, values in parsed.query.items()
             for value in (values if isinstance(values, tuple) else (values,))]
    return shown + ("?" + "&".join(query) if query else "")


def check_storage_url(url: str) -> None:
    """Refuse a ``--storage`` that no database could be opened with, as a bad option (exit 2)
    and before any work; the URL is named without its password."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    shown = masked(url)
    example = ("give an SQLAlchemy URL such as postgresql://USER:PASSWORD@HOST/DB or "
               "sqlite:///PATH/study.db, or leave --storage out for an SQLite file in --out")
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"--storage {shown}: not a database URL; {example}.") from None
    except ValueError:   # SQLAlchemy reads the port as an integer
        raise UsageError(f"--storage {shown}: the port is not a number; {example}.") from None
    if parsed.host and "@" in parsed.host:
        raise UsageError(f"--storage {shown}: the password holds an '@', which ends it early "
                         f"(the rest would be taken for the host); write each '@' of the "
                         f"password as %40.")
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise UsageError(f"--storage {shown}: port {parsed.port} is not in 1-65535.")
    try:
        parsed.get_dialect()
    except NoSuchModuleError:
        raise UsageError(f"--storage {shown}: SQLAlchemy knows no database "
                         f"{parsed.drivername!r}; {example} (MySQL: mysql+pymysql://...)."
                         ) from None


def open_storage(url: str, heartbeat: int):
    """Optuna's RDB storage at ``url`` with worker heartbeats every ``heartbeat`` seconds
    (a trial silent for twice that is retried)."""
    import optuna
    import sqlalchemy

    quiet_optuna()
    engine = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {
        "pool_pre_ping": True}
    try:
        return optuna.storages.RDBStorage(
            url, engine_kwargs=engine, heartbeat_interval=heartbeat, grace_period=2 * heartbeat,
            heartbeat_stale_trial_callback=retry_trial)
    except ImportError as err:   # SQLAlchemy's driver for the URL's database is missing
        missing = getattr(err.__cause__, "name", None) or str(err.__cause__ or err)
        raise StudyError(f"--storage {masked(url)}: the database driver ({missing}) is not "
                         f"installed; install it into xnorflow's environment (PostgreSQL's, "
                         f"psycopg, comes with xnorflow; MySQL: pip install pymysql and a "
                         f"mysql+pymysql:// URL).") from None
    except (sqlalchemy.exc.SQLAlchemyError, ValueError) as err:
        reason = str(getattr(err, "orig", None) or err).strip().splitlines()[0]
        raise StudyError(f"--storage {masked(url)}: cannot open the study database ({reason})."
                         f" Check the URL, that the server runs and accepts this user, and "
                         f"that the database exists.") from None


def retry_trial(study, trial) -> None:
    """Queue ``trial`` (failed: its worker went silent, or Ctrl-C) again with the same
    parameters, at most :data:`STALE_RETRIES` times. The new trial carries the parameters and
    the sampler's bookkeeping (a grid point's id), not the old trial's results or folder."""
    import optuna

    history = [*trial.system_attrs.get("retry_history", []), trial.number]
    if len(history) > STALE_RETRIES:
        return
    system = {k: v for k, v in trial.system_attrs.items()
              if k in ("grid_id", "search_space")}
    study.add_trial(optuna.create_trial(
        state=optuna.trial.TrialState.WAITING, params=trial.params,
        distributions=trial.distributions,
        system_attrs={**system, "retry_history": history,
                      "failed_trial": history[0]}))


@functools.cache
def code_identity() -> dict:
    """This code's version, a digest of xnorflow's own source files and the versions of the
    libraries that make a result."""
    from importlib.metadata import PackageNotFoundError, version

    from .. import __version__

    root = Path(__file__).resolve().parents[1]
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] in ("tests", "benchmarks", "notebooks", "build", "docs") or \
                relative.parts[0].startswith("."):
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    libraries = {}
    for name in ("torch", "brevitas", "qonnx", "finn-plus", "optuna"):
        try:
            libraries[name] = version(name)
        except PackageNotFoundError:
            libraries[name] = None
    return {"xnorflow": __version__, "source": digest.hexdigest()[:16], **libraries}


def differences(stored: dict, given: dict, prefix: str = "") -> list[str]:
    """Readable differences between two settings dictionaries."""
    found = []
    for key in sorted(set(stored) | set(given)):
        a, b = stored.get(key), given.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found += differences(a, b, f"{prefix}{key}.")
        elif a != b:
            found.append(f"{prefix}{key}: the study has {a!r}, this command {b!r}")
    return found


def open_study(storage, name: str, settings: dict | None, worker: bool):
    """Create the study ``name`` with ``settings``, or open it: a study of other settings or
    other code is refused with the differences. ``worker``: join an existing study and take
    its settings (``settings`` is then None). Returns (study, settings)."""
    import optuna

    exists = name in optuna.get_all_study_names(storage)
    if worker and not exists:
        raise StudyError(f"there is no study {name!r} in this storage to join as a --worker; "
                         f"start it first with `xnorflow explore` without --worker (same "
                         f"--storage and --study).")
    if not exists:
        try:
            study = optuna.create_study(storage=storage, study_name=name,
                                        directions=list(DIRECTIONS))
        except optuna.exceptions.DuplicatedStudyError:   # another command created it just now
            return open_study(storage, name, settings, worker)
        study.set_user_attr(SETTINGS_ATTR, settings)
        study.set_user_attr(CODE_ATTR, code_identity())
        return study, settings
    study = optuna.load_study(study_name=name, storage=storage)
    stored = study.user_attrs.get(SETTINGS_ATTR)
    if stored is None:
        raise StudyError(f"the study {name!r} was not made by xnorflow explore (it has no "
                         f"{SETTINGS_ATTR}); choose another --study name.")
    code = differences(study.user_attrs.get(CODE_ATTR, {}), code_identity())
    if code:
        raise StudyError(f"the study {name!r} was started by other code, whose results this "
                         f"code would not reproduce: " + "; ".join(code)
                         + ". Run its workers from the same xnorflow and libraries, or start "
                           "a new --study.")
    if worker:
        return study, stored
    changed = differences(stored, settings)
    if changed:
        raise UsageError(f"the study {name!r} was created with other settings: "
                         + "; ".join(changed) + ". Give the same options to continue it, "
                         "--worker to join it with its own settings, or a new --study name.")
    return study, stored


def make_sampler(settings: dict, seed: int | None, grid: list[str] | None = None):
    """The study's sampler; NSGA-II and TPE rank the infeasible trials (their constraints,
    set by :func:`xnorflow.explore.trials.objective`, above 0) after the feasible ones."""
    import optuna

    kind = settings["sampler"]
    if kind == "grid":
        return optuna.samplers.GridSampler({"candidate": grid}, seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=settings["population"])
    return optuna.samplers.NSGAIISampler(population_size=settings["population"], seed=seed)


def quiet_optuna() -> None:
    """xnorflow reports each trial itself: Optuna's log lines (a trial's traceback among them)
    and its notes on experimental features stay out of the user's terminal."""
    import warnings

    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    optuna.logging.disable_propagation()
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
