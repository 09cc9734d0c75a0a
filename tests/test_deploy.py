"""`xnorflow deploy`: the bundle for a PYNQ board, checked on this machine with
`validate.py --simulate` (packed bytes -> folded dataflow graph -> packed output -> the driver's
unpacking) against PyTorch; and every bad input it can meet."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from xnorflow.cli import main
from xnorflow.hw.deploy.bundle import DRIVER_PIN, pack_inputs
from xnorflow.hw.finn.options import BuildOptions
from xnorflow.stages.build import build_stage
from xnorflow.train.data import load_dataset


@pytest.fixture(scope="module")
def digits_bundle(digits_tfc_run, tmp_path_factory):
    """A TFC (TensorNorm head) on digits, built and deployed with all 360 test images."""
    root = tmp_path_factory.mktemp("deploy")
    build_stage(digits_tfc_run, root / "build", BuildOptions(target_fps=100_000), verify=0,
                progress=False)
    assert main(["deploy", str(root / "build"), "--out", str(root / "bundle"),
                 "--images", "360"]) == 0
    return root / "build", root / "bundle"


def validate(bundle: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(bundle / "validate.py"), *args],
                          capture_output=True, text=True, timeout=600, cwd=bundle.parent)


def copy_bundle(bundle: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(bundle, tmp_path / "bundle"))


def test_bundle_holds_the_driver_settings_and_simulates_identical_to_pytorch(digits_bundle):
    _, bundle = digits_bundle
    settings = json.loads((bundle / "settings.json").read_text())["driver_information"]
    shapes = settings["io_shape_dict"]
    assert settings["driver_type"] == "FINNDMAOverlay" and settings["platform"] == "zynq-iodma"
    assert shapes["idma_names"] == ["idma0"] and shapes["odma_names"] == ["odma0"]
    assert shapes["idt"] == ["DataType['BINARY']"] and shapes["oshape_normal"] == [[1, 1]]
    packed = np.load(bundle / "inputs_packed.npy")
    assert packed.dtype == np.uint8 and packed.shape == (360, *shapes["ishape_packed"][0][1:])
    manifest = json.loads((bundle / "manifest.json").read_text())
    assert manifest["board"] == "Pynq-Z1" and manifest["driver"] == DRIVER_PIN
    assert manifest["input"] == "64 values of type BINARY: bits, 1 for +1 and 0 for -1"
    # the images are a stratified order of the whole test set; labels.npy follows it
    indices = np.array(manifest["test_set_indices"])
    assert sorted(indices) == list(range(360)) and not (np.diff(indices) > 0).all()
    assert manifest["sample"].startswith("all 360 test images, in a seeded stratified order")
    test = load_dataset("digits").test
    assert np.array_equal(np.load(bundle / "labels.npy"), test.labels[indices])
    assert DRIVER_PIN in (bundle / "README.md").read_text()
    result = validate(bundle, "--simulate")
    assert result.returncode == 0, result.stderr
    assert "360/360 identical (class index from the packed stream vs PyTorch argmax)" in \
        result.stdout


def test_simulation_with_the_c_simulated_layers_is_identical_too(digits_bundle, finn_hlslib):
    result = validate(digits_bundle[1], "--simulate", "--cppsim", "--images", "150",
                      "--finn-hlslib", str(finn_hlslib))
    assert result.returncode == 0, result.stderr
    assert "C-simulated on the host: 150/150 identical" in result.stdout
    result = validate(digits_bundle[1], "--cppsim")
    assert result.returncode == 1 and "add --simulate" in result.stderr


def test_packing_is_the_drivers_byte_layout():
    """8 BINARY inputs per folded word -> one byte; FINN's driver reverses the SIMD lanes and
    the byte order, so input bit 0 lands in the lowest byte's least significant bit."""
    shapes = {"idt": ["DataType['BINARY']"], "ishape_folded": [[1, 2, 8]]}
    image = np.zeros((1, 16), dtype=np.float32)
    image[0, 0] = 1     # first input of the first word
    image[0, 15] = 1    # last input of the second word
    packed = pack_inputs(image, shapes)
    assert packed.tolist() == [[[0b00000001], [0b10000000]]]


def test_a_bundle_without_a_bitfile_says_so_on_the_board(digits_bundle):
    result = validate(digits_bundle[1])
    assert result.returncode == 1
    assert "this bundle has no bitfile" in result.stderr and "--until bitfile" in result.stderr


def test_a_bitfile_for_another_device_is_refused(digits_bundle, tmp_path):
    bundle = copy_bundle(digits_bundle[1], tmp_path)
    (bundle / "bitfile").mkdir()
    (bundle / "bitfile" / "finn-accel.bit").write_bytes(b"stand-in")
    (bundle / "bitfile" / "finn-accel.hwh").write_text(
        '<MODULE><SYSTEMINFO ARCH="zynquplus" DEVICE="xczu3eg" PACKAGE="sbva484"/></MODULE>')
    result = validate(bundle)
    assert result.returncode == 1
    assert "built for device xczu3eg, but this bundle is for Pynq-Z1" in result.stderr
    # the right device: the next thing checked is the driver, which a host does not have
    (bundle / "bitfile" / "finn-accel.hwh").write_text(
        '<MODULE><SYSTEMINFO ARCH="zynq" DEVICE="7z020" PACKAGE="clg400"/></MODULE>')
    result = validate(bundle)
    assert result.returncode == 1 and f"sudo pip install {DRIVER_PIN}" in result.stderr


@pytest.mark.parametrize("damage, message", [
    (lambda b: (b / "settings.json").unlink(), "is missing settings.json"),
    (lambda b: (b / "accelerator.onnx").unlink(), "is missing accelerator.onnx"),
    (lambda b: np.save(b / "inputs_packed.npy", np.zeros((360, 8), np.float32)),
     "the packed inputs are float32 of shape (360, 8)"),
    (lambda b: np.save(b / "labels.npy", np.zeros(5, np.int64)),
     "360 packed images but 360 expected classes and 5 labels"),
], ids=["settings", "graph", "dtype-and-shape", "counts"])
def test_a_damaged_bundle_is_named(digits_bundle, tmp_path, damage, message):
    bundle = copy_bundle(digits_bundle[1], tmp_path)
    damage(bundle)
    result = validate(bundle, "--simulate")
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_more_images_than_the_bundle_holds_is_refused(digits_bundle):
    result = validate(digits_bundle[1], "--simulate", "--images", "1000")
    assert result.returncode == 1
    assert "--images 1000: the bundle holds 360 images" in result.stderr
    # digits has 360 test images, all in the bundle: no larger deploy to suggest
    assert "the test set has 360 images, all of them in the bundle" in result.stderr


def test_copying_to_an_unreachable_board_fails_cleanly(digits_bundle, tmp_path, capsys):
    out = tmp_path / "bundle"
    code = main(["deploy", str(digits_bundle[0]), "--out", str(out), "--images", "20",
                 "--host", "nobody@board.invalid"])
    err = capsys.readouterr().err
    assert code == 1
    assert "copying the bundle on nobody@board.invalid failed (scp" in err
    assert f"The bundle in {out} is complete" in err
    assert (out / "validate.py").is_file()


def test_deploy_refuses_what_is_not_a_build(tmp_path, capsys):
    (tmp_path / "notes").mkdir()
    assert main(["deploy", str(tmp_path / "notes"), "--out", str(tmp_path / "b")]) == 1
    assert "is not an xnorflow build folder" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()
