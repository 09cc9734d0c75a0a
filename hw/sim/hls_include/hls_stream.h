// xnorflow: Vitis' <hls_stream.h> for C simulation with g++ (FINN's cppsim of finn-hlslib
// layers): the project's one software stream class, shared with the generated BMLP trainer.
#ifndef XNORFLOW_HLS_STREAM_H
#define XNORFLOW_HLS_STREAM_H
#include "../../hls/templates/bmlp_stream.h"
#endif
