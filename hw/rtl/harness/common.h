// Shared by the two harnesses of xnorflow's RTL backend: stream words as little-endian bytes
// (element 0 in the lowest bits, as FINN packs them), recorders, the AXI4-Stream checker, a
// seeded generator.
#pragma once
#include "verilated.h"
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

// A Verilator signal (CData, SData, IData, QData, VlWide<N>) holds its value little-endian in
// memory on this host, so its first bytes are the stream word's bytes: the harnesses read and
// write the words through byte pointers to the signals (the generated headers bind them).
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "the harnesses need a little-endian host");

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

// one AXI stream as the harness sees it: its handshake signals and its word's bytes
struct Stream {
    const CData* tvalid;
    const CData* tready;
    const uint8_t* tdata;
    int bytes;
};

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

// AXI4-Stream's rule for a master: a word offered (TVALID) and not taken (TREADY low) at a
// rising edge is still offered, unchanged, at the next one. Checked on every watched stream at
// every rising edge; the first violations are kept, all are counted (per stream).
enum ViolationKind { TVALID_DROPPED = 0, TDATA_CHANGED = 1 };
static const char* const VIOLATION_KINDS[] = {"tvalid dropped", "tdata changed"};
static const size_t KEPT_VIOLATIONS = 16;

struct Violation {
    int stream;
    uint64_t cycle;   // the rising edge at which the word offered at the one before was gone
    int kind;
};

struct AxisChecker {
    std::vector<uint8_t> held;      // per stream (at offset[i]): the word offered, not taken
    std::vector<size_t> offset;
    std::vector<uint8_t> waiting;   // per stream: a word offered and not taken at the last edge
    std::vector<uint64_t> counts;   // per stream: violations
    std::vector<Violation> first;
    uint64_t total = 0;

    explicit AxisChecker(const std::vector<int>& bytes)
        : offset(bytes.size()), waiting(bytes.size(), 0), counts(bytes.size(), 0) {
        size_t at = 0;
        for (size_t i = 0; i < bytes.size(); i++) {
            offset[i] = at;
            at += bytes[i];
        }
        held.resize(at);
    }
    // stream i at a rising edge (`cycle`): its TVALID, TREADY and word
    inline void check(int i, bool valid, bool ready, const uint8_t* data, int bytes,
                      uint64_t cycle) {
        uint8_t* word = &held[offset[i]];
        if (waiting[i]) {
            if (!valid) {
                report(i, cycle, TVALID_DROPPED);
            } else if (memcmp(word, data, bytes) != 0) {
                report(i, cycle, TDATA_CHANGED);
                memcpy(word, data, bytes);   // a later change is another violation
            }
            waiting[i] = valid && !ready;
        } else if (valid && !ready) {
            waiting[i] = 1;
            memcpy(word, data, bytes);
        }
    }
    void report(int i, uint64_t cycle, int kind) {
        total++;
        counts[i]++;
        if (first.size() < KEPT_VIOLATIONS) first.push_back(Violation{i, cycle, kind});
    }
    // summary.json fields (after a leading ", "): "axis_violations", "axis_violations_by_<what>"
    // and "violations" (the first ones: {"<what>": i, "cycle": c, "kind": "..."})
    void write_json(FILE* s, const char* what) const {
        fprintf(s, "\"axis_violations\": %llu, \"axis_violations_by_%s\": [",
                (unsigned long long)total, what);
        for (size_t i = 0; i < counts.size(); i++)
            fprintf(s, "%s%llu", i ? ", " : "", (unsigned long long)counts[i]);
        fprintf(s, "], \"violations\": [");
        for (size_t k = 0; k < first.size(); k++)
            fprintf(s, "%s{\"%s\": %d, \"cycle\": %llu, \"kind\": \"%s\"}", k ? ", " : "", what,
                    first[k].stream, (unsigned long long)first[k].cycle,
                    VIOLATION_KINDS[first[k].kind]);
        fprintf(s, "]");
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
