// xnorflow: Vitis' <hls_vector.h> for C simulation with g++ -- a fixed-size array with element
// access, all that finn-hlslib's flatten.hpp/utils.hpp and FINN's npy2vectorstream.hpp use.
#ifndef XNORFLOW_HLS_VECTOR_H
#define XNORFLOW_HLS_VECTOR_H
#include <array>
#include <cstddef>

namespace hls {

template <typename T, std::size_t N>
struct vector {
    std::array<T, N> data{};
    vector() = default;
    vector(const T &value) { data.fill(value); }
    T &operator[](std::size_t i) { return data[i]; }
    const T &operator[](std::size_t i) const { return data[i]; }
    static constexpr std::size_t size() { return N; }
};

}  // namespace hls
#endif
