"""Atomic checkpoints: write to a temporary file in the same folder, fsync, then rename.

A crash or a kill at any moment leaves either the previous checkpoint or the new one on disk,
never a half-written file (``os.replace`` is atomic within one file system).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not belong to the run that wants to resume it."""


def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no checkpoint to resume from. Start without --resume, or "
                              f"point --out at the folder of the interrupted run.")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as err:  # torch raises several unrelated types for a damaged file
        raise CheckpointError(f"{path}: checkpoint is unreadable ({err}). It was not written by "
                              f"xnorflow or the disk copy is damaged.") from err


def check_same_run(saved: dict[str, Any], current: dict[str, Any], may_differ: tuple[str, ...],
                   path: str | Path) -> None:
    """Refuse to resume a checkpoint whose settings differ from the current run's (except the
    keys in ``may_differ``, which do not change the result)."""
    clashes = {k: (saved.get(k), v) for k, v in current.items()
               if k not in may_differ and saved.get(k) != v}
    if clashes:
        detail = ", ".join(f"{k}: checkpoint {a!r} vs now {b!r}" for k, (a, b) in clashes.items())
        raise CheckpointError(f"{path}: belongs to a different run ({detail}). Use the original "
                              f"settings or a new --out.")
