"""The local binary trainer on the shared epoch loop (:mod:`xnorflow.train.loop`).

The state is the integer hidden weights (plus the fixed local classifiers). Everything random
is a function of (seed, epoch, step): the epoch's sample order (:func:`epoch_order`, which the
HLS C simulation replays too) and the reinforcement draws (see :mod:`.model`). The reinforcement
threshold of an epoch depends on the previous epoch's training accuracy, which the checkpoint's
history holds. A resumed run therefore continues bit-identically, at any thread count and with
either engine.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np

from ..configs import LocalBinaryConfig
from ..data import Dataset, DatasetError, Split, holdout_split
from ..loop import EpochLoop
from . import reference
from .model import BMLPState, init_state, predict, reinforcement_threshold
from .packed import PackedBMLP, pack_inputs


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


def epoch_order(seed: int, epoch: int, samples: int) -> np.ndarray:
    """The order in which epoch ``epoch`` visits the training samples (trainer and C sim)."""
    return np.random.default_rng([seed, epoch]).permutation(samples)


def epoch_thresholds(p_r: float, previous_train_acc: float, fan_ins) -> list[int]:
    """The 16-bit reinforcement thresholds of one epoch, one per layer."""
    return [reinforcement_threshold(p_r, previous_train_acc, f) for f in fan_ins]


def prepare_data(config: LocalBinaryConfig, dataset: Dataset) -> tuple[Dataset, Split | None]:
    """The bipolar dataset and, with ``holdout``, the validation part cut from its training
    split (seeded by the run's seed, like the paper's shuffled 50k/10k re-split)."""
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


def bmlp_tensors(state: BMLPState) -> dict:
    """The integer state as a record of tensors (records hold no numpy objects)."""
    import torch

    return {"shape": asdict(state.shape),
            "weights": [torch.from_numpy(np.ascontiguousarray(w)) for w in state.weights],
            "classifiers": [torch.from_numpy(np.ascontiguousarray(b)) for b in state.classifiers]}


class LocalBinaryTrainer(EpochLoop):
    """Trains ``config`` into ``out_dir`` (see :class:`xnorflow.train.loop.EpochLoop`)."""

    config: LocalBinaryConfig
    record_class = LocalEpochRecord

    def setup(self) -> None:
        cfg = self.config
        self.dataset, self.val = prepare_data(cfg, self.dataset)
        self.shape = cfg.shape(self.dataset.in_features, self.dataset.num_classes)
        self.state = init_state(self.shape, cfg.seed)
        self.x_train = self.dataset.train.images.astype(np.int8)
        self.y_train = self.dataset.train.labels.astype(np.int64)
        self.bits_train = pack_inputs(self.x_train)
        self.steps_per_epoch = -(-len(self.y_train) // cfg.batch_size)

    # ------------------------------------------------------------------ records
    def training_state(self) -> dict:
        return {"bmlp": bmlp_tensors(self.state)}

    def restore_training_state(self, saved: dict) -> None:
        self.state = BMLPState.from_record(saved["bmlp"])

    def model_state(self) -> dict:
        return {"bmlp": bmlp_tensors(self.state)}

    @classmethod
    def model_from_record(cls, record: dict):
        from .brevitas_model import to_brevitas

        return to_brevitas(BMLPState.from_record(record["bmlp"]))

    # ------------------------------------------------------------------ training
    def train_epoch(self, epoch: int) -> LocalEpochRecord:
        cfg = self.config
        start = time.perf_counter()
        previous_acc = self.history[-1].train_acc if self.history else 0.0
        p = epoch_thresholds(cfg.reinforcement, previous_acc, self.shape.fan_ins)
        order = epoch_order(cfg.seed, epoch, len(self.y_train))
        engine = PackedBMLP(self.state) if cfg.engine == "packed" else None
        correct = 0
        layers = len(self.shape.widths)
        wrong, updates = np.zeros(layers), np.zeros(layers)
        bar = self.progress_bar(self.steps_per_epoch, epoch)
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
        return LocalEpochRecord(
            epoch + 1, correct / n, self.accuracy(self.val) if self.val else None,
            self.accuracy(self.dataset.test), time.perf_counter() - start,
            (wrong / n).tolist(), (updates / n).tolist(), [t / 2 ** 16 for t in p],
            [int(np.abs(w).max()) for w in self.state.weights])

    def accuracy(self, split: Split) -> float:
        return float((predict(self.state, split.images) == split.labels).mean())

    # ------------------------------------------------------------------ outputs
    def epoch_line(self, r: LocalEpochRecord) -> str:
        val = f"val {r.val_acc:.4f}  " if r.val_acc is not None else ""
        return (f"epoch {r.epoch:3d}/{self.config.epochs}  train {r.train_acc:.4f}  {val}"
                f"test {r.test_acc:.4f}  max|W| {r.max_abs_weight}  ({r.seconds:.1f} s)")

    def plot(self, file) -> None:
        plot_local_curves(self.history, file, self.shape.weight_limit,
                          title=f"local binary BMLP {'-'.join(map(str, self.shape.widths))}, "
                                f"{self.dataset.name}")

    def final_summary(self) -> dict:
        last = self.history[-1]
        return {"shape": asdict(self.shape), "final_train_acc": last.train_acc,
                "final_val_acc": last.val_acc, "max_abs_weight": last.max_abs_weight,
                "weight_limit": self.shape.weight_limit}


def plot_local_curves(history: list[LocalEpochRecord], file, weight_limit: int,
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
    ax_err.set(xlabel="epoch", ylabel="fraction of samples",
               title="local errors (wrong or low margin)")
    ax_w.axhline(weight_limit, color="grey", linestyle="--", label="saturation")
    ax_w.set(xlabel="epoch", ylabel="max |W|", title="hidden weights", yscale="log")
    for ax in (ax_acc, ax_err, ax_w):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(file, format="png", dpi=100)
    plt.close(fig)


__all__ = ["LocalBinaryConfig", "LocalBinaryTrainer", "LocalEpochRecord", "epoch_order"]
