"""The train stage: start a run, or resume one with the configuration its checkpoint records.

``xnorflow train`` is these two functions behind the argument parser; notebooks and scripts call
them the same way. Everything that can be checked before training starts is checked before
anything is written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..options import option_name
from ..train.configs import RunConfig
from ..train.runs import (
    CHECKPOINT,
    SUMMARY_JSON,
    RunRecordError,
    check_run_folder,
    load_record,
    resumed_config,
)


@dataclass
class TrainOutcome:
    out_dir: Path
    config: RunConfig
    history: list             # one record per epoch, the whole run
    resumed_from: int | None  # epochs already done when this call started (None: a new run)
    main_process: bool = True     # rank 0 of a distributed run (or the only process)

    @property
    def summary(self) -> dict:
        return json.loads((self.out_dir / SUMMARY_JSON).read_text())

    def lines(self) -> list[str]:
        """What the command prints when the run is done."""
        lines = []
        if self.resumed_from is not None:
            epochs = self.config.epochs
            lines.append(f"{self.out_dir} had finished all {epochs} epochs; nothing left to "
                         f"train" if self.resumed_from == epochs else
                         f"resumed {self.out_dir} at epoch {self.resumed_from} of {epochs}")
        return lines + self._result_lines()

    def _result_lines(self) -> list[str]:
        last = self.history[-1]
        best = max(self.history, key=lambda r: r.test_acc)
        lines = [f"done: final test accuracy {last.test_acc:.2%} (best {best.test_acc:.2%} at "
                 f"epoch {best.epoch}); outputs in {self.out_dir}"]
        for key, value in self.summary.items():
            if key.startswith("ensemble_"):
                lines.append(f"VISPA {key.replace('_', ' ')}: {value:.2%} (sampled networks, "
                             f"averaged logits; the deployed sign(m) network has "
                             f"{last.test_acc:.2%})")
        return lines


def new_run_config(options: dict, algo: str | None = None,
                   recipe: str | None = None) -> RunConfig:
    """The configuration of a new run from the options given (name -> value): a ``recipe``'s
    options first, the explicit ones winning; refused if an option belongs to another
    trainer."""
    from ..train.configs import RECIPES, RUN_KINDS

    preset = dict(RECIPES[recipe]) if recipe else {}
    recipe_algo = preset.pop("algo", "proxconnect")
    cls = RUN_KINDS[algo or recipe_algo]
    merged = {**preset, **options}
    foreign = [name for name in merged if name not in {f.name for f in cls.user_options()}]
    if foreign:
        owners = [c.algo for c in RUN_KINDS.values()
                  if foreign[0] in {f.name for f in c.user_options()}]
        raise UsageError(f"{', '.join(map(option_name, foreign))}: only for --algo "
                         f"{' or '.join(owners)}, not --algo {cls.algo}")
    return cls(**merged)


def train_run(config: RunConfig, out_dir: str | Path, progress: bool = True,
              verbose: bool = True) -> TrainOutcome:
    """Train ``config`` from scratch into the new (or empty) run folder ``out_dir``
    (``verbose``: a line per epoch when there is no progress bar)."""
    out_dir = Path(out_dir)
    check_run_folder(out_dir)
    if (out_dir / CHECKPOINT).exists():
        raise RunRecordError(f"{out_dir} already holds a run; pass --resume to continue it or "
                             f"choose another --out.")
    trainer = type(config).trainer_class()(config, out_dir, show_progress=progress,
                                           verbose=verbose)
    return _outcome(trainer, None)


def _outcome(trainer, resumed_from: int | None) -> TrainOutcome:
    history = trainer.fit()
    return TrainOutcome(trainer.out_dir, trainer.config, history, resumed_from,
                        trainer.ranks.is_main)


def resume_run(out_dir: str | Path, changes: dict | None = None,
               progress: bool = True, verbose: bool = True) -> TrainOutcome:
    """Continue the run in ``out_dir`` with the configuration its checkpoint records.

    ``changes`` (option name -> value, None = not given) may only alter what cannot change the
    result (``RESUMABLE_CHANGES`` of the run's configuration, e.g. a moved --data-dir); anything
    else is refused with the list of differences."""
    out_dir = Path(out_dir)
    check_run_folder(out_dir)
    if not (out_dir / CHECKPOINT).is_file():
        raise RunRecordError(f"{out_dir}: no {CHECKPOINT} to resume from. Start without --resume, "
                             f"or point --out at the folder of the interrupted run.")
    saved = load_record(out_dir / CHECKPOINT, content="checkpoint")
    config = resumed_config(saved, changes or {})
    if hasattr(config, "device") and (changes or {}).get("device") is None:
        from ..train.devices import recorded_device

        recorded_device(config.device, out_dir)
    trainer = type(config).trainer_class()(config, out_dir, show_progress=progress,
                                           verbose=verbose)
    trainer.resume(saved)
    return _outcome(trainer, len(trainer.history))
