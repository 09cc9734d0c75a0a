"""The hls stage: the local binary trainer of one BMLP as HLS C++, optionally C-simulated against
the Python trainer. Every check (the run, the shape against --pe/--simd, the memory against the
devices, the batch size, the output folder) happens before the first file is written."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import UsageError
from ..hw.hls.csim import CSIM_FILES, CsimComparison, compare_with_python, training_batches
from ..hw.hls.generator import (
    GENERATED_FILES,
    STATIC_FILES,
    GeneratedDesign,
    HlsOptions,
    generate,
    plan,
)
from ..outputs import check_folder, claim_folder, holds_folders
from ..train.configs import LocalBinaryConfig
from ..train.runs import RunRecordError, open_run

STAGE = FOLDER_KIND = "hls"


@dataclass
class HlsResult:
    design: GeneratedDesign
    csim: CsimComparison | None

    @property
    def identical(self) -> bool:
        return self.csim is None or self.csim.identical

    def lines(self) -> list[str]:
        estimate = self.design.estimate
        fits = ", ".join(f"{k}: {v}" for k, v in estimate.fits.items())
        lines = [f"wrote {self.design.directory} (target part {self.design.part}); hidden "
                 f"weights {estimate.weight_bits / 1e6:.2f} Mbit, ~{estimate.bram18} BRAM18 "
                 f"({fits})"]
        return lines + ([self.csim.summary()] if self.csim else [])


def _from_run(run_path: str | Path):
    """The integer state and configuration of a `--algo local-binary` run."""
    from ..train.local_binary.model import BMLPState

    run = open_run(run_path)
    if run.algo != LocalBinaryConfig.algo:
        raise RunRecordError(f"{run.model_file}: not a binary MLP of the local binary trainer "
                             f"(this run used --algo {run.algo}); the HLS trainer needs a "
                             f"`xnorflow train --algo local-binary` run")
    return BMLPState.from_record(run.record["bmlp"]), run.config


@holds_folders
def hls_stage(out: str | Path, options: HlsOptions, run: str | Path | None = None,
              fresh: LocalBinaryConfig | None = None, data_dir: str | None = None,
              clock_ns: float = 10.0, csim_steps: int = 0, csim_infer: int = 500) -> HlsResult:
    """Generate (and with ``csim_steps`` C-simulate) the trainer of the BMLP of ``run`` or of a
    ``fresh`` one initialized from its configuration. ``options.batch_max`` None: the run's
    batch size."""
    from ..train.data import load_dataset
    from ..train.local_binary.model import init_state
    from ..train.local_binary.trainer import prepare_data

    if (run is None) == (fresh is None):
        raise UsageError("give exactly one of --trainer RUN and --widths")
    dataset = None
    if run is not None:
        state, config = _from_run(run)
        if data_dir:
            config = replace(config, data_dir=data_dir)
    else:
        config = fresh
        dataset, _ = prepare_data(config, load_dataset(config.dataset, config.data_dir,
                                                       config.binarization))
        shape = config.shape(dataset.in_features, dataset.num_classes)
        if options.batch_max is None:
            options = replace(options, batch_max=config.batch_size)
        plan(shape, options)  # a shape too large for any device is refused before allocating it
        state = init_state(shape, config.seed)
    if state.shape.convention != "bipolar":
        raise UsageError(f"the HLS trainer computes with +-1 values only; this BMLP uses "
                         f"--convention {state.shape.convention} (ternary, sign(0) = 0). "
                         f"Train it with --convention bipolar (the default).")
    if options.batch_max is None:
        options = replace(options, batch_max=config.batch_size)
    plan(state.shape, options)
    if csim_steps and options.batch_max < config.batch_size:
        raise UsageError(f"--batch-max {options.batch_max} is smaller than the run's batch size "
                         f"{config.batch_size}; the C simulation replays the run's batches")
    out = Path(out)
    check_folder(out, FOLDER_KIND)
    if csim_steps and dataset is None:
        dataset, _ = prepare_data(config, load_dataset(config.dataset, config.data_dir,
                                                       config.binarization))
    folder = claim_folder(out, FOLDER_KIND)
    for name in STATIC_FILES + GENERATED_FILES + (CSIM_FILES if csim_steps else ()):
        folder.target(name, STAGE)
    design = generate(state, out, options, clock_ns)
    if not csim_steps:
        return HlsResult(design, None)
    batches = training_batches(dataset.train.images, dataset.train.labels, csim_steps,
                               config.batch_size, config.seed, config.reinforcement,
                               fan_ins=state.shape.fan_ins)
    return HlsResult(design, compare_with_python(design, state, batches, config.seed,
                                                 dataset.test.images[:csim_infer]))
