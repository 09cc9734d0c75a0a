"""Stage 1: data, ProxConnect++ quantizers as Brevitas quantizers, 1-bit models, and three
trainers: ProxConnect++ (trainer.py), VISPA (vispa.py), local binary (local_binary/)."""
