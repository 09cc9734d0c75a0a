// xnorflow: layer templates of the local binary trainer (Colombo et al., arXiv 2412.00119) for
// Vitis HLS. Sizes arrive as template parameters from the generated bmlp_config.h; this file
// holds no network size. The arithmetic mirrors xnorflow/train/local_binary/reference.py
// exactly (tie rules included), which the C simulation test checks step by step:
//
//   H = X . sign(W)            XNOR-popcount, sign(w) = +1 for w >= 0 (weights are odd)
//   A = sign(H)                +1 for H >= 0
//   O = A . B                  B: fixed +-1 local classifier, bit c of b[j] is B[j][c] = +1
//   wrong sample               argmax O != y (first max) or top1 - top2 < MARGIN
//   marked neuron              per group of GROUP neurons, the wrong one (H_j T_j < 0) with the
//                              smallest |H_j| (lowest index on ties), T = B[:, y]
//   update                     W[j][i] += 2 * sum over samples that marked j of T_sj x_si
//   reinforcement              if the layer had a wrong sample: W += 2 sign(W) where the 16-bit
//                              draw of the weight is < threshold
//   saturation                 |W| <= 2^(WB-1) - 1
//
// Parallelism: PE neurons and SIMD inputs per clock cycle in the XNOR-popcount and in the
// update loop; the weight memory is partitioned to match.
#ifndef XNORFLOW_BMLP_KERNELS_H
#define XNORFLOW_BMLP_KERNELS_H

#include <ap_int.h>

#include "bmlp_stream.h"

namespace bmlp {

typedef ap_uint<64> u64;

constexpr int clog2(int v) { return v <= 1 ? 0 : 1 + clog2((v + 1) / 2); }
constexpr int bits_for(int max_value) { return clog2(max_value + 1); }  // unsigned 0..max

const u64 GOLDEN = 0x9E3779B97F4A7C15ULL;
const u64 STEP_MULT = 0xD1B54A32D192ED03ULL;
const u64 LAYER_MULT = 0xABC98388FB8FAC03ULL;

inline u64 splitmix64(u64 z) {
    z = (z ^ (z >> 30)) * u64(0xBF58476D1CE4E5B9ULL);
    z = (z ^ (z >> 27)) * u64(0x94D049BB133111EBULL);
    return z ^ (z >> 31);
}

// Key of the reinforcement draws of one layer at one training step (model.stream_key).
inline u64 stream_key(u64 seed, u64 step, int layer) {
    return splitmix64(seed * GOLDEN + step * STEP_MULT + u64(layer + 1) * LAYER_MULT);
}

// 16-bit draw of weight (neuron j, input i): lane i % 4 of the hash of (j, i / 4).
template <int IN>
inline ap_uint<16> reinforcement_draw(u64 key, int j, int i) {
    const int per_row = (IN + 3) / 4;
    u64 z = splitmix64(key + u64(j * per_row + i / 4) * GOLDEN);
    return ap_uint<16>(z >> (16 * (i % 4)));
}

template <int W>
inline ap_uint<bits_for(W)> popcount(ap_uint<W> v) {
#ifndef __SYNTHESIS__
    // C simulation: 64-bit chunks with the compiler's builtin (same count, much faster)
    int count = 0;
    for (int lo = 0; lo < W; lo += 64) {
        const int hi = lo + 63 < W - 1 ? lo + 63 : W - 1;
        count += __builtin_popcountll(v.range(hi, lo).to_uint64());
    }
    return count;
#else
    ap_uint<bits_for(W)> count = 0;
    for (int k = 0; k < W; k++) {
#pragma HLS UNROLL
        count += v[k];
    }
    return count;
#endif
}

// The signs of a weight matrix as SIMD-bit chunks (recomputed once per step, not per sample).
template <int IN, int OUT, int PE, int SIMD, int WB>
void weight_signs(const ap_int<WB> w[OUT][IN], ap_uint<SIMD> sign[OUT][IN / SIMD]) {
    for (int j = 0; j < OUT; j++) {
        for (int ib = 0; ib < IN / SIMD; ib++) {
#pragma HLS PIPELINE II = 1
            ap_uint<SIMD> chunk = 0;
            for (int q = 0; q < SIMD; q++) {
#pragma HLS UNROLL
                chunk[q] = w[j][ib * SIMD + q] >= 0;
            }
            sign[j][ib] = chunk;
        }
    }
}

// H for one sample: PE neurons x SIMD inputs per cycle.
template <int IN, int OUT, int PE, int SIMD>
void xnor_popcount(const ap_uint<SIMD> x[IN / SIMD], const ap_uint<SIMD> sign[OUT][IN / SIMD],
                   ap_int<bits_for(IN) + 1> h[OUT]) {
    for (int jb = 0; jb < OUT / PE; jb++) {
        ap_uint<bits_for(IN)> match[PE];
#pragma HLS ARRAY_PARTITION variable = match complete
        for (int p = 0; p < PE; p++) {
#pragma HLS UNROLL
            match[p] = 0;
        }
        for (int ib = 0; ib < IN / SIMD; ib++) {
#pragma HLS PIPELINE II = 1
            for (int p = 0; p < PE; p++) {
#pragma HLS UNROLL
                match[p] += popcount<SIMD>(~(x[ib] ^ sign[jb * PE + p][ib]));
            }
        }
        for (int p = 0; p < PE; p++) {
#pragma HLS UNROLL
            h[jb * PE + p] = 2 * ap_int<bits_for(IN) + 2>(match[p]) - IN;
        }
    }
}

// Local readout O = A . B of one sample; A given by the signs of h.
template <int IN, int OUT, int C>
void local_readout(const ap_int<bits_for(IN) + 1> h[OUT], const ap_uint<C> b[OUT],
                   ap_int<bits_for(OUT) + 1> o[C]) {
    for (int c = 0; c < C; c++) {
#pragma HLS UNROLL
        o[c] = 0;
    }
    for (int j = 0; j < OUT; j++) {
#pragma HLS PIPELINE II = 1
        const bool a = h[j] >= 0;
        for (int c = 0; c < C; c++) {
#pragma HLS UNROLL
            o[c] += (a == bool(b[j][c])) ? 1 : -1;
        }
    }
}

// argmax (first maximum) and whether the sample is wrong (or right by less than MARGIN).
template <int OUT, int C, int MARGIN>
bool judge(const ap_int<bits_for(OUT) + 1> o[C], ap_uint<8> label, ap_uint<8> &prediction) {
    int best = 0;
    for (int c = 1; c < C; c++) {
        if (o[c] > o[best]) best = c;
    }
    ap_int<bits_for(OUT) + 1> second = 0;
    bool first = true;
    for (int c = 0; c < C; c++) {
        if (c != best && (first || o[c] > second)) {
            second = o[c];
            first = false;
        }
    }
    prediction = best;
    return best != int(label) || ap_int<bits_for(OUT) + 2>(o[best] - second) < MARGIN;
}

// Packs +-1 activations (signs of h) into SIMD-bit chunks: the next layer's input row.
template <int OUT, int SIMD, int HB>
void pack_activations(const ap_int<HB> h[OUT], ap_uint<SIMD> a[OUT / SIMD]) {
    for (int jb = 0; jb < OUT / SIMD; jb++) {
#pragma HLS PIPELINE II = 1
        ap_uint<SIMD> chunk = 0;
        for (int q = 0; q < SIMD; q++) {
#pragma HLS UNROLL
            chunk[q] = h[jb * SIMD + q] >= 0;
        }
        a[jb] = chunk;
    }
}

// Forward pass of one layer for inference: input row -> output row (and the readout).
template <int IN, int OUT, int C, int PE, int SIMD, int WB>
void infer_layer(const ap_uint<SIMD> x[IN / SIMD], const ap_uint<SIMD> sign[OUT][IN / SIMD],
                 const ap_uint<C> b[OUT], ap_uint<SIMD> a[OUT / SIMD],
                 ap_int<bits_for(OUT) + 1> o[C]) {
    ap_int<bits_for(IN) + 1> h[OUT];
    xnor_popcount<IN, OUT, PE, SIMD>(x, sign, h);
    pack_activations<OUT, SIMD, bits_for(IN) + 1>(h, a);
    local_readout<IN, OUT, C>(h, b, o);
}

// One training step of one layer on a batch of n <= BATCH samples (see the file comment).
// x: input rows; a: this layer's pre-update activations, the next layer's input rows.
// Returns the number of wrong samples; `marked` counts the marked (sample, neuron) pairs.
template <int IN, int OUT, int C, int GROUP, int MARGIN, int PE, int SIMD, int BATCH, int WB>
int train_layer(const ap_uint<SIMD> x[BATCH][IN / SIMD], int n, ap_int<WB> w[OUT][IN],
                const ap_uint<C> b[OUT], const ap_uint<8> y[BATCH], ap_uint<17> threshold,
                u64 key, ap_uint<SIMD> a[BATCH][OUT / SIMD], ap_uint<8> prediction[BATCH],
                int &marked) {
    typedef ap_int<bits_for(IN) + 1> pre_t;
    static ap_uint<SIMD> sign[OUT][IN / SIMD];
    static pre_t h[BATCH][OUT];
    static ap_uint<BATCH> mask[OUT];    // bit s: sample s marked neuron j
    static ap_uint<BATCH> target[OUT];  // bit s: T_sj = +1
    static ap_uint<BATCH> column[IN];   // bit s: x_si = +1
#pragma HLS ARRAY_PARTITION variable = sign cyclic factor = PE dim = 1
#pragma HLS ARRAY_PARTITION variable = h cyclic factor = PE dim = 2
#pragma HLS ARRAY_PARTITION variable = mask cyclic factor = PE dim = 1
#pragma HLS ARRAY_PARTITION variable = target cyclic factor = PE dim = 1
#pragma HLS ARRAY_PARTITION variable = column cyclic factor = SIMD dim = 1

    weight_signs<IN, OUT, PE, SIMD, WB>(w, sign);
    for (int j = 0; j < OUT; j++) {
        mask[j] = 0;
        target[j] = 0;
    }
    for (int i = 0; i < IN; i++) column[i] = 0;

    int wrong_samples = 0;
    marked = 0;
    for (int s = 0; s < n; s++) {
        // forward, readout, local error of sample s
        for (int ib = 0; ib < IN / SIMD; ib++) {
            for (int q = 0; q < SIMD; q++) column[ib * SIMD + q][s] = x[s][ib][q];
        }
        xnor_popcount<IN, OUT, PE, SIMD>(x[s], sign, h[s]);
        pack_activations<OUT, SIMD, bits_for(IN) + 1>(h[s], a[s]);
        ap_int<bits_for(OUT) + 1> o[C];
        local_readout<IN, OUT, C>(h[s], b, o);
        if (!judge<OUT, C, MARGIN>(o, y[s], prediction[s])) continue;
        wrong_samples++;
        const int label = y[s];
        for (int start = 0; start < OUT; start += GROUP) {
            int chosen = -1;
            pre_t cost = 0;
            for (int j = start; j < start + GROUP && j < OUT; j++) {
                const bool t = b[j][label];
                const bool is_wrong = t ? h[s][j] < 0 : h[s][j] > 0;  // H_j T_j < 0
                const pre_t magnitude = h[s][j] < 0 ? pre_t(-h[s][j]) : h[s][j];
                if (is_wrong && (chosen < 0 || magnitude < cost)) {
                    chosen = j;
                    cost = magnitude;
                }
            }
            if (chosen >= 0) {
                mask[chosen][s] = 1;
                target[chosen][s] = b[chosen][label];
                marked++;
            }
        }
    }
    if (wrong_samples == 0) return 0;

    // increment/decrement, reinforcement and saturation, PE neurons x SIMD inputs per cycle
    const ap_int<WB + 1> limit = (ap_int<WB + 1>(1) << (WB - 1)) - 1;
    typedef ap_int<WB + bits_for(BATCH) + 3> wide_t;
    for (int jb = 0; jb < OUT / PE; jb++) {
        for (int ib = 0; ib < IN / SIMD; ib++) {
#pragma HLS PIPELINE II = 1
            for (int p = 0; p < PE; p++) {
#pragma HLS UNROLL
                const int j = jb * PE + p;
                const ap_uint<bits_for(BATCH)> count = popcount<BATCH>(mask[j]);
                for (int q = 0; q < SIMD; q++) {
#pragma HLS UNROLL
                    const int i = ib * SIMD + q;
                    wide_t v = w[j][i];
                    if (count != 0) {
                        const ap_uint<bits_for(BATCH)> differ =
                            popcount<BATCH>(mask[j] & (column[i] ^ target[j]));
                        v += 2 * (wide_t(count) - 2 * wide_t(differ));
                    }
                    if (reinforcement_draw<IN>(key, j, i) < threshold) v += v >= 0 ? 2 : -2;
                    if (v > limit) v = limit;
                    if (v < -limit) v = -limit;
                    w[j][i] = v;
                }
            }
        }
    }
    return wrong_samples;
}

}  // namespace bmlp

#endif
