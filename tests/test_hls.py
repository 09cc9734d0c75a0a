"""HLS C++ of the local binary trainer: generated, compiled with g++, C-simulated and compared with
the Python trainer after every step; sizes only in the generated config; clear errors."""

import re
import subprocess
from dataclasses import replace

import numpy as np
import pytest

from xnorflow.cli import main
from xnorflow.hw.hls.csim import (
    CSIM_FILES,
    compare_with_python,
    compile_testbench,
    run_csim,
    training_batches,
)
from xnorflow.hw.hls.generator import (
    HlsError,
    HlsOptions,
    TemplateError,
    estimate_memory,
    fill_template,
    generate,
)
from xnorflow.hw.toolchain import CompilerMissing, ap_types_dir
from xnorflow.train.data import load_dataset
from xnorflow.train.local_binary.model import BMLPShape, BMLPState, init_state
from xnorflow.train.local_binary.packed import PackedBMLP, pack_inputs


def random_data(rng, samples, features):
    x = np.where(rng.random((samples, features)) < 0.5, -1, 1).astype(np.int8)
    return x, rng.integers(0, 10, samples)


@pytest.mark.parametrize("widths, groups, pe, simd, batch, bits", [
    ((35, 21), (7, 21), 7, 1, 50, 12),     # PE-parallel neurons
    ((35, 21), (10, 4), 7, 7, 120, 8),     # SIMD, batch over two 64-bit words, 8-bit weights
])
def test_csim_matches_python_every_step_on_random_data(tmp_path, widths, groups, pe, simd,
                                                       batch, bits):
    rng = np.random.default_rng(0)
    shape = BMLPShape(70, widths, 10, groups, weight_bits=bits)
    state = init_state(shape, 3)
    x, y = random_data(rng, 1000, 70)
    design = generate(state, tmp_path, HlsOptions(pe=pe, simd=simd, batch_max=batch))
    batches = training_batches(x, y, 9, batch, seed=4, fan_ins=shape.fan_ins)
    if batch == 120:
        assert len(batches[-1].y) == 40  # a short last batch
    result = compare_with_python(design, state, batches, 4, x[:200])
    assert result.identical, result.summary()
    assert result.steps == 9 and result.infer_samples == 200


def test_csim_saturates_hidden_weights_exactly_like_python(tmp_path):
    """4-bit weights (bound 7) that start well inside the bound: training drives them onto it,
    C++ and Python clip the same weights at every step, and none ever exceeds it."""
    rng = np.random.default_rng(0)
    shape = BMLPShape(70, (35, 21), 10, (7, 21), weight_bits=4)
    bound = shape.weight_limit
    assert bound == 7
    classifiers = init_state(shape, 3).classifiers
    start = [rng.choice(np.array([-3, -1, 1, 3], np.int32), (f, w))
             for f, w in zip(shape.fan_ins, shape.widths)]
    state = BMLPState(shape, start, classifiers)
    assert max(int(np.abs(w).max()) for w in start) < bound  # nothing starts on it
    x, y = random_data(rng, 120, 70)
    batches = training_batches(x, y, 6, 20, seed=4, fan_ins=shape.fan_ins)
    design = generate(state, tmp_path, HlsOptions(pe=7, simd=7, batch_max=20))
    result = compare_with_python(design, state, batches, 4, x)
    assert result.identical and result.steps == 6, result.summary()

    csim = run_csim(design.directory / CSIM_FILES[0], design, state, batches, 4, x)
    python = PackedBMLP(state.copy())
    # the same network without the bound (16 bits): what the updates would have made of it
    unbounded = PackedBMLP(BMLPState(replace(shape, weight_bits=16), [w.copy() for w in start],
                                     classifiers))
    beyond = 0
    for b, out in zip(batches, csim.steps):
        for engine in (python, unbounded):
            engine.train_step(b.x, pack_inputs(b.x), b.y, b.thresholds, b.step, 4)
        for layer, (cpp, py) in enumerate(zip(out.weights, python.to_state().weights)):
            assert np.array_equal(cpp, py), f"step {b.step}, layer {layer}"
            assert np.abs(py).max() <= bound
        beyond = max(beyond, *(int(np.abs(w).max()) for w in unbounded.weights_t))
    for w in python.to_state().weights:  # every layer ends with weights on both bounds
        assert (w == bound).any() and (w == -bound).any()
    # without the bound some weight would have left [-7, 7]: the saturation really clipped
    assert beyond > bound


def test_csim_matches_python_on_real_mnist_batches(tmp_path, mnist_dir):
    data = load_dataset("mnist", mnist_dir, "median")
    shape = BMLPShape(784, (70, 35), 10, (35, 35))
    state = init_state(shape, 1)
    design = generate(state, tmp_path, HlsOptions(pe=5, simd=7, batch_max=100))
    batches = training_batches(data.train.images, data.train.labels, 6, 100, seed=1,
                               fan_ins=shape.fan_ins)
    result = compare_with_python(design, state, batches, 1, data.test.images[:300])
    assert result.identical, result.summary()


def test_templates_and_their_fillers_must_agree(tmp_path, monkeypatch):
    monkeypatch.setattr("xnorflow.hw.hls.generator.TEMPLATES", tmp_path)
    (tmp_path / "t.in").write_text("set_part {{part}}\n{{body}}\n# {{part}}\n")
    assert fill_template("t.in", part="xc7z020", body="a {{part}}") == \
        "set_part xc7z020\na {{part}}\n# xc7z020\n"  # values are not scanned for slots
    with pytest.raises(TemplateError, match=r"without a value \['body'\]"):
        fill_template("t.in", part="xc7z020")
    with pytest.raises(TemplateError, match=r"without a slot \['clock'\]"):
        fill_template("t.in", part="p", body="b", clock=5)
    (tmp_path / "bad.in").write_text("ok {{x}}\n{{ Typo }}\n")
    with pytest.raises(TemplateError, match="line 2: '{{' is not a slot"):
        fill_template("bad.in", x=1)


def test_sizes_live_only_in_the_generated_config(tmp_path):
    shape = BMLPShape(70, (37, 23), 10, (37, 23))
    design = generate(init_state(shape, 0), tmp_path, HlsOptions())
    sources = ["bmlp_kernels.h", "bmlp_stream.h", "bmlp_top.h", "bmlp_top.cpp", "tb_bmlp.cpp"]
    for name in sources:
        text = (design.directory / name).read_text()
        for size in ("70", "37", "23"):
            assert not re.search(rf"\b{size}\b", text), f"{name} hard-codes {size}"
    config = (design.directory / "bmlp_config.h").read_text()
    assert "#define L0_OUT 37" in config and "#define L1_OUT 23" in config
    assert "#define BMLP_IN_FEATURES 70" in config


def test_generated_design_has_pragmas_tcl_and_memory_readme(tmp_path):
    shape = BMLPShape(784, (525, 525), 10, (105, 105))
    design = generate(init_state(shape, 0), tmp_path, HlsOptions(pe=5, simd=7))
    top = (design.directory / "bmlp_top.cpp").read_text()
    for pragma in ("INTERFACE mode = axis port = x_in", "INTERFACE mode = bram port = w0",
                   "ARRAY_PARTITION variable = w1 cyclic factor = BMLP_PE dim = 1"):
        assert pragma in top
    kernels = (design.directory / "bmlp_kernels.h").read_text()
    assert "#pragma HLS PIPELINE II = 1" in kernels and "ap_int<WB>" in kernels
    tcl = (design.directory / "run_hls.tcl").read_text()
    for command in ("set_top $top", "csim_design", "csynth_design", "export_design",
                    "bmlp_train_step bmlp_infer", "set_part xczu7ev-ffvc1156-2-e"):
        assert command in tcl
    readme = (design.directory / "README.md").read_text()
    # 16 bits x (784*525 + 525*525) weights; too much for the Pynq's xc7z020
    assert "10,995,600 bits" in readme
    assert "| xc7z020 (Pynq-Z1, Pynq-Z2) | 280 BRAM18 | no |" in readme


def test_memory_estimate_and_board_choice():
    small = BMLPShape(784, (135, 75), 10, (45, 75))
    estimate = estimate_memory(small, HlsOptions())
    assert estimate.weight_bits == 16 * (784 * 135 + 135 * 75)
    assert estimate.fits["xc7z020"] == "BRAM"
    big = BMLPShape(784, (525, 525), 10, (105, 105))
    assert estimate_memory(big, HlsOptions()).fits == {"xc7z020": "no", "xczu7ev": "BRAM+URAM"}


def test_a_shape_that_fits_no_device_is_refused(tmp_path):
    huge = BMLPShape(784, (4095, 4095), 10, (105, 105))
    with pytest.raises(HlsError, match="largest supported device, xczu7ev"):
        generate(init_state(huge, 0), tmp_path, HlsOptions())


def test_parallelism_that_does_not_divide_is_refused(tmp_path):
    shape = BMLPShape(70, (35, 21), 10, (7, 21))
    with pytest.raises(HlsError, match="--pe 5 does not divide the layer width.*21.*1, 7"):
        generate(init_state(shape, 0), tmp_path, HlsOptions(pe=5))
    with pytest.raises(HlsError, match="--simd 2 does not divide"):
        generate(init_state(shape, 0), tmp_path, HlsOptions(simd=2))


def test_missing_compiler_is_a_clear_error(tmp_path, monkeypatch):
    shape = BMLPShape(70, (35,), 10, (35,))
    design = generate(init_state(shape, 0), tmp_path, HlsOptions())
    monkeypatch.setenv("CXX", "no-such-compiler-xnorflow")
    with pytest.raises(CompilerMissing, match="needs g\\+\\+"):
        compile_testbench(design)
    assert (tmp_path / "bmlp_top.cpp").is_file()  # the sources are there regardless


def test_csim_uses_our_stream_and_the_packaged_ap_types_only(tmp_path):
    shape = BMLPShape(70, (35,), 10, (35,))
    design = generate(init_state(shape, 0), tmp_path, HlsOptions())
    deps = subprocess.run(["g++", "-std=c++17", "-M", f"-I{design.directory}",
                           f"-I{ap_types_dir()}", str(design.directory / "bmlp_top.cpp")],
                          capture_output=True, text=True, check=True).stdout
    assert "ap_int.h" in deps and str(ap_types_dir()) in deps
    assert "hls_stream.h" not in deps  # hls4ml's copy carries a proprietary notice


def test_cli_generates_and_simulates_a_trained_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--algo", "local-binary", "--widths", "35,35", "--epochs", "1",
                 "--out", str(run), "--no-progress"]) == 0
    assert main(["hls", "--trainer", str(run), "--out", str(tmp_path / "hls"), "--pe", "5",
                 "--csim-steps", "4", "--csim-infer", "100"]) == 0
    out = capsys.readouterr().out
    assert "4/4 training steps identical" in out and "inference 100/100" in out


def test_cli_checks_everything_before_writing(tmp_path, capsys, digits_tfc_run):
    out = tmp_path / "hls"
    cases = [
        (["--widths", "35,35", "--pe", "0"], 2, "--pe: 0 must be >= 1"),
        (["--widths", "35,35", "--csim-steps", "-1"], 2, "--csim-steps: -1 must be >= 0"),
        (["--widths", "35,35", "--pe", "4"], 1, "--pe 4 does not divide the layer width(s) "
                                                "[35, 35]; choose a common divisor of [35, 35]: "
                                                "1, 5, 7, 35"),
        (["--widths", "35,35", "--batch-max", "50", "--csim-steps", "2"], 2,
         "--batch-max 50 is smaller than the run's batch size 100"),
        (["--trainer", str(digits_tfc_run), "--seed", "3"], 2, "--seed: only with --widths"),
        (["--trainer", str(digits_tfc_run)], 1, "not a binary MLP of the local binary trainer"),
    ]
    for args, code, message in cases:
        try:
            got = main(["hls", *args, "--out", str(out)])
        except SystemExit as exit_:
            got = exit_.code
        assert got == code, args
        assert message in capsys.readouterr().err, args
        assert not out.exists(), args
    out.mkdir()
    (out / "bmlp_top.cpp").write_text("// my own top")
    assert main(["hls", "--widths", "35,35", "--out", str(out)]) == 1
    assert "already holds files xnorflow did not write (bmlp_top.cpp)" in capsys.readouterr().err
    assert (out / "bmlp_top.cpp").read_text() == "// my own top"


def test_ctrl_c_during_the_c_simulation_leaves_complete_files(tmp_path, capsys, monkeypatch):
    import xnorflow.hw.hls.csim as hls_csim

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(hls_csim, "compile_testbench", interrupted)
    out = tmp_path / "hls"
    assert main(["hls", "--widths", "35,35", "--out", str(out), "--csim-steps", "2"]) == 130
    assert "the C simulation did not finish" in capsys.readouterr().err
    assert (out / "bmlp_top.cpp").is_file() and not (out / "csim_bmlp").exists()
    assert not [p for p in out.iterdir() if p.name.endswith((".tmp", ".partial"))]
