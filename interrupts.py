"""Ctrl-C that a library swallowed still stops the stage.

The CLI's signal handler raises KeyboardInterrupt and also notes it here. Some libraries catch
everything around an import or a callback (a bare ``except:``), so the KeyboardInterrupt may
vanish or turn into another error; the stages call :func:`check` where work proceeds (each FINN
step, each epoch, each batch of a graph execution), which raises it again."""

from __future__ import annotations

import threading

_NOTED = threading.Event()
_DEFERRED = threading.Event()


def note() -> None:
    _NOTED.set()


def clear() -> None:
    _NOTED.clear()


def defer() -> None:
    """From now on the signal handler only notes and :func:`check` does not raise: a process
    of a distributed run stops where all its processes agree to (see
    :mod:`xnorflow.train.distributed`), not in the middle of a collective."""
    _DEFERRED.set()


def deferred() -> bool:
    return _DEFERRED.is_set()


def pending() -> bool:
    return _NOTED.is_set()


def check() -> None:
    """Raise KeyboardInterrupt if the user interrupted the command."""
    if _NOTED.is_set() and not _DEFERRED.is_set():
        raise KeyboardInterrupt
