// Shared by the two harnesses of xnorflow's RTL backend: stream words as little-endian bytes
// (element 0 in the lowest bits, as FINN packs them), recorders, a seeded generator.
#pragma once
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// a word's bytes into a Verilator signal of up to 64 bits, or into a wide one
template <typename T> static void put(T& dst, const uint8_t* src, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = (v << 8) | src[i];
    dst = (T)v;
}
template <std::size_t N> static void put(VlWide<N>& dst, const uint8_t* src, int bytes) {
    for (std::size_t w = 0; w < N; w++) dst[w] = 0;
    for (int i = 0; i < bytes; i++) dst[i / 4] |= (uint32_t)src[i] << (8 * (i % 4));
}
template <typename T> static void get(const T& v, uint8_t* out, int bytes) {
    uint64_t x = (uint64_t)v;
    for (int i = 0; i < bytes; i++) out[i] = (uint8_t)(x >> (8 * i));
}
template <std::size_t N> static void get(const VlWide<N>& v, uint8_t* out, int bytes) {
    for (int i = 0; i < bytes; i++) out[i] = (uint8_t)(v[i / 4] >> (8 * (i % 4)));
}

// the words of one stream and the cycle of each
struct Recorder {
    int bytes;
    std::vector<uint8_t> words;
    std::vector<uint64_t> cycles;
    void take(uint64_t cycle, const uint8_t* word) {
        words.insert(words.end(), word, word + bytes);
        cycles.push_back(cycle);
    }
    void save(const std::string& stem) const {
        std::ofstream(stem + ".bin", std::ios::binary)
            .write((const char*)words.data(), words.size());
        std::ofstream(stem + ".cycles", std::ios::binary)
            .write((const char*)cycles.data(), cycles.size() * sizeof(uint64_t));
    }
};

static std::vector<uint8_t> read_file(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        fprintf(stderr, "cannot read %s\n", path.c_str());
        exit(2);
    }
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f),
                                std::istreambuf_iterator<char>());
}

// xorshift64: the gaps and back-pressure of a run, repeatable from its seed
static uint64_t rng_state = 88172645463325252ull;
static uint32_t percent() {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state % 100);
}
