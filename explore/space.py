"""What `xnorflow explore` searches, and how a trial of its Optuna study draws one candidate.

:class:`SearchSpace` is everything that decides which networks a study may try: the trainers,
free MLP depths and widths, named networks and CNN channel scales, ProxConnect++ pairs, VISPA
ranks, local binary widths and group sizes, and the folding budgets. A trial draws from it with
Optuna's define-by-run API (:func:`suggest`): the trainer first, then only the choices that
trainer has, so each sampler sees one conditional space. ``--sampler grid`` instead walks the
named networks as the grid of earlier versions did (:func:`grid_candidates`): the same
configurations, hence the same results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..errors import UsageError
from ..options import AT_LEAST_0, AT_LEAST_1, Range, option, validate_fields
from ..train.configs import (
    CONV_MODELS,
    FREE_MLP,
    MLP_WIDTHS,
    NOT_BUILDABLE,
    SCALABLE_CONV_MODELS,
)
from ..train.pairs import PAIRS

EXPLORE_ALGOS = ("proxconnect", "vispa", "local-binary")
NAMED_MODELS = tuple(MLP_WIDTHS) + tuple(m for m in CONV_MODELS if m not in NOT_BUILDABLE)
# every model train knows: one FINN cannot build is refused with the reason, not as unknown
SEARCH_MODELS = (FREE_MLP,) + tuple(MLP_WIDTHS) + CONV_MODELS


@dataclass
class SearchSpace:
    algos: list[str] = option(["proxconnect"], "trainers a trial may use; local-binary "
                              "trains free MLPs of --lb-widths", choices=EXPLORE_ALGOS)
    models: list[str] = option([FREE_MLP], "networks of proxconnect and vispa trials: mlp (a "
                               "free MLP: --depths hidden layers of --widths) or named ones "
                               "(the grid sampler takes named ones only)",
                               choices=SEARCH_MODELS)
    depths: list[int] = option([1, 2, 3], "hidden layers a free MLP may have (also the local "
                               "binary MLPs)", range=AT_LEAST_1)
    widths: list[int] = option([64, 128, 256, 512, 1024], "widths a hidden layer of a free "
                               "MLP may take", range=AT_LEAST_1)
    channel_scales: list[float] = option([0.25, 0.5, 1.0], "channel scales of cnv and "
                                         "vgg-small", range=Range(0, 4, low_open=True))
    quantizers: list[str] = option(["bnn", "bnn++"], "ProxConnect++ pairs (proxconnect)",
                                   choices=tuple(PAIRS))
    ranks: list[int] = option([0, 4], "VISPA covariance ranks (vispa)", range=AT_LEAST_0)
    lb_widths: list[int] = option([35, 75, 135, 255, 525], "widths a local binary hidden "
                                  "layer may take (odd: sign never ties)", range=AT_LEAST_1)
    group_sizes: list[int] = option([35, 45, 75, 105], "group sizes gamma a local binary layer "
                                    "may take (clipped to its width)", range=AT_LEAST_1)
    budgets: list[float] = option([0.8], "folding budgets: the share of each device resource "
                                  "a design may use", range=Range(0, 1, low_open=True))

    def __post_init__(self):
        validate_fields(self)
        for name in ("algos", "models", "depths", "widths", "channel_scales", "quantizers",
                     "ranks", "lb_widths", "group_sizes", "budgets"):
            setattr(self, name, list(dict.fromkeys(getattr(self, name))))  # no repeats
        from ..export.run_export import check_buildable

        for model in self.models:
            check_buildable(model, f"the exploration's --models {' '.join(self.models)}")
        even = [w for w in self.lb_widths if w % 2 == 0]
        if "local-binary" in self.algos and even:
            raise UsageError(f"--lb-widths {' '.join(map(str, even))}: a local binary layer "
                             f"needs an odd width, so that sign never ties")

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Candidate:
    """One network to train and build: a readable name, its run configuration and the
    folding budget of its build."""

    name: str
    config: object     # a RunConfig
    budget: float


def candidate_name(config, budget: float, budgets: list[float]) -> str:
    """tfc/bnn, mlp-512-128/bnn++, vispa-cnv-x0.5/r4, bmlp-135-135/g45-45; with @60% when the
    study has several budgets."""
    algo = config.algo
    if algo == "local-binary":
        groups = "-".join(map(str, config.group_sizes))
        name = f"bmlp-{'-'.join(map(str, config.widths))}/g{groups}"
    else:
        network = (f"mlp-{'-'.join(map(str, config.hidden))}" if config.model == FREE_MLP
                   else config.model)
        if config.channel_scale != 1:
            network += f"-x{config.channel_scale:g}"
        name = (f"vispa-{network}/r{config.rank}" if algo == "vispa"
                else f"{network}/{config.quantizer}")
    return name + (f"@{budget:.0%}" if len(budgets) > 1 else "")


def make_config(algo: str, common: dict, **choices):
    """The run configuration of a candidate: the study's common options (data, epochs, seed,
    hold-out) and the trial's choices."""
    from ..train.configs import RUN_KINDS

    return RUN_KINDS[algo](**common, **choices)


def suggest(trial, space: SearchSpace, common: dict) -> Candidate:
    """Draw a candidate in an Optuna ``trial``: the trainer, then that trainer's choices."""
    algo = trial.suggest_categorical("algo", space.algos)
    if algo == "local-binary":
        depth = trial.suggest_categorical("lb_depth", space.depths)
        widths = [trial.suggest_categorical(f"lb_width_{i + 1}", space.lb_widths)
                  for i in range(depth)]
        groups = [min(trial.suggest_categorical(f"lb_group_size_{i + 1}", space.group_sizes),
                      width) for i, width in enumerate(widths)]
        choices = {"widths": widths, "group_sizes": groups}
    else:
        model = trial.suggest_categorical("model", space.models)
        choices = {"model": model}
        if model == FREE_MLP:
            depth = trial.suggest_categorical("depth", space.depths)
            choices["hidden"] = [trial.suggest_categorical(f"width_{i + 1}", space.widths)
                                 for i in range(depth)]
        elif model in SCALABLE_CONV_MODELS:
            choices["channel_scale"] = trial.suggest_categorical("channel_scale",
                                                                 space.channel_scales)
        if algo == "vispa":
            choices["rank"] = trial.suggest_categorical("rank", space.ranks)
        else:
            choices["quantizer"] = trial.suggest_categorical("quantizer", space.quantizers)
    budget = trial.suggest_categorical("budget", space.budgets)
    config = make_config(algo, common, **choices)
    return Candidate(candidate_name(config, budget, space.budgets), config, budget)


def grid_candidates(space: SearchSpace, common: dict) -> dict[str, Candidate]:
    """The grid of named networks, by name: each proxconnect model with each pair, each VISPA
    model with each rank, each local binary width as two layers of it (the paper's BMLP, with
    its group size, else the first of --group-sizes), each at each budget."""
    from ..train.local_binary.model import PAPER_GROUP_SIZES

    named = [m for m in space.models if m != FREE_MLP]
    if not named and set(space.algos) - {"local-binary"}:
        raise UsageError("--sampler grid walks named networks: give --models from "
                         f"{', '.join(NAMED_MODELS)} (mlp, a free shape, is for the other "
                         f"samplers)")
    found: dict[str, Candidate] = {}
    for algo in space.algos:
        if algo == "local-binary":
            choices = [{"widths": [w, w], "group_sizes": [PAPER_GROUP_SIZES.get(
                w, min(space.group_sizes[0], w))] * 2} for w in space.lb_widths]
        elif algo == "vispa":
            choices = [{"model": m, "rank": r} for m in named for r in space.ranks]
        else:
            choices = [{"model": m, "quantizer": q} for m in named for q in space.quantizers]
        for choice in choices:
            for budget in space.budgets:
                config = make_config(algo, common, **choice)
                name = candidate_name(config, budget, space.budgets)
                found[name] = Candidate(name, config, budget)
    if not found:
        raise UsageError("the grid is empty: give at least one --models entry")
    return found
