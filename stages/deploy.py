"""`xnorflow deploy BUILD --out BUNDLE`: the bundle a PYNQ board runs, from a finished build
(what the bundle holds and how it is made: :mod:`xnorflow.hw.deploy.bundle`)."""

from __future__ import annotations

import json
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..hw.deploy.bundle import (
    ACCELERATOR,
    BITFILE,
    BITFILE_DIR,
    DRIVER_PIN,
    EXPECTED,
    FOLDER_KIND,
    HWH,
    INPUTS,
    LABELS,
    MANIFEST,
    PYNQ_VERSIONS,
    README,
    RTL_DIR,
    SETTINGS,
    STAGE,
    TEMPLATES,
    VALIDATE,
    DeployError,
    driver_settings,
    input_description,
    pack_inputs,
)
from ..hw.devices import ECP5_BOARDS
from ..hw.finn.layout import BuildLayout
from ..hw.finn.report import BuildSummary
from ..outputs import check_folder, claim_folder, holds_folders, write_bytes, write_npy, write_text


@dataclass
class DeployResult:
    bundle: Path
    images: int
    has_bitfile: bool
    uart: tuple | None = None      # an ECP5 board: (board, the simulated link's LinkCheck)

    def lines(self) -> list[str]:
        if self.uart is not None:
            board, check = self.uart
            return [f"bundle: {self.bundle} ({self.images} test images as the {board}'s link "
                    f"sends them; "
                    + ("bitstream copied" if self.has_bitfile else "no bitstream") + ")",
                    f"the bundle's first {check.frames} images through the simulated {board} "
                    f"(its link and accelerator in Verilator, the bundle's driver): "
                    f"{check.identical}/{check.frames} classes identical to PyTorch",
                    f"on the board: load the bitstream (README.md), then python "
                    f"{shlex.quote(str(self.bundle / VALIDATE))} --port /dev/ttyUSB0"]
        bitfile = ("bitfile and .hwh copied" if self.has_bitfile else
                   "no bitfile: the build stopped before Vivado; validate.py --simulate runs on "
                   "this machine, the board needs a build with --until bitfile")
        return [f"bundle: {self.bundle} ({self.images} test images packed for the accelerator; "
                f"{bitfile})",
                f"check it here: python {shlex.quote(str(self.bundle / VALIDATE))} --simulate"]


def _final_accelerator(build: Path):
    """The folded dataflow design (the partition), refused unless it is the whole network."""
    from qonnx.core.modelwrapper import ModelWrapper

    layout = BuildLayout(build)
    child, parent = layout.folded, layout.parent
    if not child.is_file() or not parent.is_file():
        raise DeployError(f"{build} holds no finished build (no {child.name}); run "
                          f"`xnorflow build` first.")
    parent_model, child_model = ModelWrapper(str(parent)), ModelWrapper(str(child))
    if [n.op_type for n in parent_model.graph.node] != ["StreamingDataflowPartition"]:
        outside = sorted({n.op_type for n in parent_model.graph.node} -
                         {"StreamingDataflowPartition"})
        raise DeployError(f"{build}: part of this network runs on the host ({', '.join(outside)} "
                          f"around the accelerator: a per-class batch-norm head), so the "
                          f"accelerator does not output the class. Deploy needs the class on "
                          f"chip: train with --head tensor-norm (the default) and build again.")
    return child_model


@holds_folders
def deploy_stage(build: str | Path, out: str | Path, images: int = 1000,
                 data_dir: str | None = None) -> DeployResult:
    """Write the bundle for ``build`` into ``out`` (new, empty or an earlier bundle)."""
    from ..export.run_export import check_run_buildable, reference_for
    from ..export.verify import graph_inputs
    from ..hw.devices import DEVICES
    from ..hw.finn.env import prepare_finn
    from ..train.runs import open_run

    build, out = Path(build), Path(out)
    if not BuildLayout(build).summary.is_file():
        raise DeployError(f"{build} is not an xnorflow build folder (no build_summary.json); "
                          f"run `xnorflow build RUN` and deploy its --out folder.")
    summary = BuildSummary.read(build)
    if summary.run is None:
        raise DeployError(f"{build} was built by an earlier xnorflow that did not record its "
                          f"run; build it again.")
    run = open_run(summary.run)
    check_run_buildable(run)  # no build of it can exist; refused before FINN runs
    accelerator = _final_accelerator(build)
    check_folder(out, FOLDER_KIND)  # refused before any work
    if summary.board in ECP5_BOARDS:
        return _deploy_uart(build, out, images, data_dir, summary, run)
    part, board = summary.fpga_part, summary.board
    with tempfile.TemporaryDirectory() as work:
        prepare_finn(Path(work) / "finn")
        settings = driver_settings(accelerator, part, summary.clock_mhz, board, Path(work))
    io_shapes = settings["driver_information"]["io_shape_dict"]
    reference = reference_for(run, run.model(), images, data_dir)
    packed = pack_inputs(graph_inputs(accelerator, reference.images), io_shapes)
    bitfiles = [BuildLayout(build).bitfile_dir / name for name in (BITFILE, HWH)]
    has_bitfile = all(p.is_file() for p in bitfiles)
    folder = claim_folder(out, FOLDER_KIND)
    manifest = {"board": board, "fpga_part": part,
                "device": DEVICES[part].family if part in DEVICES else part,
                "clock_mhz": summary.clock_mhz, "images": len(reference.images),
                "test_set_images": reference.test_set_size,
                "sample": reference.describe_sample(),
                "network": run.describe(), "driver": DRIVER_PIN, "pynq": PYNQ_VERSIONS,
                "estimated_fps": summary.estimated_fps, "bitfile": has_bitfile,
                "rtl": (Path(build) / RTL_DIR / "design.json").is_file(),
                "input": input_description(io_shapes),
                # row i of the packed inputs and labels is this image of the test set
                "test_set_indices": [int(i) for i in reference.indices]}
    files = {SETTINGS: json.dumps(settings, indent=2), MANIFEST: json.dumps(manifest, indent=2),
             VALIDATE: (TEMPLATES / VALIDATE).read_text(),
             README: (TEMPLATES / README).read_text().format(**manifest)}
    for name, text in files.items():
        write_text(folder.target(name, STAGE), text)
    (folder.path / VALIDATE).chmod(0o755)
    write_bytes(folder.target(ACCELERATOR, STAGE), accelerator.model.SerializeToString())
    write_npy(folder.target(INPUTS, STAGE), packed)
    write_npy(folder.target(EXPECTED, STAGE), reference.logits.argmax(axis=1))
    write_npy(folder.target(LABELS, STAGE), reference.labels.astype(np.int64))
    rtl = Path(build) / RTL_DIR
    if (rtl / "design.json").is_file():   # built with --backend rtl: validate.py --rtl
        target = folder.target(RTL_DIR, STAGE)   # deploy's own entry: an earlier copy goes
        shutil.rmtree(target / "hdl", ignore_errors=True)
        (target / "hdl").mkdir(parents=True)
        shutil.copyfile(rtl / "design.json", target / "design.json")
        for path in sorted((rtl / "hdl").iterdir()):
            if path.is_file():   # the design's files (not an ECP5 board's folder)
                shutil.copyfile(path, target / "hdl" / path.name)
    if has_bitfile:
        target = folder.target(BITFILE_DIR, STAGE)
        target.mkdir(exist_ok=True)
        for path in bitfiles:
            shutil.copyfile(path, target / path.name)
    return DeployResult(folder.path, len(reference.images), has_bitfile)




UART_VALIDATE = "validate_uart.py"      # the template of an ECP5 bundle's validate.py
LINK_CHECK_FRAMES = 100                 # bundle images sent through the simulated board


def _deploy_uart(build: Path, out: Path, images: int, data_dir: str | None,
                 summary: BuildSummary, run) -> DeployResult:
    """An ECP5 board's bundle: the bitstream, the link settings, the test images as the link
    sends them (the accelerator's input words), PyTorch's classes, the host driver and a
    validate.py that runs them over the serial port. The first images go through the
    simulated board (the build's link and accelerator, Verilator) with the same driver."""
    from ..export.run_export import reference_for
    from ..hw.rtl.board import BOARDS as ECP5_BOARD_FILES
    from ..hw.rtl.board import simulate_link, write_board_files
    from ..hw.rtl.design import Design
    from ..hw.rtl.simulate import expected_words

    rtl = summary.rtl or {}
    settings = (rtl.get("board") or {}).get("settings")
    bitstream = (rtl.get("board") or {}).get("bitstream")
    if not settings or not Path(settings).is_file():
        raise DeployError(f"{build} is a {summary.board} build without its link settings (built "
                          f"with --place-route none?); build it again with --backend rtl.")
    link = json.loads(Path(settings).read_text())
    reference = reference_for(run, run.model(), images, data_dir)
    design = Design.load(build / RTL_DIR)
    expected = expected_words(build, design, reference.images)
    packed = expected.words[0].reshape(len(reference.images), -1)
    if packed.shape[1] != link["in_frame_bytes"]:
        raise DeployError(f"{build}: the link settings say {link['in_frame_bytes']} bytes a "
                          f"frame, the design {packed.shape[1]}; build it again.")
    files = write_board_files(design, ECP5_BOARD_FILES[summary.board], link["clock_mhz"],
                              link["baud"])
    sample = slice(0, min(LINK_CHECK_FRAMES, len(packed)))
    check = simulate_link(files, packed[sample],
                          expected.words[-1].reshape(len(packed), -1)[sample])
    classes = reference.logits.argmax(axis=1)
    if not check.passed:
        raise DeployError(f"the bundle's images through the simulated {summary.board} gave "
                          f"{check.identical}/{check.frames} expected outputs and "
                          f"{check.overruns} dropped bytes; the build's link does not work. "
                          f"Build it again.")
    folder = claim_folder(out, FOLDER_KIND)
    has_bitstream = bool(bitstream) and Path(bitstream).is_file()
    manifest = {"board": summary.board, "fpga_part": summary.fpga_part,
                "clock_mhz": link["clock_mhz"], "baud": link["baud"],
                "images": len(reference.images), "test_set_images": reference.test_set_size,
                "sample": reference.describe_sample(), "network": run.describe(),
                "accelerator_fps": summary.estimated_fps, "bitstream": has_bitstream,
                "simulated_link": f"{check.identical}/{check.frames} identical",
                "test_set_indices": [int(i) for i in reference.indices]}
    texts = {MANIFEST: json.dumps(manifest, indent=2), "link.json": json.dumps(link, indent=2),
             VALIDATE: (TEMPLATES / UART_VALIDATE).read_text(),
             "uart_host.py": (Path(__file__).parent.parent / "hw" / "rtl" /
                              "uart_host.py").read_text(),
             README: UART_README.format(bitfile=Path(bitstream).name if has_bitstream
                                        else "(none: build with --place-route ecp5)",
                                        **manifest)}
    for name, text in texts.items():
        write_text(folder.target(name, STAGE), text)
    (folder.path / VALIDATE).chmod(0o755)
    write_npy(folder.target(INPUTS, STAGE), packed)
    write_npy(folder.target(EXPECTED, STAGE), classes)
    write_npy(folder.target(LABELS, STAGE), reference.labels.astype(np.int64))
    if has_bitstream:
        shutil.copyfile(bitstream, folder.target(Path(bitstream).name, STAGE))
    return DeployResult(folder.path, len(reference.images), has_bitstream,
                        uart=(summary.board, check))


UART_README = """# xnorflow bundle for the {board}

{network}, {images} test images ({sample}).

1. Load the bitstream into the board (it stays until power-off), e.g. with openFPGALoader:
   `openFPGALoader -b ulx3s {bitfile}` (or fujprog).
2. Plug the board's USB port US1 into this computer, then run
   `python validate.py --port /dev/ttyUSB0` (needs `pip install numpy pyserial`).

The accelerator runs at {clock_mhz:g} MHz behind a {baud:,} baud UART link: validate.py sends the
packed images, reads one class per image, and compares it with PyTorch's. The LEDs show the latest
class in binary; the FIRE1 button resets the accelerator. `xnorflow deploy` already sent the first
images through the Verilator simulation of this link and accelerator with the same driver
(uart_host.py): {simulated_link}.
"""
