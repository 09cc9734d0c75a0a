"""GPU check (issue #28): training speed on CUDA and the GPU-trained network deployed on the CPU.

On a machine with CUDA, for CNV and VGG-Small (ProxConnect++, 8-bit pixels) and for VISPA on
CNV (fewer steps: its weights are sampled on every forward, a device path of its own):

1. trains a few hundred steps on the GPU through the real trainer into a run folder and reports
   the training images/s of the epochs after the first (the first epoch holds CUDA's and cuDNN's
   warm-up), timed from an epoch's first step to the end of its last, the device synchronized
   (the test pass ending each epoch and the checkpoint are not counted);
2. opens the run's ``model.pt`` as export and build do (``open_run(...).model()``) and runs the
   deployed sign network, eval mode, on the same test images on the CPU and on the GPU: the
   predicted classes must agree (exit 1 otherwise); the largest logit difference is reported
   (0 or tiny: the binary layers' popcounts are exact integers in float32);
3. checks that ``checkpoint.pt`` and ``model.pt`` hold only CPU tensors (``torch.load`` with
   ``map_location=None``, which would restore a GPU tensor onto the GPU) and that the checkpoint
   resumes into a CPU trainer (``--device cpu`` on ``--resume``).

Data: CIFAR-10-shaped (3x32x32 pixels 0..255, 10 classes), random pixels and labels drawn from
``--seed`` (speed and device agreement only; the accuracies mean nothing), or the real
CIFAR-10 with ``--data-dir``. Prints a Markdown table for BENCHMARKS.md. Without CUDA it says so
in one line and exits 0.

    python benchmarks/gpu_check.py
    python benchmarks/gpu_check.py --data-dir ../shared/data/cifar10 --steps 600
"""

from __future__ import annotations

import argparse
import functools
import math
import platform
import shlex
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
MAX_EPOCHS = 3           # the first is warm-up, the others are timed
RUNS = (("cnv", "proxconnect"), ("vgg-small", "proxconnect"), ("cnv", "vispa"))


def command_line(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return "python " + " ".join(shlex.quote(a) for a in ["benchmarks/gpu_check.py", *args])


def no_gpu_line() -> str:
    """Why there is nothing to check here, with the PyTorch build."""
    if torch.version.cuda is None:
        build = f"PyTorch {torch.__version__} is a CPU-only build (no CUDA)"
    else:
        build = f"PyTorch {torch.__version__} (CUDA {torch.version.cuda}) sees no GPU"
    return f"gpu_check: no GPU present: {build}; nothing checked."


# --------------------------------------------------------------------------- data
def plan(steps: int, batch_size: int, available: int | None = None) -> tuple[int, int]:
    """(epochs, training images) for a run of about ``steps`` steps of ``batch_size``: up to
    :data:`MAX_EPOCHS` epochs of whole batches, at most ``available`` images."""
    epochs = max(1, min(MAX_EPOCHS, steps))
    per_epoch = math.ceil(steps / epochs)
    if available is not None and per_epoch * batch_size > available:
        per_epoch = max(1, available // batch_size)
        epochs = max(1, math.ceil(steps / per_epoch))
    return epochs, min(per_epoch * batch_size, available or per_epoch * batch_size)


def synthetic_dataset(train: int, test: int, seed: int = 0):
    """A CIFAR-10-shaped :class:`~xnorflow.train.data.Dataset` as ``load_dataset("cifar10",
    binarization="uint8")`` returns one (flat channels-first rows of float32 pixels 0..255),
    with random pixels and labels drawn from ``seed``."""
    from xnorflow.train.data import Dataset, Split

    rng = np.random.default_rng(seed)
    features = int(np.prod(IMAGE_SHAPE))

    def split(count: int) -> Split:
        images = rng.integers(0, 256, (count, features), dtype=np.uint8).astype(np.float32)
        return Split(images, rng.integers(0, NUM_CLASSES, count).astype(np.int64))

    return Dataset("cifar10 (random)", split(train), split(test), IMAGE_SHAPE, NUM_CLASSES)


@functools.cache
def _cifar10(data_dir: str):
    from xnorflow.train.data import load_dataset

    return load_dataset("cifar10", data_dir, "uint8")


def cifar_subset(data_dir: str | Path, train: int, test: int):
    """The first ``train`` training and ``test`` test images of a real CIFAR-10 folder."""
    from xnorflow.train.data import Dataset, Split

    full = _cifar10(str(data_dir))
    return Dataset(full.name, Split(full.train.images[:train], full.train.labels[:train]),
                   Split(full.test.images[:test], full.test.labels[:test]), full.image_shape,
                   full.num_classes)


# --------------------------------------------------------------------------- checks
def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def tensors_not_on_cpu(value, where: str = "") -> list[str]:
    """The keys (a.b.0...) of the tensors in ``value`` that are not on the CPU."""
    if isinstance(value, torch.Tensor):
        return [] if value.device.type == "cpu" else [f"{where or '.'} on {value.device}"]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, (list, tuple)):
        items = enumerate(value)
    else:
        return []
    return [bad for key, v in items for bad in tensors_not_on_cpu(v, f"{where}.{key}".lstrip("."))]


def record_devices(run_dir: Path) -> list[str]:
    """Tensors of the run's records that a CPU-only machine could not load: each record as
    torch saved it (``map_location=None`` keeps a tensor on the device it was saved from)."""
    from xnorflow.train.runs import CHECKPOINT, MODEL_FILE

    return [f"{name}: {bad}" for name in (CHECKPOINT, MODEL_FILE)
            for bad in tensors_not_on_cpu(torch.load(run_dir / name, map_location=None,
                                                     weights_only=True))]


def resumes_on_cpu(config, run_dir: Path, dataset) -> str:
    """Open the run's checkpoint in a CPU trainer as ``--resume --device cpu`` does: "ok", or
    what failed."""
    from xnorflow.train.runs import CHECKPOINT, load_record

    try:
        saved = load_record(run_dir / CHECKPOINT, content="checkpoint")
        trainer = type(config).trainer_class()(replace(config, device="cpu"), run_dir,
                                               dataset=dataset, show_progress=False,
                                               verbose=False)
        trainer.resume(saved)
        if trainer.device.type != "cpu" or len(trainer.history) != config.epochs:
            return f"resumed on {trainer.device} with {len(trainer.history)} epochs"
        params = [p.device.type for p in trainer.model.parameters()]
        if any(t != "cpu" for t in params):
            return "parameters not on the CPU after resume"
    except Exception as err:  # reported in the table, and the check fails
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return "ok"


def deployed_agreement(run_dir: Path, dataset, device: torch.device,
                       batch_size: int = 500) -> tuple[int, float, float, float]:
    """The run's model.pt, rebuilt as export does, on the test images on the CPU and on
    ``device``: (classes that differ, max |logit difference|, CPU accuracy, device accuracy)."""
    from xnorflow.train.models import model_inputs
    from xnorflow.train.runs import open_run

    run = open_run(run_dir)
    on_cpu, on_device = run.model(), run.model().to(device)
    assert not on_cpu.training and not on_device.training
    images = torch.from_numpy(model_inputs(on_cpu, dataset.test.images))
    labels = torch.from_numpy(dataset.test.labels)
    cpu_logits, device_logits = [], []
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size]
            cpu_logits.append(on_cpu(batch))
            device_logits.append(on_device(batch.to(device)).cpu())
    cpu, dev = torch.cat(cpu_logits), torch.cat(device_logits)
    differing = int((cpu.argmax(1) != dev.argmax(1)).sum())
    return (differing, float((cpu - dev).abs().max()),
            float((cpu.argmax(1) == labels).float().mean()),
            float((dev.argmax(1) == labels).float().mean()))


def make_config(model: str, algo: str, **options):
    from xnorflow.train.configs import TrainConfig, VispaConfig

    # dataset cifar10: the 8-bit first layer and the crop-flip augmentation of a CIFAR-10 run
    common = dict(model=model, dataset="cifar10", binarization="uint8", **options)
    if algo == "vispa":
        return VispaConfig(ensemble_samples=0, **common)   # the deployed sign(m) network only
    return TrainConfig(quantizer="bnn", **common)


class _TimedSteps:
    """A trainer's progress bar over an epoch's steps that also times them: from the first step
    to the end of the last (the device synchronized at both ends), so that neither the test
    pass ending the epoch nor the checkpoint is counted."""

    def __init__(self, bar, device: torch.device, seconds: list[float]):
        self.bar, self.device, self.seconds = bar, device, seconds

    def __iter__(self):
        synchronize(self.device)
        start = time.perf_counter()
        yield from self.bar
        synchronize(self.device)
        self.seconds.append(time.perf_counter() - start)

    def __getattr__(self, name):   # set_postfix, close, ...
        if name == "bar":
            raise AttributeError(name)
        return getattr(self.bar, name)


@functools.cache
def timed_trainer(trainer_class: type) -> type:
    """``trainer_class`` whose epochs record their training-step seconds in ``step_seconds``."""

    def progress_bar(self, steps: int, epoch: int):
        if self.step_seconds is None:
            self.step_seconds = []
        return _TimedSteps(trainer_class.progress_bar(self, steps, epoch), self.device,
                           self.step_seconds)

    return type(f"Timed{trainer_class.__name__}", (trainer_class,),
                {"progress_bar": progress_bar, "step_seconds": None})


def train_and_check(model: str, algo: str, device: str, steps: int, batch_size: int,
                    images: int, run_dir: Path, data_dir: str | Path | None = None,
                    seed: int = 0, log=print) -> dict:
    """One run on ``device``: train, time, deploy on the CPU and the device, check its records."""
    epochs, train_images = plan(steps, batch_size, 50_000 if data_dir else None)
    if data_dir:
        dataset = cifar_subset(data_dir, train_images, images)
    else:
        dataset = synthetic_dataset(train_images, images, seed)
    config = make_config(model, algo, epochs=epochs, batch_size=batch_size, seed=seed,
                         device=device)
    trainer = timed_trainer(type(config).trainer_class())(config, run_dir, dataset=dataset,
                                                          show_progress=False, verbose=False)
    log(f"{model} / {algo}: {epochs} epoch{'s' if epochs > 1 else ''} x "
        f"{trainer.steps_per_epoch} step{'s' if trainer.steps_per_epoch > 1 else ''} of "
        f"{batch_size} on {trainer.device} ...")
    trainer.fit()
    if len(trainer.step_seconds) != epochs:   # the trainer no longer iterates its bar per step
        raise RuntimeError(f"timed {len(trainer.step_seconds)} of {epochs} epochs; "
                           f"gpu_check.timed_trainer needs updating")
    timed = trainer.step_seconds[1:] or trainer.step_seconds
    seconds = sum(timed)
    differing, logit_diff, cpu_acc, device_acc = deployed_agreement(run_dir, dataset,
                                                                    trainer.device)
    row = {"model": model, "algo": algo, "steps": epochs * trainer.steps_per_epoch,
           "batch": batch_size, "images_per_s": len(timed) * len(dataset.train) / seconds,
           "timed": ("epoch 1, with the warm-up" if epochs == 1 else "epoch 2" if epochs == 2
                     else f"epochs 2-{epochs}"),
           "device": device_name(trainer.device), "images": len(dataset.test),
           "differing_classes": differing, "max_logit_diff": logit_diff,
           "test_acc_cpu": cpu_acc, "test_acc_device": device_acc,
           "test_acc_recorded": trainer.history[-1].test_acc,
           "records_not_on_cpu": record_devices(run_dir),
           "resume_on_cpu": resumes_on_cpu(config, run_dir, dataset)}
    row["ok"] = (differing == 0 and not row["records_not_on_cpu"]
                 and row["resume_on_cpu"] == "ok")
    log(f"  {row['images_per_s']:,.0f} training images/s ({row['timed']}); deployed on CPU vs "
        f"{trainer.device}: {differing} of {row['images']} classes differ, max |logit diff| "
        f"{logit_diff:.3g}; records CPU-only: {not row['records_not_on_cpu']}; resume on CPU: "
        f"{row['resume_on_cpu']}")
    for bad in row["records_not_on_cpu"]:
        log(f"  not a CPU tensor: {bad}")
    return row


def check(device: str, steps: int, batch_size: int, images: int, out_dir,
          data_dir: str | Path | None = None, vispa_steps: int | None = None, seed: int = 0,
          log=print) -> list[dict]:
    """Train CNV and VGG-Small (ProxConnect++, ``steps`` steps) and VISPA CNV (``vispa_steps``,
    default a third) on ``device`` into run folders under ``out_dir``, and check each run:
    one row per run (see the module docstring). With ``device="cpu"`` the CPU is compared with
    itself, which exercises every step of the check on a machine without a GPU."""
    out_dir = Path(out_dir)
    vispa_steps = max(1, steps // 3) if vispa_steps is None else vispa_steps
    rows = []
    for model, algo in RUNS:
        rows.append(train_and_check(model, algo, device,
                                    vispa_steps if algo == "vispa" else steps, batch_size,
                                    images, out_dir / f"{model}-{algo}", data_dir, seed, log))
    return rows


def markdown(rows: list[dict], command: str, data: str) -> str:
    lines = [f"Command: `{command}`", "",
             f"Data: {data}. Training images/s: the epochs after the first (warm-up), from the "
             f"first step to the end of the last, the GPU synchronized (no test pass, no "
             f"checkpoint). Classes "
             f"differing: the GPU-trained model.pt, deployed (eval mode, sign weights), on "
             f"{rows[0]['images']:,} test images on the CPU vs the GPU.", "",
             "| model | algo | steps | batch | training images/s (timed) | device | classes "
             "differing CPU vs GPU | max abs logit diff |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['algo']} | {r['steps']} | {r['batch']} | "
                     f"{r['images_per_s']:,.0f} ({r['timed']}) | {r['device']} | "
                     f"{r['differing_classes']} | {r['max_logit_diff']:.3g} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=300, help="training steps of CNV and VGG-Small")
    p.add_argument("--vispa-steps", type=int, default=None,
                   help="training steps of VISPA CNV (default: a third of --steps)")
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--images", type=int, default=1000,
                   help="test images: each epoch's test pass and the CPU-vs-GPU comparison")
    p.add_argument("--data-dir", default=None,
                   help="a cifar-10-batches-py folder (default: random CIFAR-10-shaped data)")
    p.add_argument("--device", default="cuda", help="cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default=None,
                   help="keep the run folders here (default: a temporary folder)")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        if torch.version.cuda is None and list(Path("/dev").glob("nvidia[0-9]*")):
            # a GPU is there but this PyTorch cannot use it: nothing checked is a failure
            print(f"gpu_check: this machine has an NVIDIA GPU (/dev/nvidia*) but PyTorch "
                  f"{torch.__version__} is a CPU-only build; install a CUDA build of torch "
                  f"to run the check. FAILED")
            return 1
        print(no_gpu_line())
        return 0
    try:
        from xnorflow.train.devices import resolve_device

        if not args.device.startswith("cuda"):
            raise ValueError("this script checks a GPU: cuda or cuda:N")
        resolve_device(args.device)
    except ValueError as err:   # DeviceUnavailable is a UsageError, a ValueError
        p.error(f"--device {args.device}: {err}")
    data = (f"the first training images of CIFAR-10 ({args.data_dir}), its first "
            f"{args.images:,} test images" if args.data_dir else
            f"random pixels 0..255 and random labels (3x32x32, 10 classes, seed {args.seed}): "
            f"speed and CPU/GPU agreement only, the accuracies mean nothing")
    print(f"gpu_check: PyTorch {torch.__version__}, CUDA {torch.version.cuda}, cuDNN "
          f"{torch.backends.cudnn.version()} (TF32 convolutions "
          f"{'on' if torch.backends.cudnn.allow_tf32 else 'off'}); data: {data}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(args.out) if args.out else Path(tmp)
        rows = check(args.device, args.steps, args.batch_size, args.images, out,
                     data_dir=args.data_dir, vispa_steps=args.vispa_steps, seed=args.seed,
                     log=lambda line: print(line, flush=True))
    print()
    print(markdown(rows, command_line(argv), data))
    failed = [r for r in rows if not r["ok"]]
    for r in failed:
        print(f"FAILED {r['model']} / {r['algo']}: {r['differing_classes']} classes differ; "
              f"tensors not on the CPU: {r['records_not_on_cpu'] or 'none'}; resume on CPU: "
              f"{r['resume_on_cpu']}")
    print("gpu_check: " + ("FAILED" if failed else "all checks passed"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
