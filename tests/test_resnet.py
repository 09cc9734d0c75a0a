"""The binary ResNet-18 of the VISPA / ProxConnect++ CIFAR benchmarks: its layers (binary 3x3
convolutions, real-valued stem, shortcuts and classifier), its inputs, one epoch of training
through the CLI with both trainers, and the refusal of every FINN stage, with the reason."""

from __future__ import annotations

import pytest
import torch
from brevitas.nn import QuantConv2d, QuantIdentity, QuantLinear
from small_data import write_random_cifar
from torch import nn

from xnorflow.export.run_export import check_buildable
from xnorflow.train.brevitas_quant import clip_latent_weights
from xnorflow.train.configs import NOT_BUILDABLE, TrainConfig, VispaConfig
from xnorflow.train.models import BinaryBasicBlock, BinaryResNet18, build_model


def _nhwc(count: int, shape: tuple[int, int, int], pixels: str) -> torch.Tensor:
    channels, rows, cols = shape
    generator = torch.Generator().manual_seed(0)
    if pixels == "uint8":
        return torch.randint(0, 256, (count, rows, cols, channels), generator=generator).float()
    return torch.where(torch.rand(count, rows, cols, channels, generator=generator) < 0.5,
                       -1.0, 1.0)


# ------------------------------------------------------------------------------------ model
@pytest.mark.parametrize("shape, pixels", [((3, 32, 32), "uint8"),   # CIFAR-10
                                           ((1, 28, 28), "bipolar"),  # MNIST, binarized
                                           ((3, 9, 8), "uint8")])     # small and odd
def test_forward_shapes(shape, pixels):
    model = build_model("resnet18", shape, 10, pixels=pixels)
    assert isinstance(model, BinaryResNet18)
    assert model.image_shape == shape and model.input_shape == (shape[1], shape[2], shape[0])
    assert model(_nhwc(3, shape, pixels)).shape == (3, 10)
    assert model.eval()(_nhwc(2, shape, pixels)).shape == (2, 10)


def test_layers_are_those_of_the_papers_resnet18():
    model = build_model("resnet18", (3, 32, 32), 10, pixels="uint8")
    stem_conv, stem_bn = model.stem
    assert type(stem_conv) is nn.Conv2d and stem_conv.in_channels == 3
    assert stem_conv.out_channels == 64 and stem_conv.kernel_size == (3, 3)
    assert stem_conv.padding == (1, 1) and stem_conv.bias is None
    assert isinstance(stem_bn, nn.BatchNorm2d)
    assert type(model.fc) is nn.Linear and model.fc.in_features == 512
    blocks = list(model.layers)
    assert len(blocks) == 8 and all(isinstance(b, BinaryBasicBlock) for b in blocks)
    assert [b.conv1.out_channels for b in blocks] == [64, 64, 128, 128, 256, 256, 512, 512]
    assert [b.conv1.stride[0] for b in blocks] == [1, 1, 2, 1, 2, 1, 2, 1]
    binary = [m for m in model.modules() if isinstance(m, QuantConv2d)]
    assert len(binary) == 16 and all(c.kernel_size == (3, 3) and c.padding == (1, 1)
                                     and c.bias is None for c in binary)
    assert not any(isinstance(m, QuantLinear) for m in model.modules())
    # each binary convolution is fed by a bipolar quantizer
    assert all(isinstance(b.act1, QuantIdentity) and isinstance(b.act2, QuantIdentity)
               for b in blocks)
    # shortcuts: identity where the shape stays, else avg-pool + real 1x1 conv + batch-norm
    for block in blocks:
        if block.conv1.stride[0] == 1 and block.conv1.in_channels == block.conv1.out_channels:
            assert isinstance(block.shortcut, nn.Identity)
        else:
            pool, conv, bn = block.shortcut
            assert isinstance(pool, nn.AvgPool2d) and type(conv) is nn.Conv2d
            assert conv.kernel_size == (1, 1) and isinstance(bn, nn.BatchNorm2d)
    float_layers = [m for m in model.modules() if type(m) in (nn.Conv2d, nn.Linear)]
    assert len(float_layers) == 1 + 3 + 1  # stem, three downsampling shortcuts, classifier
    assert sum(p.numel() for p in model.parameters()) == 11_173_962  # CIFAR ResNet-18


def test_binary_convolutions_use_plus_minus_one_weights_the_rest_is_float():
    model = build_model("resnet18", (3, 32, 32), 10, pixels="uint8").eval()
    for conv in (m for m in model.modules() if isinstance(m, QuantConv2d)):
        quantized = conv.quant_weight().value
        assert set(quantized.unique().tolist()) == {-1.0, 1.0}
        assert not torch.equal(conv.weight, quantized)  # the latent weights are real
        assert float(conv.quant_weight().bit_width) == 1.0
    for layer in (model.stem[0], model.fc, model.layers[2].shortcut[1]):
        assert len(layer.weight.unique()) > 2  # float weights, used as they are
    # the forward uses the binarized weights: same output when the latent ones are replaced
    # by their signs
    images = _nhwc(2, (3, 32, 32), "uint8")
    before = model(images)
    with torch.no_grad():
        for conv in (m for m in model.modules() if isinstance(m, QuantConv2d)):
            conv.weight.copy_(torch.where(conv.weight >= 0, 0.5, -0.5))
    assert torch.allclose(model(images), before)


def test_only_the_binary_layers_are_clipped():
    model = build_model("resnet18", (3, 32, 32), 10, pixels="uint8")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):  # QuantConv2d is an nn.Conv2d
                module.weight.mul_(10.0).add_(3.0)
    clip_latent_weights(model)
    for module in model.modules():
        if isinstance(module, QuantConv2d):
            assert module.weight.abs().max() <= 1.0
        elif isinstance(module, (nn.Conv2d, nn.Linear)):
            assert module.weight.abs().max() > 1.0


def test_vispa_parametrizes_only_the_binary_convolutions():
    from xnorflow.train.vispa import build_vispa_model, vispa_layers

    config = VispaConfig(model="resnet18", dataset="cifar10", rank=2)
    model = build_vispa_model(config, (3, 32, 32), 10)
    layers = vispa_layers(model)
    assert len(layers) == 16 and all(isinstance(layer, QuantConv2d) for layer, _ in layers)
    assert not hasattr(model.stem[0], "parametrizations")
    assert not hasattr(model.fc, "parametrizations")
    assert model(_nhwc(2, (3, 32, 32), "uint8")).shape == (2, 10)


def test_config_treats_resnet18_as_a_convolutional_model():
    config = TrainConfig(model="resnet18", dataset="cifar10")
    assert config.is_conv and config.binarization == "uint8"
    assert config.augmentation == "crop-flip"
    assert TrainConfig(model="resnet18", dataset="mnist").binarization == "threshold"
    assert VispaConfig(model="resnet18", dataset="cifar10").binarization == "uint8"
    assert set(NOT_BUILDABLE) == {"resnet18"}
    check_buildable("cnv", "x")  # the FINN networks pass
    from xnorflow.export.qonnx_export import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match="real-valued shortcut additions"):
        check_buildable("resnet18", "x")


# ------------------------------------------------------------------- CLI: train, then refuse
@pytest.fixture(scope="module")
def cifar_dir(tmp_path_factory):
    """A cifar-10-batches-py folder of 40 training images (5 batches of 8) and 8 test images."""
    return write_random_cifar(tmp_path_factory.mktemp("cifar") / "cifar-10-batches-py",
                              per_batch=8)


@pytest.mark.parametrize("algo, options", [
    ("proxconnect", []),
    ("vispa", ["--rank", "1", "--ensemble-samples", "1", "--warmup-epochs", "0"]),
])
def test_cli_trains_resnet18_and_every_finn_stage_refuses_it(tmp_path, cifar_dir, capsys,
                                                             algo, options):
    from xnorflow.cli import main

    run = tmp_path / "run"
    assert main(["train", "--algo", algo, "--model", "resnet18", "--dataset", "cifar10",
                 "--data-dir", str(cifar_dir), "--epochs", "1", "--batch-size", "20",
                 "--threads", "2", "--out", str(run), "--no-progress", *options]) == 0
    assert (run / "model.pt").is_file()
    capsys.readouterr()
    for command in (["export", str(run), "--out", str(tmp_path / "model.onnx")],
                    ["build", str(run), "--out", str(tmp_path / "build")]):
        assert main(command + ["--no-progress"]) == 1
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err
        assert str(run) in captured.err and "--model resnet18" in captured.err
        assert "real-valued shortcut additions" in captured.err
        assert "cnv or --model vgg-small" in captured.err
    assert not (tmp_path / "model.onnx").exists()
    assert not (tmp_path / "model.verify.json").exists()
    assert not (tmp_path / "build").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    # deploy starts from a build: a build folder that names the run (made by hand; xnorflow
    # never builds one) is refused from its run too, before FINN's driver preparation
    fake = _fake_build(tmp_path / "fake-build", run)
    assert main(["deploy", str(fake), "--out", str(tmp_path / "bundle")]) == 1
    err = capsys.readouterr().err
    assert str(run) in err and "real-valued shortcut additions" in err
    assert not (tmp_path / "bundle").exists()


def _fake_build(folder, run):
    import json

    from xnorflow.hw.finn.layout import BuildLayout

    folder.mkdir()
    summary = {"board": "Pynq-Z1", "fpga_part": "xc7z020clg400-1", "clock_mhz": 100.0,
               "layers": [], "bottleneck": "", "bottleneck_cycles": 1, "target_fps": None,
               "target_met": None, "estimated_fps": 1.0, "output": "class",
               "estimated_latency_us": 1.0, "critical_path_cycles": 1, "resources": {},
               "device_capacity": None, "utilization": {}, "fits_device": None,
               "folding": {}, "run": str(run)}
    BuildLayout(folder).summary.write_text(json.dumps(summary))
    return folder


def test_explore_refuses_resnet18_before_writing_anything(tmp_path, capsys):
    from xnorflow.cli import main

    out = tmp_path / "explore"
    assert main(["explore", "--models", "tfc", "resnet18", "--out", str(out),
                 "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "--model resnet18" in err and "real-valued shortcut additions" in err
    assert not out.exists()
