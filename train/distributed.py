"""One run trained by several processes (torch.distributed: DDP over gloo on CPUs, NCCL on GPUs).

``torchrun`` (or ``xnorflow train --nproc N``, which starts the same elastic agent) sets
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``; every process then trains its share of each global
batch. What makes the processes one run:

- **Data.** Every process draws the same epoch order and augmentation from ``(seed, epoch)`` and
  takes a contiguous share of each global batch (:meth:`Ranks.share`); the loss is scaled so
  that DDP's gradient mean is the mean over the global batch, also for an uneven last batch.
- **Normalization.** BatchNorm and TensorNorm use the statistics of the global batch
  (:func:`global_normalization`): the moments are summed over the processes with a
  differentiable all-reduce, so training sees the same normalization as one process with the
  whole batch (torch's ``SyncBatchNorm`` covers neither CPUs nor TensorNorm). Their running
  statistics are then the same in every process.
- **Stopping.** Ctrl-C or SIGTERM only notes the request in a process; the processes agree at
  the next step (:meth:`Ranks.any`), so all stop at the same batch. A process that dies breaks
  the others' next collective, and they stop too.
- **Files.** Only rank 0 writes the run folder and prints.
- **Leaving.** A process leaves with ``os._exit`` once its outputs are written (see
  ``xnorflow.cli.main``): destroying a gloo process group at exit can deadlock (its threads
  wait for the GIL the joining thread holds; seen here in 1 of about 10 runs).

Numerically, a run of N processes equals a one-process run of the same global batch up to the
order of float sums (measured in BENCHMARKS.md); dropout masks and VISPA's weight draws are
seeded per process, like independent noise per sample.
"""

from __future__ import annotations

import functools
import os
import shlex
from dataclasses import dataclass
from datetime import timedelta

from ..errors import UsageError, XnorflowError

TIMEOUT = timedelta(minutes=30)   # a collective's wait for the slowest process (torch's default)


class DistributedError(XnorflowError):
    """The processes of a distributed run cannot start or work together."""

    # the launcher stops the other processes with SIGTERM after one died: that is this
    # error's consequence, not a user's interrupt
    overrides_interrupt = True


@dataclass(frozen=True)
class Ranks:
    """This process's place in the run: ``rank`` of ``world`` processes."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def share(self, count: int) -> slice:
        """This process's contiguous rows of a global batch of ``count`` (sizes differ by at
        most one; a process may get none of a last batch smaller than the process count)."""
        base, extra = divmod(count, self.world)
        start = self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (self.rank < extra))

    def sum(self, values, device):
        """``values`` (numbers) summed over the processes, as a float64 tensor on ``device``."""
        import torch

        total = torch.as_tensor(values, dtype=torch.float64, device=device)
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(total)
        return total

    def any(self, flag: bool, device) -> bool:
        """True on every process if ``flag`` is true on any (an agreement point)."""
        if not self.distributed:
            return flag
        return bool(self.sum([float(flag)], device).item() > 0)


def resume_command(run_folder, nproc: int | None = None, nnodes: int | None = None) -> str:
    """The command that continues the run in ``run_folder`` with the same processes (read from
    torchrun's environment unless given)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    nproc = nproc or int(os.environ.get("LOCAL_WORLD_SIZE", str(world)))
    nnodes = nnodes or max(1, world // max(nproc, 1))
    words = ["xnorflow", "train", "--resume", "--out", str(run_folder)]
    if nproc > 1:
        words += ["--nproc", str(nproc)]
    if nnodes > 1:
        words += ["--nnodes", str(nnodes), "--rdzv", "HOST:PORT"]
    # quoted, so that the line pastes into a shell as it is (a folder with spaces, quotes)
    command = shlex.join(words)
    return command + (" (on every machine, as before)" if nnodes > 1 else "")


def share_loss(logits, labels, batch: int, ranks: Ranks):
    """The cross-entropy a process backpropagates for its share of a global batch of ``batch``
    images, and the share's summed loss (float64, detached). DDP averages the processes'
    gradients, so a process's summed loss times world / batch gives the gradient of the global
    batch's mean loss, also where its share of a short last batch is empty. One process: the
    plain mean."""
    from torch import nn

    if not ranks.distributed:
        loss = nn.functional.cross_entropy(logits, labels)
        return loss, loss.detach().double() * len(labels)
    summed = nn.functional.cross_entropy(logits, labels, reduction="sum")
    return summed * (ranks.world / batch), summed.detach().double()


def current() -> Ranks:
    """The ranks torchrun gave this process (one process when it was not started by it)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Ranks()
    return Ranks(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def start(ranks: Ranks, device) -> None:
    """Join the process group of the run (once per process): NCCL between GPUs, gloo else."""
    if not ranks.distributed:
        return
    import torch.distributed as dist

    if dist.is_initialized():
        return
    backend = "nccl" if device.type == "cuda" else "gloo"
    available = dist.is_nccl_available() if backend == "nccl" else dist.is_gloo_available()
    if not available:
        raise UsageError(f"--device {device}: this PyTorch has no {backend.upper()} backend for "
                         f"a distributed run on {'GPUs' if backend == 'nccl' else 'CPUs'}; "
                         f"use --device cpu (gloo) or a PyTorch build with {backend.upper()}.")
    if device.type == "cuda":
        import torch

        torch.cuda.set_device(device)
    try:
        dist.init_process_group(backend, timeout=TIMEOUT,
                                device_id=device if device.type == "cuda" else None)
    except Exception as err:  # torch raises RuntimeError, DistStoreError, ValueError...
        raise DistributedError(f"process {ranks.rank} of {ranks.world} could not join the "
                               f"run's process group ({backend}): {err}") from None


# what gloo's and NCCL's errors say when a peer process is gone (gloo raises a plain
# RuntimeError for it)
PEER_GONE = ("Connection reset by peer", "Connection closed by peer", "gloo/transport",
             "NCCL communicator was aborted", "Broken pipe")


def broke(err: BaseException) -> bool:
    """Whether ``err`` is a collective that failed because another process stopped."""
    import sys

    dist = sys.modules.get("torch.distributed")
    if dist is None or not dist.is_available():
        return False
    if isinstance(err, dist.DistError):
        return True
    return isinstance(err, RuntimeError) and any(text in str(err) for text in PEER_GONE)


def short_reason(err: BaseException) -> str:
    """The library's message without its source location and advice: "Read error ...:
    Connection reset by peer"."""
    import re

    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    text = re.sub(r"^\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", text)
    return text.split(". This is typically")[0][:160]


def wrap(model, ranks: Ranks, device):
    """The module a training step calls: ``model`` with global normalization in DDP, or
    ``model`` itself for one process. ``model`` keeps its own state dict keys."""
    if not ranks.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    global_normalization(model)
    # the running statistics are global, hence equal in every process: synced once at the
    # start (with the parameters), never again
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                   else None, forward_sync_buffers=False)


# --------------------------------------------------------------------- global normalization
def all_reduce(x):
    """The sum of ``x`` over the processes, differentiable: the gradient of a sum every process
    uses is the sum of their gradients."""
    return _all_reduce_sum().apply(x)


def _reduced(x):
    import torch.distributed as dist

    x = x.clone()
    dist.all_reduce(x)
    return x


@functools.cache
def _all_reduce_sum() -> type:
    import torch

    class AllReduceSum(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            return _reduced(x)

        @staticmethod
        def backward(ctx, grad):
            return _reduced(grad)

    return AllReduceSum


def _global_moments(x, dims: list[int], shift):
    """Mean and biased variance per channel of ``x`` over ``dims`` and all processes, and the
    element count, with one collective (and one in the backward pass): the sums of ``x - shift``
    and of its squares and the count are all-reduced together. ``shift`` (the layer's running
    mean, the same in every process) keeps the difference of the two moments free of
    cancellation; the moments are combined in float64."""
    import torch

    shape = [1] * x.dim()
    for d in range(x.dim()):
        if d not in dims:
            shape[d] = x.shape[d]
    local = 1
    for d in dims:
        local *= x.shape[d]
    shifted = x - shift.reshape(shape)
    channels = shifted.sum(dims).numel()
    sums = all_reduce(torch.cat([shifted.sum(dims).reshape(-1),
                                 (shifted * shifted).sum(dims).reshape(-1),
                                 torch.full((1,), float(local), dtype=x.dtype,
                                            device=x.device)])).double()
    count = sums[-1].detach()
    first, second = sums[:channels] / count, sums[channels:2 * channels] / count
    variance = (second - first * first).clamp(min=0).to(x.dtype)
    mean = (shift.double().reshape(-1) + first).to(x.dtype)
    return mean, variance, count, shape


def _global_batch_norm(self, x):
    """forward of a BatchNorm1d/2d in training: global-batch statistics."""
    import torch

    if not self.training:
        return super(type(self), self).forward(x)
    dims = [0] + list(range(2, x.dim()))
    shift = (self.running_mean if self.running_mean is not None
             else x.new_zeros(x.shape[1])).detach()
    mean, variance, count, shape = _global_moments(x, dims, shift)
    momentum = self.momentum
    if self.track_running_stats:
        self.num_batches_tracked.add_(1)
        if momentum is None:
            momentum = 1.0 / float(self.num_batches_tracked)
        with torch.no_grad():
            unbiased = variance * (count / (count - 1).clamp(min=1)).to(variance.dtype)
            self.running_mean.mul_(1 - momentum).add_(momentum * mean.detach())
            self.running_var.mul_(1 - momentum).add_(momentum * unbiased.detach())
    y = (x - mean.reshape(shape)) / (variance.reshape(shape) + self.eps).sqrt()
    if self.affine:
        y = y * self.weight.reshape(shape) + self.bias.reshape(shape)
    return y


def _global_tensor_norm(self, x):
    """forward of Brevitas' TensorNorm in training: one mean and variance over the global
    batch (as TensorNorm computes them over its whole input)."""
    import torch

    if not self.training:
        return super(type(self), self).forward(x)
    flat = x.reshape(1, -1)   # one "channel": every element
    mean, biased, count, _ = _global_moments(flat, [1], self.running_mean.detach().reshape(1))
    with torch.no_grad():
        unbiased = biased * (count / (count - 1).clamp(min=1)).to(biased.dtype)
        self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
        self.running_var = (1 - self.momentum) * self.running_var + self.momentum * unbiased
    return (x - mean) / (biased + self.eps).sqrt() * self.weight + self.bias


def _globalized(cls: type, forward) -> type:
    key = (cls, forward)
    if key not in _CLASSES:
        _CLASSES[key] = type(f"Global{cls.__name__}", (cls,), {"forward": forward})
    return _CLASSES[key]


_CLASSES: dict = {}


def global_normalization(model) -> None:
    """Make every BatchNorm1d/2d and TensorNorm of ``model`` normalize over the global batch
    in training (same parameters, buffers and state dict keys; eval unchanged)."""
    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
    from torch import nn

    for module in model.modules():
        if type(module) in (nn.BatchNorm1d, nn.BatchNorm2d):
            module.__class__ = _globalized(type(module), _global_batch_norm)
        elif type(module) is TensorNorm:
            module.__class__ = _globalized(TensorNorm, _global_tensor_norm)
