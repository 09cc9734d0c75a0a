r"""VISPA: binary networks by Gaussian variational inference over the weights, with a low-rank
covariance (Orecchia et al., "Training Binary Neural Networks via Gaussian Variational
Inference and Low-Rank Semidefinite Programming", NeurIPS 2024).

Method, as far as we could confirm it (the paper's body and equation numbers were not available
offline; this follows its abstract, a summary of its Theorem 1 / Algorithm 1, and the behaviour
of the authors' public code, which has no license and was not copied):

* Each binary weight tensor with n entries gets a Gaussian N(mu, Sigma) with the SDP's unit
  diagonal mu_i^2 + Sigma_ii = 1 (the second moment of a +-1 variable), Sigma = Z^T Z / S with a
  rank-K factor Z (K x n, Burer-Monteiro). The objective is the expected loss of the network at
  sign(w), w ~ N(mu, Sigma).
* Every training forward renormalizes the raw parameters, m_hat = m / sqrt(a), Z_hat = Z /
  sqrt(a) with a_i = m_i^2 + ||Z[:, i]||^2 / S; draws r ~ N(0, I_K / S) once per layer and
  pass; and uses w = m_hat + Z_hat^T r, binarized by sign with an identity straight-through
  backward (the weight quantizer of the ``bc`` pair).
* Gradients (Theorem 1, an unbiased one-sample estimate): dL/dm = g and dL/dZ = r g^T, g the
  gradient at sign(w). As in the authors' code the renormalization is not differentiated (the
  gradient passes straight to the raw m and Z) and the Z gradient is taken with respect to the
  unit-variance draw eps = sqrt(S) r, i.e. scaled by sqrt(S) (``z_grad_scale``).
* Rank 0 is the paper's linear-programming special case: no covariance, mu in the box
  [-1, 1]^n, i.e. latent weights, the identity STE and weight clipping -- BinaryConnect with
  clipping, exactly (tested).
* W1A1: activations sign forward, max(0, 2 - 2|a|) backward (the ``approxsign`` pair).
* Inference: the deployed network is sign(m) (what FINN gets); the paper reports the ensemble
  that averages the logits of L = 40 sampled networks. We report both, labelled.

Defaults from the authors' CIFAR-10 1W1A runs: K = 4, S = 100, SGD momentum 0.9, lr 0.5, weight
decay 1e-5 on every parameter, 5 warm-up epochs then cosine to 0, L = 40. Deviation: no
per-channel scale alpha -- in the FINN MLPs a BatchNorm follows every binary layer and absorbs
it, and keeping it would let a learned negative scale flip a channel, which FINN's thresholds
would have to absorb separately.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass

import torch
from brevitas.nn import QuantConv2d, QuantLinear
from torch import nn
from torch.nn.utils import parametrize

from .configs import VispaConfig
from .runs import config_of, image_shape_of
from .trainer import EpochRecord, Trainer, cosine_lr, model_for


class _SampledWeight(torch.autograd.Function):
    """w = m_hat + Z_hat^T r from raw (m, Z); backward straight to the raw parameters:
    dm = g, dZ = z_grad_scale * r g^T (see the module docstring)."""

    @staticmethod
    def forward(ctx, m, z, r, scale: float, z_grad_scale: float):
        a = m * m + (z * z).sum(0) / scale
        root = a.sqrt()
        w = m / root + torch.tensordot(r, z, dims=1) / root
        ctx.save_for_backward(r)
        ctx.z_grad_scale = z_grad_scale
        return w

    @staticmethod
    def backward(ctx, grad):
        (r,) = ctx.saved_tensors
        grad_z = ctx.z_grad_scale * r.view(-1, *([1] * grad.dim())) * grad.unsqueeze(0)
        return grad, grad_z, None, None, None


class VispaWeight(nn.Module):
    """Parametrization of a binary layer's weight: the stored ``original`` is the raw mean m;
    this module holds the raw low-rank factor Z and returns a sampled w (training, ensembles) or
    m itself (deterministic evaluation: sign(m_hat) = sign(m))."""

    def __init__(self, shape: torch.Size, rank: int, scale: float = 100.0,
                 z_grad_scale: float | None = None):
        super().__init__()
        self.rank = rank
        self.scale = scale
        self.z_grad_scale = math.sqrt(scale) if z_grad_scale is None else z_grad_scale
        self.sampling = False  # True: sample in eval mode too (ensembles)
        if rank > 0:
            self.z = nn.Parameter(torch.empty(rank, *shape))
            nn.init.xavier_normal_(self.z)

    def forward(self, m: torch.Tensor) -> torch.Tensor:
        if self.rank == 0 or not (self.training or self.sampling):
            return m
        # drawn on the CPU: the same draws whatever the device (a copy of K numbers)
        # (non_blocking: copied from pageable memory through a staging buffer, no wait for
        # the GPU's queue)
        r = (torch.randn(self.rank, dtype=m.dtype) / math.sqrt(self.scale)).to(
            m.device, non_blocking=True)
        return _SampledWeight.apply(m, self.z, r, self.scale, self.z_grad_scale)

    def normalized(self, m: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(m_hat, Z_hat) with unit diagonal m_hat^2 + diag(Z_hat^T Z_hat) / S = 1."""
        if self.rank == 0:
            return m.clamp(-1.0, 1.0), None
        root = (m * m + (self.z * self.z).sum(0) / self.scale).sqrt()
        return m / root, self.z / root

    def covariance(self, m: torch.Tensor) -> torch.Tensor:
        """Sigma = Z_hat^T Z_hat / S over the flattened weights (for tests and analysis)."""
        _, z = self.normalized(m)
        flat = z.reshape(self.rank, -1)
        return flat.T @ flat / self.scale


BINARY_LAYERS = (QuantLinear, QuantConv2d)  # the authors treat conv weights as linear ones


def vispa_layers(model: nn.Module) -> list[tuple[nn.Module, VispaWeight]]:
    return [(m, m.parametrizations.weight[0]) for m in model.modules()
            if isinstance(m, BINARY_LAYERS) and parametrize.is_parametrized(m, "weight")]


def deployed_network(config: VispaConfig, image_shape: tuple[int, ...],
                     num_classes: int) -> nn.Module:
    """The network of ``config.model`` as FINN gets it (weights sign(m)); VISPA's W1A32
    setting replaces an MLP's hidden bipolar activations by ReLU."""
    if config.activations == "float":
        from .models import BinaryMLP, mlp_widths

        return BinaryMLP(int(math.prod(image_shape)), num_classes,
                         mlp_widths(config.model, config.hidden), config.quantizer,
                         config.dropout, config.act_quantizer, float_activations=True,
                         head=config.head)
    return model_for(config, image_shape, num_classes)


class OneDrawPerForward:
    """Mixin: each parametrized weight is evaluated once per pass (Brevitas reads
    ``layer.weight`` more than once per forward; uncached, every read would draw a new r)."""

    def forward(self, x):
        with parametrize.cached():
            return super().forward(x)


@functools.cache
def _one_draw_class(network_class: type) -> type:
    return type(f"Vispa{network_class.__name__}", (OneDrawPerForward, network_class), {})


def build_vispa_model(config: VispaConfig, image_shape: tuple[int, ...],
                      num_classes: int) -> nn.Module:
    """The network of ``config.model`` with every binary weight tensor parametrized by VISPA."""
    network = deployed_network(config, image_shape, num_classes)
    for layer in network.modules():
        if isinstance(layer, BINARY_LAYERS):
            nn.init.xavier_normal_(layer.weight)
            parametrize.register_parametrization(
                layer, "weight", VispaWeight(layer.weight.shape, config.rank, config.scale))
    network.__class__ = _one_draw_class(type(network))  # same module, cached forward
    return network


def deployed_state(model: nn.Module) -> dict:
    """The state dict of the deployed network: each weight is the raw mean m (binarized as
    sign(m)); the covariance factors are dropped. (Built key by key: deep-copying a
    parametrized module and removing the copy's parametrization would alter the original's
    shared parametrized class.)"""
    state = {}
    for key, value in model.state_dict().items():
        if key.endswith("parametrizations.weight.original"):
            state[key.replace("parametrizations.weight.original", "weight")] = value.clone()
        elif ".parametrizations.weight." not in key:
            state[key] = value.clone()
    return state


def ensemble_logits(model: nn.Module, images: torch.Tensor, samples: int, seed: int,
                    batch_size: int = 1000) -> torch.Tensor:
    """Mean logits of ``samples`` networks drawn from the weight distribution (BatchNorm in
    eval mode), as the paper evaluates."""
    model.eval()
    layers = vispa_layers(model)
    for _, vispa in layers:
        vispa.sampling = True
    try:
        torch.manual_seed(seed)
        total = None
        with torch.no_grad():
            for _ in range(samples):
                logits = torch.cat([model(images[i:i + batch_size])
                                    for i in range(0, len(images), batch_size)])
                total = logits if total is None else total + logits
        return total / samples
    finally:
        for _, vispa in layers:
            vispa.sampling = False


@dataclass
class VispaEpochRecord(EpochRecord):
    """An epoch's record plus, with ``--ensemble-eval every-epoch``, the L-sample ensemble's
    test accuracy (None otherwise)."""

    ensemble_test_acc: float | None = None


class VispaTrainer(Trainer):
    """The common trainer (progress, logs, atomic checkpoints, bit-identical resume) with VISPA's
    model, optimizer and schedule. model.pt holds the deployed sign(m) network."""

    config: VispaConfig
    record_class = VispaEpochRecord

    def train_epoch(self, epoch: int) -> VispaEpochRecord:
        record = VispaEpochRecord(**asdict(super().train_epoch(epoch)))
        if self.config.ensemble_eval == "every-epoch" and self.config.ensemble_samples:
            record.ensemble_test_acc = self._ensemble_accuracy()
        return record

    def _ensemble_accuracy(self) -> float:
        # seeded by the run's seed alone: every epoch's ensemble draws the same r, and the
        # next epoch reseeds torch, so a resumed run is unaffected
        share = self.ranks.share(len(self.y_test))  # each process: its share of the images
        logits = ensemble_logits(self.model, self.x_test[share], self.config.ensemble_samples,
                                 self.config.seed)
        correct = (logits.argmax(1) == self.y_test[share]).sum().item()
        return self.ranks.sum([correct], self.device).item() / len(self.y_test)

    def epoch_line(self, r: VispaEpochRecord) -> str:
        line = super().epoch_line(r)
        if r.ensemble_test_acc is None:
            return line
        return line + f"  ensemble L{self.config.ensemble_samples} acc {r.ensemble_test_acc:.4f}"

    def _build_model(self) -> nn.Module:
        return build_vispa_model(self.config, self.dataset.image_shape,
                                 self.dataset.num_classes)

    def _build_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.model.parameters(), lr=self.config.lr,
                               momentum=self.config.momentum,
                               weight_decay=self.config.weight_decay)

    def _lr(self, step: int, total_steps: int) -> float:
        """Linear warm-up over ``warmup_epochs``, then cosine to 0 (per step)."""
        warmup = min(self.config.warmup_epochs * self.steps_per_epoch, total_steps // 2)
        if step < warmup:
            return self.config.lr * (step + 1) / warmup
        return cosine_lr(self.config.lr, step - warmup, total_steps - warmup)

    def _after_step(self) -> None:
        if self.config.rank == 0:  # the LP special case: the mean stays in the box [-1, 1]
            with torch.no_grad():
                for layer, _ in vispa_layers(self.model):
                    layer.parametrizations.weight.original.clamp_(-1.0, 1.0)

    def _title(self) -> str:
        cfg = self.config
        acts = "W1A1" if cfg.activations == "binary" else "W1A32"
        return f"{cfg.network_name} {acts}, VISPA rank {cfg.rank}, {self.dataset.name}"

    def model_state(self) -> dict:
        return {"model": deployed_state(self.model)}

    @classmethod
    def model_from_record(cls, record: dict) -> nn.Module:
        """The deployed sign(m) network of a VISPA ``model.pt``."""
        model = deployed_network(config_of(record), image_shape_of(record),
                                 record["num_classes"])
        model.load_state_dict(record["model"])
        return model.eval()

    def final_summary(self) -> dict:
        cfg = self.config
        summary = super().final_summary()
        if not self.history or cfg.ensemble_samples < 1:
            return summary
        last = self.history[-1].ensemble_test_acc
        summary.update({"deployed_sign_m_test_acc": self.history[-1].test_acc,
                        f"ensemble_L{cfg.ensemble_samples}_test_acc":
                            self._ensemble_accuracy() if last is None else last})
        per_epoch = [r for r in self.history if r.ensemble_test_acc is not None]
        if per_epoch:  # the authors' protocol: the best epoch of the ensemble
            best = max(per_epoch, key=lambda r: r.ensemble_test_acc)
            summary[f"best_epoch_ensemble_L{cfg.ensemble_samples}_test_acc"] = \
                best.ensemble_test_acc
            summary["best_ensemble_epoch"] = best.epoch
        return summary
