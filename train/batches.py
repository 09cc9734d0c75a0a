"""The training images as a float trainer draws its batches: stored compactly, where the model runs.

Images are kept in the narrowest exact type (int8 for +-1 images, uint8 for 8-bit pixels,
float32 otherwise: 4x less memory for CIFAR-10 than float32) and turned into float32 per batch,
on the device. Two placements:

- ``device``: the whole set on the training device (the CPU, or a GPU with room for it); a
  batch is an index into it, with no copy from the host.
- ``host``: the set stays in host memory; a ``DataLoader`` with
  worker processes gathers each batch ahead of the device, which copies it asynchronously. For
  data sets too large for the GPU's memory.

``auto`` takes ``device`` unless the compact set would need more than a quarter of the GPU's
free memory. The placement changes nothing in the result: the workers only gather rows, every
random draw stays in the training loop.
"""

from __future__ import annotations

import numpy as np
import torch

PLACEMENTS = ("auto", "device", "host")
DEVICE_SHARE = 0.25      # most of a GPU's free memory the training set may take
LOADER_WORKERS = 2


def compact(images: np.ndarray) -> np.ndarray:
    """``images`` in the narrowest type that holds them exactly."""
    if images.dtype.kind == "f":
        if np.isin(images, (-1.0, 1.0)).all():
            return images.astype(np.int8)
        if (images >= 0).all() and (images <= 255).all() and (images == np.round(images)).all():
            return images.astype(np.uint8)
    return images


def choose_placement(placement: str, nbytes: int, device: torch.device) -> str:
    if placement != "auto":
        return placement
    if device.type != "cuda":
        return "device"
    free, _ = torch.cuda.mem_get_info(device)
    return "device" if nbytes <= DEVICE_SHARE * free else "host"


def _ignore_interrupts(_worker: int) -> None:
    """A loader worker ignores Ctrl-C: the training process decides when to stop (at once, or
    with the other processes of a distributed run) and ends its loader."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Rows(torch.utils.data.Dataset):
    """Item ``i`` of a DataLoader over batches: the rows of batch ``i`` (gathered in a
    worker process)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, batches: list[torch.Tensor]):
        self.images, self.labels, self.batches = images, labels, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        rows = self.batches[i]
        return self.images[rows], self.labels[rows]


class TrainingImages:
    """A data set's images (already in the model's layout) and labels for training on
    ``device``."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, device: torch.device,
                 placement: str = "auto"):
        stored = torch.from_numpy(compact(images))
        self.device = device
        self.placement = choose_placement(placement, stored.nbytes, device)
        self.count = len(labels)
        if self.placement == "device":
            self.images = stored.to(device)
            self.labels = torch.from_numpy(labels).to(device)
        else:   # the loader pins each batch; the whole set stays pageable
            self.images = stored
            self.labels = torch.from_numpy(labels)

    def __len__(self) -> int:
        return self.count

    def batches(self, rows: list[torch.Tensor]):
        """``(images, labels)`` on the device, float32 images, for each index tensor of
        ``rows`` in order."""
        if self.placement == "device":
            for index in rows:
                # non_blocking: a small copy through a staging buffer, no wait for the GPU
                index = index.to(self.device, non_blocking=True)
                yield self.images[index].float(), self.labels[index]
            return
        loader = torch.utils.data.DataLoader(
            _Rows(self.images, self.labels, rows), batch_size=None, shuffle=False,
            num_workers=LOADER_WORKERS, pin_memory=self.device.type == "cuda",
            prefetch_factor=4, persistent_workers=False, worker_init_fn=_ignore_interrupts)
        for images, labels in loader:
            yield (images.to(self.device, non_blocking=True).float(),
                   labels.to(self.device, non_blocking=True))
