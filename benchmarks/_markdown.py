"""Shared by the benchmark scripts: the exact command line, and replacing a marked section of
BENCHMARKS.md with fresh results."""

from __future__ import annotations

import shlex
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def command_line(script: str, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return "python " + " ".join(shlex.quote(a) for a in [f"benchmarks/{script}", *args])


def percent_mean_std(fractions: list[float]) -> str:
    """Accuracies given as fractions, as 'mean ± std%' (sample std; the value alone for one
    run)."""
    mean = 100 * statistics.fmean(fractions)
    if len(fractions) < 2:
        return f"{mean:.2f}%"
    return f"{mean:.2f} ± {100 * statistics.stdev(fractions):.2f}%"


def update_section(tag: str, body: str) -> None:
    """Replace the text between ``<!-- TAG:begin -->`` and ``<!-- TAG:end -->`` in
    BENCHMARKS.md (append the section if it is not there yet)."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    block = f"{begin}\n{body.rstrip()}\n{end}"
    if begin in text:
        text = text[:text.index(begin)] + block + text[text.index(end) + len(end):]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.write_text(text)
