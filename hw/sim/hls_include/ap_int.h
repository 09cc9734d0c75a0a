// xnorflow: Vitis' <ap_int.h> is the open-source ap_types header plus what finn-hlslib and
// FINN's cnpy.h use of it that the Apache-2.0 ap_types in the hls4ml package (later on the
// include path) lack: the `half` type, and the `sign_flag` member of every ap_(u)int/ap_fixed
// (LabelSelect_Batch checks that its label type can hold the class indices with it).
#ifndef XNORFLOW_AP_INT_WRAPPER_H
#define XNORFLOW_AP_INT_WRAPPER_H
typedef _Float16 half;

// ap_int_base and ap_fixed_base derive from the macro _AP_ROOT_TYPE (ssdm_int_sim in C
// simulation). Once ap_common.h has defined it, point it at a subclass that adds sign_flag;
// the include guard keeps ap_common.h from resetting it, and the types' arithmetic (on the
// base's member V) is unchanged. (ap_decl.h admits ap_common.h only from the ap_types'
// own headers; __AUTOPILOT_CBE_H__ is one of the names it accepts, and nothing else reads it.)
#define __AUTOPILOT_CBE_H__
#include <ap_common.h>
#undef __AUTOPILOT_CBE_H__
template <int _AP_W, bool _AP_S>
struct xnorflow_root_type : ssdm_int_sim<_AP_W, _AP_S> {
  static const bool sign_flag = _AP_S;
};
#undef _AP_ROOT_TYPE
#define _AP_ROOT_TYPE xnorflow_root_type

#include_next <ap_int.h>
#endif
