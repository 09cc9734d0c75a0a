"""Training loop for 1-bit Brevitas models: progress, logs, plots, atomic checkpoints, resume.

Reproducibility is by construction rather than by saved RNG state: the shuffling order and the
dropout RNG of epoch ``e`` are seeded from ``(seed, e)``, the learning rate and the quantizer
schedules are functions of the global step. A run resumed from the checkpoint of epoch ``e``
therefore continues bit-identically to the uninterrupted run.
"""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .brevitas_quant import clip_latent_weights, set_schedule_progress
from .checkpoint import CheckpointError, check_same_run, load_checkpoint, save_atomic
from .data import Dataset, DatasetError, load_dataset
from .models import build_model
from .quantizers import pair_for

CHECKPOINT = "checkpoint.pt"
METRICS_CSV = "metrics.csv"
CURVES_PNG = "curves.png"
SUMMARY_JSON = "summary.json"
MODEL_FILE = "model.pt"


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


@dataclass
class TrainConfig:
    model: str = "sfc"
    quantizer: str = "bnn"
    act_quantizer: str | None = None  # PC++ pair of the activations; None: same as quantizer
    dataset: str = "digits"
    data_dir: str | None = None
    binarization: str = "threshold"
    epochs: int = 10
    batch_size: int = 100
    lr: float = 5e-3          # Adam, cosine-annealed to 0 over the run
    weight_decay: float = 0.0
    dropout: float = 0.0
    seed: int = 0

    # These may differ between the interrupted and the resumed run without changing the result.
    RESUMABLE_CHANGES = ("epochs", "data_dir")


@dataclass
class EpochRecord:
    epoch: int
    train_loss: float
    train_acc: float
    test_loss: float
    test_acc: float
    lr: float
    seconds: float
    schedule: dict = field(default_factory=dict)


def check_finite(dataset: Dataset) -> None:
    """NaN/inf inputs would be binarized silently (sign(NaN) = -1); refuse them instead."""
    for split_name, split in (("train", dataset.train), ("test", dataset.test)):
        bad = ~np.isfinite(split.images).all(axis=1)
        if bad.any():
            raise DatasetError(f"{split_name} split of {dataset.name}: sample {int(bad.argmax())} "
                               f"has NaN/inf pixel values ({int(bad.sum())} such samples). Fix or "
                               f"drop them before training.")


def _seed_for(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of the deployed (eval-mode, sign-binarized) network."""
    model.eval()
    total_loss, correct = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(labels), batch_size):
            logits = model(images[start:start + batch_size])
            target = labels[start:start + batch_size]
            total_loss += nn.functional.cross_entropy(logits, target, reduction="sum").item()
            correct += (logits.argmax(1) == target).sum().item()
    return total_loss / len(labels), correct / len(labels)


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))


class Trainer:
    """Trains ``config`` into ``out_dir``; call :meth:`resume` first to continue the run whose
    checkpoint is in ``out_dir``."""

    def __init__(self, config: TrainConfig, out_dir: str | Path, dataset: Dataset | None = None,
                 show_progress: bool = True, verbose: bool = True):
        self.config = config
        self.out_dir = Path(out_dir)
        self.show_progress = show_progress
        self.verbose = verbose
        self.dataset = dataset or load_dataset(config.dataset, config.data_dir, config.binarization)
        check_finite(self.dataset)
        torch.manual_seed(config.seed)
        self.pair = pair_for(config.quantizer)
        self.model = self._build_model()
        self.optimizer = self._build_optimizer()
        self.history: list[EpochRecord] = []
        self.progress = 0.0
        self.x_train = torch.from_numpy(self.dataset.train.images)
        self.y_train = torch.from_numpy(self.dataset.train.labels)
        self.x_test = torch.from_numpy(self.dataset.test.images)
        self.y_test = torch.from_numpy(self.dataset.test.labels)
        self.steps_per_epoch = math.ceil(len(self.y_train) / config.batch_size)

    # ------------------------------------------------------------------ what a trainer varies
    def _build_model(self) -> nn.Module:
        return model_for(self.config, self.dataset.in_features, self.dataset.num_classes)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.config.lr,
                                weight_decay=self.config.weight_decay)

    def _lr(self, step: int, total_steps: int) -> float:
        return cosine_lr(self.config.lr, step, total_steps)

    def _after_step(self) -> None:
        clip_latent_weights(self.model)

    def _title(self) -> str:
        cfg = self.config
        act = "/" + cfg.act_quantizer if cfg.act_quantizer else ""
        return f"{cfg.model.upper()} W1A1, {cfg.quantizer}{act}, {self.dataset.name}"

    def _final_summary(self) -> dict:
        """Extra entries of summary.json (computed once, after the last epoch)."""
        return {}

    # ------------------------------------------------------------------ checkpoints
    def _state(self) -> dict:
        return {**self._model_record(), "epoch": len(self.history),
                "optimizer": self.optimizer.state_dict(),
                "history": [asdict(r) for r in self.history]}

    def _model_record(self) -> dict:
        """What :func:`load_trained` needs to rebuild the model: config, shapes, weights."""
        return {"config": asdict(self.config), "model": self.model.state_dict(),
                "in_features": self.dataset.in_features, "num_classes": self.dataset.num_classes}

    def resume(self) -> None:
        state = load_checkpoint(self.out_dir / CHECKPOINT)
        check_same_run(state["config"], asdict(self.config), TrainConfig.RESUMABLE_CHANGES,
                       self.out_dir / CHECKPOINT)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = [EpochRecord(**r) for r in state["history"]]

    # ------------------------------------------------------------------ training
    def _train_epoch(self, epoch: int) -> tuple[float, float, float]:
        cfg = self.config
        total_steps = cfg.epochs * self.steps_per_epoch
        torch.manual_seed(_seed_for(cfg.seed, epoch))  # dropout masks of this epoch
        order = torch.randperm(len(self.y_train),
                               generator=torch.Generator().manual_seed(_seed_for(cfg.seed, epoch)))
        self.model.train()
        loss_sum, correct, seen, lr = 0.0, 0, 0, cfg.lr
        bar = tqdm(range(self.steps_per_epoch), desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   leave=False, disable=not self.show_progress, mininterval=1.0)
        for i in bar:
            step = epoch * self.steps_per_epoch + i
            lr = self._lr(step, total_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.progress = step / max(total_steps - 1, 1)
            set_schedule_progress(self.model, self.progress)
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            logits = self.model(self.x_train[idx])
            loss = nn.functional.cross_entropy(logits, self.y_train[idx])
            if not torch.isfinite(loss):
                raise TrainingDiverged(
                    f"loss is {loss.item()} at epoch {epoch + 1}, step {i + 1}; stopped. The last "
                    f"good checkpoint ({self.out_dir / CHECKPOINT}, epoch {len(self.history)}) is "
                    f"kept. Lower --lr or check the input data for NaN/inf values.")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self._after_step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == self.y_train[idx]).sum().item()
            seen += len(idx)
            bar.set_postfix(loss=f"{loss_sum / seen:.4f}", acc=f"{correct / seen:.4f}")
        return loss_sum / seen, correct / seen, lr

    def fit(self, stop_after: int | None = None) -> list[EpochRecord]:
        """Train to the end of the schedule, or only up to epoch ``stop_after`` (to split a long
        run across jobs; ``resume`` continues it exactly)."""
        cfg = self.config
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for epoch in range(len(self.history), min(cfg.epochs, stop_after or cfg.epochs)):
            start = time.perf_counter()
            train_loss, train_acc, lr = self._train_epoch(epoch)
            test_loss, test_acc = evaluate(self.model, self.x_test, self.y_test)
            record = EpochRecord(epoch + 1, train_loss, train_acc, test_loss, test_acc, lr,
                                 time.perf_counter() - start, self.pair.schedule_values(self.progress))
            self.history.append(record)
            save_atomic(self._state(), self.out_dir / CHECKPOINT)
            self._write_logs()
            if self.verbose:
                tqdm.write(f"epoch {record.epoch:3d}/{cfg.epochs}  train loss {train_loss:.4f} "
                           f"acc {train_acc:.4f}  test loss {test_loss:.4f} acc {test_acc:.4f}  "
                           f"({record.seconds:.1f} s)")
        self._write_final()
        return self.history

    # ------------------------------------------------------------------ outputs
    def _write_logs(self) -> None:
        rows = [asdict(r) for r in self.history]
        with open(self.out_dir / METRICS_CSV, "w", newline="") as f:
            columns = [k for k in rows[0] if k != "schedule"] + sorted(rows[0]["schedule"])
            writer = csv.DictWriter(f, fieldnames=columns)
            writer.writeheader()
            for row in rows:
                writer.writerow({**{k: v for k, v in row.items() if k != "schedule"},
                                 **row["schedule"]})
        plot_curves(self.history, self.out_dir / CURVES_PNG, title=self._title())

    def _deployed_record(self) -> dict:
        """What goes into model.pt: the network that export and build take."""
        return self._model_record()

    def _write_final(self) -> None:
        self.model.eval()
        save_atomic(self._deployed_record(), self.out_dir / MODEL_FILE)
        last = self.history[-1] if self.history else None
        summary = {"config": asdict(self.config), "epochs_trained": len(self.history),
                   "final_test_acc": last.test_acc if last else None,
                   "best_test_acc": max((r.test_acc for r in self.history), default=None),
                   "total_seconds": sum(r.seconds for r in self.history),
                   **self._final_summary()}
        (self.out_dir / SUMMARY_JSON).write_text(json.dumps(summary, indent=2))


def plot_curves(history: list[EpochRecord], path: Path, title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [r.epoch for r in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(epochs, [r.train_loss for r in history], label="train")
    ax_loss.plot(epochs, [r.test_loss for r in history], label="test")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy", title="loss")
    ax_acc.plot(epochs, [100 * r.train_acc for r in history], label="train (training mode)")
    ax_acc.plot(epochs, [100 * r.test_acc for r in history], label="test (binary network)")
    ax_acc.set(xlabel="epoch", ylabel="accuracy [%]", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def model_for(config: TrainConfig, in_features: int, num_classes: int) -> nn.Module:
    return build_model(config.model, in_features, num_classes, config.quantizer, config.dropout,
                       config.act_quantizer)


def model_from_record(state: dict) -> nn.Module:
    """Rebuild the eval-mode Brevitas model from a ``model.pt``/``checkpoint.pt`` record of any
    trainer (the record's ``algo`` says which; records without one are ProxConnect++ runs)."""
    if state.get("algo") == "local-binary":
        from .local_binary.brevitas_model import to_brevitas
        from .local_binary.model import BMLPState
        return to_brevitas(BMLPState.from_record(state["bmlp"]))
    if state.get("algo") == "vispa":
        from .vispa import vispa_model_from_record
        return vispa_model_from_record(state)
    model = model_for(TrainConfig(**state["config"]), state["in_features"], state["num_classes"])
    model.load_state_dict(state["model"])
    return model.eval()


def describe_record(state: dict) -> str:
    """One line naming the trained network, for reports: e.g. "SFC W1A1 (bnn++, mnist)"."""
    config = state["config"]
    if state.get("algo") == "local-binary":
        widths = "-".join(map(str, config["widths"]))
        return f"BMLP {widths} W1A1 (local binary, {config['dataset']})"
    if state.get("algo") == "vispa":
        acts = "W1A1" if config["activations"] == "binary" else "W1A32"
        return f"{config['model'].upper()} {acts} (VISPA rank {config['rank']}, {config['dataset']})"
    return f"{config['model'].upper()} W1A1 ({config['quantizer']}, {config['dataset']})"


def load_run_record(path: str | Path) -> tuple[dict, Path]:
    """The ``model.pt`` record of a run folder of `xnorflow train` (or of the file itself)."""
    path = Path(path)
    model_file = path / MODEL_FILE if path.is_dir() else path
    if not model_file.is_file():
        raise CheckpointError(f"{model_file}: no trained model; pass the --out folder of a "
                              f"finished `xnorflow train` run or its {MODEL_FILE}")
    return load_checkpoint(model_file), model_file


def load_trained(path: str | Path) -> nn.Module:
    """Rebuild a trained model from ``model.pt`` (or a ``checkpoint.pt``) for export."""
    return model_from_record(load_checkpoint(path))


__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "evaluate", "load_trained"]
