"""`xnorflow explore`: train a grid of candidate networks, fold each to fit a board, and show
accuracy against frame rate and resources as a Pareto front (the candidates and their folder:
:mod:`xnorflow.explore.candidates`)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..explore.candidates import (
    FOLDER_KIND,
    OUTPUTS,
    STAGE,
    ExploreOptions,
    NothingFits,
    _architecture,
    evaluate_candidate,
    grid,
    preflight,
)
from ..outputs import claim_folder, holds_folders, write_text
from ..progress import note, progress_bar


def point_line(point: dict, on_front: bool = False) -> str:
    if not point.get("fits"):
        return f"{point['name']}: {point.get('note', 'does not fit')}"
    use = point["utilization"]
    return (f"{point['name']}: {point['test_accuracy']:.2%}, {point['estimated_fps']:,.0f} FPS, "
            f"LUT {use.get('LUT', 0):.0%}, BRAM {use.get('BRAM_18K', 0):.0%}"
            f"{' (Pareto front)' if on_front else ''}; {point['check']}")


@dataclass
class Exploration:
    folder: Path
    points: list[dict]
    outputs: list[Path] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def exit_code(self) -> int:
        """1 if a candidate failed or its design differs from PyTorch, else 0."""
        failed = [p for p in self.points if p.get("failed") or p.get("identical") is False]
        return 1 if failed else 0

    def lines(self) -> list[str]:
        from ..explore.pareto import pareto_front

        front = pareto_front(self.points)
        return [point_line(p, p["name"] in front)
                for p in sorted(self.points, key=lambda p: p["name"])] + [
                    f"{len(front)} of {len(self.points)} candidates on the Pareto front; "
                        f"{self.seconds:.0f} s; outputs: " + ", ".join(str(o) for o in
                                                                      self.outputs)]


@holds_folders
def explore(options: ExploreOptions, out: str | Path, progress: bool = True) -> Exploration:
    """Run (or continue) the exploration ``options`` in the folder ``out``."""
    from ..explore.pareto import write_html, write_plot, write_table
    from ..train.data import load_dataset

    start = time.perf_counter()
    candidates = grid(options)
    data = load_dataset(options.dataset, options.data_dir)  # fails early on a bad data set
    shape = (data.image_shape, data.num_classes)
    owned = claim_folder(out, FOLDER_KIND)
    folder = owned.path
    for name in OUTPUTS:  # refused before any work if the user put a file of that name here
        owned.target(name, STAGE)
    for name in OUTPUTS[:4]:
        (folder / name).mkdir(exist_ok=True)
    write_text(folder / "exploration.json", json.dumps(asdict(options), indent=2))
    verdicts = preflight(candidates, options, folder, shape)
    if not any(v["fits"] for v in verdicts.values()):
        needs = sorted(verdicts.items(), key=lambda kv: kv[1]["peak"])
        raise NothingFits(
            f"no candidate of the grid fits {options.board} within {options.budget:.0%} of its "
            f"resources, even folded as far as FINN can. The smallest, {needs[0][0][0]}, needs "
            + "; ".join(f"{'' if i == 0 else arch[0] + ' needs '}{v['need']}"
                        for i, (arch, v) in enumerate(needs))
            + ". Nothing was trained. Try smaller models, a larger --board or a higher "
              "--budget.")
    points = []
    bar = progress_bar(candidates, desc="explore", unit="candidate", enabled=progress,
                       leave=True)
    for candidate in bar:
        bar.set_postfix_str(candidate.name)
        verdict = verdicts[_architecture(candidate.config)]
        if not verdict["fits"]:
            point = {"name": candidate.name, "fits": False,
                     "note": f"not trained: even folded as far as FINN can, it needs "
                             f"{verdict['need']}"}
        else:
            point = evaluate_candidate(candidate, options, folder)
        points.append(point)
        if progress:
            note(point_line(point))
    title = (f"xnorflow explore: {options.dataset}, {options.board}, budget "
             f"{options.budget:.0%}, {options.epochs} epoch(s)")
    outputs = [*write_table(points, folder, title), write_html(points, folder, title),
               write_plot(points, folder, title)]
    return Exploration(folder, points, outputs, time.perf_counter() - start)
