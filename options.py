"""Declared options: a dataclass field with its default, allowed range or choices and help text.

The run configurations and the build/HLS options declare their fields with :func:`option`; the
same declaration validates an object built in Python (:func:`validate_fields`, called from
``__post_init__``) and generates the command-line argument with its range check (``cli.py``), so
each rule lives in one place. Free of heavy imports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from .errors import XnorflowError


class ConfigError(XnorflowError, ValueError):
    """An option value outside its allowed range or choices."""

    exit_code = 2


@dataclass(frozen=True)
class Range:
    """Allowed numeric interval; ``None`` ends are open to infinity."""

    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def allows(self, value: float) -> bool:
        if isinstance(value, float) and not math.isfinite(value):
            return False
        if self.low is not None and (value < self.low or (self.low_open and value == self.low)):
            return False
        return not (self.high is not None
                    and (value > self.high or (self.high_open and value == self.high)))

    def text(self) -> str:
        low, high = _number(self.low), _number(self.high)
        if self.high is None:
            return f"{'>' if self.low_open else '>='} {low}"
        if self.low is None:
            return f"{'<' if self.high_open else '<='} {high}"
        return f"in {'(' if self.low_open else '['}{low}, {high}{')' if self.high_open else ']'}"


def _number(value: float | None) -> str:
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


POSITIVE = Range(0, None, low_open=True)
AT_LEAST_0 = Range(0)
AT_LEAST_1 = Range(1)
FRACTION = Range(0, 1)


def option(default: Any, help: str, *, range: Range | None = None,
           choices: tuple | None = None, cli: bool = True, metavar: str | None = None):
    """A field a user may set (``cli=False``: fixed by the method, not a command-line option)."""
    metadata = {"help": help, "range": range, "choices": choices, "cli": cli,
                "metavar": metavar}
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata=metadata)
    return field(default=default, metadata=metadata)


def option_name(name: str) -> str:
    return "--" + name.replace("_", "-")


def check_value(value: Any, meta: dict) -> str | None:
    """Why ``value`` breaks the field declaration ``meta``, or None."""
    if value is None:
        return None
    for v in value if isinstance(value, (list, tuple)) else [value]:
        if meta.get("choices") and v not in meta["choices"]:
            return f"{v!r} is not one of {', '.join(map(str, meta['choices']))}"
        if meta.get("range") and not meta["range"].allows(v):
            return f"{_number(v)} must be {meta['range'].text()}"
    return None


def validate_fields(obj: Any) -> None:
    """Raise :class:`ConfigError` naming every declared field of ``obj`` that breaks its rule."""
    problems = []
    for f in fields(obj):
        why = check_value(getattr(obj, f.name), f.metadata)
        if why:
            problems.append(f"{option_name(f.name)} {why}")
    if problems:
        raise ConfigError("; ".join(problems))
