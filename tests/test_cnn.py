"""Binary CNNs (CNV, VGG-Small and small networks of the same layers) through every stage:
models, data layout, augmentation, configurations, QONNX export, FINN streamlining and
conversion (bit-exact per stage), C simulation, and the errors a user can hit."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
from brevitas.nn import QuantLinear
from small_data import write_mnist_subset, write_random_cifar
from torch import nn

from xnorflow.export.qonnx_export import check_binary_model, export_qonnx_model, save_model
from xnorflow.export.run_export import Reference, export_model
from xnorflow.export.verify import execute_graph, torch_logits
from xnorflow.options import ConfigError
from xnorflow.train.augment import random_affine, random_crop_flip, random_shift
from xnorflow.train.brevitas_quant import act_quant_for, weight_quant_for
from xnorflow.train.configs import TrainConfig, VispaConfig
from xnorflow.train.data import load_dataset
from xnorflow.train.models import (
    CONV_TOPOLOGIES,
    BackgroundPaddedConv2d,
    BinaryCNN,
    ConvTopology,
    build_model,
    model_inputs,
)

# Two blocks of small convolutions with every layer kind CNV and VGG-Small use: padded and
# unpadded 3x3 convolutions, max-pooling of a bipolar map, a hidden fully connected layer.
TINY = ConvTopology(((8, 8), (16,)), (True, False), 1, (32,))
TINY_UNPADDED = ConvTopology(((8,), (16,)), (True, False), 0, ())


def _randomize_batch_norms(model: nn.Module, seed: int = 0) -> nn.Module:
    """Batch-norm statistics of a trained network (spread thresholds, some negative scales),
    so that an untrained network exercises every threshold path."""
    generator = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            n = module.num_features
            module.running_mean.copy_(torch.rand(n, generator=generator) * 10 - 5)
            module.running_var.copy_(torch.rand(n, generator=generator) * 20 + 1)
            module.weight.data.copy_(torch.rand(n, generator=generator) * 2 - 1)
            module.bias.data.copy_(torch.rand(n, generator=generator) * 2 - 1)
    return model.eval()


def _images(model: nn.Module, count: int, pixels: str, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (count, *model.input_shape)
    if pixels == "uint8":
        return rng.integers(0, 256, shape).astype(np.float32)
    return np.where(rng.random(shape) < 0.5, -1.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------------------------ models
def test_cnv_pads_28x28_images_to_32x32_and_reaches_one_pixel():
    model = build_model("cnv", (1, 28, 28), 10)
    first = model.features[0]
    assert isinstance(first, BackgroundPaddedConv2d) and first.background == (2, -1.0)
    assert model._spatial_size(28, 28) == (1, 1)
    assert model.classifier[0].in_features == 256
    assert model(torch.ones(2, 28, 28, 1)).shape == (2, 10)


def test_cnv_on_cifar_shape_is_brevitas_cnv():
    model = build_model("cnv", (3, 32, 32), 10, pixels="uint8")
    convs = [m for m in model.features if isinstance(m, BackgroundPaddedConv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256, 256]
    assert all(c.background[0] == 0 for c in convs)  # CNV's convolutions are unpadded
    assert [m.out_features for m in model.classifier if isinstance(m, nn.Linear)] == \
        [512, 512, 10]
    assert model.input_shape == (32, 32, 3)


def test_vgg_small_pads_every_binary_map_with_minus_one():
    model = build_model("vgg-small", (3, 32, 32), 10, pixels="uint8")
    convs = [m for m in model.features if isinstance(m, BackgroundPaddedConv2d)]
    assert [c.out_channels for c in convs] == [128, 128, 256, 256, 512, 512]
    assert convs[0].background == (1, 0.0)  # black pixels around an 8-bit image
    assert all(c.background == (1, -1.0) for c in convs[1:])
    assert model.classifier[0].in_features == 512 * 4 * 4


def test_minimum_image_size_follows_from_the_topology():
    assert CONV_TOPOLOGIES["cnv"].min_size == 32      # 32 -> 30 -> 28 -> 14 -> ... -> 1
    assert CONV_TOPOLOGIES["vgg-small"].min_size == 8  # three 2x2 pools of padded maps
    assert TINY_UNPADDED.min_size == 8 and TINY.min_size == 2
    assert TINY_UNPADDED.output_size(7) < 1 <= TINY_UNPADDED.output_size(8)
    # smaller images are padded up to the minimum by the first convolution
    model = BinaryCNN(TINY_UNPADDED, (1, 3, 3), 10)
    assert model.features[0].background == (3, -1.0)
    assert model.eval()(torch.ones(1, 3, 3, 1)).shape == (1, 10)


def test_model_inputs_are_nhwc_views_of_the_flat_channel_major_images():
    model = build_model("cnv", (3, 32, 32), 10, pixels="uint8")
    flat = np.arange(2 * 3 * 32 * 32, dtype=np.float32).reshape(2, -1)
    nhwc = model_inputs(model, flat)
    assert nhwc.shape == (2, 32, 32, 3)
    # pixel (row 5, col 7) of channel 2 of image 1 sits at 2*1024 + 5*32 + 7 in the flat row
    assert nhwc[1, 5, 7, 2] == flat[1, 2 * 1024 + 5 * 32 + 7]
    mlp = build_model("tfc", (1, 8, 8), 10)
    assert model_inputs(mlp, flat[:, :64]).shape == (2, 64)


# ------------------------------------------------------------------------------ augmentation
def test_crop_flip_is_seeded_and_moves_pixels_within_the_padding():
    images = torch.arange(2 * 8 * 8 * 3, dtype=torch.float32).reshape(2, 8, 8, 3)
    first = random_crop_flip(images, torch.Generator().manual_seed(3), padding=2, fill=-7.0)
    again = random_crop_flip(images, torch.Generator().manual_seed(3), padding=2, fill=-7.0)
    assert torch.equal(first, again)
    assert first.shape == images.shape
    kept = first[first != -7.0]
    assert set(kept.tolist()) <= set(images.flatten().tolist())  # only moved, never changed
    for image, out in zip(images, first):  # each output is a shifted (maybe mirrored) image
        found = False
        padded = nn.functional.pad(image, (0, 0, 2, 2, 2, 2), value=-7.0)
        for top in range(5):
            for left in range(5):
                crop = padded[top:top + 8, left:left + 8]
                found |= torch.equal(out, crop) or torch.equal(out, crop.flip(1))
        assert found


def test_shift_moves_a_flat_channels_first_image_without_mirroring_it():
    # 2 images of 2 channels x 6 x 5 pixels, flat in channels-first order, as an MLP takes them
    images = torch.arange(2 * 2 * 6 * 5, dtype=torch.float32).reshape(2, 60)
    shifted = random_shift(images, (2, 6, 5), torch.Generator().manual_seed(1), pixels=2,
                           fill=-1.0)
    assert shifted.shape == images.shape
    assert torch.equal(shifted, random_shift(images, (2, 6, 5),
                                             torch.Generator().manual_seed(1), 2, -1.0))
    for image, out in zip(images.reshape(2, 2, 6, 5), shifted.reshape(2, 2, 6, 5)):
        padded = nn.functional.pad(image, (2, 2, 2, 2), value=-1.0)
        offsets = [(top, left) for top in range(5) for left in range(5)
                   if torch.equal(out, padded[:, top:top + 6, left:left + 5])]
        assert offsets  # both channels moved together, by one offset within 2 pixels
    assert not torch.equal(shifted, images)  # 2 images, 25 offsets each: not both unmoved



def _bipolar_images(count: int, channels: int, rows: int, cols: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    return torch.where(torch.rand(count, channels, rows, cols, generator=generator) < 0.3, 1.0,
                       -1.0)


def test_affine_without_rotation_zoom_or_shift_is_the_identity():
    images = _bipolar_images(4, 2, 7, 6)
    unmoved = random_affine(images.reshape(4, -1), (2, 7, 6), torch.Generator().manual_seed(0),
                            degrees=0, scale=0, pixels=0)
    assert torch.equal(unmoved, images.reshape(4, -1))


def test_affine_keeps_both_layouts_binary_and_seeded():
    nchw = _bipolar_images(5, 3, 9, 8)
    flat = nchw.reshape(5, -1)
    nhwc = nchw.permute(0, 2, 3, 1).contiguous()
    from_flat = random_affine(flat, (3, 9, 8), torch.Generator().manual_seed(7))
    from_nhwc = random_affine(nhwc, (3, 9, 8), torch.Generator().manual_seed(7))
    assert from_flat.shape == flat.shape and from_nhwc.shape == nhwc.shape
    assert set(from_flat.unique().tolist()) <= {-1.0, 1.0}
    # the same draws move an image the same way whatever its layout; channels move together
    assert torch.equal(from_flat.reshape(5, 3, 9, 8), from_nhwc.permute(0, 3, 1, 2))
    assert torch.equal(from_flat, random_affine(flat, (3, 9, 8),
                                                torch.Generator().manual_seed(7)))
    assert not torch.equal(from_flat, flat)


def test_affine_rotates_a_bar_by_at_most_the_bound():
    # a horizontal bar through the centre of a 21x21 image, rotated by up to 10 degrees: its
    # ends move vertically by at most 8 * tan(10 deg) ~ 1.4 pixels, plus the 2-pixel shift
    image = -torch.ones(1, 1, 21, 21)
    image[0, 0, 10, 2:19] = 1.0
    moved = random_affine(image.repeat(50, 1, 1, 1).reshape(50, -1), (1, 21, 21),
                          torch.Generator().manual_seed(0)).reshape(50, 21, 21)
    rows = [torch.nonzero(m > 0)[:, 0] for m in moved]
    assert all(len(r) > 0 for r in rows)  # the bar stays in the picture
    assert max(int(r.max() - r.min()) for r in rows) <= 2 * 2 + 3  # tilt of the bar, bounded
    assert any(int(r.max() - r.min()) >= 1 for r in rows)  # and some are visibly rotated

# ----------------------------------------------------------------------------- configurations
def test_cifar_conv_runs_default_to_an_8_bit_first_layer():
    assert TrainConfig(model="cnv", dataset="cifar10").binarization == "uint8"
    assert TrainConfig(model="cnv", dataset="mnist").binarization == "threshold"
    assert TrainConfig(model="sfc", dataset="cifar10").binarization == "threshold"
    assert TrainConfig(model="cnv", dataset="cifar10").augmentation == "crop-flip"
    assert TrainConfig(model="cnv", dataset="mnist").augmentation is None
    assert TrainConfig(model="cnv", dataset="cifar10", augment="none").augmentation is None
    assert TrainConfig(model="lfc", dataset="mnist", augment="shift").augmentation == "shift"
    assert TrainConfig(model="lfc", dataset="mnist", augment="affine").augmentation == "affine"


@pytest.mark.parametrize("options, message", [
    ({"model": "sfc", "binarization": "uint8"}, "for the convolutional models"),
    ({"model": "cnv", "binarization": "none"}, "float pixels"),
    ({"model": "vgg-small", "dropout": 0.2}, "--dropout is for the MLPs"),
    ({"model": "cnv", "dataset": "cifar10", "augment": "affine"}, "needs a sign binarization"),
])
def test_conv_options_that_cannot_work_are_refused(options, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**options)


def test_vispa_float_activations_are_mlp_only():
    with pytest.raises(ConfigError, match="W1A32"):
        VispaConfig(model="cnv", activations="float")


# -------------------------------------------------------------------------------------- data
def test_cifar_folder_loads_as_8_bit_pixels(tmp_path):
    folder = write_random_cifar(tmp_path / "cifar-10-batches-py", per_batch=4)
    data = load_dataset("cifar10", tmp_path, "uint8")  # the parent folder is accepted too
    assert data.image_shape == (3, 32, 32)
    assert len(data.train) == 20 and len(data.test) == 4
    assert data.train.images.max() <= 255 and np.all(data.train.images == data.train.images
                                                     .round())
    with open(folder / "test_batch", "wb") as f:
        f.write(b"not a pickle")
    with pytest.raises(Exception, match="test_batch: not a CIFAR-10 batch pickle"):
        load_dataset("cifar10", folder, "uint8")


# ------------------------------------------------------------------------------------ export
def test_an_8_bit_quantizer_is_accepted_only_at_the_input():
    from brevitas.nn import QuantIdentity

    from xnorflow.export.qonnx_export import UnsupportedModelError
    from xnorflow.train.brevitas_quant import PixelQuant

    model = BinaryCNN(TINY, (1, 8, 8), 10, pixels="uint8")
    check_binary_model(model)
    model.features[2] = QuantIdentity(act_quant=PixelQuant, return_quant_tensor=False)
    with pytest.raises(UnsupportedModelError, match=r"features.2 \(QuantIdentity\): "
                                                    r"activations are 8-bit"):
        check_binary_model(model)


@pytest.mark.parametrize("pixels, input_type", [("bipolar", "BIPOLAR"), ("uint8", "UINT8")])
def test_export_types_the_input_and_matches_pytorch(pixels, input_type):
    model = _randomize_batch_norms(BinaryCNN(TINY, (3, 8, 8), 10, pixels=pixels))
    wrapper = export_qonnx_model(model)
    assert wrapper.get_tensor_shape(wrapper.graph.input[0].name) == [1, 8, 8, 3]
    assert wrapper.get_tensor_datatype(wrapper.graph.input[0].name).name == input_type
    images = _images(model, 40, pixels)
    assert np.array_equal(execute_graph(wrapper, images, progress=False),
                          torch_logits(model, images))


def test_batched_execution_of_sliding_windows_equals_image_by_image(tmp_path):
    """qonnx's Im2Col executor mixes the images of a batch; execute_graph moves it to a
    batch-safe domain (xnorflow.export.batched_ops)."""
    model = _randomize_batch_norms(BinaryCNN(TINY, (1, 8, 8), 10))
    from xnorflow.hw.finn.env import prepare_finn

    prepare_finn(tmp_path / "codegen")
    from finn.transformation.qonnx.convert_qonnx_to_finn import ConvertQONNXtoFINN

    from xnorflow.hw.finn.transforms import LowerConvsWithBackground

    finn_onnx = export_qonnx_model(model).transform(ConvertQONNXtoFINN())
    lowered = finn_onnx.transform(LowerConvsWithBackground())
    assert lowered.get_nodes_by_op_type("Im2Col") and not lowered.get_nodes_by_op_type("Conv")
    images = _images(model, 12, "bipolar", seed=4)
    batched = execute_graph(lowered, images, progress=False, batch_size=6)
    single = execute_graph(lowered, images, progress=False, batch_size=1)
    assert np.array_equal(batched, single)
    assert np.array_equal(single, torch_logits(model, images))


# ------------------------------------------------------------------------------ FINN flow
def _build(tmp_path, model, pixels, count=60, **options):
    from xnorflow.hw.finn.build import run_build
    from xnorflow.hw.finn.options import BuildOptions
    from xnorflow.hw.finn.verify import verify_build

    images = _images(model, count, pixels, seed=1)
    reference = Reference(images, np.zeros(count, np.int64), torch_logits(model, images), count)
    out = tmp_path / "build"
    out.mkdir()
    assert export_model(model, out / "model.qonnx.onnx", reference, progress=False).identical
    run_build(out / "model.qonnx.onnx", out,
              BuildOptions(**{"target_fps": 2000, "until": "estimates", **options}))
    return out, reference, verify_build(out, images, reference.logits, progress=False)


@pytest.mark.parametrize("topology, shape, pixels", [
    (TINY, (1, 8, 8), "bipolar"),          # bipolar input padded with -1 into the first conv
    (TINY, (3, 8, 8), "uint8"),            # 8-bit first layer: a quantized (non-XNOR) MVAU
    (TINY_UNPADDED, (1, 12, 12), "bipolar"),
])
def test_every_finn_stage_of_a_cnn_is_identical_to_pytorch(tmp_path, topology, shape, pixels):
    model = _randomize_batch_norms(BinaryCNN(topology, shape, 10, pixels=pixels), seed=2)
    out, _, comparisons = _build(tmp_path, model, pixels)
    assert [c.stage for c in comparisons] == ["FINN-ONNX", "streamlined", "hardware layers",
                                              "folded dataflow"]
    for comparison in comparisons:
        assert comparison.identical, comparison.summary()
    from qonnx.core.modelwrapper import ModelWrapper

    hw = ModelWrapper(str(out / "intermediate_models" / "step_convert_to_hw_xnor.onnx"))
    kinds = {n.op_type for n in hw.graph.node}
    assert {"ConvolutionInputGenerator", "MVAU", "Pool", "LabelSelect"} <= kinds
    mvaus = [n for n in hw.graph.node if n.op_type == "MVAU"]
    from qonnx.custom_op.registry import getCustomOp

    xnor = [getCustomOp(n).get_nodeattr("binaryXnorMode") for n in mvaus]
    assert xnor == [int(pixels == "bipolar")] + [1] * (len(mvaus) - 1)
    if shape[1] < topology.min_size or topology.padding:
        assert "FMPadding" in kinds


def test_cppsim_of_a_cnn_is_identical_and_names_the_layers_it_ran_in_python(tmp_path,
                                                                               finn_hlslib):
    from xnorflow.hw.sim.cppsim import RTL_REASON, Toolchain, simulate_build

    model = _randomize_batch_norms(BinaryCNN(TINY, (1, 8, 8), 10), seed=3)
    out, reference, _ = _build(tmp_path, model, "bipolar", count=20)
    result = simulate_build(out, reference.images, reference.logits, None,
                            Toolchain.find(finn_hlslib), batch=10, progress=False)
    assert result.identical, result.summary()
    assert result.comparison.argmax_matches == 20 and result.equal_to_python == 20
    compiled = set(result.compile.compiled + result.compile.cached)
    assert {"MVAU_hls_0", "MVAU_hls_1", "MVAU_hls_2", "MVAU_hls_3", "MVAU_hls_4",
            "LabelSelect_hls_0"} <= compiled
    python = result.compile.python
    assert python["ConvolutionInputGenerator_rtl_0"] == RTL_REASON
    assert all(name in python or name in compiled
               for name in ("Pool_hls_0", "FMPadding_rtl_0"))
    assert "in Python:" in result.summary()


# ---------------------------------------------------------------------------------- errors
class _Net(nn.Module):
    """One convolution block and a classifier, arranged as a user might get it wrong."""

    def __init__(self, block: list[nn.Module], flat: int):
        super().__init__()
        self.image_shape, self.input_shape = (1, 8, 8), (8, 8, 1)
        self.quant = _act()
        self.block = nn.Sequential(*block)
        self.classifier = QuantLinear(flat, 10, bias=False, weight_quant=weight_quant_for("bnn"))

    def forward(self, x):
        return self.classifier(self.block(self.quant(x).permute(0, 3, 1, 2)).flatten(1))


def _act():
    from brevitas.nn import QuantIdentity

    return QuantIdentity(act_quant=act_quant_for("bnn"), return_quant_tensor=False)


def _build_only(tmp_path, model):
    from xnorflow.hw.finn.build import run_build
    from xnorflow.hw.finn.options import BuildOptions

    out = tmp_path / "bad"
    out.mkdir()
    save_model(export_qonnx_model(model.eval()), out / "model.onnx")
    run_build(out / "model.onnx", out, BuildOptions(target_fps=1000, until="estimates"))


def test_zero_padding_of_a_bipolar_map_is_refused_with_the_fix(tmp_path):
    from brevitas.nn import QuantConv2d

    from xnorflow.hw.finn.transforms import StreamliningError

    conv = QuantConv2d(1, 8, 3, padding=1, bias=False, weight_quant=weight_quant_for("bnn"))
    model = _Net([conv, nn.BatchNorm2d(8), _act()], 8 * 8 * 8)
    with pytest.raises(StreamliningError, match=r"\(PyTorch block.0\) pads its bipolar input "
                                                r"with zeros.*BackgroundPaddedConv2d"):
        _build_only(tmp_path, model)


@pytest.mark.parametrize("pixels, value, message", [
    # a Pad(0) on +-1 data (the exporter merges it into the Conv's own pads): no such bit
    ("bipolar", 0.0, r"Conv_0 \(PyTorch features.0\) pads its bipolar input with zeros"),
    # FINN's padding unit pads pixels with 0 only
    ("uint8", -1.0, r"pads the input of Conv_0 \(PyTorch features.0\) with -1, but FINN's "
                      r"padding unit inserts 0 into a non-binary map"),
])
def test_padding_with_a_value_the_hardware_cannot_insert_is_refused(tmp_path, pixels, value,
                                                                    message):
    from xnorflow.hw.finn.transforms import StreamliningError

    model = BinaryCNN(TINY, (1, 8, 8), 10, pixels=pixels)
    model.features[0].background = (1, value)
    with pytest.raises(StreamliningError, match=message + r".*pad_value=-?[01]"):
        _build_only(tmp_path, model)


def test_pooling_before_the_activation_names_the_layer_and_the_fix(tmp_path):
    from xnorflow.hw.finn.transforms import StreamliningError

    conv = BackgroundPaddedConv2d(1, 8, 0, -1.0, weight_quant=weight_quant_for("bnn"))
    model = _randomize_batch_norms(_Net([conv, nn.BatchNorm2d(8), nn.MaxPool2d(2), _act()],
                                        8 * 3 * 3))
    with pytest.raises(StreamliningError) as caught:
        _build_only(tmp_path, model)
    first = str(caught.value).splitlines()[1]  # the likeliest cause comes first
    assert "did not become FINN hardware layers" in str(caught.value)
    assert re.search(r"\(PyTorch block.2\): MaxPool(NHWC)?: max-pooling of values that are not "
                     r"1-bit: pool after the bipolar activation", first)


def test_a_folding_json_with_too_many_input_folds_is_refused(tmp_path):
    import json

    from xnorflow.hw.finn.options import FoldingConfigError

    model = _randomize_batch_norms(BinaryCNN(TINY_UNPADDED, (1, 48, 48), 10))  # MW 16*21*21
    folding = tmp_path / "folding.json"
    folding.write_text(json.dumps({"MVAU_hls_2": {"PE": 1, "SIMD": 1}}))
    with pytest.raises(FoldingConfigError, match=r"MVAU_hls_2: SIMD = 1 leaves more than 1024 "
                                                 r"input folds \(7056 inputs\).*choose one of "
                                                 r"7, 8, 9, 12,"):
        _build(tmp_path, model, "bipolar", count=2, target_fps=None,
               folding_config=str(folding))


@pytest.mark.parametrize("search", ["finn", "balanced"])
def test_folding_stays_within_the_hls_input_fold_limit(tmp_path, search):
    """FINN's SetFolding would leave SIMD 1 (raised by step_within_hls_limits); xnorflow's
    search never offers less than MW / 1024."""
    from qonnx.core.modelwrapper import ModelWrapper
    from qonnx.custom_op.registry import getCustomOp

    model = _randomize_batch_norms(BinaryCNN(TINY_UNPADDED, (1, 48, 48), 10))
    out, _, comparisons = _build(tmp_path, model, "bipolar", count=4, target_fps=10,
                                 folding_search=search)
    assert all(c.identical for c in comparisons)
    folded = ModelWrapper(str(out / "intermediate_models" / "step_apply_folding_config.onnx"))
    classifier = getCustomOp(folded.get_node_from_name("MVAU_hls_2"))
    assert classifier.get_nodeattr("MW") == 7056 and classifier.get_nodeattr("SIMD") == 7


# ------------------------------------------------------------------------- training runs
def _fit(config, out, stop_after=None, resume=False):
    from xnorflow.train.trainer import Trainer
    from xnorflow.train.vispa import VispaTrainer

    trainer_class = VispaTrainer if isinstance(config, VispaConfig) else Trainer
    trainer = trainer_class(config, out, show_progress=False, verbose=False)
    if resume:
        trainer.resume()
    trainer.fit(stop_after=stop_after)
    return trainer


def _same_weights(a, b) -> bool:
    sa, sb = a.model.state_dict(), b.model.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


@pytest.mark.parametrize("config_class, options", [
    (TrainConfig, {"quantizer": "bnn++"}),
    (VispaConfig, {"rank": 2, "ensemble_samples": 2, "warmup_epochs": 1}),
])
def test_augmented_cnv_runs_on_a_cifar_folder_resume_bit_identically(tmp_path, config_class,
                                                                    options):
    """Random crops and flips are drawn from (seed, epoch): a run resumed after epoch 1 ends
    with the weights of the uninterrupted run."""
    write_random_cifar(tmp_path / "cifar", per_batch=6)
    config = config_class(model="cnv", dataset="cifar10", data_dir=str(tmp_path / "cifar"),
                          epochs=2, batch_size=10, threads=1, **options)
    assert config.binarization == "uint8" and config.augmentation == "crop-flip"
    straight = _fit(config, tmp_path / "straight")
    _fit(config, tmp_path / "split", stop_after=1)
    resumed = _fit(config, tmp_path / "split", resume=True)
    assert _same_weights(straight, resumed)
    assert [r.test_loss for r in straight.history] == [r.test_loss for r in resumed.history]
    unaugmented = _fit(config_class(**{**config.__dict__, "augment": "none"}),
                       tmp_path / "plain")
    assert not _same_weights(straight, unaugmented)  # the crops did change what was learnt


def test_a_vispa_cnv_deploys_sign_m_through_export(tmp_path, mnist_dir):
    """VISPA parametrizes the convolution weights too; model.pt holds sign(m) as a plain
    BinaryCNN that exports and matches PyTorch."""
    from xnorflow.stages.export import export_stage
    from xnorflow.train.vispa import vispa_layers

    data = write_mnist_subset(mnist_dir, tmp_path / "mnist", train=60, test=30)
    config = VispaConfig(model="cnv", dataset="mnist", data_dir=str(data), epochs=1,
                         batch_size=20, rank=2, ensemble_samples=2, threads=1)
    trainer = _fit(config, tmp_path / "run")
    layers = vispa_layers(trainer.model)
    assert sum(isinstance(layer, BackgroundPaddedConv2d) for layer, _ in layers) == 6
    assert layers[0][1].z.shape == (2, *layers[0][0].parametrizations.weight.original.shape)
    result = export_stage(tmp_path / "run", verify=30, progress=False)
    assert result.identical and result.comparison.images == 30


# ----------------------------------------------------------- as a new user: CLI, end to end
@pytest.mark.slow
def test_cli_cnv_on_mnist_trains_builds_simulates_and_deploys_identically(tmp_path, mnist_dir,
                                                                         finn_hlslib, capsys):
    """The issue's check: `xnorflow train --model cnv --dataset mnist ... --epochs 1`, then
    `xnorflow build RUN --target-fps 1000` prints every stage identical on real images (here
    with cppsim of every HLS layer on 10 of them), and the build deploys as a bundle whose
    packed bytes give the same classes."""
    import json
    import subprocess
    import sys

    from xnorflow.cli import main

    data = write_mnist_subset(mnist_dir, tmp_path / "mnist", train=2000, test=300)
    run = tmp_path / "cnv"
    assert main(["train", "--model", "cnv", "--dataset", "mnist", "--data-dir", str(data),
                 "--epochs", "1", "--out", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["build", str(run), "--target-fps", "1000", "--verify", "300", "--cppsim", "10",
                 "--finn-hlslib", str(finn_hlslib), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for stage in ("QONNX: argmax 300/300 identical", "FINN-ONNX: argmax 300/300 identical",
                  "streamlined: class 300/300 identical", "hardware layers: class 300/300 "
                  "identical", "folded dataflow: class 300/300 identical",
                  "cppsim: argmax 10/10 identical to PyTorch, outputs 10/10 equal",
                  "target 1,000 FPS reached", "resources fit Pynq-Z1"):
        assert stage in printed, printed
    summary = json.loads((run / "build-Pynq-Z1" / "build_summary.json").read_text())
    assert summary["cppsim"]["identical"]
    bundle = tmp_path / "bundle"
    assert main(["deploy", str(run / "build-Pynq-Z1"), "--out", str(bundle), "--images",
                 "50"]) == 0
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["input"] == ("28 x 28 x 1 (rows x columns x channels) values of type "
                                 "BINARY: bits, 1 for +1 and 0 for -1")
    result = subprocess.run([sys.executable, str(bundle / "validate.py"), "--simulate",
                             "--images", "50"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    assert "50/50 identical" in result.stdout


@pytest.mark.slow
def test_cli_vgg_small_on_a_cifar_folder_builds_identically(tmp_path, capsys):
    """The same for VGG-Small with a random CIFAR-shaped folder: an 8-bit first layer, -1
    padding of every binary map, three pools, an 8192-input classifier."""
    from xnorflow.cli import main

    write_random_cifar(tmp_path / "cifar-10-batches-py", per_batch=10)
    run = tmp_path / "vgg"
    assert main(["train", "--model", "vgg-small", "--dataset", "cifar10", "--data-dir",
                 str(tmp_path), "--epochs", "1", "--batch-size", "25", "--out", str(run),
                 "--no-progress"]) == 0
    capsys.readouterr()
    # VGG-Small at this folding needs more LUT and BRAM than a Pynq-Z1 has: exit 4 (misfit)
    # without --allow-misfit; the design and its checks are complete either way
    assert main(["build", str(run), "--target-fps", "1000", "--verify", "10",
                 "--allow-misfit", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for stage in ("QONNX: argmax 10/10 identical", "FINN-ONNX: argmax 10/10 identical",
                  "streamlined: class 10/10 identical", "hardware layers: class 10/10 "
                  "identical", "folded dataflow: class 10/10 identical"):
        assert stage in printed, printed
