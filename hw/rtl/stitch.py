"""The stitched design and its two test benches, written as SystemVerilog.

- ``xnorflow_top.sv``: the layers in a chain, one AXI stream between each two; the input stream
  ``s_axis_0`` and the output stream ``m_axis_0`` carry the words FINN packs (the deploy
  bundle's ``inputs_packed.npy`` rows, and the class index or the popcounts).
- ``xnorflow_tb.sv`` (simulation only): the top, with every inner stream and every FIFO's
  occupancy brought out as ports (hierarchical references), so that the harness sees each
  layer's output in context.
- ``xnorflow_layers_tb.sv`` (simulation only): every layer on its own, each with its own input
  and output, so that the harness measures each layer's own cycles per frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .layers import Instance

TOP = "xnorflow_top"
TB = "xnorflow_tb"
LAYERS_TB = "xnorflow_layers_tb"


@dataclass(frozen=True)
class Stream:
    """An AXI stream of the design: the tensor it carries, its width, who writes it."""

    index: int                # 0: the design's input; i: the output of layer i - 1
    tensor: str
    bits: int
    producer: str | None      # instance name, None for the design's input
    consumer: str | None      # None for the design's output

    @property
    def wire(self) -> str:
        return f"s{self.index}"


def streams(instances: list[Instance]) -> list[Stream]:
    """The design's streams in order: its input, each layer's output (the last one is the
    design's output)."""
    found = [Stream(0, instances[0].input, instances[0].in_bits, None, instances[0].name)]
    for i, inst in enumerate(instances):
        consumer = instances[i + 1].name if i + 1 < len(instances) else None
        if consumer is not None and instances[i + 1].input != inst.output:
            raise ValueError(f"{instances[i + 1].name} does not read {inst.name}'s output: "
                             f"the RTL backend stitches chains only")
        found.append(Stream(i + 1, inst.output, inst.out_bits, inst.name, consumer))
    return found


def _instance(inst: Instance, source: Stream, sink: Stream, maxcount: str | None) -> str:
    count = (f",\n\t\t.count(), .maxcount({maxcount})" if inst.has_count else "")
    count += f",\n\t\t{inst.tied}" if inst.tied else ""
    return (f"\t{inst.name} {inst.name} (\n\t\t.ap_clk(ap_clk), .ap_rst_n(ap_rst_n),\n"
            f"\t\t.in0_V_TDATA({source.wire}_tdata), .in0_V_TVALID({source.wire}_tvalid), "
            f".in0_V_TREADY({source.wire}_tready),\n"
            f"\t\t.out0_V_TDATA({sink.wire}_tdata), .out0_V_TVALID({sink.wire}_tvalid), "
            f".out0_V_TREADY({sink.wire}_tready){count}\n\t);\n")


def top(instances: list[Instance]) -> str:
    chain = streams(instances)
    first, last = chain[0], chain[-1]
    lines = [f"// the stitched accelerator (xnorflow.hw.rtl.stitch)\nmodule {TOP} (",
             "\tinput  wire ap_clk,", "\tinput  wire ap_rst_n,",
             f"\tinput  wire [{first.bits - 1}:0] s_axis_0_tdata,",
             "\tinput  wire s_axis_0_tvalid,", "\toutput wire s_axis_0_tready,",
             f"\toutput wire [{last.bits - 1}:0] m_axis_0_tdata,",
             "\toutput wire m_axis_0_tvalid,", "\tinput  wire m_axis_0_tready", ");"]
    for s in chain:
        lines.append(f"\twire [{s.bits - 1}:0] {s.wire}_tdata;   // {s.tensor}\n"
                     f"\twire {s.wire}_tvalid, {s.wire}_tready;")
    for inst in instances:
        if inst.has_count:
            lines.append(f"\twire [31:0] {inst.name}_maxcount;")
    lines += [f"\tassign {first.wire}_tdata = s_axis_0_tdata;",
              f"\tassign {first.wire}_tvalid = s_axis_0_tvalid;",
              f"\tassign s_axis_0_tready = {first.wire}_tready;",
              f"\tassign m_axis_0_tdata = {last.wire}_tdata;",
              f"\tassign m_axis_0_tvalid = {last.wire}_tvalid;",
              f"\tassign {last.wire}_tready = m_axis_0_tready;"]
    for i, inst in enumerate(instances):
        lines.append(_instance(inst, chain[i], chain[i + 1],
                               f"{inst.name}_maxcount" if inst.has_count else None))
    lines.append(f"endmodule : {TOP}\n")
    return "\n".join(lines)


def testbench(instances: list[Instance]) -> str:
    """The top with every stream and FIFO occupancy as ports ``tap<i>_*``, ``fifo<j>_maxcount``."""
    chain = streams(instances)
    ports = ["\tinput  wire ap_clk", "\tinput  wire ap_rst_n",
             f"\tinput  wire [{chain[0].bits - 1}:0] s_axis_0_tdata",
             "\tinput  wire s_axis_0_tvalid", "\toutput wire s_axis_0_tready",
             f"\toutput wire [{chain[-1].bits - 1}:0] m_axis_0_tdata",
             "\toutput wire m_axis_0_tvalid", "\tinput  wire m_axis_0_tready"]
    body = [f"\t{TOP} dut (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n), .s_axis_0_tdata(s_axis_0_tdata),"
            f" .s_axis_0_tvalid(s_axis_0_tvalid), .s_axis_0_tready(s_axis_0_tready), "
            f".m_axis_0_tdata(m_axis_0_tdata), .m_axis_0_tvalid(m_axis_0_tvalid), "
            f".m_axis_0_tready(m_axis_0_tready));"]
    for i, s in enumerate(chain):
        ports += [f"\toutput wire [{s.bits - 1}:0] tap{i}_tdata", f"\toutput wire tap{i}_tvalid",
                  f"\toutput wire tap{i}_tready"]
        body += [f"\tassign tap{i}_tdata = dut.{s.wire}_tdata;",
                 f"\tassign tap{i}_tvalid = dut.{s.wire}_tvalid;",
                 f"\tassign tap{i}_tready = dut.{s.wire}_tready;"]
    for j, inst in enumerate(i for i in instances if i.has_count):
        ports.append(f"\toutput wire [31:0] fifo{j}_maxcount")
        body.append(f"\tassign fifo{j}_maxcount = dut.{inst.name}_maxcount;")
    return (f"// simulation only: {TOP} with its streams as ports (xnorflow.hw.rtl.stitch)\n"
            f"module {TB} (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(body)
            + f"\nendmodule : {TB}\n")


def layers_testbench(instances: list[Instance]) -> str:
    """Every layer alone: ports ``l<i>_in_*`` and ``l<i>_out_*``."""
    ports, body = ["\tinput  wire ap_clk", "\tinput  wire ap_rst_n"], []
    for i, inst in enumerate(instances):
        ports += [f"\tinput  wire [{inst.in_bits - 1}:0] l{i}_in_tdata",
                  f"\tinput  wire l{i}_in_tvalid", f"\toutput wire l{i}_in_tready",
                  f"\toutput wire [{inst.out_bits - 1}:0] l{i}_out_tdata",
                  f"\toutput wire l{i}_out_tvalid", f"\tinput  wire l{i}_out_tready"]
        count = (", .count(), .maxcount()" if inst.has_count else "") + \
            (f", {inst.tied}" if inst.tied else "")
        body.append(f"\t{inst.name} layer{i} (.ap_clk(ap_clk), .ap_rst_n(ap_rst_n), "
                    f".in0_V_TDATA(l{i}_in_tdata), .in0_V_TVALID(l{i}_in_tvalid), "
                    f".in0_V_TREADY(l{i}_in_tready), .out0_V_TDATA(l{i}_out_tdata), "
                    f".out0_V_TVALID(l{i}_out_tvalid), .out0_V_TREADY(l{i}_out_tready){count});")
    return (f"// simulation only: every layer alone (xnorflow.hw.rtl.stitch)\n"
            f"module {LAYERS_TB} (\n" + ",\n".join(ports) + "\n);\n" + "\n".join(body)
            + f"\nendmodule : {LAYERS_TB}\n")


def write(instances: list[Instance], folder: Path) -> dict[str, Path]:
    paths = {TOP: folder / f"{TOP}.sv", TB: folder / f"{TB}.sv",
             LAYERS_TB: folder / f"{LAYERS_TB}.sv"}
    paths[TOP].write_text(top(instances))
    paths[TB].write_text(testbench(instances))
    paths[LAYERS_TB].write_text(layers_testbench(instances))
    return paths
