"""Benchmark: training images/s of the convolutional networks per trainer on this machine.

One epoch over the first ``--images`` MNIST training images (28x28, bipolar, padded to 32x32 by
CNV's first convolution) with each trainer: ProxConnect++ (``bnn`` and ``bnn++`` pairs) and
VISPA (rank 4, the authors' default). The rate is measured over the training steps only (the
epoch's wall time minus its pass over the test images, measured separately). Updates
BENCHMARKS.md.

    python benchmarks/cnn_train_speed.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import torch
from _markdown import ROOT, command_line, update_section

from xnorflow.train.configs import TrainConfig, VispaConfig
from xnorflow.train.data import Dataset, Split, load_dataset
from xnorflow.train.trainer import evaluate

TRAINERS = {
    "ProxConnect++ bnn": lambda model, **kw: TrainConfig(model=model, quantizer="bnn", **kw),
    "ProxConnect++ bnn++": lambda model, **kw: TrainConfig(model=model, quantizer="bnn++", **kw),
    "VISPA rank 4": lambda model, **kw: VispaConfig(model=model, rank=4, ensemble_samples=0,
                                                    **kw),
}


def measure(config, dataset, work: Path) -> float:
    trainer = type(config).trainer_class()(config, work, dataset=dataset, show_progress=False,
                                           verbose=False)
    start = time.perf_counter()
    trainer.fit()
    seconds = time.perf_counter() - start
    test_start = time.perf_counter()
    evaluate(trainer.model, trainer.x_test, trainer.y_test)
    seconds -= time.perf_counter() - test_start
    return len(dataset.train) / seconds


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", required=True)
    p.add_argument("--models", nargs="+", default=["cnv", "vgg-small"])
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cnn_train_speed"))
    args = p.parse_args(argv)
    full = load_dataset("mnist", args.data_dir)
    dataset = Dataset(full.name, Split(full.train.images[:args.images],
                                       full.train.labels[:args.images]),
                      Split(full.test.images[:1000], full.test.labels[:1000]),
                      full.image_shape, full.num_classes)
    out = Path(args.out)
    saved = out / "train_speed.json"  # rows of models not re-measured now are kept
    results = json.loads(saved.read_text()) if saved.is_file() else {}
    for model in args.models:
        for name, make in TRAINERS.items():
            config = make(model, dataset="mnist", data_dir=args.data_dir, epochs=1,
                          threads=args.threads)
            with tempfile.TemporaryDirectory() as tmp:
                results[f"{model} / {name}"] = measure(config, dataset, Path(tmp) / "run")
            print(model, name, f"{results[f'{model} / {name}']:.1f} images/s", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train_speed.json").write_text(json.dumps(results, indent=2))
    lines = [f"Command: `{command_line('cnn_train_speed.py', argv)}` (rows of other models: "
             f"an earlier run of the same script with `--models` naming them)", "",
             f"One epoch over {args.images:,} MNIST training images (28x28 bipolar), batch 100, "
             f"{args.threads} threads, CPU only (this machine: 2 cores, no GPU); training "
             f"steps only.", "", "| model / trainer | training images/s | one CIFAR-10 epoch "
             "(50,000 images) |", "|---|---|---|"]
    for key, rate in results.items():
        lines.append(f"| {key} | {rate:,.1f} | {50000 / rate / 60:,.0f} min (at 28x28; "
                     f"32x32x3 costs more) |")
    section = "\n".join(lines) + "\n"
    print(section)
    update_section("cnn-train-speed", section)
    return 0


if __name__ == "__main__":
    sys.exit(main())
