"""Fast bit-packed training step: +-1 values as bits in uint64 words, XNOR-popcount on words.

Same arithmetic as :mod:`.reference` (tests compare the hidden weights after every step), laid
out for speed and for hardware:

* forward: H[s, j] = fan_in - 2 * popcount(x_s XOR w_j) over 64-bit words (bit 1 = +1; the
  padding bits are 0 in both operands, so they never count);
* local readout: the same popcount against the packed columns of B;
* update: each (sample s, neuron j) pair marked by the local error adds 2 * T[s,j] * x_s to
  neuron j's weight row (an increment/decrement per weight; few pairs are marked, one per
  group of gamma neurons and wrong sample, so this beats a dense X^T (T*M) product);
* reinforcement: the counter-based hash draw of every weight, compared with an integer
  threshold.

The kernels are compiled by numba (LLVM's ctpop becomes a hardware popcount) and run in
parallel over samples or neurons. Weights are kept transposed (neuron-major) here; the state
shared with the rest of the package (:class:`.model.BMLPState`) is input-major.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.extending import intrinsic

from .model import GOLDEN, BMLPError, BMLPState, StepResult, stream_key

WORD = 64


@intrinsic
def _popcount(typingctx, value):
    """LLVM ctpop on a uint64 (numba has no popcount builtin)."""
    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, args)
    return types.uint64(types.uint64), codegen


def words_for(bits: int) -> int:
    return -(-bits // WORD)


@njit(parallel=True, cache=True)
def pack_rows(values, out):
    """Bit j of out[r] = values[r, j] >= 0 (so +-1 and integer pre-activations both pack)."""
    rows, cols = values.shape
    for r in prange(rows):
        for word in range(out.shape[1]):
            bits = np.uint64(0)
            for bit in range(min(64, cols - 64 * word)):
                bits |= np.uint64(values[r, 64 * word + bit] >= 0) << np.uint64(bit)
            out[r, word] = bits


@njit(parallel=True, cache=True)
def xnor_popcount(xbits, wbits, length, out):
    """out[s, j] = sum_i x[s, i] * w[j, i] for +-1 vectors of ``length`` packed as bits."""
    samples, words = xbits.shape
    for s in prange(samples):
        for j in range(wbits.shape[0]):
            differ = np.uint64(0)
            for k in range(words):
                differ += _popcount(xbits[s, k] ^ wbits[j, k])
            out[s, j] = length - 2 * np.int32(differ)


@njit(parallel=True, cache=True)
def local_errors(h, o, labels, classifier_t, margin, group_size, marks, wrong, predictions):
    """Wrong samples of one layer and the neurons they mark (reference.train_step 2-3).
    ``classifier_t`` is B transposed (classes x width). Fills ``marks[j, s]`` with T[s, j]
    where sample s marked neuron j, else 0; returns the number of marked (sample, neuron)
    pairs."""
    samples, width = h.shape
    marks[:, :] = 0
    marked = 0
    for s in prange(samples):
        best, second = 0, 0
        for c in range(o.shape[1]):
            if o[s, c] > o[s, best]:
                best = c
        first = True
        for c in range(o.shape[1]):
            if c != best and (first or o[s, c] > second):
                second = o[s, c]
                first = False
        predictions[s] = best
        y = labels[s]
        wrong[s] = best != y or o[s, best] - second < margin
        if not wrong[s]:
            continue
        count = 0
        target = classifier_t[y]
        for start in range(0, width, group_size):
            chosen, cost = -1, np.int32(0x7FFFFFFF)
            for j in range(start, min(start + group_size, width)):
                v = h[s, j] if target[j] < 0 else -h[s, j]  # > 0 exactly when H_j T_j < 0
                if v > 0 and v < cost:
                    chosen, cost = j, v
            if chosen >= 0:
                marks[chosen, s] = target[chosen]
                count += 1
        marked += count
    return marked


@njit(parallel=True, cache=True)
def to_bipolar(values, out):
    """out = +1 where values >= 0 else -1 (int8)."""
    for r in prange(values.shape[0]):
        for c in range(values.shape[1]):
            out[r, c] = 1 if values[r, c] >= 0 else -1


@njit(parallel=True, cache=True)
def update_weights(weights_t, sign_bits, layer_input, marks, key, threshold, limit):
    """W += 2 X^T (T*M), reinforcement, saturation; refresh the packed signs. Per neuron j the
    error update is an increment/decrement of its weight row by 2 * T * x_s for each sample s
    that marked it. ``weights_t`` is neuron-major (width x fan_in), like the reinforcement
    draws (model.reinforcement_draws)."""
    width, fan_in = weights_t.shape
    per_row = (fan_in + 3) // 4
    for j in prange(width):
        row = weights_t[j]
        for s in range(marks.shape[1]):
            if marks[j, s] != 0:
                step = 2 * np.int32(marks[j, s])
                for i in range(fan_in):
                    row[i] += step * layer_input[s, i]
        draws = np.empty(4 * per_row, np.uint16)
        for q in range(per_row):  # independent hashes: a loop the compiler vectorizes
            z = key + np.uint64(j * per_row + q) * np.uint64(GOLDEN)
            z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
            z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
            z = z ^ (z >> np.uint64(31))
            for lane in range(4):
                draws[4 * q + lane] = np.uint16((z >> np.uint64(16 * lane)) & np.uint64(0xFFFF))
        for i in range(fan_in):  # branch-free reinforcement and saturation
            w = row[i]
            step = np.int32(draws[i] < threshold) * (np.int32(2) if w >= 0 else np.int32(-2))
            row[i] = min(max(w + step, -limit), limit)
        for word in range(sign_bits.shape[1]):
            signs = np.uint64(0)
            for bit in range(min(64, fan_in - 64 * word)):
                signs |= np.uint64(row[64 * word + bit] >= 0) << np.uint64(bit)
            sign_bits[j, word] = signs


class PackedBMLP:
    """Bit-packed trainer state built from (and convertible back to) a :class:`BMLPState`."""

    def __init__(self, state: BMLPState):
        if state.shape.convention != "bipolar":
            raise BMLPError(f"the bit-packed engine holds +-1 values only; a --convention "
                            f"{state.shape.convention} network (ternary) needs --engine reference")
        self.shape = state.shape
        self.weights_t = [np.ascontiguousarray(w.T, dtype=np.int32) for w in state.weights]
        self.classifiers = [np.ascontiguousarray(b, dtype=np.int8) for b in state.classifiers]
        self.classifiers_t = [np.ascontiguousarray(b.T) for b in self.classifiers]
        self.sign_bits = []
        for w in self.weights_t:
            bits = np.empty((w.shape[0], words_for(w.shape[1])), np.uint64)
            pack_rows(w, bits)
            self.sign_bits.append(bits)
        # the local classifiers' columns, packed, for the popcount readout
        self.classifier_bits = []
        for b in self.classifiers:
            bits = np.empty((b.shape[1], words_for(b.shape[0])), np.uint64)
            pack_rows(np.ascontiguousarray(b.T), bits)
            self.classifier_bits.append(bits)

    def to_state(self) -> BMLPState:
        return BMLPState(self.shape, [np.ascontiguousarray(w.T) for w in self.weights_t],
                         [b.copy() for b in self.classifiers])

    def _forward(self, layer: int, bits: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pre-activations H, readout O and packed activations of ``layer`` for packed
        inputs ``bits``."""
        samples = bits.shape[0]
        width = self.shape.widths[layer]
        h = np.empty((samples, width), np.int32)
        xnor_popcount(bits, self.sign_bits[layer], self.shape.fan_ins[layer], h)
        act_bits = np.empty((samples, words_for(width)), np.uint64)
        pack_rows(h, act_bits)
        o = np.empty((samples, self.shape.num_classes), np.int32)
        xnor_popcount(act_bits, self.classifier_bits[layer], width, o)
        return h, o, act_bits

    def predict(self, bits: np.ndarray) -> np.ndarray:
        """argmax of the last readout for packed inputs (see :func:`pack_inputs`)."""
        for layer in range(len(self.weights_t)):
            _, o, bits = self._forward(layer, bits)
        return o.argmax(1)

    def train_step(self, x: np.ndarray, bits: np.ndarray, y: np.ndarray, thresholds: list[int],
                   step: int, seed: int) -> StepResult:
        """Same contract as :func:`.reference.train_step`; ``x`` is the +-1 batch (int8),
        ``bits`` the same batch packed with :func:`pack_inputs`."""
        samples = len(y)
        labels = np.ascontiguousarray(y, dtype=np.int64)
        result = StepResult(predictions=np.empty(samples, np.int64))
        wrong = np.empty(samples, np.bool_)
        predictions = np.empty(samples, np.int64)
        layer_input = np.ascontiguousarray(x, dtype=np.int8)
        last = len(self.weights_t) - 1
        for layer in range(last + 1):
            width = self.shape.widths[layer]
            h, o, act_bits = self._forward(layer, bits)
            marks = np.empty((width, samples), np.int8)
            marked = local_errors(h, o, labels, self.classifiers_t[layer],
                                  self.shape.margins[layer], self.shape.group_sizes[layer],
                                  marks, wrong, predictions)
            if layer == last:
                result.predictions = predictions.copy()
            if layer < last:  # the next layer's input: this layer's pre-update activations
                next_input = np.empty((samples, width), np.int8)
                to_bipolar(h, next_input)
            if wrong.any():
                update_weights(self.weights_t[layer], self.sign_bits[layer], layer_input, marks,
                               np.uint64(stream_key(seed, step, layer)),
                               np.uint64(thresholds[layer]), np.int32(self.shape.weight_limit))
            result.wrong_samples.append(int(wrong.sum()))
            result.updated_neurons.append(int(marked))
            if layer < last:
                layer_input, bits = next_input, act_bits
        return result


def pack_inputs(x: np.ndarray) -> np.ndarray:
    """+-1 inputs (N x features) -> (N x words) uint64, bit 1 = +1."""
    x = np.ascontiguousarray(x)
    out = np.empty((x.shape[0], words_for(x.shape[1])), np.uint64)
    pack_rows(x, out)
    return out
