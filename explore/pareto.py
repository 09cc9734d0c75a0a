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

COLUMNS = ("trial", "test accuracy", "est. FPS", "latency (us)", "LUT", "BRAM_18K",
           "LUT use", "BRAM use", "peak use", "budget", "Pareto", "bit-exact check", "note")
VALIDATION_COLUMN = "val. accuracy"   # after "trial", when the study holds images out


def feasible(point: dict) -> bool:
    """A trial that fits its budget and whose every stage equals PyTorch."""
    return bool(point.get("fits")) and point.get("identical") is not False


def objectives(point: dict) -> tuple[float, float, float]:
    """(accuracy the study optimizes, FPS, peak resource share) of a finished trial."""
    peak = point.get("peak_share", max(point.get("utilization", {}).values(), default=0.0))
    return point.get("accuracy", point["test_accuracy"]), point["estimated_fps"], peak


def pareto_front(points: list[dict]) -> set[str]:
    """Names of the feasible points that no other feasible point beats: at least as accurate,
    as fast and as small, and better in one of them."""
    fitting = [(p["name"], objectives(p)) for p in points if feasible(p)]
    front = set()
    for name, (acc, fps, peak) in fitting:
        dominated = any(a >= acc and f >= fps and k <= peak and (a, f, k) != (acc, fps, peak)
                        for _, (a, f, k) in fitting)
        if not dominated:
            front.add(name)
    return front


def accuracy_fps_front(points: list[dict]) -> list[dict]:
    """The feasible points no other beats in accuracy and FPS alone, by FPS: the line the plots
    draw (the circled points are the front of all three objectives)."""
    fitting = [p for p in points if feasible(p)]
    line = [p for p in fitting
            if not any(objectives(q)[0] >= objectives(p)[0] and objectives(q)[1] >= objectives(p)[1]
                       and objectives(q)[:2] != objectives(p)[:2] for q in fitting)]
    return sorted(line, key=lambda p: objectives(p)[1])


def point_line(point: dict, on_front: bool = False) -> str:
    """One trial as the command prints it."""
    if not feasible(point):
        return f"{point['name']}: {point.get('note') or 'differs from PyTorch'}"
    use = point["utilization"]
    val = (f" (validation {point['val_accuracy']:.2%})"
           if point.get("val_accuracy") is not None else "")
    return (f"{point['name']}: {point['test_accuracy']:.2%}{val}, "
            f"{point['estimated_fps']:,.0f} FPS, LUT {use.get('LUT', 0):.0%}, BRAM "
            f"{use.get('BRAM_18K', 0):.0%}{' (Pareto front)' if on_front else ''}; "
            f"{point['check']}")


def _row(point: dict, front: set[str], validation: bool) -> list[str]:
    val = ([f"{point['val_accuracy']:.2%}" if point.get("val_accuracy") is not None else "-"]
           if validation else [])
    if not point.get("fits"):
        acc = f"{point['test_accuracy']:.2%}" if "test_accuracy" in point else "-"
        return [point["name"], *val, acc, "-", "-", "-", "-", "-", "-", "-",
                f"{point['budget']:.0%}" if "budget" in point else "-", "-", "-",
                point.get("note", "")]
    use = point["utilization"]
    status = ("yes" if point["name"] in front else
              "dominated" if feasible(point) else "no (differs)")
    return [point["name"], *val, f"{point['test_accuracy']:.2%}",
            f"{point['estimated_fps']:,.0f}", f"{point['latency_us']:.2f}",
            f"{point['resources'].get('LUT', 0):,.0f}",
            f"{point['resources'].get('BRAM_18K', 0):,.0f}", f"{use.get('LUT', 0):.0%}",
            f"{use.get('BRAM_18K', 0):.0%}", f"{objectives(point)[2]:.0%}",
            f"{point['budget']:.0%}" if "budget" in point else "-", status,
            point.get("check", "-"), point.get("note", "")]


def _columns(validation: bool) -> tuple[str, ...]:
    return (COLUMNS[0], VALIDATION_COLUMN, *COLUMNS[1:]) if validation else COLUMNS


def _sorted(points: list[dict], front: set[str]) -> list[dict]:
    return sorted(points, key=lambda p: (p["name"] not in front, not feasible(p),
                                         -p.get("accuracy", p.get("test_accuracy", 0))))


def write_table(points: list[dict], folder: Path, title: str,
                validation: bool = False) -> tuple[Path, Path]:
    front = pareto_front(points)
    columns = _columns(validation)
    rows = [_row(p, front, validation) for p in _sorted(points, front)]
    md = [f"# {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    md += ["| " + " | ".join(r) + " |" for r in rows]
    chosen = "validation" if validation else "test"
    md += ["", f"{len(front)} of {sum(feasible(p) for p in points)} feasible trials are on the "
               f"Pareto front of {chosen} accuracy, FPS and peak resource use (no other trial "
               f"is at least as good in all three and better in one). FPS, latency and "
               f"resources are FINN's estimates, not synthesis.", "",
           "![Pareto front](pareto.png)", ""]
    write_text(folder / "pareto.md", "\n".join(md))
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    writer.writerows(rows)
    write_text(folder / "pareto.csv", buffer.getvalue())
    return folder / "pareto.md", folder / "pareto.csv"


def write_outputs(points: list[dict], folder: Path, title: str,
                  validation: bool = False) -> list[Path]:
    """pareto.md/.csv, pareto.html and pareto.png of a study's finished trials."""
    return [*write_table(points, folder, title, validation),
            write_html(points, folder, title, validation),
            write_plot(points, folder, title, validation)]


def _link(report: str | None, folder: Path) -> str | None:
    """A trial's build report as a link from the outputs' folder (relative when inside it)."""
    if not report:
        return None
    path = Path(report)
    try:
        return str(path.relative_to(folder.resolve()))
    except ValueError:
        return path.as_uri() if path.is_absolute() else report


def _colour(share: float) -> str:
    """LUT use 0 -> blue, 1 -> red (through yellow)."""
    share = min(max(share, 0.0), 1.0)
    stops = [(0.0, (49, 54, 149)), (0.5, (254, 224, 144)), (1.0, (165, 0, 38))]
    for (a, ca), (b, cb) in zip(stops, stops[1:]):
        if share <= b:
            t = (share - a) / (b - a)
            return "#%02x%02x%02x" % tuple(round(x + (y - x) * t) for x, y in zip(ca, cb))
    return "#a50026"


def write_plot(points: list[dict], folder: Path, title: str, validation: bool = False) -> Path:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    front = pareto_front(points)
    fitting = [p for p in points if feasible(p)]
    fig, ax = plt.subplots(figsize=(8, 5))
    if fitting:
        xs = [p["estimated_fps"] for p in fitting]
        ys = [100 * objectives(p)[0] for p in fitting]
        peak = [objectives(p)[2] for p in fitting]
        edge = ["black" if p["name"] in front else "none" for p in fitting]
        scatter = ax.scatter(xs, ys, c=peak, cmap="RdYlBu_r", vmin=0, vmax=1, s=70,
                             edgecolors=edge, linewidths=1.5, zorder=3)
        fig.colorbar(scatter, ax=ax, label="peak resource use of the device")
        for p, x, y in zip(fitting, xs, ys):
            ax.annotate(p["name"], (x, y), textcoords="offset points", xytext=(4, 4),
                        fontsize=7, alpha=1.0 if p["name"] in front else 0.5)
        line = accuracy_fps_front(points)
        ax.plot([p["estimated_fps"] for p in line], [100 * objectives(p)[0] for p in line],
                color="black", linewidth=1, zorder=2, label="front of accuracy and FPS")
        ax.scatter([], [], facecolors="none", edgecolors="black", linewidths=1.5,
                   label="circled: front of accuracy, FPS and peak use")
        ax.set_xscale("log")
        ax.legend(loc="lower left")
    ax.set(xlabel="estimated frames/s (FINN estimates)",
           ylabel=f"{'validation' if validation else 'test'} accuracy (%)", title=title)
    ax.grid(alpha=0.3, which="both")
    fig.tight_layout()
    with atomic_file(folder / "pareto.png") as f:
        fig.savefig(f, format="png", dpi=110)
    plt.close(fig)
    return folder / "pareto.png"


def write_html(points: list[dict], folder: Path, title: str, validation: bool = False) -> Path:
    front = pareto_front(points)
    fitting = [p for p in points if feasible(p)]
    width, height, pad = 760, 420, 60
    svg = [f"<svg width='{width}' height='{height}' style='font:11px sans-serif'>"]
    if fitting:
        fps = [math.log10(p["estimated_fps"]) for p in fitting]
        acc = [100 * objectives(p)[0] for p in fitting]
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
                   f"transform='rotate(-90 15 {height / 2})' text-anchor='middle'>"
                   f"{'validation' if validation else 'test'} accuracy</text>")
        line = accuracy_fps_front(points)
        svg.append("<polyline fill='none' stroke='black' points='" + " ".join(
            f"{sx(math.log10(p['estimated_fps'])):.1f},{sy(100 * objectives(p)[0]):.1f}"
            for p in line) + "'/>")
        for p in fitting:
            on_front = p["name"] in front
            tip = (f"{p['name']}\ntest accuracy {p['test_accuracy']:.2%}\n"
                   f"{p['estimated_fps']:,.0f} FPS, latency {p['latency_us']:.2f} us\n"
                   f"LUT {p['utilization'].get('LUT', 0):.0%}, BRAM "
                   f"{p['utilization'].get('BRAM_18K', 0):.0%}, peak "
                   f"{objectives(p)[2]:.0%}\n"
                   f"{'Pareto front' if on_front else 'dominated'}")
            svg.append(f"<circle class='{'front' if on_front else 'dominated'}' "
                       f"cx='{sx(math.log10(p['estimated_fps'])):.1f}' "
                       f"cy='{sy(100 * objectives(p)[0]):.1f}' r='7' "
                       f"fill='{_colour(objectives(p)[2])}' "
                       f"stroke='{'black' if on_front else 'none'}' stroke-width='2' "
                       f"opacity='{1 if on_front else 0.45}' "
                       f"onclick=\"pick({html.escape(json.dumps(p['name']))})\">"
                       f"<title>{html.escape(tip)}</title></circle>")
    svg.append("</svg>")
    rows = [_row(p, front, validation) for p in _sorted(points, front)]
    links = {p["name"]: _link(p.get("report"), folder) for p in points}
    table = ["<table id='t'><tr>" + "".join(
        f"<th onclick='sortBy({i})'>{html.escape(c)}</th>"
        for i, c in enumerate(_columns(validation))) + "</tr>"]
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
<p>Each point is a trained trial folded to fit the board; colour: peak resource use (blue low,
red high); circled: the Pareto front of accuracy, FPS and peak resource use (no other trial is
at least as good in all three and better in one); joined: the front of accuracy and FPS alone.
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
