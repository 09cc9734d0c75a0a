"""Build report: layer table, bottleneck, FPS/latency, resource totals vs the device, plot.

Reads what FINN's builder wrote (``report/estimate_*.json`` and the final intermediate model)
and writes ``build_report.md``, ``build_report.html``, ``cycles_per_layer.png`` and
``build_summary.json`` into the build folder.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

# Programmable-logic capacity of the parts behind FINN's board names (vendor data sheets).
DEVICE_CAPACITY = {
    "xc7z020clg400-1": {"LUT": 53200, "BRAM_18K": 280, "DSP": 220, "URAM": 0},
    "xczu3eg-sbva484-1-e": {"LUT": 70560, "BRAM_18K": 432, "DSP": 360, "URAM": 0},
    "xczu3eg-sbva484-1-i": {"LUT": 70560, "BRAM_18K": 432, "DSP": 360, "URAM": 0},
    "xczu7ev-ffvc1156-2-e": {"LUT": 230400, "BRAM_18K": 624, "DSP": 1728, "URAM": 96},
    "xck26-sfvc784-2LV-c": {"LUT": 117120, "BRAM_18K": 288, "DSP": 1248, "URAM": 64},
}
FINAL_MODELS = ("step_hw_codegen", "step_generate_estimate_reports")


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

    for step in FINAL_MODELS:
        path = build_dir / "intermediate_models" / f"{step}.onnx"
        if path.exists():
            return ModelWrapper(str(path))
    raise FileNotFoundError(f"{build_dir}: no finished build (none of {FINAL_MODELS})")


def layer_rows(build_dir: Path) -> list[LayerRow]:
    from qonnx.custom_op.registry import getCustomOp

    report = build_dir / "report"
    cycles = json.loads((report / "estimate_layer_cycles.json").read_text())
    resources = json.loads((report / "estimate_layer_resources.json").read_text())
    rows = []
    for node in _final_model(build_dir).graph.node:
        op = getCustomOp(node)
        attrs = {a.name for a in node.attribute}
        get = lambda a, default=None: op.get_nodeattr(a) if a in attrs else default  # noqa: E731
        sources = get("code_gen_dir_ipgen", "") or ""
        rows.append(LayerRow(
            name=node.name, op=node.op_type,
            shape=f"{get('MW', '?')} x {get('MH', '?')}",
            pe=int(get("PE", 1)), simd=int(get("SIMD", 1)),
            accumulator=str(get("accDataType", "")),
            cycles=int(cycles.get(node.name, 0)),
            lut=float(resources.get(node.name, {}).get("LUT", 0)),
            bram_18k=float(resources.get(node.name, {}).get("BRAM_18K", 0)),
            hls_sources=str(Path(sources).relative_to(build_dir)) if sources.startswith(
                str(build_dir)) else sources))
    return rows


def summarize(build_dir: str | Path, clock_mhz: float, fpga_part: str,
              verification: list | None = None) -> dict:
    build_dir = Path(build_dir).resolve()
    report = build_dir / "report"
    performance = json.loads((report / "estimate_network_performance.json").read_text())
    totals = json.loads((report / "estimate_layer_resources.json").read_text()).get("total", {})
    rows = layer_rows(build_dir)
    bottleneck = max(rows, key=lambda r: r.cycles)
    capacity = DEVICE_CAPACITY.get(fpga_part)
    utilization = {k: totals.get(k, 0) / v for k, v in capacity.items() if v} if capacity else {}
    return {
        "fpga_part": fpga_part, "clock_mhz": clock_mhz,
        "layers": [r.__dict__ for r in rows],
        "bottleneck": bottleneck.name, "bottleneck_cycles": bottleneck.cycles,
        "estimated_fps": clock_mhz * 1e6 / max(bottleneck.cycles, 1),
        "estimated_latency_us": performance["critical_path_cycles"] / clock_mhz,
        "critical_path_cycles": performance["critical_path_cycles"],
        "resources": totals, "device_capacity": capacity, "utilization": utilization,
        "fits_device": all(u <= 1.0 for u in utilization.values()) if capacity else None,
        "verification": [v.as_dict() for v in verification or []],
    }


def _tables(summary: dict) -> list[tuple[str, list[str], list[list[str]]]]:
    layers = [[r["name"], r["op"], r["shape"], str(r["pe"]), str(r["simd"]), r["accumulator"],
               f"{r['cycles']:,}", f"{r['lut']:,.0f}", f"{r['bram_18k']:g}", r["hls_sources"]]
              for r in summary["layers"]]
    tables = [("Layers", ["layer", "op", "MW x MH", "PE", "SIMD", "accumulator", "cycles",
                          "LUT (est.)", "BRAM_18K (est.)", "HLS sources"], layers)]
    res = summary["resources"]
    cap = summary["device_capacity"] or {}
    tables.append(("Resources (FINN estimates)", ["resource", "design", "device", "use"],
                   [[k, f"{res.get(k, 0):,.0f}", f"{cap[k]:,}" if k in cap else "?",
                     f"{summary['utilization'][k]:.1%}" if k in summary["utilization"] else "?"]
                    for k in ("LUT", "BRAM_18K", "DSP", "URAM")]))
    if summary["verification"]:
        tables.append(("Bit-exact chain (vs PyTorch)", ["stage", "images", "argmax identical",
                                                        "logits within tol.", "max abs diff"],
                       [[v["stage"], str(v["images"]), str(v["argmax_matches"]),
                         str(v["logits_match"]), f"{v['max_abs_diff']:.1e}"]
                        for v in summary["verification"]]))
    return tables


def _headline(summary: dict) -> list[str]:
    fits = {None: "unknown device capacity", True: "fits", False: "does NOT fit"}
    return [f"FPGA part {summary['fpga_part']} at {summary['clock_mhz']:g} MHz",
            f"bottleneck {summary['bottleneck']}: {summary['bottleneck_cycles']:,} cycles/frame "
            f"-> estimated {summary['estimated_fps']:,.0f} FPS",
            f"latency {summary['estimated_latency_us']:.2f} us "
            f"({summary['critical_path_cycles']:,} cycles critical path)",
            f"resources: {fits[summary['fits_device']]} on this device (estimates, not synthesis)"]


def write_report(build_dir: str | Path, summary: dict, title: str = "xnorflow build report",
                 ) -> Path:
    build_dir = Path(build_dir)
    (build_dir / "build_summary.json").write_text(json.dumps(summary, indent=2))
    _plot_cycles(summary, build_dir / "cycles_per_layer.png")
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
    page += ["<h2>Cycles per layer</h2><img src='cycles_per_layer.png'></body></html>"]
    (build_dir / "build_report.md").write_text("\n".join(md))
    (build_dir / "build_report.html").write_text("\n".join(page))
    return build_dir / "build_report.md"


def _plot_cycles(summary: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["name"] for r in summary["layers"]]
    cycles = [r["cycles"] for r in summary["layers"]]
    colors = ["tab:red" if n == summary["bottleneck"] else "tab:blue" for n in names]
    fig, ax = plt.subplots(figsize=(max(5, 1.2 * len(names)), 3.5))
    ax.bar(names, cycles, color=colors)
    ax.set(ylabel="cycles per frame", title=f"cycles per layer (bottleneck in red), "
                                            f"{summary['estimated_fps']:,.0f} FPS at "
                                            f"{summary['clock_mhz']:g} MHz")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
