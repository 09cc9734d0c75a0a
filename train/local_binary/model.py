"""Binary MLP of the local-binary-error-signal trainer: configuration, integer state, RNG.

Method: Colombo, Pittorino, Roveri, "Training Multi-Layer Binary Neural Networks With Local
Binary Error Signals", arXiv 2412.00119. We implement it from the method's description and the
behaviour of the authors' public code; section references are to that description (the paper's
equation numbers were not available offline, see the README's "faithfulness" notes).

Network (all integer):
  hidden layer l:  H_l = A_{l-1} . sign(W_l)         XNOR-popcount, A_0 = bipolar input
                   A_l = sign(H_l)                    sign(0) = +1 (only an even fan-in can tie)
  local readout:   O_l = A_l . B_l                    B_l fixed random +-1 (H_l x C), never trained
  prediction:      argmax of the last layer's O_L     (first index on ties)

Two deliberate choices that make the network exactly binary (documented deviations; the
``authors`` convention, below, drops them):
  * Hidden weights are odd. The authors draw int(N(0, 64^2)), so ~1.25 % start at 0 and
    sign(0) = 0 makes them ternary. We map every draw w to the odd number 2*floor(w/2) + 1;
    updates are multiples of 2, so weights stay odd and sign(W) is always +-1 (bipolar, as
    FINN and the bit-packed kernels need).
  * Hidden weights saturate at +-(2^(bits-1) - 1) (odd, so parity is kept). The authors do
    not clip by default; with ``weight_bits=16`` saturation is a safety net for the HLS
    datapath, and the trainer logs how close the weights come to it.

Convention ``authors`` (``BMLPShape.convention``) follows the authors' public code exactly where
we deviate on purpose: weights start at int(N(0, 64^2)) as drawn (even values and ~1.25 % zeros),
each local classifier is sign(int(N(0, 64^2))) (~1.25 % zeros), and sign(0) = 0 for weights,
activations and classifiers, so the network is ternary: a 0 contributes nothing to a sum, a
neuron whose target is 0 is never wrong, and a 0 weight is not reinforced. Such a network is
not an XNOR network; it trains with the reference engine and is not exported or emitted as HLS.

Reinforcement randomness is a counter-based hash (splitmix64) of (seed, step, layer, weight
index), so the reference, the bit-packed trainer and the HLS C++ draw the same numbers without
sharing generator state.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from ...errors import XnorflowError

# Group sizes gamma the authors used for their widths (groups of gamma contiguous neurons; in
# each group at most one neuron is updated per wrong sample).
PAPER_GROUP_SIZES = {35: 35, 75: 75, 135: 45, 255: 85, 525: 105, 1035: 115}
CONVENTIONS = ("bipolar", "authors")  # see the module docstring
INIT_STD = 64.0  # the authors' hidden-weight initialization int(N(0, 64^2))
# why export, build and deploy refuse a BMLP of a convention other than bipolar
NOT_XNOR = ("it was trained with --convention {convention}, so its weights, activations and "
            "classifiers are ternary (sign(0) = 0), which FINN's XNOR layers cannot compute; "
            "train with --convention bipolar (the default) to export or build")

MASK64 = (1 << 64) - 1
GOLDEN = 0x9E3779B97F4A7C15
STEP_MULT = 0xD1B54A32D192ED03
LAYER_MULT = 0xABC98388FB8FAC03


class BMLPError(XnorflowError, ValueError):
    """A BMLP configuration that cannot be trained; the message says what to change."""


@dataclass(frozen=True)
class BMLPShape:
    """Everything the integer datapath depends on (also what the HLS generator needs)."""

    in_features: int
    widths: tuple[int, ...]
    num_classes: int
    group_sizes: tuple[int, ...]
    margin_ratio: float = 0.25      # r: wrong if top1 - top2 < floor(r * H_l)
    weight_bits: int = 16           # signed hidden weights, saturating
    convention: str = "bipolar"     # "authors": ternary sign, see the module docstring

    def __post_init__(self):
        if not self.widths:
            raise BMLPError("a BMLP needs at least one hidden layer (--widths, e.g. 525,525)")
        check_group_sizes(self.widths, self.group_sizes)
        if self.num_classes < 2 or self.in_features < 1:
            raise BMLPError(f"need >= 2 classes and >= 1 input feature, got {self.num_classes} "
                            f"and {self.in_features}")
        if not 3 <= self.weight_bits <= 31:
            raise BMLPError(f"weight_bits {self.weight_bits}: choose 3..31")
        if self.convention not in CONVENTIONS:
            raise BMLPError(f"convention {self.convention!r}: choose one of {CONVENTIONS}")
        if not 0 <= self.margin_ratio:
            raise BMLPError(f"margin ratio {self.margin_ratio} must be >= 0")

    @property
    def fan_ins(self) -> tuple[int, ...]:
        return (self.in_features,) + self.widths[:-1]

    @property
    def margins(self) -> tuple[int, ...]:
        """Integer margin floor(r * H_l) of each layer's local readout."""
        return tuple(math.floor(self.margin_ratio * w) for w in self.widths)

    @property
    def weight_limit(self) -> int:
        return (1 << (self.weight_bits - 1)) - 1


def check_group_sizes(widths, group_sizes) -> None:
    """One group size per hidden layer, each in 1..width."""
    if len(group_sizes) != len(widths):
        raise BMLPError(f"--widths {_listed(widths)} has {_count(len(widths), 'hidden layer')} "
                        f"but --group-sizes {_listed(group_sizes)} has "
                        f"{_count(len(group_sizes), 'size')}; give one group size per layer")
    for width, gamma in zip(widths, group_sizes):
        if width < 1 or not 1 <= gamma <= width:
            raise BMLPError(f"--group-sizes: group size {gamma} for the hidden width {width}; "
                            f"need 1 <= group size <= width")


def group_sizes_for(widths, group_sizes=None) -> tuple[int, ...]:
    """The group size of each hidden layer: ``group_sizes`` if given, else the authors'."""
    groups = tuple(group_sizes) if group_sizes else default_group_sizes(tuple(widths))
    check_group_sizes(tuple(widths), groups)
    return groups


def _listed(values) -> str:
    return ",".join(map(str, values))


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def default_group_sizes(widths: tuple[int, ...]) -> tuple[int, ...]:
    """The authors' gamma for their widths; other widths need an explicit choice."""
    missing = [w for w in widths if w not in PAPER_GROUP_SIZES]
    if missing:
        known = ", ".join(f"{w}: {g}" for w, g in PAPER_GROUP_SIZES.items())
        raise BMLPError(f"--widths {_listed(widths)}: no published group size for "
                        f"{'width' if len(missing) == 1 else 'widths'} {_listed(missing)}; "
                        f"pass --group-sizes, one per layer (the paper used {known})")
    return tuple(PAPER_GROUP_SIZES[w] for w in widths)


@dataclass
class BMLPState:
    """The trainable state: integer hidden weights (fan_in x width, int32) and the fixed local
    classifiers (width x classes, int8 +-1)."""

    shape: BMLPShape
    weights: list[np.ndarray]
    classifiers: list[np.ndarray]

    def copy(self) -> BMLPState:
        return BMLPState(self.shape, [w.copy() for w in self.weights],
                         [b.copy() for b in self.classifiers])

    def as_record(self) -> dict:
        return {"shape": asdict(self.shape), "weights": [w.copy() for w in self.weights],
                "classifiers": [b.copy() for b in self.classifiers]}

    @classmethod
    def from_record(cls, record: dict) -> BMLPState:
        """From :meth:`as_record`'s layout; the arrays may be numpy arrays or CPU tensors."""
        raw = dict(record["shape"])
        shape = BMLPShape(**{**raw, "widths": tuple(raw["widths"]),
                             "group_sizes": tuple(raw["group_sizes"])})
        return cls(shape, [np.asarray(w, np.int32) for w in record["weights"]],
                   [np.asarray(b, np.int8) for b in record["classifiers"]])

    def binary_weights(self) -> list[np.ndarray]:
        """sign(W) as int8: +-1 (bipolar weights are odd, so never 0), or -1/0/+1 (authors)."""
        return [sign(w, self.shape.convention).astype(np.int8) for w in self.weights]


def sign(v: np.ndarray, convention: str) -> np.ndarray:
    """sign of integers as int32: sign(0) = +1 (bipolar) or 0 (authors)."""
    if convention == "authors":
        return np.sign(v).astype(np.int32)
    return np.where(v >= 0, 1, -1).astype(np.int32)


def init_state(shape: BMLPShape, seed: int) -> BMLPState:
    """Hidden weights int(N(0, 64^2)), made odd for ``bipolar`` (see module docstring); local
    classifiers +-1 (bipolar) or sign(int(N(0, 64^2))) (authors)."""
    rng = np.random.default_rng(seed)
    weights, classifiers = [], []
    limit = shape.weight_limit
    for fan_in, width in zip(shape.fan_ins, shape.widths):
        draw = np.trunc(rng.normal(0.0, INIT_STD, size=(fan_in, width))).astype(np.int64)
        if shape.convention == "authors":
            weights.append(np.clip(draw, -limit, limit).astype(np.int32))
            readout = np.trunc(rng.normal(0.0, INIT_STD, size=(width, shape.num_classes)))
            classifiers.append(np.sign(readout).astype(np.int8))
            continue
        weights.append(np.clip(2 * np.floor_divide(draw, 2) + 1, -limit, limit).astype(np.int32))
        classifiers.append(np.where(rng.random((width, shape.num_classes)) < 0.5, -1, 1)
                           .astype(np.int8))
    return BMLPState(shape, weights, classifiers)


# --------------------------------------------------------------------------- reinforcement RNG
def splitmix64(z: np.ndarray) -> np.ndarray:
    """splitmix64 finalizer on uint64 arrays (wrapping arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def stream_key(seed: int, step: int, layer: int) -> int:
    """64-bit key of the reinforcement draws of ``layer`` at global training ``step``."""
    base = (seed * GOLDEN + step * STEP_MULT + (layer + 1) * LAYER_MULT) & MASK64
    return int(splitmix64(np.array([base], np.uint64))[0])


DRAW_BITS = 16          # each reinforcement draw is a 16-bit lane of a 64-bit hash
DRAWS_PER_HASH = 64 // DRAW_BITS


def reinforcement_draws(key: int, fan_in: int, width: int) -> np.ndarray:
    """Uniform 16-bit draws of one layer's weights, returned input-major (fan_in x width).

    Neuron j's row of fan_in draws comes from R = ceil(fan_in / 4) hashes: weight (i, j) gets
    16-bit lane i % 4 (lowest bits first) of splitmix64(key + (j * R + i // 4) * golden).
    Rows are independent and four draws share a hash, which keeps the cost low in software and
    in hardware."""
    per_row = -(-fan_in // DRAWS_PER_HASH)
    with np.errstate(over="ignore"):
        hashes = splitmix64(np.uint64(key) + np.arange(width * per_row, dtype=np.uint64)
                            * np.uint64(GOLDEN)).reshape(width, per_row)
    shifts = np.arange(DRAWS_PER_HASH, dtype=np.uint64) * np.uint64(DRAW_BITS)
    lanes = (hashes[:, :, None] >> shifts) & np.uint64((1 << DRAW_BITS) - 1)
    return lanes.reshape(width, -1)[:, :fan_in].astype(np.uint16).T


def reinforcement_threshold(p_r: float, previous_train_acc: float, fan_in: int) -> int:
    """Per-weight reinforcement probability p = p_r * sqrt(1 - acc_prev) * sqrt(2 / (pi d_in)),
    as an integer threshold on a 16-bit draw (reinforce if draw < threshold). Computed once per
    epoch on the host; the training step itself only compares integers."""
    p = p_r * math.sqrt(max(0.0, 1.0 - previous_train_acc)) * math.sqrt(2.0 / (math.pi * fan_in))
    return min(int(p * (1 << DRAW_BITS)), 1 << DRAW_BITS)


@dataclass
class StepResult:
    """What one training step reports: the network's predictions on the batch (before the
    update) and, per layer, the number of wrong samples and of updated neuron entries."""

    predictions: np.ndarray
    wrong_samples: list[int] = field(default_factory=list)
    updated_neurons: list[int] = field(default_factory=list)


def predict(state: BMLPState, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    """argmax of the last local readout for bipolar inputs ``x`` (N x in_features)."""
    out = np.empty(len(x), np.int64)
    for start in range(0, len(x), batch_size):
        out[start:start + batch_size] = readout(state, x[start:start + batch_size])[-1].argmax(1)
    return out


def readout(state: BMLPState, x: np.ndarray) -> list[np.ndarray]:
    """Per-layer integer readouts O_l (the last one is the network's output). Evaluated with
    float32 BLAS for speed: every operand is +-1 and every sum is below 2^24, so it is exact."""
    a = np.asarray(x, np.float32)
    outs = []
    for w, b in zip(state.binary_weights(), state.classifiers):
        a = sign(a @ w.astype(np.float32), state.shape.convention).astype(np.float32)
        outs.append((a @ b.astype(np.float32)).astype(np.int32))
    return outs
