"""Build report: layer table, bottleneck, FPS/latency, resource totals vs the device, plot.

Reads what FINN's builder wrote (``report/estimate_*.json`` and the final intermediate model)
and writes ``build_report.md``, ``build_report.html``, ``cycles_per_layer.png`` and
``build_summary.json`` into the build folder.
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ...outputs import atomic_file, write_text
from ..devices import DEVICES
from .layout import FINAL_STEPS, BuildLayout


@dataclass
class LayerRow:
    name: str
    op: str
    shape: str
    pe: int
    simd: int
    accumulator: str
    cycles: int
    lut: float
    bram_18k: float
    hls_sources: str


def _final_model(build_dir: Path):
    from qonnx.core.modelwrapper import ModelWrapper

    path = BuildLayout(build_dir).final_model()
    if path is None:
        raise FileNotFoundError(f"{build_dir}: no finished build (none of {FINAL_STEPS})")
    return ModelWrapper(str(path))


def layer_rows(build_dir: Path) -> list[LayerRow]:
    from qonnx.custom_op.registry import getCustomOp

    layout = BuildLayout(build_dir)
    cycles = json.loads(layout.estimate("layer_cycles").read_text())
    resources = json.loads(layout.estimate("layer_resources").read_text())
    rows = []
    for node in _final_model(build_dir).graph.node:
        op = getCustomOp(node)
        attrs = {a.name for a in node.attribute}
        def get(a, default=None, op=op, attrs=attrs):
            return op.get_nodeattr(a) if a in attrs else default

        sources = get("code_gen_dir_ipgen", "") or ""
        rows.append(LayerRow(
            name=node.name, op=node.op_type,
            shape=(f"{get('Labels')} classes -> top {get('K')}" if "Labels" in attrs
                   else f"{get('MW', '?')} x {get('MH', '?')}"),
            pe=int(get("PE", 1)), simd=int(get("SIMD", 1)),
            accumulator=str(get("accDataType", "")),
            cycles=int(cycles.get(node.name, 0)),
            lut=float(resources.get(node.name, {}).get("LUT", 0)),
            bram_18k=float(resources.get(node.name, {}).get("BRAM_18K", 0)),
            hls_sources=str(Path(sources).relative_to(build_dir)) if sources.startswith(
                str(build_dir)) else sources))
    return rows


@dataclass
class BuildSummary:
    """What a finished build is, as the report shows it and ``build_summary.json`` keeps it;
    deploy, explore and the build stage read these fields, never the JSON's keys."""

    board: str | None
    fpga_part: str
    clock_mhz: float
    layers: list[LayerRow]
    bottleneck: str
    bottleneck_cycles: int
    target_fps: float | None
    target_met: bool | None       # None: the folding came from a JSON, not from a target
    estimated_fps: float
    output: str                   # "class" (selected on chip) or "popcounts"
    estimated_latency_us: float
    critical_path_cycles: int
    resources: dict[str, float]
    device_capacity: dict[str, int] | None
    utilization: dict[str, float]
    fits_device: bool | None
    folding: dict
    verification: list[dict] = field(default_factory=list)
    cppsim: dict | None = None
    run: str | None = None        # the run folder deploy takes its test images from
    rtl: dict | None = None       # --backend rtl: simulation and yosys synthesis (rtl.json)
    fit_basis: str = "estimates"  # what the fit judgement used: estimates or synthesis
    synthesized: dict[str, int] | None = None      # yosys' counts of the design, when it ran
    synthesized_utilization: dict[str, float] = field(default_factory=dict)
    estimated_utilization: dict[str, float] = field(default_factory=dict)
    bottlenecks: list[str] = field(default_factory=list)   # every layer tied for the slowest
    sample: str | None = None     # how the checked test images were drawn

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BuildSummary:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["layers"] = [LayerRow(**row) for row in values.get("layers", [])]
        return cls(**values)

    @classmethod
    def read(cls, build_dir: str | Path) -> BuildSummary:
        return cls.from_dict(json.loads(BuildLayout(build_dir).summary.read_text()))


def summarize(build_dir: str | Path, clock_mhz: float, fpga_part: str,
              verification: list | None = None, target_fps: float | None = None,
              board: str | None = None, cppsim: dict | None = None,
              run: str | None = None, rtl: dict | None = None,
              sample: str | None = None) -> BuildSummary:
    """Everything the report shows, from what FINN's builder wrote (and, for ``--backend rtl``,
    the RTL result's dict)."""
    build_dir = Path(build_dir).resolve()
    layout = BuildLayout(build_dir)
    performance = json.loads(layout.estimate("network_performance").read_text())
    totals = json.loads(layout.estimate("layer_resources").read_text()).get("total", {})
    rows = layer_rows(build_dir)
    bottleneck = max(rows, key=lambda r: r.cycles)
    capacity = DEVICES[fpga_part].capacity() if fpga_part in DEVICES else None
    # the fit judgement: yosys' synthesis where the RTL backend ran it, FINN's estimates else;
    # each source keeps its own shares of the device
    synthesized = (rtl or {}).get("synthesis", {}).get("design") or None
    basis = "yosys synthesis" if synthesized else "estimates"
    placed = _placed_on(rtl, fpga_part)
    if placed:   # the board's own chip placed and routed: its utilisation is the fit
        synthesized, basis = placed, "place and route"
    estimated = _shares(totals, capacity)
    synthesized_shares = _shares(synthesized, capacity) if synthesized else {}
    utilization = synthesized_shares or estimated
    fps = clock_mhz * 1e6 / max(bottleneck.cycles, 1)
    on_chip = any(r.op.startswith("LabelSelect") for r in rows)
    search = layout.report_dir / "folding_search.json"
    folding = json.loads(search.read_text()) if search.is_file() else \
        {"search": "finn" if target_fps is not None else "json"}
    return BuildSummary(
        board=board, fpga_part=fpga_part, clock_mhz=clock_mhz, layers=rows,
        bottleneck=bottleneck.name, bottleneck_cycles=bottleneck.cycles,
        target_fps=target_fps,
        target_met=None if target_fps is None else fps >= target_fps,
        estimated_fps=fps,
        output="class" if on_chip else "popcounts",
        estimated_latency_us=performance["critical_path_cycles"] / clock_mhz,
        critical_path_cycles=performance["critical_path_cycles"],
        resources=totals, device_capacity=capacity, utilization=utilization,
        fits_device=all(u <= 1.0 for u in utilization.values()) if capacity else None,
        folding={k: v for k, v in folding.items() if k != "layers"},
        verification=[v.as_dict() for v in verification or []],
        cppsim=cppsim, run=run, rtl=rtl,
        fit_basis=basis,
        synthesized=synthesized, synthesized_utilization=synthesized_shares,
        estimated_utilization=estimated,
        bottlenecks=[r.name for r in rows if r.cycles == bottleneck.cycles], sample=sample)


def _placed_on(rtl: dict | None, fpga_part: str) -> dict[str, int] | None:
    """nextpnr's utilisation in FINN's words, where the board's own part was placed and
    routed (an ECP5 board; not the stand-in for a PYNQ board)."""
    placed = (rtl or {}).get("place_route")
    if not placed or placed["part"] != fpga_part:
        return None
    used = placed["utilisation"]
    return {"LUT": used["LUT4"]["used"], "FF": used["FF"]["used"],
            "BRAM_18K": used["EBR"]["used"], "DSP": used["DSP"]["used"]}


def _shares(counts: dict | None, capacity: dict | None) -> dict[str, float]:
    """Each resource's share of the device (resources the device has)."""
    if not counts or not capacity:
        return {}
    return {k: counts.get(k, 0) / v for k, v in capacity.items() if v}


def _tables(summary: BuildSummary) -> list[tuple[str, list[str], list[list[str]]]]:
    layers = [[r.name, r.op, r.shape, str(r.pe), str(r.simd), r.accumulator, f"{r.cycles:,}",
               f"{r.lut:,.0f}", f"{r.bram_18k:g}", r.hls_sources] for r in summary.layers]
    tables = [("Layers", ["layer", "op", "shape", "PE", "SIMD", "accumulator", "cycles",
                          "LUT (est.)", "BRAM_18K (est.)", "HLS sources"], layers)]
    cap = summary.device_capacity or {}
    estimated = summary.estimated_utilization or (summary.utilization
                                                  if summary.fit_basis == "estimates" else {})
    sources = [("Resources: FINN estimates", summary.resources, estimated)]
    if summary.synthesized:
        sources.append((SOURCE_TITLES[summary.fit_basis], summary.synthesized,
                        summary.synthesized_utilization))
    for title, counts, shares in sources:
        used = " (the fit judgement)" if (title.endswith("estimates")
                                          == (summary.fit_basis == "estimates")) else ""
        tables.append((title + used, ["resource", "design", "device", "use"],
                       [[k, f"{counts.get(k, 0):,.0f}", f"{cap[k]:,}" if k in cap else "?",
                         f"{shares[k]:.1%}" if k in shares else "?"]
                        for k in ("LUT", "FF", "BRAM_18K", "DSP", "URAM")
                        if k in counts or k in cap]))
    if summary.verification:
        tables.append(("Bit-exact chain (vs PyTorch)",
                       ["stage", "images", "output", "class = PyTorch argmax",
                        "logits within tol.", "max abs diff", "tied maxima"],
                       [[v["stage"], str(v["images"]), v["output"], str(v["argmax_matches"]),
                         "-" if v["logits_match"] is None else str(v["logits_match"]),
                         "-" if v["max_abs_diff"] is None else f"{v['max_abs_diff']:.1e}",
                         str(v["ties"])]
                        for v in summary.verification]))
    if summary.cppsim:
        sim = summary.cppsim
        tables.append(("C simulation of the generated layers (cppsim) vs FINN's Python execution",
                       ["layer", "images", "images with a differing output", "compiled"],
                       [[m["layer"], str(m["images"]), str(m["differing"]),
                         "reused" if m["layer"] in sim["cached"] else "now"]
                        for m in sim["layers"]]
                       + [[layer, "-", "-", f"no: {reason}"]
                          for layer, reason in sim.get("python", {}).items()]))
    if summary.rtl:
        tables += rtl_tables(summary.rtl)
    return tables


def rtl_tables(rtl: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    """The RTL backend's per-layer simulation and synthesis, FINN's estimates beside (a layer
    FINN does not estimate, a FIFO or width converter, shows "-")."""
    sim, synth = rtl["simulation"], rtl["synthesis"]
    by_name = {s["layer"]: s for s in synth.get("layers", [])}
    ran = synth.get("level", "hierarchical") != "none"
    rows = []
    for layer in sim["layers"]:
        s = by_name.get(layer["name"], {})
        estimate = s.get("finn_estimate", {})
        measured = layer["measured_cycles"]
        rows.append([layer["name"], layer["op_type"],
                     "identical" if layer["alone_identical"] and not layer["images_differing"]
                     else "DIFFERS", "-" if measured is None else f"{measured:,.0f}",
                     f"{layer['expected_cycles']:,}" if layer["expected_cycles"] else "-",
                     *((f"{s.get(k, 0):,}" if s else "-") if ran else "not run"
                       for k in ("LUT", "FF", "LUTRAM", "BRAM_18K", "DSP")),
                     f"{estimate.get('LUT', 0):,.0f}" if estimate else "-",
                     f"{estimate.get('BRAM_18K', 0):g}" if estimate else "-"])
    stress = sim["stress"]
    whole = [["cycles per frame, steady state (measured)", f"{sim['cycles_per_frame']:,.1f}"],
             ["FINN's estimate (slowest layer)", f"{sim['estimated_cycles']:,} ("
              + ", ".join(sim.get("bottlenecks", [])) + ")"],
             ["first frame's latency (cycles)", f"{sim['latency_cycles']:,}"],
             ["output vs PyTorch", f"{sim['comparison']['argmax_matches']}/"
                                   f"{sim['comparison']['images']}"],
             [f"stress run: {stress['gap_percent']} % input gaps, {stress['stall_percent']} % "
              f"output back-pressure, {stress['images']} images",
              "identical" if stress["identical"] else "DIFFERENT"],
             ["AXI4-Stream rule violations (TVALID/TDATA not held while stalled)",
              f"{stress.get('violations', 0):,}"],
             ["FIFO depths (smallest that keep the rate; unbounded occupancy)",
              ", ".join(f"{k}: {v} ({sim.get('fifo_occupancy', {}).get(k, '?')})"
                        for k, v in sim["fifo_depths"].items())],
             ["yosys synthesis", synth.get("how", "")]]
    deepest = max(synth.get("layers", []), key=lambda s: s.get("logic_depth", 0), default=None)
    if deepest and deepest.get("logic_depth"):
        whole.append(["longest path between registers (yosys ltp, cells)",
                      f"{deepest['logic_depth']} in {deepest['layer']}"])
    placed = rtl.get("place_route")
    if placed:
        path = placed.get("critical_path") or {}
        fps = placed["fmax_mhz"] * 1e6 / max(sim["cycles_per_frame"], 1)
        whole += [[f"post-route Fmax on {placed['part']} (nextpnr-ecp5, seed {placed['seed']})",
                   f"{placed['fmax_mhz']:.1f} MHz: "
                   + ("meets" if placed["met"] else "MISSES") + f" {placed['clock_mhz']:g} MHz"
                   f"; {fps:,.0f} FPS at Fmax"],
                  ["post-route utilisation (LUT4 / FF / EBR / DSP)",
                   " / ".join(f"{u['used']:,} of {u['available']:,}"
                              for u in placed["utilisation"].values())],
                  ["critical path", f"{path.get('ns', 0):.2f} ns ({path.get('logic_ns', 0):.2f} "
                   f"logic, {path.get('routing_ns', 0):.2f} routing) from {path.get('start')} "
                   f"({path.get('start_cell')}) to {path.get('end')} ({path.get('end_cell')})"]]
    link, board = rtl.get("link"), rtl.get("board")
    if link:
        whole.append([f"{board['board']} UART link, simulated with the host driver",
                      f"{link['identical']}/{link['frames']} outputs identical, "
                      f"{link['overruns']} bytes dropped"])
    if board and board.get("bitstream"):
        whole.append([f"{board['board']} bitstream ({board['baud']:,} baud, "
                      f"{board['clock_mhz']:g} MHz)", board["bitstream"]])
    if rtl.get("vivado_script"):
        whole.append(["Vivado project script (no HLS)", rtl["vivado_script"]])
    if sim.get("waveform"):
        whole.append(["waveform (VCD)", sim["waveform"]])
    return [("RTL design: simulation (Verilator) and synthesis (yosys, pre-place-and-route)",
             ["layer", "op", "vs FINN's Python", "cycles/frame (measured)",
              "cycles (FINN est.)", "LUT", "FF", "LUTRAM", "BRAM_18K", "DSP",
              "LUT (FINN est.)", "BRAM_18K (FINN est.)"], rows),
            ("RTL design as a whole", ["what", "value"], whole)]


def target_line(summary: BuildSummary) -> str:
    """The requested target against the reached frame rate (estimates at the clock), and
    which folding search chose the design."""
    fps = f"{summary.estimated_fps:,.0f} FPS"
    folding = summary.folding or {}
    if folding.get("search") == "balanced" and folding.get("mode") == "fit":
        return (f"folding: the fastest design within {folding['budget']:.0%} of every "
                f"resource (xnorflow's balanced search over FINN's estimates) reaches {fps} at "
                f"{summary.clock_mhz:g} MHz")
    if summary.target_met is None:
        return f"folding from the JSON gives {fps} (no --target-fps requested)"
    verdict = "reached" if summary.target_met else "MISSED"
    how = {"balanced": "xnorflow's balanced search: the cheapest folding for it",
           "finn": "FINN's SetFolding"}.get(folding.get("search"), "")
    return (f"target {summary.target_fps:,.0f} FPS {verdict}: the design reaches {fps} at "
            f"{summary.clock_mhz:g} MHz" + (f" ({how})" if how else ""))


SOURCE_TITLES = {"yosys synthesis": "Resources: yosys synthesis of the RTL (pre-place-and-route)",
                 "place and route": "Resources: nextpnr place and route on the board's ECP5 "
                                    "(LUT: 4-input LUTs, BRAM_18K: EBRs)"}
DISAGREEMENT = 1.5    # estimates and synthesis further apart than this on a resource: say so


def fit_line(summary: BuildSummary) -> str:
    """Whether the design fits the device, on which source's counts, with each share; and
    where FINN's estimates and yosys' synthesis disagree by more than a small factor."""
    if summary.fits_device is None:
        return f"resources: unknown capacity of {summary.fpga_part}"
    use = ", ".join(f"{k} {v:.0%}" for k, v in summary.utilization.items())
    verdict = "fit" if summary.fits_device else "do NOT fit"
    device = (f"{summary.board} ({summary.fpga_part})" if summary.board
              else summary.fpga_part)
    basis = {"yosys synthesis": "yosys synthesis of the RTL design, pre-place-and-route",
             "place and route": "nextpnr place and route of the RTL design, 4-input LUTs",
             }.get(summary.fit_basis, "FINN's estimates, not synthesis")
    return f"resources {verdict} {device}: {use} ({basis})" + disagreement(summary)


def disagreement(summary: BuildSummary) -> str:
    """'; FINN's estimates differ: LUT 61 % there' where the two sources part by > 1.5x."""
    if not summary.synthesized or not summary.estimated_utilization:
        return ""
    apart = []
    for k, estimated in summary.estimated_utilization.items():
        synthesized = summary.synthesized_utilization.get(k, 0.0)
        low, high = sorted((estimated, synthesized))
        if high > 0.01 and (low == 0 or high / low > DISAGREEMENT):
            apart.append(f"{k} {estimated:.0%}")
    if not apart:
        return ""
    return (f"; FINN's estimates differ by more than {DISAGREEMENT:g}x: "
            + ", ".join(apart) + " there (FINN estimates its HLS layers for a 7-series part; "
            + ("nextpnr counts this RTL placed on the ECP5, in 4-input LUTs)"
               if summary.fit_basis == "place and route" else
               "yosys counts this RTL before place and route, without Vivado's SRL and "
               "cross-layer optimization)"))


def output_line(summary: BuildSummary) -> str:
    """What the accelerator sends back per image."""
    if summary.output == "class":
        return ("output: the class index, selected on chip (LabelSelect; ties go to the lowest "
                "index, as PyTorch's argmax)")
    return ("output: the classifier's popcounts; the host applies the per-class affine "
            "(dataflow_parent.onnx). Train with --head tensor-norm to select the class on chip")


def _headline(summary: BuildSummary) -> list[str]:
    return [f"FPGA part {summary.fpga_part} at {summary.clock_mhz:g} MHz",
            output_line(summary), target_line(summary),
            f"{_bottleneck_text(summary)}: {summary.bottleneck_cycles:,} cycles/frame "
            f"-> estimated {summary.estimated_fps:,.0f} FPS",
            f"latency {summary.estimated_latency_us:.2f} us "
            f"({summary.critical_path_cycles:,} cycles critical path)",
            fit_line(summary)] + ([f"test images checked: {summary.sample}"]
                                  if summary.sample else []) + folding_lines(summary) + (
                [cppsim_line(summary.cppsim)] if summary.cppsim else []) + (
                [rtl_line(summary.rtl)] if summary.rtl else [])


def _bottleneck_text(summary: BuildSummary) -> str:
    tied = summary.bottlenecks or [summary.bottleneck]
    if len(tied) == 1:
        return f"bottleneck {tied[0]}"
    return f"bottleneck: {len(tied)} layers tied ({', '.join(tied)})"


def folding_lines(summary: BuildSummary) -> list[str]:
    """Why xnorflow's search chose this folding (nothing for FINN's or a JSON's)."""
    folding = summary.folding or {}
    if folding.get("search") != "balanced":
        return []
    return [f"folding search: {note}" for note in folding["notes"]] + [
        "folding search: choices in report/folding_search.json, reusable as --folding-config "
        "report/auto_folding_config.json"]


def rtl_line(rtl: dict) -> str:
    sim, synthesis = rtl["simulation"], rtl["synthesis"]
    design = synthesis.get("design") or {}
    counted = (f"yosys ({synthesis['level']}, pre-place-and-route): LUT {design['LUT']:,}, "
               f"FF {design['FF']:,}, BRAM_18K {design['BRAM_18K']:,}" if design
               else "yosys: not run")
    placed = rtl.get("place_route")
    timing = ""
    if placed:
        fps = placed["fmax_mhz"] * 1e6 / max(sim["cycles_per_frame"], 1)
        timing = (f"; post-route Fmax {placed['fmax_mhz']:.1f} MHz on {placed['part']} "
                  f"({'meets' if placed['met'] else 'MISSES'} {placed['clock_mhz']:g} MHz; "
                  f"{fps:,.0f} FPS at Fmax)")
    return (f"RTL design (Verilator): {sim['comparison']['argmax_matches']}/"
            f"{sim['comparison']['images']} identical to PyTorch, every layer's words to "
            f"FINN's Python execution: {'yes' if rtl['identical'] else 'NO'}; "
            f"{sim['cycles_per_frame']:,.1f} cycles/frame measured (FINN estimate "
            f"{sim['estimated_cycles']:,}); {counted}{timing}")


def cppsim_line(sim: dict) -> str:
    n = sim["comparison"]["images"]
    compiled = len(sim["compiled"]) + len(sim["cached"])
    python = sim.get("python", {})
    how = (f"{compiled} generated layers compiled with g++ and executed"
           + (f"; {len(python)} without a C++ model here ran in FINN's Python execution, see "
              f"the report" if python else ""))
    return (f"cppsim: argmax {sim['comparison']['argmax_matches']}/{n} identical to PyTorch, "
            f"outputs {sim['equal_to_python']}/{n} equal to FINN's Python execution ({how})")


def write_report(build_dir: str | Path, summary: BuildSummary, title: str = "xnorflow build report",
                 ) -> Path:
    build_dir = Path(build_dir)
    write_text(BuildLayout(build_dir).summary, json.dumps(summary.as_dict(), indent=2))
    with atomic_file(build_dir / "cycles_per_layer.png") as f:
        _plot_cycles(summary, f)
    if summary.rtl:
        with atomic_file(build_dir / RTL_FIGURE) as f:
            _plot_rtl(summary.rtl, f)
    md = [f"# {title}", ""] + [f"- {line}" for line in _headline(summary)] + [""]
    page = [f"<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>"
            "body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
            "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>",
            f"<h1>{html.escape(title)}</h1><ul>"]
    page += [f"<li>{html.escape(line)}</li>" for line in _headline(summary)] + ["</ul>"]
    for name, header, rows in _tables(summary):
        md += [f"## {name}", "", "| " + " | ".join(header) + " |",
               "|" + "---|" * len(header)] + ["| " + " | ".join(r) + " |" for r in rows] + [""]
        page += [f"<h2>{html.escape(name)}</h2><table><tr>"
                 + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
        page += ["<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                 for r in rows] + ["</table>"]
    md += ["![cycles per layer](cycles_per_layer.png)", ""]
    page += ["<h2>Cycles per layer</h2><img src='cycles_per_layer.png'>"]
    if summary.rtl:
        md += [f"![RTL design: cycles, resources and FIFOs per layer]({RTL_FIGURE})", ""]
        page += [f"<h2>RTL design per layer</h2><img src='{RTL_FIGURE}'>"]
    page += ["</body></html>"]
    write_text(build_dir / "build_report.md", "\n".join(md))
    write_text(build_dir / "build_report.html", "\n".join(page))
    return build_dir / "build_report.md"


def _plot_cycles(summary: BuildSummary, file) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.name for r in summary.layers]
    cycles = [r.cycles for r in summary.layers]
    tied = set(summary.bottlenecks or [summary.bottleneck])
    colors = ["tab:red" if n in tied else "tab:blue" for n in names]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names)), 3.5))
    ax.bar(names, cycles, color=colors)
    ax.set(ylabel="cycles per frame", title=f"FINN's estimated cycles per layer (slowest in "
                                            f"red), "
                                            f"{summary.estimated_fps:,.0f} FPS at "
                                            f"{summary.clock_mhz:g} MHz")
    ax.grid(axis="y", alpha=0.3)
    ax.tick_params(axis="x", labelrotation=30)  # long layer names would overlap
    for label in ax.get_xticklabels():
        label.set_horizontalalignment("right")
    fig.tight_layout()
    fig.savefig(file, format="png", dpi=100)
    plt.close(fig)


RTL_FIGURE = "rtl_per_layer.png"


def _plot_rtl(rtl: dict, file) -> None:
    """Three panels per layer of the RTL design: measured cycles per frame next to FINN's
    estimate; LUT and BRAM_18K from yosys next to FINN's estimates; each FIFO's depth next to
    its largest occupancy with unbounded FIFOs."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    sim, synth = rtl["simulation"], rtl["synthesis"]
    layers = [layer for layer in sim["layers"] if layer["expected_cycles"]]   # FINN's layers
    names = [layer["name"] for layer in layers]
    synthesized = {s["layer"]: s for s in synth.get("layers", [])}
    fifos = list(sim["fifo_depths"])
    x = np.arange(len(names))
    fig, axes = plt.subplots(1, 3, figsize=(max(12, 2.2 * len(names) + 6), 4))
    ax = axes[0]
    ax.bar(x - 0.2, [layer["measured_cycles"] or 0 for layer in layers], 0.4,
           label="measured (Verilator, alone)")
    ax.bar(x + 0.2, [layer["expected_cycles"] for layer in layers], 0.4, label="FINN estimate")
    ax.set(title="cycles per frame", xticks=x, xticklabels=names)
    ax = axes[1]
    bram = ax.twinx()   # BRAM on its own scale, right
    for offset, key, source, where, color in (
            (-0.3, "LUT", "yosys", ax, "tab:blue"), (-0.1, "LUT", "FINN", ax, "tab:cyan"),
            (0.1, "BRAM_18K", "yosys", bram, "tab:red"), (0.3, "BRAM_18K", "FINN", bram,
                                                          "tab:orange")):
        values = [(synthesized.get(n, {}).get(key, 0) if source == "yosys" else
                   synthesized.get(n, {}).get("finn_estimate", {}).get(key, 0)) for n in names]
        where.bar(x + offset, values, 0.2, color=color, label=f"{key} ({source})")
    bram.set_ylabel("BRAM_18K")
    handles = [h for a in (ax, bram) for h in a.get_legend_handles_labels()[0]]
    bram.legend(handles, [h.get_label() for h in handles], fontsize=7)
    ax.set(ylabel="LUT", title="resources per layer" + ("" if synth.get("level") != "none"
                                                       else " (yosys not run)"),
           xticks=x, xticklabels=names)
    ax = axes[2]
    xf = np.arange(len(fifos))
    ax.bar(xf - 0.2, [sim["fifo_depths"][f] for f in fifos], 0.4, label="depth (sized)")
    ax.bar(xf + 0.2, [sim.get("fifo_occupancy", {}).get(f, 0) for f in fifos], 0.4,
           label="largest occupancy, unbounded")
    ax.set(title="FIFOs", xticks=xf, xticklabels=[f.replace("StreamingFIFO_rtl_", "FIFO ")
                                                  for f in fifos], yscale="log")
    for ax in axes:
        if ax is not axes[1]:
            ax.legend(fontsize=7)
        ax.grid(axis="y", alpha=0.3)
        ax.tick_params(axis="x", labelrotation=30, labelsize=7)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.tight_layout()
    fig.savefig(file, format="png", dpi=100)
    plt.close(fig)
