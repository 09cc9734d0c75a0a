// xnorflow: Vitis' <ap_int.h> is the open-source ap_types header plus the `half` type that
// FINN's cnpy.h and finn-hlslib name. This wrapper adds `half` and includes the Apache-2.0
// ap_types that the hls4ml package ships (later on the include path).
#ifndef XNORFLOW_AP_INT_WRAPPER_H
#define XNORFLOW_AP_INT_WRAPPER_H
typedef _Float16 half;
#include_next <ap_int.h>
#endif
