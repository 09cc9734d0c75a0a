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


def resolve_device(spec: str):
    """The ``torch.device`` of ``spec`` (auto, cpu, cuda, cuda:N) on this machine."""
    import torch

    if spec == "cpu":
        return torch.device("cpu")
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if spec == "auto":
        if count == 0:
            return torch.device("cpu")
        return torch.device("cuda", _local_rank() % count)
    if count == 0:
        build = ("this PyTorch is a CPU-only build (" + torch.__version__ + ")"
                 if torch.version.cuda is None else
                 f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU")
        raise DeviceUnavailable(f"--device {spec}: this machine has no usable GPU; {build}. "
                                f"Use --device cpu (or auto).")
    index = _local_rank() if spec == "cuda" else int(spec.split(":")[1])
    if index >= count:
        raise DeviceUnavailable(f"--device {spec}: this machine has {count} GPU"
                                f"{'s' if count > 1 else ''} (cuda:0"
                                f"{f'..cuda:{count - 1}' if count > 1 else ''}); choose one of "
                                f"them, or --device auto.")
    return torch.device("cuda", index)


def describe(device) -> str:
    """"cpu" or "cuda:0 (NVIDIA H200)": what a run records and prints."""
    import torch

    if device.type != "cuda":
        return str(device)
    return f"{device} ({torch.cuda.get_device_name(device)})"
