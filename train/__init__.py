"""Stage 1: data, ProxConnect++ quantizers as Brevitas quantizers, 1-bit models, trainer."""
