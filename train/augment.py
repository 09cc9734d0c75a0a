"""Training-image augmentation, drawn from a seeded generator so that a resumed run sees the same
images as an uninterrupted one:

- crop-flip: random crop with padding 4 and horizontal flip, the standard CIFAR-10 protocol;
- shift: a random translation by up to a few pixels in each direction (no flip: a mirrored digit
  is another symbol), the classic cure for MLPs over-fitting MNIST;
- affine: rotation, zoom and shift, re-binarized.

Each is an :class:`Augmentation` in two halves: :meth:`~Augmentation.draw` takes the random
numbers of a whole (global) batch from a CPU generator, :meth:`~Augmentation.apply` moves the
images on whatever device they are. The draws are therefore the same on a CPU and a GPU, and a
process of a distributed run applies the rows of its share of the batch to its images: the
training set sees the same augmentation at any process count.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

SHIFT_PIXELS = 2  # the largest translation of ``shift``, in pixels, per direction
AFFINE_DEGREES = 10.0  # largest rotation of ``affine``, either direction
AFFINE_SCALE = 0.1     # largest relative zoom in or out of ``affine``


Drawn = dict[str, torch.Tensor]   # per-image random numbers of a batch, first dimension = images


def rows_of(drawn: Drawn, rows: slice) -> Drawn:
    """The draws of the images ``rows`` of the batch (a process's share)."""
    return {key: value[rows] for key, value in drawn.items()}


class Augmentation:
    def draw(self, count: int, generator: torch.Generator) -> Drawn:
        raise NotImplementedError

    def apply(self, images: torch.Tensor, drawn: Drawn) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return self.apply(images, self.draw(len(images), generator))


@dataclass(frozen=True)
class CropFlip(Augmentation):
    """Each image (N, rows, cols, channels) padded by ``padding`` with ``fill``, cropped back to
    its size at a random offset, and (``flip``) mirrored left-right with probability 1/2."""

    padding: int = 4
    fill: float = 0.0
    flip: bool = True

    def draw(self, count: int, generator: torch.Generator) -> Drawn:
        span = 2 * self.padding + 1
        drawn = {"top": torch.randint(0, span, (count,), generator=generator),
                 "left": torch.randint(0, span, (count,), generator=generator)}
        if self.flip:
            drawn["mirrored"] = torch.rand(count, generator=generator) < 0.5
        return drawn

    def apply(self, images: torch.Tensor, drawn: Drawn) -> torch.Tensor:
        count, rows, cols, _ = images.shape
        device, p = images.device, self.padding
        padded = torch.nn.functional.pad(images, (0, 0, p, p, p, p), value=self.fill)
        # the draws are small CPU tensors: copied without waiting for the GPU's queue
        on = {key: value.to(device, non_blocking=True) for key, value in drawn.items()}
        row_index = on["top"][:, None] + torch.arange(rows, device=device)
        col_index = on["left"][:, None] + torch.arange(cols, device=device)
        if self.flip:
            col_index = torch.where(on["mirrored"][:, None], col_index.flip(1), col_index)
        return padded[torch.arange(count, device=device)[:, None, None], row_index[:, :, None],
                      col_index[:, None, :]]


def _as_nhwc(images: torch.Tensor, image_shape: tuple[int, int, int]) -> torch.Tensor:
    """NHWC view of a CNN's NHWC input or an MLP's flat, channels-first input."""
    if images.dim() == 4:
        return images
    channels, rows, cols = image_shape
    return images.reshape(len(images), channels, rows, cols).permute(0, 2, 3, 1)


def _like(moved: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """``moved`` (NHWC) back in the layout of ``images``."""
    if images.dim() == 4:
        return moved
    return moved.permute(0, 3, 1, 2).reshape(len(images), -1)


@dataclass(frozen=True)
class Shift(Augmentation):
    """Each image moved by a random offset of up to ``pixels`` rows and columns, the uncovered
    border filled with ``fill``. Images are either NHWC (a CNN's input) or flat (N, channels *
    rows * cols) in channels-first order (an MLP's input); the result has the same layout."""

    image_shape: tuple[int, int, int]
    pixels: int = SHIFT_PIXELS
    fill: float = 0.0

    @property
    def _crop(self) -> CropFlip:
        return CropFlip(self.pixels, self.fill, flip=False)

    def draw(self, count: int, generator: torch.Generator) -> Drawn:
        return self._crop.draw(count, generator)

    def apply(self, images: torch.Tensor, drawn: Drawn) -> torch.Tensor:
        return _like(self._crop.apply(_as_nhwc(images, self.image_shape), drawn), images)


@dataclass(frozen=True)
class Affine(Augmentation):
    """Each +-1 image rotated by up to ``degrees``, zoomed by a factor in [1 - ``scale``, 1 +
    ``scale``] and moved by up to ``pixels`` per direction (continuous draws), interpolated
    bilinearly and binarized again at 0, the uncovered border black (-1). Same layouts as
    :class:`Shift`. (Simard et al. 2003: affine distortions are what lets an MLP on MNIST
    generalize beyond translation.)"""

    image_shape: tuple[int, int, int]
    degrees: float = AFFINE_DEGREES
    scale: float = AFFINE_SCALE
    pixels: float = SHIFT_PIXELS

    def draw(self, count: int, generator: torch.Generator) -> Drawn:
        def uniform():
            return 2 * torch.rand(count, generator=generator, dtype=torch.float64) - 1

        return {"angle": uniform(), "zoom": uniform(), "shift_x": uniform(),
                "shift_y": uniform()}

    def apply(self, images: torch.Tensor, drawn: Drawn) -> torch.Tensor:
        count = len(images)
        channels, rows, cols = self.image_shape
        nchw = _as_nhwc(images, self.image_shape).permute(0, 3, 1, 2)
        angle = torch.deg2rad(self.degrees * drawn["angle"])
        zoom = 1 + self.scale * drawn["zoom"]
        shift_x = 2 * self.pixels * drawn["shift_x"] / cols
        shift_y = 2 * self.pixels * drawn["shift_y"] / rows
        # affine_grid maps output to input coordinates: the inverse of rotating and zooming
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack([torch.stack([cos, -sin, -shift_x], 1),
                             torch.stack([sin, cos, -shift_y], 1)], 1)
        theta = theta.to(images.dtype).to(images.device, non_blocking=True)
        grid = torch.nn.functional.affine_grid(theta, [count, channels, rows, cols],
                                               align_corners=False)
        # interpolate the 0/1 image so that the zero padding is the black background
        bright = torch.nn.functional.grid_sample((nchw + 1) / 2, grid, mode="bilinear",
                                                 padding_mode="zeros", align_corners=False)
        moved = torch.where(bright >= 0.5, 1.0, -1.0).to(images.dtype)
        return _like(moved.permute(0, 2, 3, 1).contiguous(), images)


# ------------------------------------------------------------------ one-call forms
def random_crop_flip(images: torch.Tensor, generator: torch.Generator, padding: int = 4,
                     fill: float = 0.0, flip: bool = True) -> torch.Tensor:
    return CropFlip(padding, fill, flip)(images, generator)


def random_shift(images: torch.Tensor, image_shape: tuple[int, int, int],
                 generator: torch.Generator, pixels: int = SHIFT_PIXELS,
                 fill: float = 0.0) -> torch.Tensor:
    return Shift(tuple(image_shape), pixels, fill)(images, generator)


def random_affine(images: torch.Tensor, image_shape: tuple[int, int, int],
                  generator: torch.Generator, degrees: float = AFFINE_DEGREES,
                  scale: float = AFFINE_SCALE, pixels: float = SHIFT_PIXELS) -> torch.Tensor:
    return Affine(tuple(image_shape), degrees, scale, pixels)(images, generator)
