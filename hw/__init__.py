"""Stage 3: QONNX -> FINN XNOR-popcount dataflow design, estimates, HLS sources, report; and
the local binary trainer emitted as HLS C++ with its g++ C simulation (hls_trainer, hls_csim)."""
