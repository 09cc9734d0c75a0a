"""Resource-aware folding: per-layer parallelism (PE, SIMD, window parallelism, weight memory)
chosen from FINN's own cycle and resource estimates.

FINN's ``SetFolding`` walks the layers once and raises SIMD, then PE, until each meets a cycle
target; it never looks at resources (its docstring says hand-tuning often does better). Here
every layer's foldings are listed with FINN's estimates (``get_exp_cycles``,
``node_res_estimation``), and a design is a choice per layer:

- **balanced**: for a cycle bound T (cycles per frame of the slowest layer, i.e. the frame
  rate), each layer takes its cheapest folding that needs at most T cycles; "cheapest" weighs
  each resource by the share of the device it takes, with several LUT-vs-BRAM exchange rates
  tried, because a layer can trade BRAM for LUT (weights in LUTRAM) and the device may be short
  of either.
- **fit** (no target): the smallest T whose balanced design stays within ``budget`` of every
  resource of the device, found by bisection over the cycle counts the layers can have.
- **target**: T = clock / target FPS; the balanced design with the lowest peak use.

A pool and the window generator that feeds it fold together (finn-hlslib needs the generator's
SIMD equal to the pool's PE), as in ``SetFolding``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import XnorflowError
from ..divisors import divisors

RESOURCES = ("LUT", "BRAM_18K", "URAM", "DSP")
# LUT : BRAM exchange rates tried when choosing each layer's cheapest folding.
BRAM_WEIGHTS = (1 / 16, 1 / 4, 1.0, 4.0, 16.0)
HLS_MAX_STREAM_BITS = 8191      # finn-hlslib's ap_uint limit: a decoupled weight stream's width
MAX_INPUT_FOLD = 1024           # finn-hlslib's MVAU unrolls at most 1024 input folds


class NoFittingFolding(XnorflowError):
    """Even the most folded design exceeds the resource budget. ``need``: what that design
    needs, e.g. "LUT 61,234 (115%)"; ``peak``: its highest resource share."""

    exit_code = 4

    def __init__(self, message: str, need: str = "", peak: float = math.inf):
        super().__init__(message)
        self.need, self.peak = need, peak


def min_simd(mw: int) -> int:
    """The smallest SIMD that divides ``mw`` and keeps the input fold within HLS's limit."""
    return next(d for d in range(math.ceil(mw / MAX_INPUT_FOLD), mw + 1) if mw % d == 0)


@dataclass(frozen=True)
class Choice:
    """One folding of a unit: node name -> attributes, with FINN's estimates for it."""

    attributes: tuple[tuple[str, tuple[tuple[str, object], ...]], ...]
    cycles: int
    resources: tuple[float, ...]           # in RESOURCES order

    def as_dict(self) -> dict[str, dict]:
        return {name: dict(attrs) for name, attrs in self.attributes}


@dataclass
class Unit:
    """Layers folded together (one layer, or a pool with its window generator)."""

    names: tuple[str, ...]
    choices: list[Choice]                  # Pareto-optimal, fastest first
    note: str | None = None                # why the search could not fold it

    @property
    def min_cycles(self) -> int:
        return self.choices[0].cycles


# ------------------------------------------------------------------------ foldings per layer
ECP5_LUT_ROM_DEPTH = 16     # words a 4-input LUT holds


def _mvau_settings(op, node, lut_rom_depth: int | None = None):
    mw, mh = op.get_nodeattr("MW"), op.get_nodeattr("MH")
    weight_bits = op.get_input_datatype(1).bitwidth()
    input_bits = op.get_input_datatype(0).bitwidth()
    output_bits = op.get_output_datatype().bitwidth()
    hls = node.op_type.endswith("_hls")
    for pe in divisors(mh):
        for simd in divisors(mw):
            # finn-hlslib: at most 1024 input folds, and every stream word (input, output, one
            # PE's weights) within ap_uint's width limit
            if hls and (simd < min_simd(mw) or max(simd * input_bits, pe * output_bits,
                                                   simd * weight_bits) > HLS_MAX_STREAM_BITS):
                continue
            if pe * simd * weight_bits <= HLS_MAX_STREAM_BITS:  # streamed from BRAM or LUTRAM
                # LUT ROMs up to lut_rom_depth words (None: any depth)
                deep = lut_rom_depth is not None and (mh // pe) * (mw // simd) > lut_rom_depth
                for style in ("block",) if deep else ("block", "distributed"):
                    yield {"PE": pe, "SIMD": simd, "mem_mode": "internal_decoupled",
                           "ram_style": style}
            else:  # too wide to stream: weights in the layer's logic
                yield {"PE": pe, "SIMD": simd, "mem_mode": "internal_embedded"}


def _swg_settings(op, node):
    channels = op.get_nodeattr("IFMChannels")
    for simd in divisors(channels):
        yield {"SIMD": simd, **({"parallel_window": 0} if node.op_type.endswith("_rtl") else {})}
    if node.op_type.endswith("_rtl"):  # a whole window per cycle
        yield {"SIMD": channels, "parallel_window": 1}


# op type (without _hls/_rtl) -> settings of a layer on its own
SETTINGS = {
    "MVAU": _mvau_settings,
    "ConvolutionInputGenerator": _swg_settings,
    "FMPadding": lambda op, node: ({"SIMD": s} for s in divisors(op.get_nodeattr("NumChannels"))),
    "Thresholding": lambda op, node: ({"PE": p} for p in divisors(op.get_nodeattr("NumChannels"))),
    "LabelSelect": lambda op, node: ({"PE": p} for p in divisors(op.get_nodeattr("Labels"))),
}


def _kind(node) -> str:
    return node.op_type.rsplit("_", 1)[0] if node.op_type.endswith(("_hls", "_rtl")) \
        else node.op_type


def _estimate(ops: dict, settings: dict[str, dict], part: str) -> Choice | None:
    """Set ``settings`` on the layers and read FINN's estimates; None if FINN refuses them."""
    cycles, totals = 0, [0.0] * len(RESOURCES)
    try:
        for name, attrs in settings.items():
            for key, value in attrs.items():
                ops[name].set_nodeattr(key, value)
            cycles = max(cycles, int(ops[name].get_exp_cycles()))
            estimate = ops[name].node_res_estimation(part)
            totals = [t + float(estimate.get(r, 0)) for t, r in zip(totals, RESOURCES)]
    except (AssertionError, ValueError, ZeroDivisionError):
        return None
    return Choice(tuple((n, tuple(sorted(a.items()))) for n, a in settings.items()), cycles,
                  tuple(totals))


def _pareto(choices: list[Choice]) -> list[Choice]:
    """Drop every choice that a faster (or equally fast) one beats in resources: no more of
    any, less of one. Choices that cost the same at different speeds all stay, so that a layer
    FINN estimates as free still gets the slowest folding that is fast enough (narrower
    streams, fewer width converters)."""
    kept: list[Choice] = []
    for choice in sorted(choices, key=lambda c: (c.cycles, c.resources)):
        if not any(all(k <= c for k, c in zip(other.resources, choice.resources))
                   and other.resources != choice.resources for other in kept) \
                and not any(other.resources == choice.resources and other.cycles == choice.cycles
                            for other in kept):
            kept.append(choice)
    return kept


def folding_units(model, part: str, lut_rom_depth: int | None = None) -> list[Unit]:
    """Every layer of the dataflow graph ``model`` with its Pareto-optimal foldings; streamed
    weights in LUTs only up to ``lut_rom_depth`` words a ROM (None: any). The model's
    attributes are left as they were."""
    from qonnx.custom_op.registry import getCustomOp

    ops = {node.name: getCustomOp(node) for node in model.graph.node}
    saved = {name: {a: op.get_nodeattr(a) for a in op.get_nodeattr_types()
                    if a in ("PE", "SIMD", "parallel_window", "mem_mode", "ram_style")}
             for name, op in ops.items()}
    pooled = {}  # window generator name -> the pool it feeds
    for node in model.graph.node:
        if _kind(node) == "Pool":
            producer = model.find_producer(node.input[0])
            if producer is not None and _kind(producer) == "ConvolutionInputGenerator":
                pooled[producer.name] = node
    units, unfolded = [], []
    try:
        for node in model.graph.node:
            kind, op = _kind(node), ops[node.name]
            if node.name in pooled:
                continue  # folded with its pool
            if kind == "Pool":
                producer = model.find_producer(node.input[0])
                settings = [{producer.name: {"SIMD": p, **({"parallel_window": 0} if
                                             producer.op_type.endswith("_rtl") else {})},
                             node.name: {"PE": p}}
                            for p in divisors(op.get_nodeattr("Channels"))] \
                    if producer is not None and producer.name in pooled else [{node.name: {}}]
            elif kind in SETTINGS:
                extra = {"lut_rom_depth": lut_rom_depth} if kind == "MVAU" else {}
                settings = [{node.name: s} for s in SETTINGS[kind](op, node, **extra)]
            else:  # a layer without folding attributes: its fixed cost still counts
                settings = [{node.name: {}}]
                if {"PE", "SIMD"} & set(op.get_nodeattr_types()):
                    unfolded.append(f"{node.name}: xnorflow's search does not fold "
                                    f"{node.op_type} layers; kept at its PE/SIMD")
            choices = [c for c in (_estimate(ops, s, part) for s in settings) if c is not None]
            if not choices:
                raise XnorflowError(f"{node.name}: FINN has no estimate for any folding of this "
                                    f"{node.op_type} layer")
            units.append(Unit(tuple(next(iter(settings))), _pareto(choices),
                              unfolded.pop() if unfolded else None))
    finally:
        for name, attrs in saved.items():
            for key, value in attrs.items():
                ops[name].set_nodeattr(key, value)
    return units


# ------------------------------------------------------------------------------------ search
@dataclass
class Plan:
    """A folding of every unit, and why it was chosen."""

    choices: list[Choice]
    mode: str                               # "fit" or "target"
    budget: float
    capacity: dict[str, int]
    bram_weight: float
    cycle_bound: int
    notes: list[str] = field(default_factory=list)

    @property
    def cycles(self) -> int:
        return max(c.cycles for c in self.choices)

    @property
    def resources(self) -> dict[str, float]:
        return {r: sum(c.resources[i] for c in self.choices) for i, r in enumerate(RESOURCES)}

    @property
    def utilization(self) -> dict[str, float]:
        return {r: v / self.capacity[r] for r, v in self.resources.items() if self.capacity[r]}

    def attributes(self) -> dict[str, dict]:
        merged: dict[str, dict] = {}
        for choice in self.choices:
            merged.update(choice.as_dict())
        return merged

    def as_dict(self, clock_mhz: float) -> dict:
        return {"search": "balanced", "mode": self.mode, "budget": self.budget,
                "cycle_bound": self.cycle_bound, "cycles": self.cycles,
                "estimated_fps": clock_mhz * 1e6 / self.cycles,
                "bram_weight": self.bram_weight, "resources": self.resources,
                "utilization": self.utilization, "notes": self.notes,
                "layers": self.attributes()}


def _cost(choice: Choice, weights: tuple[float, ...]) -> float:
    return sum(w * r for w, r in zip(weights, choice.resources))


def _weights(capacity: dict[str, int], bram_weight: float) -> tuple[float, ...]:
    """Resource -> cost of one unit: its share of the device (a resource the device lacks is
    prohibitive), BRAM scaled by ``bram_weight``."""
    scale = {"BRAM_18K": bram_weight}
    return tuple(scale.get(r, 1.0) / capacity[r] if capacity[r] else 1e9 for r in RESOURCES)


def balanced(units: list[Unit], bound: int, weights: tuple[float, ...]) -> list[Choice] | None:
    """Each unit's cheapest choice within ``bound`` cycles (ties: the slower, just fast
    enough); None if a unit cannot be that fast."""
    picked = []
    for unit in units:
        within = [c for c in unit.choices if c.cycles <= bound]
        if not within:
            return None
        picked.append(min(within, key=lambda c: (_cost(c, weights), -c.cycles)))
    return picked


def _totals(choices: list[Choice]) -> list[float]:
    return [sum(c.resources[i] for c in choices) for i in range(len(RESOURCES))]


def _fits(choices: list[Choice], capacity: dict[str, int], budget: float) -> bool:
    return all(t <= budget * capacity[r] + 1e-9 for t, r in zip(_totals(choices), RESOURCES))


def _peak(choices: list[Choice], capacity: dict[str, int]) -> float:
    return max(t / capacity[r] if capacity[r] else (math.inf if t else 0.0)
               for t, r in zip(_totals(choices), RESOURCES))


def _repair(units: list[Unit], design: list[Choice], bound: int, capacity: dict[str, int],
            budget: float) -> list[Choice] | None:
    """Move layers, one at a time, to other foldings within ``bound`` that free the resources
    over budget at the lowest cost in the others' headroom, until the design fits (None if
    no move helps). Identical layers can so end up on different memories (some weights in
    BRAM, some in LUTRAM), which no single exchange rate gives."""
    design = list(design)
    limits = [budget * capacity[r] for r in RESOURCES]
    for _ in range(sum(len(u.choices) for u in units)):
        totals = _totals(design)
        over = [i for i, (t, limit) in enumerate(zip(totals, limits)) if t > limit + 1e-9]
        if not over:
            return design
        best, best_score = None, 0.0
        for k, unit in enumerate(units):
            for choice in unit.choices:
                if choice.cycles > bound or choice is design[k]:
                    continue
                delta = [c - d for c, d in zip(choice.resources, design[k].resources)]
                gain = sum(-delta[i] / limits[i] if limits[i] else -delta[i] for i in over)
                if gain <= 0:
                    continue
                cost, possible = 0.0, True
                for i, change in enumerate(delta):
                    if i in over or change <= 0:
                        continue
                    headroom = limits[i] - totals[i]
                    if headroom < change:
                        possible = False
                        break
                    cost += change / headroom
                if possible and gain / (cost + 1e-9) > best_score:
                    best, best_score = (k, choice), gain / (cost + 1e-9)
        if best is None:
            return None
        design[best[0]] = best[1]
    return None


def _designs(units: list[Unit], bound: int, capacity: dict[str, int],
             budget: float) -> list[tuple[list[Choice], float, int]]:
    """The balanced design at ``bound`` for each LUT:BRAM exchange rate, repaired towards the
    budget where it exceeds it: (design, rate, layers the repair moved); empty if a layer
    cannot be that fast."""
    designs = []
    for bram_weight in BRAM_WEIGHTS:
        design = balanced(units, bound, _weights(capacity, bram_weight))
        if design is None:
            return []
        moved = 0
        if not _fits(design, capacity, budget):
            repaired = _repair(units, design, bound, capacity, budget)
            if repaired is not None:
                moved = sum(a is not b for a, b in zip(design, repaired))
                design = repaired
        designs.append((design, bram_weight, moved))
    return designs


def _best(designs, capacity: dict[str, int], budget: float):
    """Fitting designs before others, then the lowest peak use, then the fewest cycles."""
    return min(designs, key=lambda d: (not _fits(d[0], capacity, budget), _peak(d[0], capacity),
                                       max(c.cycles for c in d[0])))


def _overuse(choices: list[Choice], capacity: dict[str, int], budget: float) -> str:
    """The resources ``choices`` need beyond ``budget``, e.g. "LUT 61,234 (115%)"."""
    parts = []
    for total, resource in zip(_totals(choices), RESOURCES):
        if capacity[resource] and total > budget * capacity[resource] + 1e-9:
            parts.append(f"{resource} {total:,.0f} ({total / capacity[resource]:.0%})")
        elif not capacity[resource] and total:
            parts.append(f"{resource} {total:,.0f} (the device has none)")
    return ", ".join(parts)


def _plan(units, found, mode: str, budget: float, capacity: dict[str, int], bound: int,
          notes: list[str]) -> Plan:
    design, bram_weight, moved = found
    how = (f"every layer at its cheapest folding within that bound, resources weighed by "
           f"their share of the device (BRAM x {bram_weight:g})")
    if moved:
        how += f", then {moved} layer(s) moved between BRAM and LUTRAM to meet the budget"
    notes = notes + [how] + [u.note for u in units if u.note]
    return Plan(design, mode, budget, capacity, bram_weight, bound, notes)


def fit(units: list[Unit], capacity: dict[str, int], budget: float) -> Plan:
    """The fastest balanced design within ``budget`` of every resource. The bisection
    assumes a slower bound never needs more resources, true of each rate's balanced design
    (a superset of foldings to choose from) though not guaranteed after a repair."""
    floor = max(u.min_cycles for u in units)
    bounds = sorted({c.cycles for u in units for c in u.choices if c.cycles >= floor})
    low, high, found = 0, len(bounds) - 1, None
    while low <= high:  # the smallest bound with a fitting design
        middle = (low + high) // 2
        fitting = [d for d in _designs(units, bounds[middle], capacity, budget)
                   if _fits(d[0], capacity, budget)]
        if fitting:
            found, high = (bounds[middle], _best(fitting, capacity, budget)), middle - 1
        else:
            low = middle + 1
    if found is None:
        smallest = _best(_designs(units, bounds[-1], capacity, budget), capacity, budget)[0]
        cycles = max(c.cycles for c in smallest)
        need = _overuse(smallest, capacity, budget)
        raise NoFittingFolding(
            f"no folding fits {budget:.0%} of the device: even the most folded design "
            f"({cycles:,} cycles per frame) needs {need}. Use a larger board, raise --budget, "
            f"or train a smaller network; to build it anyway, pass a --target-fps (at most "
            f"the clock / {cycles:,}) with --allow-misfit.",
            need=f"{need} at {cycles:,} cycles per frame", peak=_peak(smallest, capacity))
    bound, design = found
    return _plan(units, design, "fit", budget, capacity, bound, [
        f"the fastest design whose FINN estimates stay within {budget:.0%} of every resource; "
        f"slowest layer {max(c.cycles for c in design[0]):,} cycles per frame"])


def for_target(units: list[Unit], capacity: dict[str, int], budget: float,
               bound: int) -> Plan:
    """The cheapest balanced design (within the budget if one is, then the lowest peak use)
    that needs at most ``bound`` cycles per frame; if a layer cannot be that fast, every layer
    as fast as the slowest can be."""
    floor = max(u.min_cycles for u in units)
    notes = []
    if bound < floor:
        notes.append(f"the target needs {bound:,} cycles per frame, but the slowest layer "
                     f"needs at least {floor:,} at full parallelism")
        bound = floor
    design = _best(_designs(units, bound, capacity, budget), capacity, budget)
    notes.append(f"the cheapest design (lowest peak resource use) whose slowest layer needs at "
                 f"most {bound:,} cycles per frame")
    if not _fits(design[0], capacity, budget):
        notes.append(f"no design this fast stays within {budget:.0%} of the device: this one "
                     f"needs {_overuse(design[0], capacity, budget)}")
    return _plan(units, design, "target", budget, capacity, bound, notes)


def apply_plan(model, plan: Plan) -> None:
    from qonnx.custom_op.registry import getCustomOp

    for node in model.graph.node:
        for key, value in plan.attributes().get(node.name, {}).items():
            getCustomOp(node).set_nodeattr(key, value)


def write_plan(plan: Plan, report_dir: Path, clock_mhz: float) -> None:
    from ...outputs import write_text

    write_text(report_dir / "folding_search.json", json.dumps(plan.as_dict(clock_mhz), indent=2))
    write_text(report_dir / "auto_folding_config.json",
               json.dumps({"Defaults": {}, **plan.attributes()}, indent=2))
