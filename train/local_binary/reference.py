"""Integer reference implementation of one training step (clarity first, NumPy integer ops).

The step, for each hidden layer l in order (Colombo et al., arXiv 2412.00119, Sec. "local
binary error signals" and "metaplastic reinforcement"; see :mod:`.model`):

1. Forward: H = X . sign(W) (int32), A = sign(H) with sign(0) = +1 (0 in the ``authors``
   convention), O = A . B.
2. Wrong samples: argmax O != y, or top1(O) - top2(O) < floor(r * H_l).
3. Local target T = B[:, y] (+-1 per neuron). Neuron j of a wrong sample is wrong if
   H_j * T_j < 0. The neurons are cut into contiguous groups of gamma (the last group may be
   shorter); in each group only the wrong neuron with the smallest |H_j| is marked (M = 1;
   ties: lowest index).
4. Update: W += 2 * X_wrong^T (T * M)_wrong, summed over the batch's wrong samples.
5. Reinforcement (only if the layer had a wrong sample): every weight independently, when its
   16-bit draw is below the epoch's threshold, gets W += 2 * sign(W).
6. Saturate W to +-(2^(bits-1) - 1). The next layer gets this layer's pre-update A.

Every value is an integer. The products are computed by float32 BLAS, which is exact here
(:func:`integer_matmul`) and two orders of magnitude faster than NumPy's integer matmul.
"""

from __future__ import annotations

import numpy as np

from .model import BMLPState, StepResult, reinforcement_draws, sign, stream_key

_NOT_WRONG = np.iinfo(np.int32).max


def integer_matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a @ b for integer matrices with entries in {-1, 0, 1}, as int32. float32 represents every
    integer up to 2^24 exactly, and no sum here comes near it (at most the fan-in or the batch
    size), so BLAS's float32 product is the exact integer product whatever its summation
    order."""
    if a.shape[1] >= 1 << 24:
        raise ValueError("integer_matmul is exact only for sums of fewer than 2^24 terms")
    return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.int32)


def wrong_samples(o: np.ndarray, y: np.ndarray, margin: int) -> np.ndarray:
    """Samples whose readout is wrong or right by less than ``margin`` (top1 - top2)."""
    top2 = np.sort(o, axis=1)[:, -2:]
    return (o.argmax(1) != y) | (top2[:, 1] - top2[:, 0] < margin)


def marked_neurons(h: np.ndarray, t: np.ndarray, group_size: int) -> np.ndarray:
    """M: per sample and group of ``group_size`` neurons, the wrong neuron (h*t < 0) with the
    smallest |h|. ``h`` and ``t`` are (samples x width)."""
    n, width = h.shape
    cost = np.where(h * t < 0, np.abs(h), _NOT_WRONG).astype(np.int32)
    groups = -(-width // group_size)
    padded = np.full((n, groups * group_size), _NOT_WRONG, np.int32)
    padded[:, :width] = cost
    padded = padded.reshape(n, groups, group_size)
    best = padded.argmin(axis=2)
    chosen = np.take_along_axis(padded, best[..., None], axis=2)[..., 0] != _NOT_WRONG
    mask = np.zeros((n, groups, group_size), bool)
    rows, grps = np.nonzero(chosen)
    mask[rows, grps, best[rows, grps]] = True
    return mask.reshape(n, -1)[:, :width]


def train_step(state: BMLPState, x: np.ndarray, y: np.ndarray, thresholds: list[int],
               step: int, seed: int) -> StepResult:
    """One mini-batch step on ``state`` (updated in place). ``x`` is +-1 (N x in_features),
    ``thresholds`` the per-layer reinforcement thresholds of this epoch, ``step`` the global
    step index (with ``seed`` it keys the reinforcement draws)."""
    shape = state.shape
    a = np.asarray(x).astype(np.int32)
    y = np.asarray(y).astype(np.int64)
    result = StepResult(predictions=np.empty(0, np.int64))
    for layer, (w, b) in enumerate(zip(state.weights, state.classifiers)):
        h = integer_matmul(a, sign(w, shape.convention))
        act = sign(h, shape.convention)
        o = integer_matmul(act, b)
        if layer == len(state.weights) - 1:
            result.predictions = o.argmax(1)
        wrong = wrong_samples(o, y, shape.margins[layer])
        mask = np.zeros(0)
        if wrong.any():
            t = b.astype(np.int32).T[y[wrong]]
            mask = marked_neurons(h[wrong], t, shape.group_sizes[layer])
            delta = 2 * integer_matmul(a[wrong].T, t * mask)
            w += delta
            draws = reinforcement_draws(stream_key(seed, step, layer), *w.shape)
            w += np.where(draws < thresholds[layer], 2 * sign(w, shape.convention),
                          0).astype(np.int32)
            np.clip(w, -shape.weight_limit, shape.weight_limit, out=w)
        result.wrong_samples.append(int(wrong.sum()))
        result.updated_neurons.append(int(mask.sum()))
        a = act
    return result
