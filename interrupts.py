"""Ctrl-C that a library swallowed still stops the stage.

The CLI's signal handler raises KeyboardInterrupt and also notes it here. Some libraries catch
everything around an import or a callback (a bare ``except:``), so the KeyboardInterrupt may
vanish or turn into another error; the stages call :func:`check` where work proceeds (each FINN
step, each epoch, each batch of a graph execution), which raises it again."""

from __future__ import annotations

import threading

_NOTED = threading.Event()


def note() -> None:
    _NOTED.set()


def clear() -> None:
    _NOTED.clear()


def pending() -> bool:
    return _NOTED.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if the user interrupted the command."""
    if _NOTED.is_set():
        raise KeyboardInterrupt
