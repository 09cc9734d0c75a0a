// xnorflow: Vitis' <ap_axi_sdata.h> for C simulation with g++ -- only the qdma_axis side-band
// struct that finn-hlslib's streamtools.h names.
#ifndef XNORFLOW_AP_AXI_SDATA_H
#define XNORFLOW_AP_AXI_SDATA_H
#include <ap_int.h>

template <int D, int U, int TI, int TD>
struct qdma_axis {
    ap_uint<D> data;
    ap_uint<(D + 7) / 8> keep;
    ap_uint<1> last;
    ap_uint<D> get_data() const { return data; }
    void set_data(ap_uint<D> value) { data = value; }
    ap_uint<(D + 7) / 8> get_keep() const { return keep; }
    void set_keep(ap_uint<(D + 7) / 8> value) { keep = value; }
    ap_uint<1> get_last() const { return last; }
    void set_last(ap_uint<1> value) { last = value; }
};
#endif
