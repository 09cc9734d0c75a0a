"""The ProxConnect++ quantizer pairs by name: what each pair is, without the tensor math.

Kept free of torch so that the command line (choices, help) and the run configurations can name
the pairs without importing a deep-learning framework; the math is in :mod:`.quantizers`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

BACKWARD_KINDS = ("identity", "clip", "signswish", "approxsign")


@dataclass(frozen=True)
class BackwardQuantizer:
    """B (and with it B'). ``kind`` is ``identity``, ``clip``, ``signswish`` or ``approxsign``
    (Bi-Real Net's piecewise quadratic, Liu et al. 2018: B' = max(0, 2 - 2|x|))."""

    kind: str
    beta: float = 5.0  # SignSwish sharpness; 5 is BNN+'s/larq's default

    def __post_init__(self):
        if self.kind not in BACKWARD_KINDS:
            raise ValueError(f"unknown backward quantizer {self.kind!r}; one of {BACKWARD_KINDS}")


@dataclass(frozen=True)
class QuantizerPair:
    """One PC++ method: backward quantizer B and the schedule of mu in F = P_mu o B.

    ``mu_max`` is None for mu = inf throughout (F = sign). Otherwise mu grows linearly with the
    training progress t in [0, 1]: mu(t) = mu_max * t. The default mu_max = 1.25 reaches mu = 1
    at 80 % of training, after which F is exactly sign on |B(w)| <= 2 (all latent weights, since
    they are clipped to [-1, 1]), so the last fifth of training already sees the binary network.
    """

    name: str
    backward: BackwardQuantizer
    mu_max: float | None = None
    clip_latent: bool = True  # keep latent weights in [-1, 1] (BinaryConnect, BNN: Courbariaux)
    description: str = ""

    def mu(self, progress: float) -> float:
        if self.mu_max is None:
            return math.inf
        return self.mu_max * min(max(progress, 0.0), 1.0)

    def schedule_values(self, progress: float) -> dict[str, float]:
        return {} if self.mu_max is None else {"mu": self.mu(progress)}


PAIRS: dict[str, QuantizerPair] = {
    pair.name: pair for pair in (
        QuantizerPair("bc", BackwardQuantizer("identity"),
                      description="BinaryConnect: sign forward, identity backward"),
        QuantizerPair("pc", BackwardQuantizer("identity"), mu_max=1.25,
                      description="ProxConnect: proximal forward P_mu (mu annealed), "
                                  "identity backward"),
        QuantizerPair("bnn", BackwardQuantizer("clip"),
                      description="BNN: sign forward, clipped-identity STE backward"),
        QuantizerPair("bnn+", BackwardQuantizer("signswish"),
                      description="BNN+: sign forward, SignSwish backward"),
        QuantizerPair("bnn++", BackwardQuantizer("signswish"), mu_max=1.25,
                      description="BNN++: P_mu o SignSwish forward (mu annealed), "
                                  "SignSwish backward"),
        QuantizerPair("approxsign", BackwardQuantizer("approxsign"),
                      description="ApproxSign (Bi-Real Net): sign forward, max(0, 2 - 2|x|) "
                                  "backward; VISPA's W1A1 activations"),
    )
}


def pair_for(name: str) -> QuantizerPair:
    try:
        return PAIRS[name]
    except KeyError:
        raise ValueError(f"unknown quantizer pair {name!r}; "
                         f"choose one of {sorted(PAIRS)}") from None
