"""Training-image augmentation: random crop with padding and horizontal flip (the standard
CIFAR-10 protocol), on a batch of NHWC images, drawn from a seeded generator so that a resumed
run sees the same crops as an uninterrupted one."""

from __future__ import annotations

import torch


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4,
                     fill: float = 0.0) -> torch.Tensor:
    """Each image of ``images`` (N, rows, cols, channels) padded by ``padding`` with ``fill``,
    cropped back to its size at a random offset, and mirrored left-right with probability 1/2."""
    count, rows, cols, _ = images.shape
    padded = torch.nn.functional.pad(images, (0, 0, padding, padding, padding, padding),
                                     value=fill)
    top = torch.randint(0, 2 * padding + 1, (count,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (count,), generator=generator)
    flip = torch.rand(count, generator=generator) < 0.5
    row_index = top[:, None] + torch.arange(rows)
    col_index = left[:, None] + torch.arange(cols)
    col_index = torch.where(flip[:, None], col_index.flip(1), col_index)
    return padded[torch.arange(count)[:, None, None], row_index[:, :, None],
                  col_index[:, None, :]]
