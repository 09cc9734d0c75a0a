"""Training-image augmentation, drawn from a seeded generator so that a resumed run sees the same
images as an uninterrupted one:

- crop-flip: random crop with padding 4 and horizontal flip, the standard CIFAR-10 protocol;
- shift: a random translation by up to a few pixels in each direction (no flip: a mirrored digit
  is another symbol), the classic cure for MLPs over-fitting MNIST.
"""

from __future__ import annotations

import torch

SHIFT_PIXELS = 2  # the largest translation of ``shift``, in pixels, per direction


def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4,
                     fill: float = 0.0, flip: bool = True) -> torch.Tensor:
    """Each image of ``images`` (N, rows, cols, channels) padded by ``padding`` with ``fill``,
    cropped back to its size at a random offset, and (``flip``) mirrored left-right with
    probability 1/2."""
    count, rows, cols, _ = images.shape
    padded = torch.nn.functional.pad(images, (0, 0, padding, padding, padding, padding),
                                     value=fill)
    top = torch.randint(0, 2 * padding + 1, (count,), generator=generator)
    left = torch.randint(0, 2 * padding + 1, (count,), generator=generator)
    row_index = top[:, None] + torch.arange(rows)
    col_index = left[:, None] + torch.arange(cols)
    if flip:
        mirrored = torch.rand(count, generator=generator) < 0.5
        col_index = torch.where(mirrored[:, None], col_index.flip(1), col_index)
    return padded[torch.arange(count)[:, None, None], row_index[:, :, None],
                  col_index[:, None, :]]


def random_shift(images: torch.Tensor, image_shape: tuple[int, int, int],
                 generator: torch.Generator, pixels: int = SHIFT_PIXELS,
                 fill: float = 0.0) -> torch.Tensor:
    """Each image moved by a random offset of up to ``pixels`` rows and columns, the uncovered
    border filled with ``fill``. ``images`` is either NHWC (a CNN's input) or flat (N, channels *
    rows * cols) in channels-first order (an MLP's input); the result has the same layout."""
    if images.dim() == 4:
        return random_crop_flip(images, generator, pixels, fill, flip=False)
    channels, rows, cols = image_shape
    nhwc = images.reshape(len(images), channels, rows, cols).permute(0, 2, 3, 1)
    shifted = random_crop_flip(nhwc, generator, pixels, fill, flip=False)
    return shifted.permute(0, 3, 1, 2).reshape(len(images), -1)
