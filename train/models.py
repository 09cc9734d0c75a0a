"""FINN-family 1-bit networks built from ordinary Brevitas layers: the MLPs TFC / SFC / LFC and
the convolutional CNV and VGG-Small; and the binary ResNet-18 of the VISPA / ProxConnect++
CIFAR benchmarks (:class:`BinaryResNet18`), which trains here but FINN cannot build.

The topology follows Brevitas' ``bnn_pynq`` FC models and the FINN paper: a bipolar input
quantizer, three hidden ``QuantLinear -> BatchNorm1d -> bipolar QuantIdentity`` blocks and a
``QuantLinear`` classifier followed by its output normalization, the *head*:

- ``tensor-norm`` (default): Brevitas' ``TensorNorm``, one scalar affine for all classes, as
  in ``bnn_pynq``. It does not change which class is largest, so the build replaces it by a
  top-1 ``LabelSelect`` and the accelerator outputs the class.
- ``batch-norm``: a per-channel ``BatchNorm1d`` (one affine per class); it changes the ranking,
  so it stays on the host and the accelerator outputs the classifier's popcounts.
- ``none``: the classifier's integer dot products are the logits (the local binary trainer).

Weights and activations use the ProxConnect++ pair chosen by name (see
:mod:`xnorflow.train.brevitas_quant`), so the model stays a plain Brevitas model that exports
to QONNX with ``BipolarQuant`` nodes.

Every model has ``image_shape`` (channels, rows, cols) and ``input_shape``, the shape of one
image as the model (and the accelerator) takes it: flat for the MLPs, rows x cols x channels
(NHWC, the order a camera or a frame buffer streams pixels in, and FINN's streaming order) for
the convolutional networks. :func:`model_inputs` turns a data set's flat images into that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from torch import nn
from torch.nn import functional

from .brevitas_quant import PixelQuant, act_quant_for, weight_quant_for
from .configs import (
    CONV_MODELS,
    FREE_MLP,
    HEADS,
    HIDDEN_LAYERS,
    MLP_WIDTHS,
    NOT_BUILDABLE,
    SCALABLE_CONV_MODELS,
)


def head_layer(head: str, num_classes: int) -> list[nn.Module]:
    """The output normalization after the classifier (see the module docstring)."""
    if head == "tensor-norm":
        from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm
        return [TensorNorm()]
    if head == "batch-norm":
        return [nn.BatchNorm1d(num_classes)]
    if head == "none":
        return []
    raise ValueError(f"unknown head {head!r}; choose one of {HEADS + ('none',)}")


class BinaryMLP(nn.Module):
    """W1A1 multilayer perceptron: bipolar input, ``len(hidden)`` binary hidden layers.

    Dropout sits after each activation (0.2 in bnn_pynq); it is the identity at inference,
    so it does not appear in the exported graph. ``batch_norm=False`` drops the hidden
    BatchNorm layers: the sign activations then threshold the integer popcount at 0 (the local
    binary trainer's networks, with ``head="none"``). ``float_activations=True`` passes the
    input unquantized and replaces the hidden bipolar activations by ReLU (binary weights,
    float activations: VISPA's W1A32 setting; FINN's XNOR flow refuses such a model).
    """

    def __init__(self, in_features: int, num_classes: int, hidden: list[int],
                 quantizer: str = "bnn", dropout: float = 0.0, act_quantizer: str | None = None,
                 batch_norm: bool = True, float_activations: bool = False,
                 head: str = "tensor-norm"):
        super().__init__()
        self.image_shape = (in_features,)
        self.input_shape = (in_features,)
        weight_quant = weight_quant_for(quantizer)
        act_quant = act_quant_for(act_quantizer or quantizer)
        # W1A32 takes the pixels as given ([0, 1] with --binarization none): a sign here would
        # turn every non-negative pixel into +1 and leave the network a constant input
        layers: list[nn.Module] = [
            nn.Identity() if float_activations else
            QuantIdentity(act_quant=act_quant, return_quant_tensor=False)]
        width = in_features
        for out in hidden:
            layers.append(QuantLinear(width, out, bias=False, weight_quant=weight_quant))
            if batch_norm:
                layers.append(nn.BatchNorm1d(out))
            layers.append(nn.ReLU() if float_activations else
                          QuantIdentity(act_quant=act_quant, return_quant_tensor=False))
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = out
        layers.append(QuantLinear(width, num_classes, bias=False, weight_quant=weight_quant))
        layers.extend(head_layer(head, num_classes))
        self.features = nn.Sequential(*layers)

    def forward(self, x):
        return self.features(x.flatten(1))


@dataclass(frozen=True)
class ConvTopology:
    """A binary CNN: blocks of 3x3 convolutions (pooled 2x2 after the blocks marked so),
    hidden fully connected layers, classifier."""

    blocks: tuple[tuple[int, ...], ...]   # output channels of each convolution, per block
    pooled: tuple[bool, ...]              # max-pool 2x2 after the block
    padding: int                          # of every 3x3 convolution
    hidden: tuple[int, ...]               # fully connected layers before the classifier

    def output_size(self, size: int) -> int:
        """Rows (or columns) left after the last block from ``size`` input rows; < 1 if
        a convolution or pool runs out of pixels on the way."""
        for block, pooled in zip(self.blocks, self.pooled):
            for _ in block:
                size += 2 * self.padding - 2
                if size < 1:
                    return size
            size = size // 2 if pooled else size
        return size

    def scaled(self, factor: float) -> ConvTopology:
        """The topology with every convolution's channels and every hidden fully connected
        width times ``factor`` (rounded, at least 1)."""
        if factor == 1:
            return self

        def scale(width: int) -> int:
            return max(1, round(width * factor))

        return ConvTopology(tuple(tuple(scale(c) for c in block) for block in self.blocks),
                            self.pooled, self.padding, tuple(scale(w) for w in self.hidden))

    @property
    def min_size(self) -> int:
        """Smallest input rows/cols that leave at least one pixel after the last block."""
        size = 1
        while self.output_size(size) < 1:
            size += 1
        return size


CONV_TOPOLOGIES = {
    # Brevitas bnn_pynq CNV (FINN's flagship): unpadded convolutions 64-64 / 128-128 / 256-256,
    # pooling after the first two blocks, 512-512 fully connected; 32x32 -> 1x1x256.
    "cnv": ConvTopology(((64, 64), (128, 128), (256, 256)), (True, True, False), 0, (512, 512)),
    # VGG-Small (LQ-Nets, VISPA): padded convolutions 128-128 / 256-256 / 512-512, each block
    # pooled, classifier straight after the last block.
    "vgg-small": ConvTopology(((128, 128), (256, 256), (512, 512)), (True, True, True), 1, ()),
}
RESNET_MODELS = ("resnet18",)  # convolutional models that are not a ConvTopology
assert set(CONV_TOPOLOGIES) | set(RESNET_MODELS) == set(CONV_MODELS)
assert set(CONV_TOPOLOGIES) == set(SCALABLE_CONV_MODELS)
assert not set(CONV_TOPOLOGIES) & set(RESNET_MODELS)
assert set(NOT_BUILDABLE) <= set(CONV_MODELS) | set(MLP_WIDTHS)


class BackgroundPaddedConv2d(QuantConv2d):
    """A ``QuantConv2d`` whose padding repeats the background value ``pad_value`` instead of 0.

    A bipolar feature map has no 0: FINN streams it as bits (-1 -> 0, +1 -> 1) and its padding
    unit inserts 0 bits, i.e. -1. Zero padding would be what no hardware computes, so the
    padding of binary activations is -1 in training too (and 0, black, for 8-bit pixels). It is
    an explicit ``Pad`` in the exported graph that xnorflow's build folds into the convolution.
    """

    def __init__(self, in_channels: int, out_channels: int, padding: int, pad_value: float,
                 **kwargs):
        super().__init__(in_channels, out_channels, kernel_size=3, padding=0, bias=False,
                         **kwargs)
        self.background = (padding, pad_value)

    def forward(self, x):
        padding, value = self.background
        if padding:
            x = functional.pad(x, (padding,) * 4, value=value)
        return super().forward(x)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", background_padding={self.background}"


class BinaryCNN(nn.Module):
    """W1A1 convolutional network of a :class:`ConvTopology`, Brevitas bnn_pynq style: each
    convolution and hidden fully connected layer is followed by batch-norm and a bipolar
    activation; max-pooling acts on the bipolar map (on bits it is an OR, so FINN pools 1-bit
    streams); the classifier ends in the ``head`` (see the module docstring).

    Input layer: ``pixels="bipolar"`` takes +-1 images (binarized data, e.g. MNIST);
    ``pixels="uint8"`` takes the integer pixels 0..255 through an 8-bit input quantizer, so the
    first convolution has 1-bit weights and 8-bit inputs (FINN's CNV on CIFAR-10). Images
    smaller than the topology's minimum are padded with background to it by the first
    convolution (28x28 MNIST -> 32x32 for CNV, as LeNet-5 padded MNIST).
    """

    def __init__(self, topology: ConvTopology, image_shape: tuple[int, int, int],
                 num_classes: int, quantizer: str = "bnn", act_quantizer: str | None = None,
                 pixels: str = "bipolar", head: str = "tensor-norm"):
        super().__init__()
        channels, rows, cols = image_shape
        if min(rows, cols) < 1 or channels < 1:
            raise ValueError(f"image shape {image_shape} has no pixels")
        self.image_shape = tuple(image_shape)
        self.input_shape = (rows, cols, channels)
        weight_quant = weight_quant_for(quantizer)
        act_quant = act_quant_for(act_quantizer or quantizer)
        if pixels == "uint8":
            self.input_quant = QuantIdentity(act_quant=PixelQuant, return_quant_tensor=False)
            first_pad = 0.0
        elif pixels == "bipolar":
            self.input_quant = QuantIdentity(act_quant=act_quant, return_quant_tensor=False)
            first_pad = -1.0
        else:
            raise ValueError(f"unknown input layer {pixels!r}; choose bipolar or uint8")
        grow = max(0, topology.min_size - min(rows, cols))
        layers: list[nn.Module] = []
        width = channels
        for block, pooled in zip(topology.blocks, topology.pooled):
            for out in block:
                padding = topology.padding + (-(-grow // 2) if not layers else 0)
                layers += [BackgroundPaddedConv2d(width, out, padding,
                                                  first_pad if not layers else -1.0,
                                                  weight_quant=weight_quant),
                           nn.BatchNorm2d(out, eps=1e-4),
                           QuantIdentity(act_quant=act_quant, return_quant_tensor=False)]
                width = out
            if pooled:
                layers.append(nn.MaxPool2d(2))
        self.features = nn.Sequential(*layers)
        spatial = self._spatial_size(rows, cols)
        fc: list[nn.Module] = []
        width = width * spatial[0] * spatial[1]
        for out in topology.hidden:
            fc += [QuantLinear(width, out, bias=False, weight_quant=weight_quant),
                   nn.BatchNorm1d(out, eps=1e-4),
                   QuantIdentity(act_quant=act_quant, return_quant_tensor=False)]
            width = out
        fc.append(QuantLinear(width, num_classes, bias=False, weight_quant=weight_quant))
        fc.extend(head_layer(head, num_classes))
        self.classifier = nn.Sequential(*fc)

    def _spatial_size(self, rows: int, cols: int) -> tuple[int, int]:
        size = [rows, cols]
        for layer in self.features:
            if isinstance(layer, BackgroundPaddedConv2d):
                size = [s + 2 * layer.background[0] - 2 for s in size]
            elif isinstance(layer, nn.MaxPool2d):
                size = [s // 2 for s in size]
            if min(size) < 1:
                raise ValueError(f"a {rows}x{cols} image is too small for this network")
        return size[0], size[1]

    def forward(self, x):
        x = self.input_quant(x)           # elementwise: the graph input feeds the quantizer
        x = self.features(x.permute(0, 3, 1, 2))   # NHWC -> NCHW for PyTorch's convolutions
        return self.classifier(x.flatten(1))


class BinaryBasicBlock(nn.Module):
    """ResNet basic block of two binary 3x3 convolutions, each with its own real-valued shortcut
    (the Bi-Real / IR-Net / ReCU block that VISPA's and ProxConnect++'s CIFAR code use)::

        y   = hardtanh(BN(conv1(sign(x))) + shortcut(x))
        out = hardtanh(BN(conv2(sign(y))) + y)

    ``conv1``/``conv2`` are 1-bit ``QuantConv2d`` (padding 1, no bias) fed by bipolar
    ``QuantIdentity`` quantizers; the sums and everything on the shortcuts stay real-valued.
    ``shortcut`` is the identity, or where the stride or the width changes, ``AvgPool2d(2)``
    (only for stride 2; ``ceil_mode``, so odd maps give the convolution's output size) then a
    real 1x1 ``nn.Conv2d`` and ``BatchNorm2d``. ``hardtanh`` after each addition, as IR-Net:
    it keeps the real-valued path in [-1, 1], the range of the sign it feeds, and its gradient
    is the clipped straight-through estimator of that sign."""

    def __init__(self, in_channels: int, out_channels: int, stride: int, weight_quant: type,
                 act_quant: type):
        super().__init__()
        self.act1 = QuantIdentity(act_quant=act_quant, return_quant_tensor=False)
        self.conv1 = QuantConv2d(in_channels, out_channels, 3, stride=stride, padding=1,
                                 bias=False, weight_quant=weight_quant)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.clip1 = nn.Hardtanh()
        if stride == 1 and in_channels == out_channels:
            self.shortcut: nn.Module = nn.Identity()
        else:
            pool = [nn.AvgPool2d(2, ceil_mode=True)] if stride != 1 else []
            self.shortcut = nn.Sequential(*pool,
                                          nn.Conv2d(in_channels, out_channels, 1, bias=False),
                                          nn.BatchNorm2d(out_channels))
        self.act2 = QuantIdentity(act_quant=act_quant, return_quant_tensor=False)
        self.conv2 = QuantConv2d(out_channels, out_channels, 3, padding=1, bias=False,
                                 weight_quant=weight_quant)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.clip2 = nn.Hardtanh()

    def forward(self, x):
        y = self.clip1(self.bn1(self.conv1(self.act1(x))) + self.shortcut(x))
        return self.clip2(self.bn2(self.conv2(self.act2(y))) + y)


class BinaryResNet18(nn.Module):
    """Binary ResNet-18 for CIFAR, the VISPA / ProxConnect++ benchmark network (IR-Net / ReCU
    style): a real-valued stem ``Conv2d(channels, 64, 3, padding=1)`` + ``BatchNorm2d``; four
    stages of two :class:`BinaryBasicBlock` (64, 128, 256, 512 channels; strides 1, 2, 2, 2);
    global average pooling and a real-valued ``nn.Linear`` classifier, with no head
    normalization (``head`` does not apply). First and last layers are real-valued as in the
    papers, and they and the shortcuts are plain ``nn.Conv2d``/``nn.Linear``, so VISPA (which
    parametrizes Brevitas ``QuantConv2d``/``QuantLinear`` only) and latent-weight clipping leave
    them alone.

    Input: like :class:`BinaryCNN`, one image is rows x cols x channels (NHWC), permuted here.
    ``pixels="uint8"`` takes the integer pixels 0..255 and maps them to [-1, 1]
    (``2 * p / 255 - 1``, the range of the binary path) before the stem; ``pixels="bipolar"``
    takes +-1 images as they are. Any image of at least 8 x 8 pixels works (28x28 MNIST too:
    28 -> 14 -> 7 -> 4). FINN cannot build it (see ``NOT_BUILDABLE`` in
    :mod:`xnorflow.train.configs`): it trains and evaluates in PyTorch only.
    """

    STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the first block)
    BLOCKS_PER_STAGE = 2

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int,
                 quantizer: str = "bnn", act_quantizer: str | None = None,
                 pixels: str = "uint8"):
        super().__init__()
        channels, rows, cols = image_shape
        if min(rows, cols) < 1 or channels < 1:
            raise ValueError(f"image shape {image_shape} has no pixels")
        if pixels not in ("uint8", "bipolar"):
            raise ValueError(f"unknown input layer {pixels!r}; choose bipolar or uint8")
        self.image_shape = tuple(image_shape)
        self.input_shape = (rows, cols, channels)
        self.pixels = pixels
        weight_quant = weight_quant_for(quantizer)
        act_quant = act_quant_for(act_quantizer or quantizer)
        self.stem = nn.Sequential(nn.Conv2d(channels, 64, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(64))
        blocks: list[nn.Module] = []
        width = 64
        for out, stride in self.STAGES:
            for i in range(self.BLOCKS_PER_STAGE):
                blocks.append(BinaryBasicBlock(width, out, stride if i == 0 else 1,
                                               weight_quant, act_quant))
                width = out
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x):
        if self.pixels == "uint8":
            x = x * (2.0 / 255.0) - 1.0
        x = self.stem(x.permute(0, 3, 1, 2))   # NHWC -> NCHW for PyTorch's convolutions
        return self.fc(self.pool(self.layers(x)).flatten(1))

    def extra_repr(self) -> str:
        return f"pixels={self.pixels}"


def model_inputs(model: nn.Module, images: np.ndarray) -> np.ndarray:
    """A data set's flat (N, channels*rows*cols) images in the layout ``model`` takes."""
    channels_first = (len(images), *model.image_shape)
    if len(model.input_shape) == 1:
        return images.reshape(len(images), -1)
    return np.ascontiguousarray(images.reshape(channels_first).transpose(0, 2, 3, 1))


def mlp_widths(name: str, hidden: list[int] | None = None) -> list[int]:
    """Hidden widths of the MLP ``name``: a named one's, or ``hidden`` for ``mlp``."""
    if name == FREE_MLP:
        if not hidden:
            raise ValueError(f"--model {FREE_MLP} needs its hidden widths")
        return list(hidden)
    if name not in MLP_WIDTHS:
        raise ValueError(f"unknown model {name!r}; choose one of "
                         f"{sorted(MLP_WIDTHS) + [FREE_MLP] + sorted(CONV_MODELS)}")
    return [MLP_WIDTHS[name]] * HIDDEN_LAYERS


def build_model(name: str, image_shape: tuple[int, ...], num_classes: int,
                quantizer: str = "bnn", dropout: float = 0.0, act_quantizer: str | None = None,
                head: str = "tensor-norm", pixels: str = "bipolar",
                hidden: list[int] | None = None, channel_scale: float = 1.0) -> nn.Module:
    """``tfc``/``sfc``/``lfc`` (64/256/1024 neurons x 3 hidden layers), ``mlp`` (the
    ``hidden`` widths), ``cnv``, ``vgg-small`` (channels times ``channel_scale``),
    ``resnet18``. ``quantizer`` is the PC++ pair of the weights, ``act_quantizer`` that of the
    activations (default: the same). ``image_shape`` is (channels, rows, cols), or (features,)
    for an MLP. ``pixels`` selects a CNN's input layer (see :class:`BinaryCNN`). ResNet-18 has
    no head normalization and no dropout: ``head`` and ``dropout`` do not apply to it."""
    if name in CONV_MODELS:
        if len(image_shape) != 3:
            raise ValueError(f"{name} needs images of shape (channels, rows, cols), not "
                             f"{image_shape}")
        if name in RESNET_MODELS:
            return BinaryResNet18(image_shape, num_classes, quantizer, act_quantizer, pixels)
        return BinaryCNN(CONV_TOPOLOGIES[name].scaled(channel_scale), image_shape, num_classes,
                         quantizer, act_quantizer, pixels, head)
    return BinaryMLP(int(np.prod(image_shape)), num_classes, mlp_widths(name, hidden),
                     quantizer, dropout, act_quantizer, head=head)
