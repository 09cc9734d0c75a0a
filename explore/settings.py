"""The options of an exploration that make its trials comparable (stored in its study), and
those that only say how this command runs (storage, worker, how many trials)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..hw.finn.options import board_option, clock_option
from ..options import AT_LEAST_0, AT_LEAST_1, Range, option, validate_fields
from ..train.data import DATASETS
from .space import SearchSpace
from .study import SAMPLERS


@dataclass
class ExploreOptions:
    dataset: str = option("digits", "data set of every trial (digits ships with scikit-learn)",
                          choices=DATASETS)
    data_dir: str | None = option(None, "folder with the data set's files (this machine's; "
                                  "each worker may give its own)")
    holdout: int = option(0, "training images held out as validation: the study then "
                          "optimizes validation accuracy and only reports the test accuracy",
                          range=AT_LEAST_0)
    epochs: int = option(2, "training budget of every trial", range=AT_LEAST_1)
    seed: int = option(0, "seed of every trial's training and of the sampler",
                       range=AT_LEAST_0)
    board: str = board_option("board every trial is folded for")
    clock_mhz: float = clock_option()
    verify: int = option(100, "test images each built design is checked on against PyTorch "
                         "(bit-exact, every stage)", range=AT_LEAST_0)
    sampler: str = option("nsga2", "nsga2 (NSGA-II, multi-objective), tpe (multi-objective "
                          "TPE), random, or grid (every named network of --models with every "
                          "pair or rank, as earlier versions)", choices=SAMPLERS)
    population: int = option(8, "NSGA-II population per generation (tpe: random trials "
                             "before it models the front)", range=Range(2, None))

    def __post_init__(self):
        validate_fields(self)

    def settings(self, space: SearchSpace, data_fingerprint: str) -> dict:
        """What the study records and every worker must share: everything but the data's
        folder, which is this machine's (the data itself is checked by its fingerprint)."""
        values = {k: v for k, v in asdict(self).items() if k != "data_dir"}
        return {**values, "space": space.as_dict(), "data_fingerprint": data_fingerprint}


def common_run_options(settings: dict, data_dir: str | None) -> dict:
    """Options of every trial's run configuration."""
    return {"dataset": settings["dataset"], "data_dir": data_dir, "epochs": settings["epochs"],
            "seed": settings["seed"], "holdout": settings["holdout"]}
