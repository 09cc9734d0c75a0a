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
from ..hw.finn.layout import BuildLayout
from ..hw.finn.report import BuildSummary
from ..outputs import check_folder, claim_folder, holds_folders, write_bytes, write_npy, write_text


@dataclass
class DeployResult:
    bundle: Path
    images: int
    has_bitfile: bool

    def lines(self) -> list[str]:
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
            shutil.copyfile(path, target / "hdl" / path.name)
    if has_bitfile:
        target = folder.target(BITFILE_DIR, STAGE)
        target.mkdir(exist_ok=True)
        for path in bitfiles:
            shutil.copyfile(path, target / path.name)
    return DeployResult(folder.path, len(reference.images), has_bitfile)


