// xnorflow: hls::stream for C simulation with g++.
//
// Under Vitis HLS (__SYNTHESIS__ defined, or XNORFLOW_USE_VITIS_STREAM when compiling the C
// simulation inside vitis_hls) the tool's own <hls_stream.h> is used. Elsewhere this small FIFO
// of the project's own stands in for it, so the generated code compiles with plain g++ and
// only the Apache-2.0 ap_types headers.
#ifndef XNORFLOW_BMLP_STREAM_H
#define XNORFLOW_BMLP_STREAM_H

#if defined(__SYNTHESIS__) || defined(XNORFLOW_USE_VITIS_STREAM)
#include <hls_stream.h>
#else
#include <cstdio>
#include <cstdlib>
#include <deque>

namespace hls {

template <typename T>
class stream {
  public:
    stream() {}
    explicit stream(const char *) {}
    void write(const T &value) { fifo_.push_back(value); }
    T read() {
        if (fifo_.empty()) {
            std::fprintf(stderr, "xnorflow csim: read from an empty hls::stream\n");
            std::abort();
        }
        T value = fifo_.front();
        fifo_.pop_front();
        return value;
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
