// xnorflow: hls::stream for C simulation with g++.
//
// Under Vitis HLS (__SYNTHESIS__ defined, or XNORFLOW_USE_VITIS_STREAM when compiling the C
// simulation inside vitis_hls) the tool's own <hls_stream.h> is used. Elsewhere this small FIFO
// of the project's own stands in for it, so the generated code compiles with plain g++ and
// only the Apache-2.0 ap_types headers. It is also the <hls_stream.h> of FINN's C simulation
// (hw/sim/hls_include/), so it covers what finn-hlslib and FINN's npy harness call.
#ifndef XNORFLOW_BMLP_STREAM_H
#define XNORFLOW_BMLP_STREAM_H

#if defined(__SYNTHESIS__) || defined(XNORFLOW_USE_VITIS_STREAM)
#include <hls_stream.h>
#else
#include <cstdio>
#include <cstdlib>
#include <deque>

namespace hls {

template <typename T, int DEPTH = 0>
class stream {
  public:
    stream() {}
    explicit stream(const char *) {}
    stream(const stream &) = delete;
    stream &operator=(const stream &) = delete;
    void write(const T &value) { fifo_.push_back(value); }
    bool write_nb(const T &value) {
        write(value);
        return true;
    }
    T read() {
        if (fifo_.empty()) {
            std::fprintf(stderr, "xnorflow csim: read from an empty hls::stream\n");
            std::abort();
        }
        T value = fifo_.front();
        fifo_.pop_front();
        return value;
    }
    void read(T &value) { value = read(); }
    bool read_nb(T &value) {
        if (fifo_.empty()) return false;
        value = read();
        return true;
    }
    void operator<<(const T &value) { write(value); }
    void operator>>(T &value) { value = read(); }
    bool empty() const { return fifo_.empty(); }
    bool full() const { return false; }
    std::size_t size() const { return fifo_.size(); }

  private:
    std::deque<T> fifo_;
};

}  // namespace hls
#endif
#endif
