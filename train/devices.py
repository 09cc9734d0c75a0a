"""``--device``: where a float trainer (ProxConnect++, VISPA) runs, checked before anything is
written.

``auto`` takes a GPU when PyTorch sees one, else the CPU; ``cuda`` is the first GPU, or under
``torchrun`` the GPU of the process's ``LOCAL_RANK``; ``cuda:N`` names one. A GPU that is not
there is a usage error (exit 2) that says what the machine has.
"""

from __future__ import annotations

import os

from ..errors import UsageError


class DeviceUnavailable(UsageError):
    """``--device`` names a device this machine does not have."""


def _local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def _local_processes() -> int:
    """Processes of the run on this machine (torchrun's LOCAL_WORLD_SIZE; 1 alone)."""
    return int(os.environ.get("LOCAL_WORLD_SIZE", os.environ.get("WORLD_SIZE", "1")))


def _check_one_gpu_each(spec: str, count: int, named: str) -> None:
    """Several processes on GPUs need one GPU each (NCCL refuses two on one GPU); checked the
    same way in every process, so that rank 0 says it."""
    local = _local_processes()
    if local <= 1:
        return
    if ":" in spec:
        raise DeviceUnavailable(f"{named} names one GPU, but the {local} processes on "
                                f"this machine need one each; use --device cuda (process i "
                                f"takes GPU i).")
    if count < local:
        raise DeviceUnavailable(f"{named}: {local} processes on this machine but "
                                f"{count} GPU{'s' if count != 1 else ''}; use --nproc {count} "
                                f"(one process per GPU) or --device cpu.")


def resolve_device(spec: str, named: str | None = None):
    """The ``torch.device`` of ``spec`` (auto, cpu, cuda, cuda:N) on this machine; ``named``:
    where ``spec`` comes from, as the messages say it (default: the option the user gave)."""
    import torch

    named = named or f"--device {spec}"
    if spec == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec == "auto":
        if count == 0:
            return torch.device("cpu")
        _check_one_gpu_each(spec, count, named)
        return torch.device("cuda", _local_rank())
    if count == 0:
        build = ("this PyTorch is a CPU-only build (" + torch.__version__ + ")"
                 if torch.version.cuda is None else
                 f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
        raise DeviceUnavailable(f"{named}: this machine has no usable GPU; {build}. "
                                f"Use --device cpu (or auto).")
    _check_one_gpu_each(spec, count, named)
    index = _local_rank() if spec == "cuda" else int(spec.split(":")[1])
    if index >= count:
        raise DeviceUnavailable(f"{named}: this machine has {count} GPU"
                                f"{'s' if count > 1 else ''} (cuda:0"
                                f"{f'..cuda:{count - 1}' if count > 1 else ''}); choose one of "
                                f"them, or --device auto.")
    return torch.device("cuda", index)


def recorded_device(spec: str, run_folder) -> None:
    """Refuse, before a resumed run loads anything, the device it recorded and keeps (no
    --device given) where this machine lacks it: said as the run's, not as the user's
    option."""
    resolve_device(spec, named=f"the run in {run_folder} was trained with --device {spec}, "
                                f"which --resume keeps unless --device is given")


def describe(device) -> str:
    """"cpu" or "cuda:0 (NVIDIA H200)": what a run records and prints."""
    import torch

    if device.type != "cuda":
        return str(device)
    return f"{device} ({torch.cuda.get_device_name(device)})"
