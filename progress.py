"""Progress of long work, one way for every stage: a live bar in a terminal; in a log (CI,
``nohup``, a notebook) no bar at all, since each refresh would become a line there, and the
stage prints its own line per epoch or per finished step instead. Iterating a bar is also where
a swallowed Ctrl-C is raised again (:mod:`xnorflow.interrupts`)."""

from __future__ import annotations

import sys

from tqdm import tqdm

from . import interrupts


def live() -> bool:
    """Whether a bar can redraw itself in place (stderr is a terminal)."""
    return sys.stderr.isatty()


class Progress(tqdm):
    def __iter__(self):
        for item in super().__iter__():
            interrupts.check()
            yield item

    def update(self, n=1):
        interrupts.check()
        return super().update(n)


def progress_bar(iterable=None, *, desc: str, enabled: bool = True, **options) -> Progress:
    """``tqdm`` that draws only in a terminal, refreshes at least twice a second and after
    every step (a short epoch moves too), and checks for Ctrl-C at every step."""
    options.setdefault("leave", False)
    return Progress(iterable, desc=desc, disable=not (enabled and live()), mininterval=0.5,
                    miniters=1, dynamic_ncols=True, **options)


def note(line: str) -> None:
    """A line for the user that does not tear a live bar."""
    tqdm.write(line)
