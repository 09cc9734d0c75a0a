"""The ProxConnect++ trainer: a FINN-family Brevitas MLP trained with a forward/backward
quantizer pair, on the shared epoch loop (:mod:`.loop`).

The shuffling order and the dropout masks of epoch ``e`` are seeded from ``(seed, e)``; the
learning rate and the quantizer schedules are functions of the global step. A run resumed from
the checkpoint of epoch ``e`` therefore continues bit-identically to the uninterrupted run.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import XnorflowError
from .augment import random_affine, random_crop_flip, random_shift
from .brevitas_quant import clip_latent_weights, set_schedule_progress
from .configs import TrainConfig
from .data import SIGN_BINARIZATIONS
from .loop import EpochLoop
from .models import build_model, model_inputs
from .pairs import pair_for
from .runs import CHECKPOINT, config_of, image_shape_of


class TrainingDiverged(XnorflowError):
    """The loss became NaN or infinite; the last good checkpoint is left untouched."""


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


def model_for(config: TrainConfig, image_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return build_model(config.model, image_shape, num_classes, config.quantizer, config.dropout,
                       config.act_quantizer, config.head,
                       pixels="uint8" if config.binarization == "uint8" else "bipolar")


class Trainer(EpochLoop):
    """ProxConnect++ training of ``config`` into ``out_dir`` (see :class:`.loop.EpochLoop`)."""

    config: TrainConfig
    record_class = EpochRecord

    def setup(self) -> None:
        torch.manual_seed(self.config.seed)
        self.pair = pair_for(self.config.quantizer)
        self.model = self._build_model()
        self.optimizer = self._build_optimizer()
        self.progress = 0.0
        self.x_train = torch.from_numpy(model_inputs(self.model, self.dataset.train.images))
        self.y_train = torch.from_numpy(self.dataset.train.labels)
        self.x_test = torch.from_numpy(model_inputs(self.model, self.dataset.test.images))
        # background of the input images, for augmentation: black, i.e. -1 once binarized
        self.fill = -1.0 if self.config.binarization in SIGN_BINARIZATIONS else 0.0
        self.y_test = torch.from_numpy(self.dataset.test.labels)
        self.steps_per_epoch = math.ceil(len(self.y_train) / self.config.batch_size)

    # ------------------------------------------------------------------ what a subclass varies
    def _build_model(self) -> nn.Module:
        return model_for(self.config, self.dataset.image_shape, self.dataset.num_classes)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.config.lr,
                                weight_decay=self.config.weight_decay)

    def _lr(self, step: int, total_steps: int) -> float:
        return cosine_lr(self.config.lr, step, total_steps)

    def _after_step(self) -> None:
        clip_latent_weights(self.model)

    def _title(self) -> str:
        cfg = self.config
        act = "" if cfg.act_quantizer == cfg.quantizer else "/" + cfg.act_quantizer
        return f"{cfg.model.upper()} W1A1, {cfg.quantizer}{act}, {self.dataset.name}"

    def _augmented(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        kind = self.config.augmentation
        if kind == "crop-flip":
            return random_crop_flip(images, generator, fill=self.fill)
        if kind == "shift":
            return random_shift(images, self.dataset.image_shape, generator, fill=self.fill)
        if kind == "affine":
            return random_affine(images, self.dataset.image_shape, generator)
        return images

    # ------------------------------------------------------------------ records
    def training_state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict()}

    def restore_training_state(self, saved: dict) -> None:
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])

    def model_state(self) -> dict:
        return {"model": self.model.state_dict()}

    @classmethod
    def model_from_record(cls, record: dict) -> nn.Module:
        model = model_for(config_of(record), image_shape_of(record), record["num_classes"])
        model.load_state_dict(record["model"])
        return model.eval()

    # ------------------------------------------------------------------ training
    def train_epoch(self, epoch: int) -> EpochRecord:
        cfg = self.config
        start = time.perf_counter()
        total_steps = cfg.epochs * self.steps_per_epoch
        torch.manual_seed(_seed_for(cfg.seed, epoch))  # dropout masks of this epoch
        order = torch.randperm(len(self.y_train),
                               generator=torch.Generator().manual_seed(_seed_for(cfg.seed, epoch)))
        # a stream of its own: seed + 1 would be the next epoch's shuffle seed
        crops = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch) ^ 0x5DEECE66D)
        self.model.train()
        loss_sum, correct, seen, lr = 0.0, 0, 0, cfg.lr
        bar = self.progress_bar(self.steps_per_epoch, epoch)
        for i in bar:
            step = epoch * self.steps_per_epoch + i
            lr = self._lr(step, total_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.progress = step / max(total_steps - 1, 1)
            set_schedule_progress(self.model, self.progress)
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            logits = self.model(self._augmented(self.x_train[idx], crops))
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
        test_loss, test_acc = evaluate(self.model, self.x_test, self.y_test)
        return EpochRecord(epoch + 1, loss_sum / seen, correct / seen, test_loss, test_acc, lr,
                           time.perf_counter() - start, self.pair.schedule_values(self.progress))

    # ------------------------------------------------------------------ outputs
    def epoch_line(self, r: EpochRecord) -> str:
        return (f"epoch {r.epoch:3d}/{self.config.epochs}  train loss {r.train_loss:.4f} acc "
                f"{r.train_acc:.4f}  test loss {r.test_loss:.4f} acc {r.test_acc:.4f}  "
                f"({r.seconds:.1f} s)")

    def plot(self, file) -> None:
        plot_curves(self.history, file, self._title())


def plot_curves(history: list[EpochRecord], file, title: str) -> None:
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
    fig.savefig(file, format="png", dpi=100)
    plt.close(fig)


__all__ = ["TrainConfig", "Trainer", "TrainingDiverged", "evaluate"]
