"""The epoch loop every trainer shares: run folder, per-epoch atomic checkpoint, metrics.csv,
curves.png, summary.json, model.pt, resume.

A trainer subclasses :class:`EpochLoop` and supplies what differs: how one epoch trains
(:meth:`train_epoch`), what its checkpoint and model hold, its plot and summary. Reproducibility is
by construction, not by saved RNG state: everything random in epoch ``e`` is seeded from
``(seed, e)``, so a run resumed from the checkpoint of epoch ``e`` continues exactly as the
uninterrupted run would, at the recorded thread count.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, ClassVar

from .. import interrupts
from ..errors import UsageError
from ..outputs import OwnedFolder, atomic_file, claim_folder, holding, write_text
from ..progress import note, progress_bar
from . import distributed
from .configs import RunConfig
from .data import Dataset, check_dataset, fingerprint, load_dataset
from .runs import (
    CHECKPOINT,
    CURVES_PNG,
    FOLDER_KIND,
    METRICS_CSV,
    MODEL_FILE,
    RUN_OUTPUTS,
    STAGE,
    SUMMARY_JSON,
    RunRecordError,
    config_of,
    load_record,
    new_record,
    resume_changes,
    save_record,
)


@contextmanager
def cpu_threads(count: int):
    """Use ``count`` threads for torch's float math, NumPy's BLAS and numba (where a trainer
    uses them) inside the block. (An unbounded BLAS pool on a busy machine spins its threads
    against the other processes: the local binary reference step ran 19x slower beside three
    training runs.)"""
    import torch
    from threadpoolctl import threadpool_limits

    numba = sys.modules.get("numba")
    before = torch.get_num_threads(), numba.get_num_threads() if numba else 0
    torch.set_num_threads(count)
    if numba:
        numba.set_num_threads(min(count, numba.config.NUMBA_NUM_THREADS))
    try:
        with threadpool_limits(limits=count, user_api="blas"):
            yield
    finally:
        torch.set_num_threads(before[0])
        if numba:
            numba.set_num_threads(before[1])


def flat_row(record: Any) -> dict:
    """One metrics.csv row: scalars as they are, lists per layer (``name_l1``...), dicts by key."""
    row: dict = {}
    for key, value in asdict(record).items():
        if isinstance(value, dict):
            row.update({k: value[k] for k in sorted(value)})
        elif isinstance(value, list):
            row.update({f"{key}_l{i + 1}": v for i, v in enumerate(value)})
        else:
            row[key] = value
    return row


class EpochLoop:
    """Trains ``config`` into the run folder ``out_dir``. Call :meth:`resume` first to continue
    the run whose checkpoint is there (or use :func:`xnorflow.stages.train.resume_run`)."""

    record_class: ClassVar[type]      # one epoch's metrics (a dataclass with epoch, test_acc)
    distributed_training: ClassVar[bool] = True   # may run as several processes (torchrun)

    def __init__(self, config: RunConfig, out_dir: str | Path, dataset: Dataset | None = None,
                 show_progress: bool = True, verbose: bool = True):
        self.ranks = distributed.current()
        if self.ranks.distributed and not self.distributed_training:
            raise UsageError(f"--algo {config.algo} trains in one process (its engine is a "
                             f"bit-packed CPU loop); start it without torchrun or --nproc.")
        self.device = None          # the torch.device a trainer's setup chooses (None: CPU)
        self.threads_given = bool(config.threads)  # 0: adopt a resumed run's recorded count
        if not config.threads:
            import torch
            config = replace(config, threads=torch.get_num_threads())
        self.config = config
        self.out_dir = Path(out_dir)
        self.show_progress = show_progress
        self.verbose = verbose
        if dataset is None:
            dataset = load_dataset(config.dataset, config.data_dir, config.binarization)
        else:
            check_dataset(dataset)
        self.dataset = dataset
        self.data_fingerprint = fingerprint(dataset)
        self.history: list = []
        with cpu_threads(config.threads):
            self.setup()

    # ---------------------------------------------------------------- what a trainer supplies
    def setup(self) -> None:
        """Build the model/state from the config and ``self.dataset`` (seeded)."""
        raise NotImplementedError

    def train_epoch(self, epoch: int):
        """Train epoch ``epoch`` (0-based) and return its :attr:`record_class` entry."""
        raise NotImplementedError

    def training_state(self) -> dict:
        """What the checkpoint needs beyond config and history (weights, optimizer)."""
        raise NotImplementedError

    def restore_training_state(self, saved: dict) -> None:
        raise NotImplementedError

    def model_state(self) -> dict:
        """What model.pt holds beyond config and shapes: the network export and build take."""
        raise NotImplementedError

    @classmethod
    def model_from_record(cls, record: dict):
        """The eval-mode Brevitas model of a model.pt record."""
        raise NotImplementedError

    def plot(self, file) -> None:
        """Write curves.png (a PNG) into the open binary ``file``."""
        raise NotImplementedError

    def epoch_line(self, record) -> str:
        raise NotImplementedError

    def final_summary(self) -> dict:
        """Extra entries of summary.json, computed once after the last epoch."""
        return {}

    # ---------------------------------------------------------------- records
    def _record(self, content: str, **payload) -> dict:
        return new_record(content, self.config, self.dataset.image_shape,
                          self.dataset.num_classes, device=self.device_name,
                          processes=self.ranks.world, **payload)

    @property
    def device_name(self) -> str:
        return str(self.device or "cpu")

    def resume(self, saved: dict | None = None) -> None:
        """Continue the run in ``out_dir`` (``saved``: its checkpoint record, if already
        loaded). The checkpoint must belong to this configuration, up to the options that
        cannot change the result, and to the same data."""
        path = self.out_dir / CHECKPOINT
        saved = saved or load_record(path, content="checkpoint")
        if saved["algo"] != self.config.algo:
            raise RunRecordError(f"{path}: a {saved['algo']} run, not {self.config.algo}; "
                                 f"resume it with --algo {saved['algo']} or use a new --out.")
        recorded = config_of(saved)
        requested = asdict(self.config)
        if not self.threads_given:
            requested["threads"] = None
            self.config = replace(self.config, threads=recorded.threads)
        resume_changes(recorded, requested)
        if saved.get("data_fingerprint") != self.data_fingerprint:
            raise RunRecordError(
                f"{path}: the run was trained on other data than {self.config.dataset} at "
                f"{self.config.data_dir or 'its built-in location'} (binarized "
                f"{self.config.binarization}); a resumed run must see the same images. Point "
                f"--data-dir at the data the run started with.")
        with cpu_threads(self.config.threads):
            self.restore_training_state(saved)
        self.history = [self.record_class(**r) for r in saved["history"]]
        self._note_resume_changes(saved)

    def _note_resume_changes(self, saved: dict) -> None:
        """What continues differently from the run so far: another device or process count
        (allowed; the rest of the run then matches the uninterrupted one only up to float
        rounding). Every process must have read the same checkpoint."""
        epochs = self.ranks.sum([len(self.history)], self.device or "cpu").item()
        if epochs != len(self.history) * self.ranks.world:
            raise distributed.DistributedError(
                f"the processes of the run read different checkpoints from {self.out_dir}; "
                f"the run folder must be one folder every process (and machine) sees.")
        before = {"device": saved.get("device", "cpu"), "processes": saved.get("processes", 1)}
        now = {"device": self.device_name, "processes": self.ranks.world}
        changed = [f"{key} {before[key]} -> {now[key]}" for key in now if before[key] != now[key]]
        if changed and len(self.history) < self.config.epochs and self.ranks.is_main:
            # said before the rest of the run starts: it may run for days
            note(f"note: the run continues with {', '.join(changed)} from epoch "
                 f"{len(self.history)}; float sums differ between devices and process counts, "
                 f"so the rest of the run is not bit-identical to an uninterrupted one")

    def _save_checkpoint(self, folder: OwnedFolder) -> None:
        save_record(self._record("checkpoint", epoch=len(self.history),
                                 history=[asdict(r) for r in self.history],
                                 data_fingerprint=self.data_fingerprint,
                                 **self.training_state()),
                    folder.target(CHECKPOINT, STAGE))

    # ---------------------------------------------------------------- the loop
    def fit(self, stop_after: int | None = None) -> list:
        """Train to ``config.epochs``, or only up to epoch ``stop_after`` (to split a long run
        across jobs; :meth:`resume` continues it exactly)."""
        try:
            if not self.ranks.is_main:  # rank 0 writes the run folder for every process
                return self._fit(None, stop_after)
            created = not self.out_dir.exists()
            with holding():
                folder = claim_folder(self.out_dir, FOLDER_KIND)
                try:
                    folder.check_targets(*RUN_OUTPUTS, stage=STAGE)   # before the first epoch
                    return self._fit(folder, stop_after)
                except BaseException:
                    if created and not folder.entries():  # stopped before the first epoch
                        folder.abandon()
                    raise
        except Exception as err:
            if not distributed.broke(err):
                raise
            saved = (f"the last finished epoch is in {self.out_dir / CHECKPOINT}; continue "
                     f"with `{distributed.resume_command(self.out_dir)}`"
                     if (self.out_dir / CHECKPOINT).is_file() else "no epoch had finished")
            raise distributed.DistributedError(
                f"another process of the run stopped or became unreachable "
                f"({distributed.short_reason(err)}); {saved}.") from None

    def _fit(self, folder: OwnedFolder | None, stop_after: int | None) -> list:
        if folder and not self.history and (self.out_dir / CHECKPOINT).exists():
            raise RunRecordError(f"{self.out_dir} already holds a run; pass --resume to continue "
                                 f"it or choose another --out.")
        end = min(self.config.epochs, stop_after or self.config.epochs)
        with cpu_threads(self.config.threads):
            for epoch in range(len(self.history), end):
                self._check_interrupt()
                record = self.train_epoch(epoch)
                self._check_interrupt()  # an epoch whose Ctrl-C was swallowed is not saved
                self.history.append(record)
                if folder:
                    self._save_checkpoint(folder)
                    self._write_logs(folder)
                    if self.verbose:
                        note(self.epoch_line(record))
            if len(self.history) == self.config.epochs:
                final = self.final_summary()   # every process: it may evaluate in shares
                if folder:
                    self._write_final(folder, final)
        return self.history

    def _check_interrupt(self) -> None:
        """Raise KeyboardInterrupt after Ctrl-C; the processes of a distributed run agree
        first, so that all stop at the same point."""
        if self.ranks.any(interrupts.pending(), self.device or "cpu"):
            raise KeyboardInterrupt

    def progress_bar(self, steps: int, epoch: int):
        return progress_bar(range(steps), desc=f"epoch {epoch + 1}/{self.config.epochs}",
                            enabled=self.show_progress and self.ranks.is_main)

    # ---------------------------------------------------------------- outputs
    def _write_logs(self, folder: OwnedFolder) -> None:
        rows = [flat_row(r) for r in self.history]
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=list(rows[-1]), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        write_text(folder.target(METRICS_CSV, STAGE), text.getvalue())
        with atomic_file(folder.target(CURVES_PNG, STAGE)) as f:
            self.plot(f)

    def _write_final(self, folder: OwnedFolder, final: dict) -> None:
        save_record(self._record("model", data_fingerprint=self.data_fingerprint,
                                 **self.model_state()), folder.target(MODEL_FILE, STAGE))
        last = self.history[-1]
        summary = {"algo": self.config.algo, "config": asdict(self.config),
                   "epochs_trained": len(self.history), "final_test_acc": last.test_acc,
                   "best_test_acc": max(r.test_acc for r in self.history),
                   "total_seconds": sum(r.seconds for r in self.history),
                   "device": self.device_name, "processes": self.ranks.world, **final}
        write_text(folder.target(SUMMARY_JSON, STAGE), json.dumps(summary, indent=2))
