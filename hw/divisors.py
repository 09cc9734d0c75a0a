"""Divisors: what a folding factor (PE, SIMD) may be, for the folding search and for the
messages that tell a user which values would work."""

from __future__ import annotations

import math


def divisors(n: int, at_least: int = 1, limit: int | None = None) -> list[int]:
    """The divisors of ``n`` from ``at_least`` up to ``limit`` (default: ``n``)."""
    top = n if limit is None else min(n, limit)
    return [d for d in range(max(1, at_least), top + 1) if n % d == 0]


def common_divisors(values, limit: int | None = None) -> list[int]:
    """The numbers that divide every one of ``values``, up to ``limit``."""
    return divisors(math.gcd(*values), limit=limit)


def listed(numbers) -> str:
    """``[1, 2, 4]`` -> ``"1, 2, 4"`` (for messages)."""
    return ", ".join(str(n) for n in numbers)
