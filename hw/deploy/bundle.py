"""`xnorflow deploy BUILD --out BUNDLE`: the folder a PYNQ board needs to run a build.

Everything FINN's driver step needs that does not need Vivado runs here, on the build's folded
dataflow design, with FINN's own transformations: the IODMA insertion, width converters and
partitioning that ``ZynqBuild`` applies before synthesis, the DMA instance names its Vivado
project gives them, and ``MakePYNQDriver`` for the driver's ``settings.json``. The driver code
itself is the ``finn-plus-driver`` package, installed on the board (:data:`DRIVER_PIN`).

The bundle also holds test images (a seeded stratified sample, see
:mod:`xnorflow.export.sampling`; their test-set indices in ``manifest.json``) packed exactly as
the driver sends them to the accelerator, the classes PyTorch gives them, ``validate.py`` (runs
them on the board, or with ``--simulate`` on the host through :func:`simulate_bundle`), and a
README. The bitfile and its ``.hwh`` are copied when the build has them (``--until bitfile`` in
the synthesis image).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import re
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np

from ...errors import XnorflowError

FOLDER_KIND = "bundle"
STAGE = "deploy"
DRIVER_PIN = "finn-plus-driver==1.6.1"  # the runtime matching finn-plus 1.6.1
PYNQ_VERSIONS = "PYNQ 3.0 and later (Python >= 3.10 on the board, as finn-plus-driver needs)"
SETTINGS = "settings.json"
MANIFEST = "manifest.json"
ACCELERATOR = "accelerator.onnx"  # the folded dataflow graph, HLS layers as generated
RTL_DIR = "rtl"  # the RTL design (build --backend rtl): its HDL files and design.json
INPUTS = "inputs_packed.npy"
EXPECTED = "expected_classes.npy"
LABELS = "labels.npy"
VALIDATE = "validate.py"
README = "README.md"
BITFILE_DIR = "bitfile"
BITFILE, HWH = "finn-accel.bit", "finn-accel.hwh"
TEMPLATES = Path(__file__).parent / "templates"
# FINN's driver packs SIMD lanes and bytes in reverse order (FINNDMAOverlay.pack_input).
PACKING = {"reverse_inner": True, "reverse_endian": True}


class DeployError(XnorflowError):
    """The build cannot be deployed, or the bundle cannot be copied or run."""


# --------------------------------------------------------------------------- driver settings
def _name_dma_instances(model) -> None:
    """The names ``MakeZYNQProject`` gives the partitions at the graph's input and output
    (``idma0``, ``odma0``), which the driver looks up in the overlay."""
    from qonnx.custom_op.registry import getCustomOp

    idma = odma = 0
    for node in model.get_nodes_by_op_type("StreamingDataflowPartition"):
        if model.find_producer(node.input[0]) is None:
            getCustomOp(node).set_nodeattr("instance_name", f"idma{idma}")
            idma += 1
        elif not model.find_consumers(node.output[0]):
            getCustomOp(node).set_nodeattr("instance_name", f"odma{odma}")
            odma += 1


@contextlib.contextmanager
def _quiet_logs():
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def driver_settings(accelerator, fpga_part: str, clock_mhz: float, board: str,
                    work_dir: Path) -> dict:
    """FINN's ``settings.json`` for the accelerator (the folded dataflow partition)."""
    from finn.transformation.fpgadataflow.create_dataflow_partition import CreateDataflowPartition
    from finn.transformation.fpgadataflow.floorplan import Floorplan
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_iodma import InsertIODMA
    from finn.transformation.fpgadataflow.make_driver import MakePYNQDriver
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames
    from qonnx.transformation.infer_data_layouts import InferDataLayouts

    model = accelerator.transform(InferDataLayouts())
    # ZynqBuild's preparation before synthesis (64-bit AXI port: its default); its notes
    # (e.g. on the floorplan it defaults) are not for the user of a single-SLR Zynq
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings(), _quiet_logs():
        warnings.simplefilter("ignore")
        for transformation in (InsertIODMA(64), InsertDWC(), SpecializeLayers(fpga_part),
                               Floorplan(), CreateDataflowPartition(
                                   partition_model_dir=str(work_dir / "partitions"))):
            model = model.transform(transformation)
            model = model.transform(GiveUniqueNodeNames())
            model = model.transform(GiveReadableTensorNames())
    _name_dma_instances(model)
    model = model.transform(MakePYNQDriver("zynq-iodma", "FINNDMAOverlay",
                                           clk_period_ns=1e3 / clock_mhz, board=board))
    return json.loads((Path(model.get_metadata_prop("pynq_driver_dir")) / SETTINGS).read_text())


def _dtype(name: str):
    """``DataType['UINT8']`` (as settings.json writes it) -> the qonnx DataType."""
    from qonnx.core.datatype import DataType

    return DataType[re.fullmatch(r"DataType\['(\w+)'\]", name).group(1)]


def pack_inputs(graph_inputs: np.ndarray, io_shapes: dict) -> np.ndarray:
    """Images in the graph's input encoding -> the bytes the driver copies to the accelerator,
    one row per image (``FINNDMAOverlay.fold_input`` + ``pack_input``)."""
    from finn.util.data_packing import finnpy_to_packed_bytearray

    folded = graph_inputs.reshape(len(graph_inputs), *io_shapes["ishape_folded"][0][1:])
    return finnpy_to_packed_bytearray(folded, _dtype(io_shapes["idt"][0]), **PACKING)


# --------------------------------------------------------------------------- host simulation
def _run_accelerator(bundle: Path, inputs: np.ndarray, cppsim: bool,
                     hlslib: str | None) -> np.ndarray:
    """The bundle's dataflow graph on ``inputs`` (+-1): its HLS layers C-simulated
    (:mod:`xnorflow.hw.sim.cppsim`), or executed in their Python form."""
    from qonnx.core.modelwrapper import ModelWrapper

    from ...export.verify import execute_graph
    from ..finn.env import prepare_finn
    from ..finn.transforms import MakeHWLayersPythonExecutable
    from ..sim.cppsim import Toolchain, compile_layers

    graph = ModelWrapper(str(bundle / ACCELERATOR))
    if not cppsim:
        return execute_graph(graph.transform(MakeHWLayersPythonExecutable()), inputs,
                             progress=False)
    toolchain = Toolchain.find(hlslib)
    with tempfile.TemporaryDirectory() as work:
        prepare_finn(Path(work) / "finn")  # FINN's code generation for the C simulation
        return execute_graph(graph, inputs, progress=False,
                             prepare=lambda batched: compile_layers(batched, toolchain)[0])


def _run_rtl(bundle: Path, packed: np.ndarray, io_shapes: dict) -> np.ndarray:
    """The packed input bytes through the bundle's RTL design (Verilator)."""
    from ..rtl.packed import run_packed

    if not (bundle / RTL_DIR / "design.json").is_file():
        raise DeployError(f"{bundle} holds no RTL design: it was deployed from a build without "
                          f"--backend rtl. Build with `xnorflow build RUN --backend rtl` and "
                          f"deploy again, or simulate without --rtl.")
    in_words = int(np.prod(io_shapes["ishape_packed"][0][1:-1]))
    out_words = int(np.prod(io_shapes["oshape_packed"][0][1:-1]))
    words = packed.reshape(len(packed), in_words, -1)
    return run_packed(bundle / RTL_DIR, words, out_words)


def input_description(io_shapes: dict) -> str:
    """What one image is for the accelerator, e.g. "32 x 32 x 3 values of type UINT8"."""
    shape = io_shapes["ishape_normal"][0][1:]
    dtype = _dtype(io_shapes["idt"][0])
    layout = " (rows x columns x channels)" if len(shape) == 3 else ""
    meaning = {"BINARY": ": bits, 1 for +1 and 0 for -1",
               "UINT8": ": the pixel bytes"}.get(dtype.name, "")
    return f"{' x '.join(map(str, shape))}{layout} values of type {dtype.name}{meaning}"


def simulate_bundle(bundle: str | Path, packed: np.ndarray, settings: dict,
                    cppsim: bool = False, hlslib: str | None = None,
                    rtl: bool = False) -> np.ndarray:
    """What the accelerator would send back for ``packed`` inputs (checked by validate.py
    against the accelerator's byte layout), as the driver reads it.

    The accelerator's side: the bytes are unpacked as its input stream reads them, run through
    the folded dataflow graph (FINN's Python execution of its hardware layers, or with
    ``cppsim`` their C simulation), and the output packed as its output stream writes it. The
    driver's side: the output bytes are unpacked with the driver's ``unpack_output``. Returns
    the classes, one per image."""
    from finn.util.data_packing import finnpy_to_packed_bytearray, packed_bytearray_to_finnpy

    io_shapes = settings["driver_information"]["io_shape_dict"]
    n = len(packed)
    idt, odt = _dtype(io_shapes["idt"][0]), _dtype(io_shapes["odt"][0])
    if rtl:   # the accelerator's side in RTL: the bytes through the bundle's design
        packed_out = _run_rtl(Path(bundle), packed, io_shapes)
        read = packed_bytearray_to_finnpy(packed_out, odt,
                                          (n, *io_shapes["oshape_folded"][0][1:]), **PACKING)
        return read.reshape(n, -1)[:, 0].astype(np.int64)
    folded_in = packed_bytearray_to_finnpy(packed, idt, (n, *io_shapes["ishape_folded"][0][1:]),
                                           **PACKING)
    stream_in = folded_in.reshape(n, *io_shapes["ishape_normal"][0][1:])
    # execute_graph takes +-1 images and encodes them as the graph input's type (0/1 here)
    bipolar = stream_in * 2 - 1 if idt.name == "BINARY" else stream_in
    outputs = _run_accelerator(Path(bundle), bipolar.astype(np.float32), cppsim, hlslib)
    folded_out = outputs.reshape(n, *io_shapes["oshape_folded"][0][1:])
    packed_out = finnpy_to_packed_bytearray(folded_out, odt, **PACKING)
    read = packed_bytearray_to_finnpy(packed_out, odt, (n, *io_shapes["oshape_folded"][0][1:]),
                                      **PACKING)
    return read.reshape(n, -1)[:, 0].astype(np.int64)


def copy_to_board(bundle: str | Path, host: str, remote_dir: str = "xnorflow-bundle",
                  timeout: float = 30.0) -> str:
    """Copy the bundle to ``host`` (user@board) with scp and run its validation there over ssh
    (the board's PYNQ Python, as root: PYNQ needs it for the FPGA). Returns what it printed."""
    bundle = Path(bundle)
    options = ["-o", "BatchMode=yes", "-o", f"ConnectTimeout={int(timeout)}"]
    steps = [(["scp", *options, "-r", str(bundle), f"{host}:{remote_dir}"], "copying the bundle"),
             (["ssh", *options, host,
               f"cd {remote_dir} && sudo -E python3 {VALIDATE}"], "running validate.py")]
    printed = ""
    for command, what in steps:
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise DeployError(f"{what} on {host} failed ({' '.join(command)}): "
                              f"{done.stderr.strip() or done.stdout.strip()}. The bundle in "
                              f"{bundle} is complete; copy it by hand (README.md there).")
        printed += done.stdout
    return printed
