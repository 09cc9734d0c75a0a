"""Run records: the files of a run folder, and the one way to save, load and resume a run of any
trainer.

A run folder (``xnorflow train --out RUN``) holds ``checkpoint.pt`` (after every epoch),
``metrics.csv``, ``curves.png``, ``summary.json`` and, when the run has finished, ``model.pt``.
Both ``.pt`` files are *records*: plain dictionaries of tensors, numbers and strings that carry
``format``, ``content`` (``checkpoint`` or ``model``), the trainer's ``algo`` and its
configuration. They are loaded with ``torch.load(weights_only=True)``, so a foreign file cannot
run code, and anything that is not a record gets a message saying what it is instead.

The trainer of a record is found through :data:`~xnorflow.train.configs.RUN_KINDS`; its class
rebuilds the model (``model_from_record``). Export, build and hls open runs only through
:func:`open_run`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from ..errors import XnorflowError
from ..options import option_name
from ..outputs import OwnedFolder, atomic_file, check_folder
from .configs import RUN_KINDS, RunConfig
from .distributed import resume_command

CHECKPOINT = "checkpoint.pt"
MODEL_FILE = "model.pt"
METRICS_CSV = "metrics.csv"
CURVES_PNG = "curves.png"
SUMMARY_JSON = "summary.json"
FOLDER_KIND = "run"          # the marker kind of a run folder (see xnorflow.outputs)
STAGE = "train"              # the stage that writes a run folder's entries
RUN_OUTPUTS = (CHECKPOINT, METRICS_CSV, CURVES_PNG, SUMMARY_JSON, MODEL_FILE)

RECORD_FORMAT = "xnorflow-run-record"
RECORD_VERSION = 1


class RunRecordError(XnorflowError):
    """A run record is missing, foreign, damaged, or does not belong to the run at hand."""


class ResumeRefused(RunRecordError):
    """Options given with --resume that the run does not have or that would change its
    result: a usage error (exit code 2, like any other bad option)."""

    exit_code = 2


# --------------------------------------------------------------------------- saving, loading
def new_record(content: str, config: RunConfig, image_shape: tuple[int, ...],
               num_classes: int, **payload: Any) -> dict:
    """A record of ``content`` ("checkpoint" or "model") for a run of ``config`` on images of
    ``image_shape`` (channels, rows, cols)."""
    return {"format": RECORD_FORMAT, "version": RECORD_VERSION, "content": content,
            "algo": config.algo, "config": asdict(config),
            "in_features": int(math.prod(image_shape)), "image_shape": list(image_shape),
            "num_classes": num_classes, **payload}


def image_shape_of(record: dict) -> tuple[int, ...]:
    """(channels, rows, cols) of the run's images; records made before convolutional models
    hold only the flat size, which is all an MLP needs."""
    return tuple(record.get("image_shape") or (record["in_features"],))


def on_cpu(value: Any) -> Any:
    """``value`` with every tensor (in dicts, lists, tuples) on the CPU."""
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: on_cpu(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(on_cpu(v) for v in value)
    return value


def save_record(record: dict, path: str | Path) -> None:
    """Atomically (temporary file, fsync, rename): a crash leaves the old record or the new.
    Tensors are saved from the CPU, so a record of a GPU run loads on any machine."""
    import torch

    with atomic_file(path) as f:
        torch.save(on_cpu(record), f)


def _describe_foreign(obj: Any) -> str:
    import torch

    if isinstance(obj, dict):
        keys = list(obj)
        if keys and all(isinstance(v, torch.Tensor) for v in obj.values()):
            return (f"a bare PyTorch state_dict ({len(keys)} tensors, e.g. {keys[0]!r}) without "
                    f"the configuration that says which network it belongs to")
        return f"a dictionary with keys {', '.join(map(repr, keys[:6]))}"
    return f"a {type(obj).__name__} object"


def load_record(path: str | Path, content: str | None = None) -> dict:
    """Load the record at ``path`` (refusing anything else with a message that says what the
    file is); ``content`` checks it is a ``checkpoint`` or a ``model`` record."""
    import re
    import warnings

    import torch

    path = Path(path)
    expected = ("the model.pt that `xnorflow train` writes into its --out folder when a run "
                "finishes" if content != "checkpoint" else
                "the checkpoint.pt that `xnorflow train` writes into its --out folder")
    if not path.is_file():
        raise RunRecordError(f"{path}: not found; xnorflow expects {expected}.")
    try:
        with warnings.catch_warnings():  # torch warns before refusing a TorchScript archive
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many unrelated types for a foreign or cut file
        found = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
        if found:
            raise RunRecordError(
                f"{path}: holds a {found.group(1)} object, not only tensors, numbers and "
                f"strings. xnorflow loads only plain records so that a file cannot run code; "
                f"this file was not written by this version of xnorflow. It expects "
                f"{expected}.") from None
        kind = ("a TorchScript archive" if "TorchScript" in str(err) else
                "not a PyTorch file, or a damaged (e.g. truncated) one")
        raise RunRecordError(f"{path}: {kind}. xnorflow expects {expected}.") from None
    if not isinstance(obj, dict) or obj.get("format") != RECORD_FORMAT:
        raise RunRecordError(f"{path}: {_describe_foreign(obj)}, not an xnorflow run record. "
                             f"xnorflow expects {expected}.")
    if obj.get("version", 0) > RECORD_VERSION:
        raise RunRecordError(f"{path}: written by a newer xnorflow (record version "
                             f"{obj['version']}, this one reads {RECORD_VERSION}); upgrade "
                             f"xnorflow.")
    missing = [k for k in ("content", "algo", "config", "in_features", "num_classes")
               if k not in obj]
    if missing or obj["algo"] not in RUN_KINDS:
        problem = (f"lacks {', '.join(missing)}" if missing else
                   f"names the unknown trainer {obj['algo']!r}")
        raise RunRecordError(f"{path}: damaged xnorflow run record ({problem}).")
    if content == "model" and obj["content"] == "checkpoint":
        model_file = path.parent / MODEL_FILE
        hint = (f"pass {path.parent} or {model_file}" if model_file.is_file() else
                f"{MODEL_FILE} is written when the run finishes; finish it with "
                f"`{resume_command(path.parent)}`")
        raise RunRecordError(f"{path}: a training checkpoint, not a trained model; {hint}.")
    if content is not None and obj["content"] != content:
        raise RunRecordError(f"{path}: a {obj['content']} record; xnorflow expects {expected}.")
    return obj


def config_of(record: dict) -> RunConfig:
    cls = RUN_KINDS[record["algo"]]
    known = {f.name for f in fields(cls)}
    saved = cls.recorded_options(record["config"])
    return cls(**{k: v for k, v in saved.items() if k in known})


# --------------------------------------------------------------------------- opening a run
@dataclass
class Run:
    """A finished run, opened from its ``model.pt``."""

    record: dict
    model_file: Path

    @property
    def config(self) -> RunConfig:
        return config_of(self.record)

    @property
    def algo(self) -> str:
        return self.record["algo"]

    @property
    def in_features(self) -> int:
        return int(self.record["in_features"])

    @property
    def image_shape(self) -> tuple[int, ...]:
        return image_shape_of(self.record)

    @property
    def folder(self) -> Path:
        return self.model_file.parent

    def describe(self) -> str:
        """One line naming the trained network, e.g. "SFC W1A1 (bnn++, mnist)"."""
        return self.config.describe()

    def model(self):
        """The trained network as an eval-mode Brevitas model."""
        try:
            return type(self.config).trainer_class().model_from_record(self.record)
        except XnorflowError:   # says itself what is wrong; the record is sound
            raise
        except (KeyError, RuntimeError, ValueError, TypeError) as err:
            raise RunRecordError(f"{self.model_file}: damaged xnorflow run record: the model "
                                 f"cannot be rebuilt from it ({str(err).splitlines()[0]}).")

    def inputs(self) -> tuple[Path, ...]:
        """Files of the run that a later stage must never write over."""
        return tuple(self.folder / name for name in (CHECKPOINT, MODEL_FILE))


def open_run(path: str | Path) -> Run:
    """``path`` is a run folder of `xnorflow train` or its ``model.pt``."""
    path = Path(path)
    if path.is_dir():
        model_file = path / MODEL_FILE
        if not model_file.is_file():
            hint = (f" It holds {CHECKPOINT}: the run has not finished; finish it with "
                    f"`{resume_command(path)}`." if (path / CHECKPOINT).is_file()
                    else "")
            raise RunRecordError(f"{path}: no trained model ({MODEL_FILE}); pass the --out "
                                 f"folder of a finished `xnorflow train` run or its "
                                 f"{MODEL_FILE}.{hint}")
    else:
        model_file = path
    return Run(load_record(model_file, content="model"), model_file)


def check_run_folder(out_dir: str | Path) -> OwnedFolder | None:
    """Refuse now, before any epoch, a run folder that training could not write to its end:
    one of its outputs there is the user's (a ``summary.json`` of their own would otherwise be
    found only after the last epoch)."""
    folder = check_folder(out_dir, FOLDER_KIND)
    if folder is not None:
        folder.check_targets(*RUN_OUTPUTS, stage=STAGE)
    return folder


# --------------------------------------------------------------------------- resuming
def resume_changes(saved: RunConfig, requested: dict[str, Any]) -> dict[str, Any]:
    """The options in ``requested`` (name -> value; None = not given) that differ from the
    saved run's; refuses those that would change the result, naming each difference."""
    known = {f.name for f in fields(saved)} | {"algo"}
    foreign = [k for k, v in requested.items() if v is not None and k not in known]
    if foreign:
        raise ResumeRefused(f"{', '.join(map(option_name, foreign))}: not an option of "
                             f"{saved.algo} runs; the run to resume was trained with --algo "
                             f"{saved.algo}.")
    changes = {k: v for k, v in requested.items()
               if v is not None and getattr(saved, k) != v}
    refused = [k for k in changes if k not in saved.RESUMABLE_CHANGES]
    if refused:
        reasons = getattr(saved, "RESUME_REFUSALS", {})
        lines = [f"{option_name(k)}: the run has {getattr(saved, k)!r}, now {changes[k]!r}"
                 + (f" ({reasons[k]})" if k in reasons else "") for k in refused]
        allowed = ", ".join(option_name(k) for k in saved.RESUMABLE_CHANGES)
        raise ResumeRefused(
            "resume continues a run with its own settings; these differ and would change the "
            "result:\n  " + "\n  ".join(lines) + f"\nOn --resume only {allowed} may change. "
            f"Drop the options, or start a new run with another --out.")
    return changes


def resumed_config(saved_record: dict, requested: dict[str, Any]) -> RunConfig:
    saved = config_of(saved_record)
    return replace(saved, **resume_changes(saved, requested))
