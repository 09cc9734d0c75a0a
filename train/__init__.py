"""Stage 1: data, ProxConnect++ quantizer pairs as Brevitas quantizers, 1-bit models, and three
trainers -- ProxConnect++ (trainer.py), VISPA (vispa.py), local binary (local_binary/) -- on one
epoch loop (loop.py), with their configurations and registry (configs.py), run records
(runs.py) and the train stage (stage.py)."""
