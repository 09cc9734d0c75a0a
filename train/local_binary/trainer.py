"""Training loop of the local binary trainer: epochs, logs, plots, atomic checkpoints, resume.

The state is the integer hidden weights (plus the fixed local classifiers). Everything random
is a function of (seed, epoch, step): the epoch's sample order, the reinforcement draws (see
:mod:`.model`). The reinforcement threshold of an epoch depends on the previous epoch's
training accuracy, which the checkpoint's history holds. A resumed run therefore continues
bit-identically.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

from ..checkpoint import CheckpointError, check_same_run, load_checkpoint, save_atomic
from ..data import Dataset, DatasetError, Split, holdout_split, load_dataset
from . import reference
from .model import (BMLPShape, BMLPState, default_group_sizes, init_state, predict,
                    reinforcement_threshold)
from .packed import PackedBMLP, pack_inputs

ALGO = "local-binary"
ENGINES = ("packed", "reference")
CHECKPOINT = "checkpoint.pt"
METRICS_CSV = "metrics.csv"
CURVES_PNG = "curves.png"
SUMMARY_JSON = "summary.json"
MODEL_FILE = "model.pt"


@dataclass
class LocalBinaryConfig:
    """Defaults are the paper's (Colombo et al.): two hidden layers of 525, batch 100, 50 epochs,
    r = 0.25, p_r = 0.5, gamma from :data:`.model.PAPER_GROUP_SIZES`, inputs binarized at the
    global pixel median."""

    widths: list[int] = field(default_factory=lambda: [525, 525])
    group_sizes: list[int] | None = None   # None: the paper's gamma for each width
    margin_ratio: float = 0.25
    reinforcement: float = 0.5             # p_r
    weight_bits: int = 16
    dataset: str = "digits"
    data_dir: str | None = None
    binarization: str = "median"
    holdout: int = 0                       # training samples held out as validation (paper: 10000)
    epochs: int = 50
    batch_size: int = 100
    seed: int = 0
    engine: str = "packed"

    # These may differ between the interrupted and the resumed run without changing the result.
    RESUMABLE_CHANGES = ("epochs", "data_dir", "engine")

    def shape(self, in_features: int, num_classes: int) -> BMLPShape:
        widths = tuple(self.widths)
        groups = tuple(self.group_sizes) if self.group_sizes else default_group_sizes(widths)
        return BMLPShape(in_features, widths, num_classes, groups, self.margin_ratio,
                         self.weight_bits)


@dataclass
class LocalEpochRecord:
    epoch: int
    train_acc: float           # predictions of the network during the epoch, before each update
    val_acc: float | None      # held-out part of the training split (the paper's "test")
    test_acc: float
    seconds: float
    wrong_fraction: list[float]     # per layer: share of samples with a local error
    updates_per_sample: list[float]  # per layer: marked neurons per training sample
    reinforcement_p: list[float]     # per layer: per-weight reinforcement probability
    max_abs_weight: list[int]        # per layer, after the epoch


def prepare_data(config: LocalBinaryConfig, dataset: Dataset | None = None
                 ) -> tuple[Dataset, Split | None]:
    """The binarized dataset and, with ``holdout``, the validation part cut from its training
    split (seeded by the run's seed, like the paper's shuffled 50k/10k re-split)."""
    dataset = dataset or load_dataset(config.dataset, config.data_dir, config.binarization)
    for split_name, split in (("train", dataset.train), ("test", dataset.test)):
        if not np.isin(split.images, (-1.0, 1.0)).all():
            raise DatasetError(f"{split_name} split of {dataset.name}: the local binary trainer "
                               f"needs +-1 inputs; choose --binarization median, threshold or "
                               f"centered-sign (not none)")
    if not config.holdout:
        return dataset, None
    train, val = holdout_split(dataset.train, config.holdout, config.seed)
    return Dataset(dataset.name, train, dataset.test, dataset.image_shape,
                   dataset.num_classes), val


class LocalBinaryTrainer:
    """Trains ``config`` into ``out_dir``; call :meth:`resume` first to continue a run."""

    def __init__(self, config: LocalBinaryConfig, out_dir: str | Path,
                 dataset: Dataset | None = None, show_progress: bool = True, verbose: bool = True):
        if config.engine not in ENGINES:
            raise ValueError(f"unknown engine {config.engine!r}; choose one of {ENGINES}")
        if config.batch_size < 1 or config.epochs < 0:
            raise ValueError("batch size must be >= 1 and epochs >= 0")
        self.config = config
        self.out_dir = Path(out_dir)
        self.show_progress = show_progress
        self.verbose = verbose
        self.dataset, self.val = prepare_data(config, dataset)
        self.shape = config.shape(self.dataset.in_features, self.dataset.num_classes)
        self.state = init_state(self.shape, config.seed)
        self.history: list[LocalEpochRecord] = []
        self.x_train = self.dataset.train.images.astype(np.int8)
        self.y_train = self.dataset.train.labels.astype(np.int64)
        self.bits_train = pack_inputs(self.x_train)
        self.steps_per_epoch = math.ceil(len(self.y_train) / config.batch_size)

    # ------------------------------------------------------------------ checkpoints
    def _model_record(self) -> dict:
        return {"algo": ALGO, "config": asdict(self.config), "bmlp": self.state.as_record(),
                "in_features": self.dataset.in_features,
                "num_classes": self.dataset.num_classes}

    def resume(self) -> None:
        saved = load_checkpoint(self.out_dir / CHECKPOINT)
        if saved.get("algo") != ALGO:
            raise CheckpointError(f"{self.out_dir / CHECKPOINT}: not a {ALGO} run (algo "
                                  f"{saved.get('algo', 'proxconnect')!r}); resume it with that "
                                  f"--algo or use a new --out")
        check_same_run(saved["config"], asdict(self.config), LocalBinaryConfig.RESUMABLE_CHANGES,
                       self.out_dir / CHECKPOINT)
        self.state = BMLPState.from_record(saved["bmlp"])
        self.history = [LocalEpochRecord(**r) for r in saved["history"]]

    # ------------------------------------------------------------------ training
    def _train_epoch(self, epoch: int) -> tuple[float, list[float], list[float], list[float]]:
        cfg = self.config
        previous_acc = self.history[-1].train_acc if self.history else 0.0
        p = [reinforcement_threshold(cfg.reinforcement, previous_acc, f)
             for f in self.shape.fan_ins]
        order = np.random.default_rng([cfg.seed, epoch]).permutation(len(self.y_train))
        engine = PackedBMLP(self.state) if cfg.engine == "packed" else None
        correct = 0
        layers = len(self.shape.widths)
        wrong, updates = np.zeros(layers), np.zeros(layers)
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   leave=False, disable=not self.show_progress, mininterval=1.0)
        for i in bar:
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            step = epoch * self.steps_per_epoch + i
            if engine is not None:
                result = engine.train_step(self.x_train[idx], self.bits_train[idx],
                                           self.y_train[idx], p, step, cfg.seed)
            else:
                result = reference.train_step(self.state, self.x_train[idx], self.y_train[idx],
                                              p, step, cfg.seed)
            correct += int((result.predictions == self.y_train[idx]).sum())
            wrong += result.wrong_samples
            updates += result.updated_neurons
            if i % 50 == 0:
                bar.set_postfix(acc=f"{correct / ((i + 1) * cfg.batch_size):.4f}")
        if engine is not None:
            self.state = engine.to_state()
        n = len(self.y_train)
        probabilities = [t / 2 ** 16 for t in p]
        return correct / n, list(wrong / n), list(updates / n), probabilities

    def accuracy(self, split: Split) -> float:
        return float((predict(self.state, split.images) == split.labels).mean())

    def fit(self, stop_after: int | None = None) -> list[LocalEpochRecord]:
        """Train to ``epochs``, or only up to epoch ``stop_after`` (``resume`` continues)."""
        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for epoch in range(len(self.history), min(cfg.epochs, stop_after or cfg.epochs)):
            start = time.perf_counter()
            train_acc, wrong, updates, p = self._train_epoch(epoch)
            record = LocalEpochRecord(
                epoch + 1, train_acc, self.accuracy(self.val) if self.val else None,
                self.accuracy(self.dataset.test), time.perf_counter() - start, wrong, updates, p,
                [int(np.abs(w).max()) for w in self.state.weights])
            self.history.append(record)
            save_atomic({**self._model_record(), "epoch": len(self.history),
                         "history": [asdict(r) for r in self.history]}, self.out_dir / CHECKPOINT)
            self._write_logs()
            if self.verbose:
                val = f"val {record.val_acc:.4f}  " if record.val_acc is not None else ""
                tqdm.write(f"epoch {record.epoch:3d}/{cfg.epochs}  train {train_acc:.4f}  {val}"
                           f"test {record.test_acc:.4f}  max|W| {record.max_abs_weight}  "
                           f"({record.seconds:.1f} s)")
        self._write_final()
        return self.history

    # ------------------------------------------------------------------ outputs
    def _write_logs(self) -> None:
        layers = len(self.shape.widths)
        per_layer = ("wrong_fraction", "updates_per_sample", "reinforcement_p", "max_abs_weight")
        columns = (["epoch", "train_acc", "val_acc", "test_acc", "seconds"]
                   + [f"{name}_l{k + 1}" for name in per_layer for k in range(layers)])
        with open(self.out_dir / METRICS_CSV, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(columns)
            for r in self.history:
                writer.writerow([r.epoch, r.train_acc, r.val_acc, r.test_acc, r.seconds]
                                + [v for name in per_layer for v in getattr(r, name)])
        plot_local_curves(self.history, self.out_dir / CURVES_PNG, self.shape.weight_limit,
                          title=f"local binary BMLP {'-'.join(map(str, self.shape.widths))}, "
                                f"{self.dataset.name}")

    def _write_final(self) -> None:
        save_atomic(self._model_record(), self.out_dir / MODEL_FILE)
        last = self.history[-1] if self.history else None
        summary = {"algo": ALGO, "config": asdict(self.config),
                   "shape": asdict(self.shape), "epochs_trained": len(self.history),
                   "final_train_acc": last.train_acc if last else None,
                   "final_val_acc": last.val_acc if last else None,
                   "final_test_acc": last.test_acc if last else None,
                   "max_abs_weight": last.max_abs_weight if last else None,
                   "weight_limit": self.shape.weight_limit,
                   "total_seconds": sum(r.seconds for r in self.history)}
        (self.out_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2))


def plot_local_curves(history: list[LocalEpochRecord], path: Path, weight_limit: int,
                      title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in history]
    fig, (ax_acc, ax_err, ax_w) = plt.subplots(1, 3, figsize=(14, 4))
    ax_acc.plot(epochs, [100 * r.train_acc for r in history], label="train (during epoch)")
    if history and history[0].val_acc is not None:
        ax_acc.plot(epochs, [100 * r.val_acc for r in history], label="validation (held out)")
    ax_acc.plot(epochs, [100 * r.test_acc for r in history], label="test")
    ax_acc.set(xlabel="epoch", ylabel="accuracy [%]", title="accuracy")
    layers = len(history[0].wrong_fraction) if history else 0
    for k in range(layers):
        ax_err.plot(epochs, [r.wrong_fraction[k] for r in history], label=f"layer {k + 1}")
        ax_w.plot(epochs, [r.max_abs_weight[k] for r in history], label=f"layer {k + 1}")
    ax_err.set(xlabel="epoch", ylabel="fraction of samples", title="local errors (wrong or low margin)")
    ax_w.axhline(weight_limit, color="grey", linestyle="--", label="saturation")
    ax_w.set(xlabel="epoch", ylabel="max |W|", title="hidden weights", yscale="log")
    for ax in (ax_acc, ax_err, ax_w):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


__all__ = ["LocalBinaryConfig", "LocalBinaryTrainer", "LocalEpochRecord", "ALGO"]
