"""Stage 2: Brevitas model -> QONNX, with 1-bit checks and verification against PyTorch."""
