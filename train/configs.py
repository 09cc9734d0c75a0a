"""Run configurations of the trainers, and the registry of run kinds.

One dataclass per trainer; each field that a user may set is declared once with :func:`option`:
its default, its allowed range or choices, and its help text. The command line is generated from
these declarations and the same declarations validate a configuration built in Python, so an
option's rules live in one place. A trainer joins xnorflow by declaring its configuration here
with :func:`run_kind`; the registry :data:`RUN_KINDS` maps the ``algo`` stored in every run record
to it. Free of torch, so ``xnorflow --help`` stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar

from ..options import (
    AT_LEAST_0,
    AT_LEAST_1,
    FRACTION,
    POSITIVE,
    ConfigError,
    Range,
    option,
    validate_fields,
)
from .data import BINARIZATIONS, DATASETS, SIGN_BINARIZATIONS
from .local_binary.model import CONVENTIONS as LOCAL_BINARY_CONVENTIONS
from .pairs import PAIRS

MLP_WIDTHS = {"tfc": 64, "sfc": 256, "lfc": 1024}  # FINN paper: three hidden layers each
FREE_MLP = "mlp"   # --model mlp: the hidden widths given by --hidden
# cnv and vgg-small: xnorflow.train.models.CONV_TOPOLOGIES; resnet18: models.BinaryResNet18
CONV_MODELS = ("cnv", "vgg-small", "resnet18")
SCALABLE_CONV_MODELS = ("cnv", "vgg-small")   # the ConvTopology models: --channel-scale
# Models that train but that FINN cannot build, and why: export, build, deploy and explore
# refuse them with this reason before writing anything (xnorflow.export.run_export)
NOT_BUILDABLE = {
    "resnet18": "its real-valued shortcut additions and its real-valued first and last layers "
                "(a float 3x3 stem convolution and a float classifier) have no FINN "
                "counterpart: FINN's XNOR-popcount flow builds 1-bit convolutions and fully "
                "connected layers, thresholds and max-pooling, with no real-valued addition "
                "or float convolution. For an accelerator, train --model cnv or --model "
                "vgg-small"}
AUGMENTATIONS = ("standard", "shift", "affine", "none")
HIDDEN_LAYERS = 3
HEADS = ("tensor-norm", "batch-norm")  # output normalizations a user may choose
ENGINES = ("packed", "reference")
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?"   # --device values (xnorflow.train.devices)
SEED_LIMIT = 2 ** 31 - 1
# Activation pair used when --act-quantizer is not given and the weight pair's backward is the
# identity: through sign activations it passes gradients of saturated units unchanged and LFC
# stalls at ~94 % on MNIST (BENCHMARKS.md); BNN's clipped STE reaches ~98 %.
IDENTITY_BACKWARD_ACTIVATIONS = {"bc": "bnn", "pc": "bnn"}
# Named option sets that reproduce a measured result; `xnorflow train --recipe NAME` applies them
# and options given explicitly win. Each is measured in BENCHMARKS.md.
RECIPES: dict[str, dict[str, Any]] = {
    # LFC W1A1 on MNIST: BNN's STE, images rotated, zoomed and shifted a little, dropout 0.2,
    # 80 epochs of Adam lr 0.005 cosine to 0 (BENCHMARKS.md, "LFC W1A1 MNIST: the recipe")
    "lfc-mnist": {"algo": "proxconnect", "model": "lfc", "dataset": "mnist", "quantizer": "bnn",
                  "augment": "affine", "dropout": 0.2, "epochs": 80, "lr": 5e-3,
                  "batch_size": 100},
}
# VISPA's defaults by --activations: the authors' CIFAR-10 W1A1 runs and their W1A32
# (weights-only binarization) recipe.
VISPA_SETTINGS = {"binary": {"rank": 4, "lr": 0.5, "weight_decay": 1e-5},
                  "float": {"rank": 8, "lr": 0.1, "weight_decay": 5e-4}}

RUN_KINDS: dict[str, type[RunConfig]] = {}


def run_kind(cls):
    """Class decorator: register a trainer's configuration under its ``algo``."""
    RUN_KINDS[cls.algo] = cls
    return cls


@dataclass
class RunConfig:
    """Options every trainer shares."""

    algo: ClassVar[str]
    trainer: ClassVar[str]                  # "module:Class", imported when a run needs it
    summary: ClassVar[str]                  # one line for --help
    # Options a resumed run may change because they cannot change its result.
    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = ("data_dir",)
    # Options added after runs were recorded without them: the value those runs had.
    RECORDED_BEFORE: ClassVar[dict[str, Any]] = {}
    # Options whose default depends on other options (declared None, set in __post_init__):
    # how --help describes the default.
    DEPENDENT_DEFAULTS: ClassVar[dict[str, str]] = {}

    dataset: str = option("digits", "digits ships with scikit-learn; the others are read from "
                          "--data-dir", choices=DATASETS)
    data_dir: str | None = option(None, "folder with the IDX files (mnist, fashion-mnist) or "
                                  "cifar-10-batches-py")
    binarization: str = option("threshold", "input pixels to +-1: threshold at 0.5, sign of the "
                               "pixel minus the training mean, or > the global training-pixel "
                               "median", choices=SIGN_BINARIZATIONS)
    epochs: int = option(10, "length of the run", range=AT_LEAST_1)
    batch_size: int = option(100, "training batch size", range=AT_LEAST_1)
    seed: int = option(0, "seed of the initialization, data order and every random draw",
                       range=Range(0, SEED_LIMIT))
    holdout: int = option(0, "training samples held out as validation (chosen by --seed); "
                          "the run reports its accuracy on them beside the test accuracy, e.g. "
                          "10000 for the local binary paper's Fashion-MNIST protocol, or for "
                          "`xnorflow explore` to select on validation", range=AT_LEAST_0)
    threads: int = option(0, "CPU threads (0: one per core; the run records the number used). "
                          "Float training splits sums across threads, so a seed reproduces a "
                          "run bit for bit only at the same thread count", range=AT_LEAST_0)

    def __post_init__(self):
        validate_fields(self)
        if self.data_dir is not None and self.dataset == "digits":
            # digits is built in: a folder given with it would be recorded but never read
            raise ConfigError(f"--data-dir {self.data_dir}: the data set is digits (the "
                              f"default), which is built in and reads no folder; --data-dir is "
                              f"for {', '.join(d for d in DATASETS if d != 'digits')}. Give "
                              f"--dataset with it, or drop --data-dir")

    @classmethod
    def recorded_options(cls, saved: dict[str, Any]) -> dict[str, Any]:
        """The options of a run record as this version reads them: options added since get the
        value older runs had (:attr:`RECORDED_BEFORE`)."""
        options = {**cls.RECORDED_BEFORE, **saved}
        if options.get("dataset", "digits") == "digits":
            options["data_dir"] = None  # recorded, unread, before digits refused a folder
        return options

    def describe(self) -> str:
        """One line naming the trained network, for reports."""
        raise NotImplementedError

    def not_xnor(self) -> str | None:
        """Why an option of this run makes its network one FINN's XNOR layers cannot compute
        (export, build and deploy refuse it with this reason), or None."""
        return None

    @classmethod
    def trainer_class(cls) -> type:
        module, name = cls.trainer.split(":")
        return getattr(importlib.import_module(module), name)

    @classmethod
    def user_options(cls) -> list:
        """The fields a user sets from the command line, in declaration order."""
        return [f for f in fields(cls) if f.metadata.get("cli", False)]

    @classmethod
    def default_of(cls, name: str) -> Any:
        f = next(f for f in fields(cls) if f.name == name)
        return f.default_factory() if f.default is MISSING else f.default

    @classmethod
    def shown_default(cls, name: str) -> Any:
        """The default as ``--help`` shows it: words where it depends on other options."""
        return cls.DEPENDENT_DEFAULTS.get(name) or cls.default_of(name)


@run_kind
@dataclass
class TrainConfig(RunConfig):
    """ProxConnect++: a FINN-family Brevitas MLP or CNN trained with a forward/backward quantizer
    pair."""

    algo: ClassVar[str] = "proxconnect"
    trainer: ClassVar[str] = "xnorflow.train.trainer:Trainer"
    summary: ClassVar[str] = ("a FINN-family Brevitas network (MLP or CNN) with a ProxConnect++ "
                              "forward/backward quantizer pair (Lu et al. 2024)")
    RECORDED_BEFORE: ClassVar[dict[str, Any]] = {"head": "batch-norm", "augment": "standard",
                                                 "device": "cpu", "hidden": None,
                                                 "channel_scale": 1.0, "holdout": 0}
    # A resumed run may move to another device: model.pt and checkpoint.pt load anywhere, and
    # the run's outputs say so (its float sums differ between devices in the last bits).
    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = ("data_dir", "device")
    RESUME_REFUSALS: ClassVar[dict[str, str]] = {
        "epochs": "the learning-rate and mu schedules are functions of the total epoch count: "
                  "a run lengthened on resume would differ from an uninterrupted run of that "
                  "length"}

    model: str = option("sfc", "TFC/SFC/LFC: MLPs with 3 hidden layers of 64/256/1024 "
                        "neurons; CNV: FINN's 6-convolution CNN (64-64/128-128/256-256, then "
                        "512-512 fully connected); VGG-Small: 128-128/256-256/512-512 padded "
                        "convolutions; ResNet-18: the VISPA / ProxConnect++ CIFAR benchmark, "
                        "binary 3x3 convolutions with real-valued shortcuts, first and last "
                        "layers (no --head normalization; trains and evaluates, but FINN "
                        "cannot build it); mlp: an MLP of the --hidden widths",
                        choices=tuple(MLP_WIDTHS) + (FREE_MLP,) + CONV_MODELS)
    hidden: list[int] | None = option(None, "hidden layer widths of --model mlp, any depth, "
                                      "e.g. 512,128", range=AT_LEAST_1, metavar="WIDTHS")
    channel_scale: float = option(1.0, "CNV and VGG-Small: every convolution's channels and "
                                  "every hidden fully connected layer's width times this "
                                  "(rounded, at least 1), e.g. 0.5 for a half-width CNV",
                                  range=Range(0, 4, low_open=True))
    binarization: str | None = option(
        None, "first-layer input: threshold (pixel >= 0.5 -> +1, else -1), centered-sign "
        "(pixel >= its training mean), median (pixel > the training-pixel median), uint8 "
        "(the pixels 0..255 into an 8-bit first layer; the convolutional models only) or "
        "none (the [0, 1] pixels, for VISPA's float-activation MLPs) (default: "
        "uint8 for CIFAR-10 with a convolutional model, as FINN's CNV; none for VISPA "
        "--activations float; threshold otherwise; median for local-binary)",
        choices=BINARIZATIONS)
    augment: str = option("standard", "training-image augmentation. standard: random crop "
                          "(padding 4) and horizontal flip for CIFAR-10 with a convolutional "
                          "model, the usual protocol; nothing for the other data sets and "
                          "MLPs. shift: every training image moved by a random offset of up "
                          "to 2 pixels per direction, background filling the border (any "
                          "model; part of the LFC MNIST recipe, see BENCHMARKS.md). affine: "
                          "rotation by up to 10 degrees, zoom by up to 10 % and a shift of up "
                          "to 2 pixels, drawn per image, for +-1 inputs (a sign binarization). "
                          "none: no augmentation", choices=AUGMENTATIONS)
    quantizer: str = option("bnn", "PC++ quantizer pair for weights and activations: "
                            + "; ".join(f"{n}: {p.description}" for n, p in PAIRS.items()),
                            choices=tuple(PAIRS))
    act_quantizer: str | None = option(None, "PC++ pair of the activations (default: bnn for "
                                       "--quantizer bc and pc, whose identity backward "
                                       "through sign activations stalls training, see "
                                       "BENCHMARKS.md; the --quantizer pair otherwise). The "
                                       "run record names the pair used",
                                       choices=tuple(PAIRS))
    lr: float = option(5e-3, "learning rate (Adam), cosine-annealed to 0 over the run",
                       range=POSITIVE)
    weight_decay: float = option(0.0, "weight decay", range=AT_LEAST_0)
    dropout: float = option(0.0, "dropout after each hidden activation",
                            range=Range(0, 1, high_open=True))
    device: str = option("auto", "where the network trains: auto (a GPU if there is one, else "
                         "the CPU), cpu, cuda (the first GPU; under torchrun each process's "
                         "own) or cuda:N. A run may resume on another device; it is then "
                         "bit-identical to the uninterrupted run only up to the float sums "
                         "the devices compute differently. proxconnect and vispa only: "
                         "local-binary always runs its bit-packed integer engine on the CPU, "
                         "where a GPU would change nothing", pattern=DEVICE_PATTERN,
                         pattern_help="auto, cpu, cuda or cuda:N")
    head: str = option("tensor-norm", "output normalization: tensor-norm (one scalar affine, "
                       "as Brevitas' bnn_pynq; the accelerator selects the class on chip) or "
                       "batch-norm (one affine per class; the accelerator outputs the "
                       "popcounts, the host applies the affine)", choices=HEADS)

    def __post_init__(self):
        if self.act_quantizer is None:
            self.act_quantizer = IDENTITY_BACKWARD_ACTIVATIONS.get(self.quantizer, self.quantizer)
        if self.binarization is None:
            self.binarization = ("uint8" if self.is_conv and self.dataset == "cifar10"
                                 else "threshold")
        super().__post_init__()
        if self.is_conv and self.binarization == "none":
            raise ConfigError(f"--binarization none gives {self.model} float pixels, which no "
                              f"FINN layer takes; use uint8 (an 8-bit first layer) or a "
                              f"binarization")
        if not self.is_conv and self.binarization == "uint8":
            raise ConfigError(f"--binarization uint8 (an 8-bit first layer) is for the "
                              f"convolutional models {', '.join(CONV_MODELS)}; {self.model} "
                              f"takes +-1 inputs")
        if self.augment == "affine" and self.binarization not in SIGN_BINARIZATIONS:
            raise ConfigError(f"--augment affine re-binarizes the moved +-1 images; it needs a "
                              f"sign binarization ({', '.join(SIGN_BINARIZATIONS)}), not "
                              f"--binarization {self.binarization}. Use --augment shift")
        if (self.model == FREE_MLP) != bool(self.hidden):
            raise ConfigError(f"--hidden gives the widths of --model {FREE_MLP}; give both or "
                              f"neither (--model {self.model}"
                              f"{' has its own widths' if self.hidden else ' needs --hidden'})")
        if self.channel_scale != 1 and self.model not in SCALABLE_CONV_MODELS:
            raise ConfigError(f"--channel-scale is for {' and '.join(SCALABLE_CONV_MODELS)}; "
                              f"{self.model} has no channel scale")
        if self.is_conv and self.dropout:
            raise ConfigError(f"--dropout is for the MLPs; {self.model} has none (as "
                              f"Brevitas' CNV)")

    @property
    def is_conv(self) -> bool:
        return self.model in CONV_MODELS

    @property
    def augmentation(self) -> str | None:
        """What is done to the training images (see ``augment`` and :mod:`.augment`):
        ``crop-flip``, ``shift``, ``affine`` or None."""
        if self.augment in ("shift", "affine"):
            return self.augment
        if self.augment == "standard" and self.is_conv and self.dataset == "cifar10":
            return "crop-flip"
        return None

    @classmethod
    def recorded_options(cls, saved: dict[str, Any]) -> dict[str, Any]:
        options = super().recorded_options(saved)
        if options.get("act_quantizer") is None:  # recorded before the default became explicit
            options["act_quantizer"] = options["quantizer"]
        return options

    @property
    def network_name(self) -> str:
        """SFC, MLP 512-128, CNV x0.5: the network, for reports."""
        if self.model == FREE_MLP:
            return f"MLP {'-'.join(map(str, self.hidden))}"
        scale = f" x{self.channel_scale:g}" if self.channel_scale != 1 else ""
        return f"{self.model.upper()}{scale}"

    def describe(self) -> str:
        act = "" if self.act_quantizer == self.quantizer else "/" + self.act_quantizer
        return f"{self.network_name} W1A1 ({self.quantizer}{act}, {self.dataset})"


@run_kind
@dataclass
class VispaConfig(TrainConfig):
    """VISPA (Orecchia et al. 2024): Gaussian variational inference with a rank-K covariance;
    defaults are the authors' CIFAR 1W1A settings (see :mod:`xnorflow.train.vispa`)."""

    algo: ClassVar[str] = "vispa"
    trainer: ClassVar[str] = "xnorflow.train.vispa:VispaTrainer"
    summary: ClassVar[str] = ("the same networks trained by Gaussian variational inference "
                              "with a rank-K weight covariance (Orecchia et al. 2024)")

    quantizer: str = option("bc", "sign forward, identity STE: VISPA's weight binarizer",
                            cli=False)
    act_quantizer: str | None = option("approxsign", "PC++ pair of the binary activations "
                                       "(VISPA: ApproxSign)", choices=tuple(PAIRS))
    activations: str = option("binary", "binary: W1A1 (sign activations); float: weights-only "
                              "binarization with ReLU, not buildable by FINN",
                              choices=("binary", "float"))
    lr: float | None = option(None, "learning rate (SGD), linear warm-up then cosine to 0",
                              range=POSITIVE)
    weight_decay: float | None = option(None, "weight decay on every parameter",
                                        range=AT_LEAST_0)
    rank: int | None = option(None, "K, rank of the weight covariance; 0 = the paper's LP "
                              "special case (latent weights, STE, clipping)", range=AT_LEAST_0)
    scale: float = option(100.0, "S in the unit diagonal m^2 + |z|^2 / S = 1", range=POSITIVE)
    warmup_epochs: int = option(5, "epochs of linear learning-rate warm-up (at most half the "
                                "run)", range=AT_LEAST_0)
    momentum: float = option(0.9, "SGD momentum", range=Range(0, 1, high_open=True))
    ensemble_samples: int = option(40, "L: sampled networks averaged for the reported ensemble "
                                   "accuracy (the deployed network is sign(m))",
                                   range=AT_LEAST_0)
    ensemble_eval: str = option("final", "when the L-sample ensemble is evaluated: final "
                                "(after the last epoch) or every-epoch (the authors' protocol, "
                                "which reports the best epoch; L test-set passes per epoch)",
                                choices=("final", "every-epoch"))

    DEPENDENT_DEFAULTS: ClassVar[dict[str, str]] = {
        name: f"{VISPA_SETTINGS['binary'][name]} for W1A1, {VISPA_SETTINGS['float'][name]} "
              f"with --activations float: the authors' settings"
        for name in ("rank", "lr", "weight_decay")}
    RECORDED_BEFORE: ClassVar[dict[str, Any]] = {**TrainConfig.RECORDED_BEFORE,
                                                 "ensemble_eval": "final"}

    def __post_init__(self):
        for name, value in VISPA_SETTINGS.get(self.activations, VISPA_SETTINGS["binary"]).items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        if self.binarization is None and self.activations == "float" and not self.is_conv:
            self.binarization = "none"  # W1A32 as the authors run it: the pixels themselves
        super().__post_init__()
        if self.is_conv and self.activations == "float":
            raise ConfigError("--activations float (VISPA's W1A32 setting) is for the MLPs; "
                              f"{self.model} is built with binary activations")

    def describe(self) -> str:
        acts = "W1A1" if self.activations == "binary" else "W1A32"
        return f"{self.network_name} {acts} (VISPA rank {self.rank}, {self.dataset})"


@run_kind
@dataclass
class LocalBinaryConfig(RunConfig):
    """Colombo et al. (arXiv 2412.00119): defaults are the paper's -- two hidden layers of 525,
    batch 100, 50 epochs, r = 0.25, p_r = 0.5, the authors' gamma per width, inputs binarized at
    the global pixel median."""

    algo: ClassVar[str] = "local-binary"
    trainer: ClassVar[str] = "xnorflow.train.local_binary.trainer:LocalBinaryTrainer"
    summary: ClassVar[str] = ("a binary MLP trained without gradients by local binary error "
                              "signals and integer hidden weights (Colombo et al. 2024); MLPs "
                              "only")
    # The reinforcement schedule does not depend on the run's length, and both engines compute
    # the same integers at any thread count: a run may be extended and change engine or threads
    # without changing the result.
    RESUMABLE_CHANGES: ClassVar[tuple[str, ...]] = ("data_dir", "engine", "epochs", "threads")

    binarization: str = option("median", "input pixels to +-1 (the paper: > the global "
                               "training-pixel median)", choices=SIGN_BINARIZATIONS)
    epochs: int = option(50, "length of the run; may be raised on --resume", range=AT_LEAST_1)
    widths: list[int] = option([525, 525], "hidden layer widths, odd so that sign never ties",
                               range=AT_LEAST_1)
    group_sizes: list[int] | None = option(None, "gamma per layer: at most one neuron per group "
                                           "of gamma is updated per wrong sample (default: the "
                                           "paper's value for widths 35, 75, 135, 255, 525, "
                                           "1035)", range=AT_LEAST_1)
    margin_ratio: float = option(0.25, "r: a sample is wrong if its readout margin < "
                                 "floor(r * width)", range=FRACTION)
    reinforcement: float = option(0.5, "p_r of the metaplastic reinforcement", range=FRACTION)
    weight_bits: int = option(16, "signed, saturating hidden-weight width", range=Range(3, 31))
    convention: str = option("bipolar", "bipolar: odd hidden weights, +-1 local classifiers "
                             "and sign(0) = +1, so every value is +-1 (an XNOR network FINN "
                             "builds); authors: the authors' code exactly: weights "
                             "int(N(0, 64^2)) as drawn (~1.25 % zeros), classifiers with "
                             "~1.25 % zeros, sign(0) = 0 (a ternary network: reference "
                             "engine only, not exported; see BENCHMARKS.md for the "
                             "comparison)", choices=LOCAL_BINARY_CONVENTIONS)
    engine: str | None = option(None, "bit-packed (fast) or integer reference step; both give "
                                "identical weights (default: packed; reference for "
                                "--convention authors)", choices=ENGINES)
    RECORDED_BEFORE: ClassVar[dict[str, Any]] = {"convention": "bipolar"}

    def __post_init__(self):
        if self.engine is None:
            self.engine = "reference" if self.convention == "authors" else "packed"
        super().__post_init__()
        if self.convention == "authors" and self.engine == "packed":
            raise ConfigError("--convention authors has ternary values (sign(0) = 0), which the "
                              "bit-packed engine cannot hold; use --engine reference")
        from .local_binary.model import BMLPError, group_sizes_for

        try:   # widths and group sizes that do not fit together are bad options, refused now
            group_sizes_for(self.widths, self.group_sizes)
        except BMLPError as err:
            raise ConfigError(str(err)) from None

    def not_xnor(self) -> str | None:
        from .local_binary.model import NOT_XNOR

        return None if self.convention == "bipolar" else NOT_XNOR.format(
            convention=self.convention)

    def describe(self) -> str:
        ternary = ", authors' ternary convention" if self.convention == "authors" else ""
        return (f"BMLP {'-'.join(map(str, self.widths))} W1A1 (local binary{ternary}, "
                f"{self.dataset})")

    def shape(self, in_features: int, num_classes: int):
        from .local_binary.model import BMLPShape, group_sizes_for

        return BMLPShape(in_features, tuple(self.widths), num_classes,
                         group_sizes_for(self.widths, self.group_sizes), self.margin_ratio,
                         self.weight_bits, self.convention)

