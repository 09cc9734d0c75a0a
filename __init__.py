"""xnorflow: train 1-bit neural networks and compile them to XNOR-popcount FPGA dataflow."""

__version__ = "0.1.0"
