// xnorflow: Vitis' <ap_float.h>, which finn-hlslib's flatten.hpp includes, for C simulation with
// g++. It holds
// 1. a forward declaration of ap_float<W, E> (flatten.hpp only names it in one overload),
// 2. unflatten(), the inverse of finn-hlslib's flatten(): finn-plus 1.6.1's npy2apintstream.hpp
//    calls it, but the finn-hlslib commit available here (0141fa8) predates it. Element j of
//    the array comes from bits [(j + 1) * EW - 1, j * EW] of the packed word, EW = W / N, and
// 3. flatten() of 1-bit arrays, 64 bits at a time. finn-hlslib's generic flatten() assigns
//    every bit as a range of a wide ap_uint; FINN's harness packs every weight of a decoupled
//    layer that way once per image, which took three quarters of a binary layer's simulation
//    time. Same result (bit j = element j); being more specialized, this overload is chosen.
#ifndef XNORFLOW_AP_FLOAT_H
#define XNORFLOW_AP_FLOAT_H
#include <ap_int.h>  // hls4ml's ap_int.h also brings ap_fixed
#include <cstddef>
#include <cstdint>
#include <cstring>

template <int W, int E> class ap_float;

// The raw bit image of one element -> its value, per element type.
template <typename T, int W>
inline void from_bitimage(T &dst, ap_uint<W> const &bits) { dst = bits; }
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
inline void from_bitimage(ap_fixed<W, I, Q, O, N> &dst, ap_uint<W> const &bits) {
    dst.range(W - 1, 0) = bits;
}
template <int W, int I, ap_q_mode Q, ap_o_mode O, int N>
inline void from_bitimage(ap_ufixed<W, I, Q, O, N> &dst, ap_uint<W> const &bits) {
    dst.range(W - 1, 0) = bits;
}
inline void from_bitimage(half &dst, ap_uint<16> const &bits) {
    uint16_t raw = bits.to_uint();
    std::memcpy(&dst, &raw, sizeof raw);
}
inline void from_bitimage(float &dst, ap_uint<32> const &bits) {
    uint32_t raw = bits.to_uint();
    std::memcpy(&dst, &raw, sizeof raw);
}
inline void from_bitimage(double &dst, ap_uint<64> const &bits) {
    uint64_t raw = bits.to_uint64();
    std::memcpy(&dst, &raw, sizeof raw);
}

template <std::size_t N>
ap_uint<N> flatten(ap_uint<1> const (&buffer)[N]) {
    ap_uint<N> flat = 0;
    for (std::size_t first = 0; first < N; first += 64) {
        const std::size_t last = first + 64 < N ? first + 64 : N;
        uint64_t word = 0;
        for (std::size_t j = first; j < last; j++) word |= uint64_t(buffer[j].to_uint()) << (j - first);
        flat(last - 1, first) = word;
    }
    return flat;
}

template <typename T, std::size_t N, int W>
void unflatten(T (&buffer)[N], ap_uint<W> const &flat) {
    static_assert(W % N == 0, "unflatten: the packed width must be a multiple of the count");
    constexpr int EW = W / N;
    for (std::size_t j = 0; j < N; j++) {
        from_bitimage(buffer[j], ap_uint<EW>(flat((j + 1) * EW - 1, j * EW)));
    }
}
#endif
