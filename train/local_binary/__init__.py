"""Gradient-free training of binary MLPs by local binary error signals (Colombo et al.,
arXiv 2412.00119): model.py (shape, integer state, RNG), reference.py (clear integer step),
packed.py (bit-packed numba step, identical results), trainer.py (epochs, checkpoints),
brevitas_model.py (the trained network as a Brevitas model for export)."""
