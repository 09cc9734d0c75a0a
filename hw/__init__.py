"""Stage 3: QONNX -> FINN XNOR-popcount dataflow design, estimates, HLS sources, report."""
