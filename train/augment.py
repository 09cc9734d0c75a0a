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


AFFINE_DEGREES = 10.0  # largest rotation of ``affine``, either direction
AFFINE_SCALE = 0.1     # largest relative zoom in or out of ``affine``


def random_affine(images: torch.Tensor, image_shape: tuple[int, int, int],
                  generator: torch.Generator, degrees: float = AFFINE_DEGREES,
                  scale: float = AFFINE_SCALE, pixels: float = SHIFT_PIXELS) -> torch.Tensor:
    """Each +-1 image rotated by up to ``degrees``, zoomed by a factor in [1 - ``scale``, 1 +
    ``scale``] and moved by up to ``pixels`` per direction (continuous draws), interpolated
    bilinearly and binarized again at 0, the uncovered border black (-1). Same layouts as
    :func:`random_shift`. (Simard et al. 2003: affine distortions are what lets an MLP on MNIST
    generalize beyond translation.)"""
    count = len(images)
    channels, rows, cols = image_shape
    flat = images.dim() == 2
    nchw = (images.reshape(count, channels, rows, cols) if flat
            else images.permute(0, 3, 1, 2))
    def uniform():
        return 2 * torch.rand(count, generator=generator, dtype=torch.float64) - 1

    angle = torch.deg2rad(degrees * uniform())
    zoom = 1 + scale * uniform()
    shift_x, shift_y = 2 * pixels * uniform() / cols, 2 * pixels * uniform() / rows
    # affine_grid maps output to input coordinates: the inverse of rotating and zooming
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack([torch.stack([cos, -sin, -shift_x], 1),
                         torch.stack([sin, cos, -shift_y], 1)], 1).to(images.dtype)
    grid = torch.nn.functional.affine_grid(theta, [count, channels, rows, cols],
                                           align_corners=False)
    # interpolate the 0/1 image so that the zero padding is the black background
    bright = torch.nn.functional.grid_sample((nchw + 1) / 2, grid, mode="bilinear",
                                             padding_mode="zeros", align_corners=False)
    moved = torch.where(bright >= 0.5, 1.0, -1.0).to(images.dtype)
    return moved.reshape(count, -1) if flat else moved.permute(0, 2, 3, 1).contiguous()
