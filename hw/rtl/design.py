"""From a build's folded dataflow graph to the RTL design's files.

FINN's own graph transformations make the graph a stitchable chain, as its Vivado flow does:
``InsertDWC`` (width converters where a layer's PE and the next layer's SIMD differ),
``InsertFIFO`` (a FIFO on every stream, depth 2 until they are sized) and
``SpecializeLayers`` (their RTL variants). Every node is then generated (:mod:`.layers`) and
the chain stitched (:mod:`.stitch`). A layer the backend cannot generate is named with the
reason before any tool runs.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from ...errors import XnorflowError
from ...outputs import write_text
from ..finn.layout import BuildLayout
from .layers import Instance, check_supported, instance
from .rtllib import copy_patched, own_files, unique
from .stitch import LAYERS_TB, TB, TOP, Stream, streams, write

GRAPH_FILE = "rtl_graph.onnx"       # the chain the design was generated from
DESIGN_FILE = "design.json"


class RtlBackendError(XnorflowError):
    """The RTL backend cannot generate, simulate or synthesize this design."""


@dataclass
class Design:
    folder: Path                  # <build>/rtl
    instances: list[Instance]
    streams: list[Stream]
    files: list[Path]             # HDL of the top, dependencies first
    testbenches: dict[str, Path]
    graph: Path                   # rtl_graph.onnx

    @property
    def hdl(self) -> Path:
        return self.folder / "hdl"

    def model(self):
        from qonnx.core.modelwrapper import ModelWrapper

        return ModelWrapper(str(self.graph))

    def describe(self) -> dict:
        """design.json: enough to simulate the design again from its files alone (a deploy
        bundle's copy)."""
        def local(path: Path) -> str:
            return str(path.relative_to(self.folder))

        return {"top": TOP, "files": [local(f) for f in self.files],
                "testbenches": {k: local(v) for k, v in self.testbenches.items()},
                "layers": [{**asdict(i), "files": [local(f) for f in i.files]}
                           for i in self.instances]}

    @classmethod
    def load(cls, folder: str | Path) -> Design:
        """The design described by ``folder/design.json`` (files relative to ``folder``)."""
        folder = Path(folder)
        described = json.loads((folder / DESIGN_FILE).read_text())
        instances = [Instance(**{**layer, "files": [folder / f for f in layer["files"]]})
                     for layer in described["layers"]]
        return cls(folder, instances, streams(instances),
                   [folder / f for f in described["files"]],
                   {k: folder / v for k, v in described["testbenches"].items()},
                   folder / GRAPH_FILE)


def rtl_graph(folded, fpga_part: str, fifo_depths: dict[str, int] | None = None):
    """The folded graph as a chain of layers, width converters and FIFOs (FINN's
    transformations); ``fifo_depths`` (FIFO name -> depth) sets sized depths."""
    from finn.transformation.fpgadataflow.insert_dwc import InsertDWC
    from finn.transformation.fpgadataflow.insert_fifo import InsertFIFO
    from finn.transformation.fpgadataflow.specialize_layers import SpecializeLayers
    from qonnx.custom_op.registry import getCustomOp
    from qonnx.transformation.general import GiveReadableTensorNames, GiveUniqueNodeNames

    model = folded.transform(InsertDWC())
    model = model.transform(InsertFIFO(create_shallow_fifos=True))
    model = model.transform(SpecializeLayers(fpga_part))
    model = model.transform(GiveUniqueNodeNames())
    model = model.transform(GiveReadableTensorNames())   # the same names on every build
    for node in model.graph.node:
        if node.op_type == "StreamingFIFO_rtl":
            fifo = getCustomOp(node)
            fifo.set_nodeattr("impl_style", "rtl")
            if fifo_depths and node.name in fifo_depths:
                fifo.set_nodeattr("depth", int(fifo_depths[node.name]))
    return model


def generate(build_dir: str | Path, fpga_part: str, clock_mhz: float,
             fifo_depths: dict[str, int] | None = None, folder: Path | None = None) -> Design:
    """Write the RTL design of the build in ``build_dir`` into ``<build>/rtl`` (or
    ``folder``): every layer's HDL and ROM files, the stitched top and the test benches."""
    from qonnx.core.modelwrapper import ModelWrapper

    layout = BuildLayout(build_dir)
    if not layout.folded.is_file():
        raise RtlBackendError(f"{build_dir}: no folded dataflow graph (the build did not "
                              f"reach {layout.folded.stem}); build it first.")
    return generate_from_graph(ModelWrapper(str(layout.folded)),
                               Path(folder or Path(build_dir) / "rtl"), fpga_part, clock_mhz,
                               fifo_depths)


def generate_from_graph(folded, folder: Path, fpga_part: str, clock_mhz: float,
                        fifo_depths: dict[str, int] | None = None) -> Design:
    """The RTL design of a folded dataflow graph (FINN's HW layers) in ``folder``."""
    from ..finn.env import prepare_finn

    hdl = folder / "hdl"
    hdl.mkdir(parents=True, exist_ok=True)
    prepare_finn(folder / "finn")   # FINN's settings for its HDL templates
    model = rtl_graph(folded, fpga_part, fifo_depths)
    problems = check_supported(model)
    if problems:
        raise RtlBackendError("the RTL backend cannot generate " + "; ".join(problems)
                              + ". Nothing was simulated or synthesized; build without "
                                "--backend rtl for the HLS flow.")
    instances = [instance(node, model, hdl, fpga_part, 1e3 / clock_mhz)
                 for node in model.graph.node]
    testbenches = write(instances, hdl)
    own = [copy_patched(f, hdl) for f in own_files()]   # one folder holds every file
    files = unique([*own, *(f for i in instances for f in i.files), testbenches[TOP]])
    model.save(str(folder / GRAPH_FILE))
    design = Design(folder, instances, streams(instances), files, testbenches,
                    folder / GRAPH_FILE)
    write_text(folder / DESIGN_FILE, json.dumps(design.describe(), indent=2))
    return design


__all__ = ["Design", "GRAPH_FILE", "LAYERS_TB", "RtlBackendError", "TB", "TOP", "generate",
           "rtl_graph"]
