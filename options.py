"""Declared options: a dataclass field with its default, allowed range or choices and help text.

The run configurations and the build/HLS options declare their fields with :func:`option`; the
same declaration validates an object built in Python (:func:`validate_fields`, called from
``__post_init__``) and generates the command-line argument with its range check (``cli.py``), so
each rule lives in one place. Free of heavy imports.
"""

from __future__ import annotations

import argparse
import math
import re
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
           choices: tuple | None = None, cli: bool = True, metavar: str | None = None,
           pattern: str | None = None, pattern_help: str | None = None):
    """A field a user may set (``cli=False``: fixed by the method, not a command-line option).
    ``pattern``: a regular expression a string value must match in full, ``pattern_help`` its
    description in messages."""
    metadata = {"help": help, "range": range, "choices": choices, "cli": cli,
                "metavar": metavar, "pattern": pattern, "pattern_help": pattern_help}
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
        if isinstance(v, float) and not math.isfinite(v):   # float() reads inf and nan
            rule = meta.get("range")
            return f"{v} must be a finite number{f' {rule.text()}' if rule else ''}"
        if meta.get("range") and not meta["range"].allows(v):
            return f"{_number(v)} must be {meta['range'].text()}"
        if meta.get("pattern") and not re.fullmatch(meta["pattern"], str(v)):
            return f"{v!r} is not {meta.get('pattern_help') or meta['pattern']}"
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


# ------------------------------------------------------------ command-line arguments
# The same declarations as command-line arguments (argparse is in the standard library: the
# parser stays free of heavy imports).
def int_list(text: str) -> list[int]:
    """``525,525`` -> [525, 525]; an empty item (``35,,35``) is a mistake, not a skip."""
    items = [v.strip() for v in text.split(",")]
    if any(not v for v in items[:-1]) or (len(items) > 1 and not items[-1]):
        raise ValueError(f"empty item in {text!r}")
    return [int(v) for v in items if v]


def _parser_for(annotation: str):
    if "list[int]" in annotation:
        return int_list, "comma-separated integers, e.g. 525,525"
    if annotation.startswith("int"):
        return int, "an integer"
    if annotation.startswith("float"):
        return float, "a number"
    return str, "text"


def argument_type(annotation: str, meta: dict):
    """argparse ``type`` that parses ``annotation`` and applies the declared range."""
    parse, expected = _parser_for(annotation)

    def convert(text: str):
        try:
            value = parse(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}") from None
        if value == []:
            raise argparse.ArgumentTypeError(f"{text!r}: give {expected}")
        why = check_value(value, meta)
        if why:
            raise argparse.ArgumentTypeError(why)
        return value

    return convert


def ranged(annotation: str, range_: Range):
    return argument_type(annotation, {"range": range_})


def _shown(value) -> str:
    if value is None:
        return "none"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return str(value)


def add_field(group, f, defaults: dict[str, object] | None = None) -> None:
    """Add the declared field ``f`` as ``--name`` (dest = field name, default None = not
    given). ``defaults``: algo -> default, shown in the help."""
    meta = f.metadata
    text = meta["help"]
    if defaults and "default:" not in text:
        values = {_shown(v) for v in defaults.values()}
        if len(values) == 1:
            text += f" (default: {values.pop()})"
        else:
            text += " (default: " + ", ".join(f"{_shown(v)} for {algo}"
                                              for algo, v in defaults.items()) + ")"
    kwargs = {"dest": f.name, "default": None, "help": text.replace("%", "%%")}
    if meta.get("choices"):
        kwargs["choices"] = meta["choices"]
    else:
        kwargs["type"] = argument_type(str(f.type), meta)
        kwargs["metavar"] = meta.get("metavar") or f.name.split("_")[-1].upper()
    group.add_argument(option_name(f.name), **kwargs)


def add_list_field(group, f) -> None:
    """Add the declared list field ``f`` as ``--name A B C`` (dest = field name, default None =
    not given); each item is checked against the declaration."""
    meta = f.metadata
    element = str(f.type).removeprefix("list[").split("]")[0]
    kwargs = {"dest": f.name, "default": None, "nargs": "+",
              "help": f"{meta['help']} (default: {' '.join(map(str, f.default_factory()))})"
                      .replace("%", "%%"),
              "metavar": meta.get("metavar") or f.name.rstrip("s").split("_")[-1].upper()}
    if meta.get("choices"):
        kwargs["choices"] = meta["choices"]
    else:
        kwargs["type"] = argument_type(element, meta)
    group.add_argument(option_name(f.name), **kwargs)


def add_dataclass(group, cls, names=None) -> None:
    for f in fields(cls):
        if f.metadata.get("cli") and (names is None or f.name in names):
            add_field(group, f, {"": cls.default_of(f.name)} if hasattr(cls, "default_of")
                       else {"": f.default})


def given(args, names) -> dict:
    return {name: getattr(args, name) for name in names if getattr(args, name) is not None}
