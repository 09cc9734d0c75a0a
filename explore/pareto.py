"""The accuracy-vs-hardware Pareto front of an exploration, as a table (Markdown, CSV), an
interactive HTML page (an SVG scatter with tooltips and a sortable table, no JavaScript
library) and a PNG plot."""

from __future__ import annotations

import csv
import html
import io
import json
import math
from pathlib import Path

from ..outputs import atomic_file, write_text

COLUMNS = ("candidate", "test accuracy", "est. FPS", "latency (us)", "LUT", "BRAM_18K",
           "LUT use", "BRAM use", "Pareto", "bit-exact check", "note")


def pareto_front(points: list[dict]) -> set[str]:
    """Names of the points no other point beats in both accuracy and FPS (and matches in the
    other); only points that fit the board compete."""
    fitting = [p for p in points if p.get("fits")]
    front = set()
    for p in fitting:
        dominated = any(q["test_accuracy"] >= p["test_accuracy"]
                        and q["estimated_fps"] >= p["estimated_fps"]
                        and (q["test_accuracy"] > p["test_accuracy"]
                             or q["estimated_fps"] > p["estimated_fps"])
                        for q in fitting)
        if not dominated:
            front.add(p["name"])
    return front


def _row(point: dict, front: set[str]) -> list[str]:
    if not point.get("fits"):
        return [point["name"], f"{point['test_accuracy']:.2%}" if "test_accuracy" in point
                else "-", "-", "-", "-", "-", "-", "-", "-", "-", point.get("note", "")]
    use = point["utilization"]
    return [point["name"], f"{point['test_accuracy']:.2%}", f"{point['estimated_fps']:,.0f}",
            f"{point['latency_us']:.2f}", f"{point['resources'].get('LUT', 0):,.0f}",
            f"{point['resources'].get('BRAM_18K', 0):,.0f}", f"{use.get('LUT', 0):.0%}",
            f"{use.get('BRAM_18K', 0):.0%}", "yes" if point["name"] in front else "dominated",
            point.get("check", "-"), point.get("note", "")]


def _sorted(points: list[dict], front: set[str]) -> list[dict]:
    return sorted(points, key=lambda p: (p["name"] not in front, not p.get("fits"),
                                         -p.get("test_accuracy", 0)))


def write_table(points: list[dict], folder: Path, title: str) -> tuple[Path, Path]:
    front = pareto_front(points)
    rows = [_row(p, front) for p in _sorted(points, front)]
    md = [f"# {title}", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    md += ["", f"{len(front)} of {sum(bool(p.get('fits')) for p in points)} fitting candidates "
               f"are on the Pareto front (no other candidate is both as accurate and as fast)."
               " FPS, latency and resources are FINN's estimates, not synthesis.", "",
           "![Pareto front](pareto.png)", ""]
    write_text(folder / "pareto.md", "\n".join(md))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    write_text(folder / "pareto.csv", buffer.getvalue())
    return folder / "pareto.md", folder / "pareto.csv"


def _colour(share: float) -> str:
    """LUT use 0 -> blue, 1 -> red (through yellow)."""
    share = min(max(share, 0.0), 1.0)
    stops = [(0.0, (49, 54, 149)), (0.5, (254, 224, 144)), (1.0, (165, 0, 38))]
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if share <= b:
            t = (share - a) / (b - a)
            return "#%02x%02x%02x" % tuple(round(x + (y - x) * t) for x, y in zip(ca, cb))
    return "#a50026"


def write_plot(points: list[dict], folder: Path, title: str) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(points)
    fitting = [p for p in points if p.get("fits")]
    fig, ax = plt.subplots(figsize=(8, 5))
    if fitting:
        xs = [p["estimated_fps"] for p in fitting]
        ys = [100 * p["test_accuracy"] for p in fitting]
        lut = [p["utilization"].get("LUT", 0) for p in fitting]
        edge = ["black" if p["name"] in front else "none" for p in fitting]
        scatter = ax.scatter(xs, ys, c=lut, cmap="RdYlBu_r", vmin=0, vmax=1, s=70,
                             edgecolors=edge, linewidths=1.5, zorder=3)
        fig.colorbar(scatter, ax=ax, label="LUT use of the device")
        for p, x, y in zip(fitting, xs, ys):
            ax.annotate(p["name"], (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, alpha=1.0 if p["name"] in front else 0.5)
        line = sorted((p for p in fitting if p["name"] in front),
                      key=lambda p: p["estimated_fps"])
        ax.plot([p["estimated_fps"] for p in line], [100 * p["test_accuracy"] for p in line],
                color="black", linewidth=1, zorder=2, label="Pareto front (circled)")
        ax.set_xscale("log")
        ax.legend(loc="lower left")
    ax.set(xlabel="estimated frames/s (FINN estimates)", ylabel="test accuracy (%)",
           title=title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    with atomic_file(folder / "pareto.png") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return folder / "pareto.png"


def write_html(points: list[dict], folder: Path, title: str) -> Path:
    front = pareto_front(points)
    fitting = [p for p in points if p.get("fits")]
    width, height, pad = 760, 420, 60
    svg = [f"<svg width='{width}' height='{height}' style='font:11px sans-serif'>"]
    if fitting:
        fps = [math.log10(p["estimated_fps"]) for p in fitting]
        acc = [100 * p["test_accuracy"] for p in fitting]
        x0, x1 = min(fps) - 0.1, max(fps) + 0.1
        y0, y1 = min(acc) - 1, max(acc) + 1
        sx = lambda v: pad + (v - x0) / (x1 - x0) * (width - 2 * pad)  # noqa: E731
        sy = lambda v: height - pad - (v - y0) / (y1 - y0) * (height - 2 * pad)  # noqa: E731
        svg.append(f"<rect x='{pad}' y='{pad}' width='{width - 2 * pad}' "
                   f"height='{height - 2 * pad}' fill='none' stroke='#999'/>")
        for exponent in range(math.floor(x0), math.ceil(x1) + 1):
            if x0 <= exponent <= x1:
                svg.append(f"<text x='{sx(exponent):.0f}' y='{height - pad + 15}' "
                           f"text-anchor='middle'>{10 ** exponent:,}</text>")
        for tick in range(math.ceil(y0), math.floor(y1) + 1, max(1, round((y1 - y0) / 6))):
            svg.append(f"<text x='{pad - 5}' y='{sy(tick) + 4:.0f}' text-anchor='end'>"
                       f"{tick}%</text>")
        svg.append(f"<text x='{width / 2}' y='{height - 20}' text-anchor='middle'>estimated "
                   f"frames/s (log scale)</text><text x='15' y='{height / 2}' "
                   f"transform='rotate(-90 15 {height / 2})' text-anchor='middle'>test "
                   f"accuracy</text>")
        line = sorted((p for p in fitting if p["name"] in front),
                      key=lambda p: p["estimated_fps"])
        svg.append("<polyline fill='none' stroke='black' points='" + " ".join(
            f"{sx(math.log10(p['estimated_fps'])):.1f},{sy(100 * p['test_accuracy']):.1f}"
            for p in line) + "'/>")
        for p in fitting:
            on_front = p["name"] in front
            tip = (f"{p['name']}\naccuracy {p['test_accuracy']:.2%}\n"
                   f"{p['estimated_fps']:,.0f} FPS, latency {p['latency_us']:.2f} us\n"
                   f"LUT {p['utilization'].get('LUT', 0):.0%}, BRAM "
                   f"{p['utilization'].get('BRAM_18K', 0):.0%}\n"
                   f"{'Pareto front' if on_front else 'dominated'}")
            svg.append(f"<circle class='{'front' if on_front else 'dominated'}' "
                       f"cx='{sx(math.log10(p['estimated_fps'])):.1f}' "
                       f"cy='{sy(100 * p['test_accuracy']):.1f}' r='7' "
                       f"fill='{_colour(p['utilization'].get('LUT', 0))}' "
                       f"stroke='{'black' if on_front else 'none'}' stroke-width='2' "
                       f"opacity='{1 if on_front else 0.45}' "
                       f"onclick=\"pick({html.escape(json.dumps(p['name']))})\">"
                       f"<title>{html.escape(tip)}</title></circle>")
    svg.append("</svg>")
    rows = [_row(p, front) for p in _sorted(points, front)]
    links = {p["name"]: p.get("report") for p in points}
    table = ["<table id='t'><tr>" + "".join(
        f"<th onclick='sortBy({i})'>{html.escape(c)}</th>" for i, c in enumerate(COLUMNS))
        + "</tr>"]
    for r in rows:
        name = html.escape(r[0])
        cell = (f"<a href='{html.escape(links[r[0]])}'>{name}</a>" if links.get(r[0]) else name)
        table.append(f"<tr id='row-{name}'><td>{cell}</td>"
                     + "".join(f"<td>{html.escape(c)}</td>" for c in r[1:]) + "</tr>")
    table.append("</table>")
    page = f"""<!DOCTYPE html>
<html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>
body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}} th{{cursor:pointer;background:#eee}}
tr.picked{{background:#ffe08a}} circle{{cursor:pointer}}
</style></head><body><h1>{html.escape(title)}</h1>
<p>Each point is a trained candidate folded to fit the board; colour: LUT use (blue low, red
high); circled and joined: the Pareto front (no other candidate is both as accurate and as fast).
Hover a point for its figures, click it to find its row; click a column header to sort.
<label><input type='checkbox' onchange='hideDominated(this.checked)'> hide dominated</label></p>
{''.join(svg)}
{''.join(table)}
<script>
function pick(name){{document.querySelectorAll('tr').forEach(r=>r.classList.remove('picked'));
 const r=document.getElementById('row-'+name); if(r){{r.classList.add('picked');
 r.scrollIntoView({{block:'center'}});}}}}
function hideDominated(on){{document.querySelectorAll('circle.dominated').forEach(
 c=>c.style.display=on?'none':'');}}
function key(t){{const v=parseFloat(t.replace(/[,%]/g,''));return isNaN(v)?t:v;}}
function sortBy(i){{const t=document.getElementById('t');const rows=[...t.rows].slice(1);
 const up=t.dataset.col==i&&t.dataset.dir!='up';t.dataset.col=i;t.dataset.dir=up?'up':'down';
 rows.sort((a,b)=>{{const x=key(a.cells[i].innerText),y=key(b.cells[i].innerText);
 if(typeof x!==typeof y)return typeof x==='string'?1:-1;  // '-' (no figure) always last
 return (x>y?1:x<y?-1:0)*(up?1:-1);}});rows.forEach(r=>t.appendChild(r));}}
</script></body></html>"""
    write_text(folder / "pareto.html", page)
    return folder / "pareto.html"
