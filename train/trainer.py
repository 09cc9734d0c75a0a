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

from .. import interrupts
from ..errors import XnorflowError
from . import distributed
from .augment import Affine, Augmentation, CropFlip, Shift, rows_of
from .batches import TrainingImages
from .brevitas_quant import clip_latent_weights, set_schedule_progress
from .configs import TrainConfig
from .data import SIGN_BINARIZATIONS, holdout_split
from .devices import resolve_device
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
    val_acc: float | None = None   # the --holdout images (None without)


def _seed_for(seed: int, epoch: int) -> int:
    return seed * 1_000_003 + epoch


# Steps between the points where a GPU run reads its loss back (progress, the finite check,
# the processes' agreement to stop): each read waits for the device's queue. A CPU run reads
# it every step (between processes one small collective, about 0.6 ms over gloo here), so that
# a Ctrl-C is answered within a step, however slow the steps are.
GPU_SYNC_STEPS = 25


def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000,
             ranks: distributed.Ranks | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of the deployed (eval-mode, sign-binarized) network;
    each process of a distributed run evaluates its share of the images."""
    ranks = ranks or distributed.Ranks()
    model.eval()
    share = ranks.share(len(labels))
    images, labels_here = images[share], labels[share]
    total_loss = torch.zeros((), dtype=torch.float64, device=images.device)
    correct = torch.zeros((), dtype=torch.int64, device=images.device)
    with torch.no_grad():
        for start in range(0, len(labels_here), batch_size):
            logits = model(images[start:start + batch_size])
            target = labels_here[start:start + batch_size]
            total_loss += nn.functional.cross_entropy(logits, target, reduction="sum").double()
            correct += (logits.argmax(1) == target).sum()
    total_loss, correct = ranks.sum([total_loss.item(), correct.item()], images.device).tolist()
    return total_loss / len(labels), correct / len(labels)


def cosine_lr(base_lr: float, step: int, total_steps: int) -> float:
    return 0.5 * base_lr * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))


def model_for(config: TrainConfig, image_shape: tuple[int, ...], num_classes: int) -> nn.Module:
    return build_model(config.model, image_shape, num_classes, config.quantizer, config.dropout,
                       config.act_quantizer, config.head,
                       pixels="uint8" if config.binarization == "uint8" else "bipolar",
                       hidden=config.hidden, channel_scale=config.channel_scale)


class Trainer(EpochLoop):
    """ProxConnect++ training of ``config`` into ``out_dir`` (see :class:`.loop.EpochLoop`)."""

    config: TrainConfig
    record_class = EpochRecord

    placement = "auto"   # of the training images (xnorflow.train.batches)

    def setup(self) -> None:
        self.device = resolve_device(self.config.device)
        distributed.start(self.ranks, self.device)
        torch.manual_seed(self.config.seed)
        self.pair = pair_for(self.config.quantizer)
        self.model = self._build_model().to(self.device)
        self.network = distributed.wrap(self.model, self.ranks, self.device)
        self.optimizer = self._build_optimizer()
        self.progress = 0.0
        train, self.val = self.dataset.train, None
        if self.config.holdout:
            train, held = holdout_split(train, self.config.holdout, self.config.seed)
            self.val = (torch.from_numpy(model_inputs(self.model, held.images)).to(self.device),
                        torch.from_numpy(held.labels).to(self.device))
        self.train_images = TrainingImages(model_inputs(self.model, train.images),
                                           train.labels, self.device, self.placement)
        self.x_test = torch.from_numpy(
            model_inputs(self.model, self.dataset.test.images)).to(self.device)
        self.y_test = torch.from_numpy(self.dataset.test.labels).to(self.device)
        self.augmentation = self._augmentation()
        self.steps_per_epoch = math.ceil(len(self.train_images) / self.config.batch_size)
        self.sync_steps = GPU_SYNC_STEPS if self.device.type == "cuda" else 1
        if self.device.type == "cuda":
            # the same convolution algorithms every run: a resumed run repeats the steps
            torch.backends.cudnn.deterministic = True
            torch.backends.cudnn.benchmark = False

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
        return f"{cfg.network_name} W1A1, {cfg.quantizer}{act}, {self.dataset.name}"

    def _augmentation(self) -> Augmentation | None:
        # background of the input images: black, i.e. -1 once binarized
        fill = -1.0 if self.config.binarization in SIGN_BINARIZATIONS else 0.0
        kind, shape = self.config.augmentation, tuple(self.dataset.image_shape)
        if kind == "crop-flip":
            return CropFlip(fill=fill)
        if kind == "shift":
            return Shift(shape, fill=fill)
        if kind == "affine":
            return Affine(shape)
        return None

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
        cfg, ranks = self.config, self.ranks
        start = time.perf_counter()
        total_steps = cfg.epochs * self.steps_per_epoch
        # dropout masks and VISPA's draws of this epoch: noise of this process's own
        torch.manual_seed(_seed_for(cfg.seed, epoch) + 7919 * ranks.rank)
        order = torch.randperm(len(self.train_images),
                               generator=torch.Generator().manual_seed(_seed_for(cfg.seed, epoch)))
        # a stream of its own: seed + 1 would be the next epoch's shuffle seed
        crops = torch.Generator().manual_seed(_seed_for(cfg.seed, epoch) ^ 0x5DEECE66D)
        batches = [order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
                   for i in range(self.steps_per_epoch)]
        shares = [ranks.share(len(b)) for b in batches]
        self.network.train()
        sums = torch.zeros(2, dtype=torch.float64, device=self.device)  # loss x images, correct
        seen, lr, shown = 0, cfg.lr, (0.0, 0.0)
        bar = self.progress_bar(self.steps_per_epoch, epoch)
        data = self.train_images.batches([b[s] for b, s in zip(batches, shares)])
        for i, (images, labels) in zip(bar, data):
            step = epoch * self.steps_per_epoch + i
            lr = self._lr(step, total_steps)
            for group in self.optimizer.param_groups:
                group["lr"] = lr
            self.progress = step / max(total_steps - 1, 1)
            set_schedule_progress(self.model, self.progress)
            if self.augmentation is not None:
                drawn = self.augmentation.draw(len(batches[i]), crops)
                images = self.augmentation.apply(images, rows_of(drawn, shares[i]))
            logits = self.network(images)
            loss, summed = distributed.share_loss(logits, labels, len(batches[i]), ranks)
            sums += torch.stack([summed, (logits.argmax(1) == labels).sum().double()])
            seen += len(batches[i])
            if (i + 1) % self.sync_steps == 0 or i + 1 == self.steps_per_epoch:
                shown = self._agree(loss, epoch, i, sums, seen)
                bar.set_postfix(loss=f"{shown[0]:.4f}", acc=f"{shown[1]:.4f}")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self._after_step()
        test_loss, test_acc = evaluate(self.model, self.x_test, self.y_test, ranks=ranks)
        val_acc = evaluate(self.model, *self.val, ranks=ranks)[1] if self.val else None
        return EpochRecord(epoch + 1, shown[0], shown[1], test_loss, test_acc, lr,
                           time.perf_counter() - start, self.pair.schedule_values(self.progress),
                           val_acc)

    def _agree(self, loss: torch.Tensor, epoch: int, step: int, sums: torch.Tensor,
               seen: int) -> tuple[float, float]:
        """The point where the processes (and the host) read the device back: all stop
        together on a Ctrl-C or a non-finite loss; returns the epoch's mean loss and accuracy
        so far over every process."""
        finite = bool(torch.isfinite(loss))
        flags = [float(interrupts.pending()), float(not finite)]
        totals = self.ranks.sum([*flags, *sums.tolist()], self.device).tolist()
        if totals[0]:
            raise KeyboardInterrupt
        if totals[1]:
            raise TrainingDiverged(
                f"loss is {loss.item() if not finite else 'not finite'} at epoch {epoch + 1}, "
                f"step {step + 1}; stopped. The last good checkpoint ({self.out_dir / CHECKPOINT},"
                f" epoch {len(self.history)}) is kept. Lower --lr or check the input data for "
                f"NaN/inf values.")
        return totals[2] / seen, totals[3] / seen

    # ------------------------------------------------------------------ outputs
    def epoch_line(self, r: EpochRecord) -> str:
        val = f"val acc {r.val_acc:.4f}  " if r.val_acc is not None else ""
        return (f"epoch {r.epoch:3d}/{self.config.epochs}  train loss {r.train_loss:.4f} acc "
                f"{r.train_acc:.4f}  {val}test loss {r.test_loss:.4f} acc {r.test_acc:.4f}  "
                f"({r.seconds:.1f} s)")

    def final_summary(self) -> dict:
        last = self.history[-1]
        return {"final_val_acc": last.val_acc} if last.val_acc is not None else {}

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
    if history and history[0].val_acc is not None:
        ax_acc.plot(epochs, [100 * r.val_acc for r in history], label="validation (held out)")
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
