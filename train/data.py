"""Data sets for 1-bit training: IDX (MNIST, Fashion-MNIST), CIFAR-10 pickles, scikit-learn digits.

Every loader returns a :class:`Split` pair of float32 images in [0, 1] (N, features) and int64
labels. The 1-bit first layer needs bipolar inputs; :func:`binarize` turns images into exact
{-1, +1} values and is applied by :func:`load_dataset` so that what the model, the QONNX graph
and the FPGA see is one and the same tensor.
"""

from __future__ import annotations

import codecs
import gzip
import pickle
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import XnorflowError

IDX_IMAGES_MAGIC = 2051  # header: magic, count, rows, cols (big-endian uint32)
IDX_LABELS_MAGIC = 2049  # header: magic, count


class DatasetError(XnorflowError, ValueError):
    """A data file or directory is missing or malformed; the message names the file and the fix."""


@dataclass(frozen=True)
class Split:
    images: np.ndarray  # float32, (N, features), values in [0, 1] (or {-1, +1} once binarized)
    labels: np.ndarray  # int64, (N,)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Dataset:
    name: str
    train: Split
    test: Split
    image_shape: tuple[int, ...]  # (channels, rows, cols) of one image before flattening
    num_classes: int

    @property
    def in_features(self) -> int:
        return int(np.prod(self.image_shape))


# ----------------------------------------------------------------------------------------- IDX
def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DatasetError(f"{path}: file not found. Expected the torchvision/LeCun IDX layout "
                           f"(train-images-idx3-ubyte[.gz], ...) in {path.parent}.")
    try:
        raw = path.read_bytes()
        return gzip.decompress(raw) if path.suffix == ".gz" else raw
    except (OSError, EOFError, zlib.error) as err:
        raise DatasetError(f"{path}: cannot decompress ({err}); the file is truncated or not gzip. "
                           f"Download it again.") from err


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (raw or .gz): uint8 images (N, rows, cols) or uint8 labels (N,)."""
    path = Path(path)
    data = _read_bytes(path)
    if len(data) < 8:
        raise DatasetError(f"{path}: {len(data)} bytes, too short for an IDX header.")
    magic, count = struct.unpack(">II", data[:8])
    if magic == IDX_LABELS_MAGIC:
        shape, offset = (count,), 8
    elif magic == IDX_IMAGES_MAGIC:
        if len(data) < 16:
            raise DatasetError(f"{path}: {len(data)} bytes, too short for an IDX image header.")
        rows, cols = struct.unpack(">II", data[8:16])
        shape, offset = (count, rows, cols), 16
    else:
        raise DatasetError(f"{path}: wrong magic number {magic}; expected {IDX_IMAGES_MAGIC} "
                           f"(images) or {IDX_LABELS_MAGIC} (labels). Is this an IDX file?")
    expected = int(np.prod(shape))
    payload = len(data) - offset
    if payload != expected:
        raise DatasetError(f"{path}: header promises {expected} bytes of data for shape {shape} "
                           f"but the file holds {payload}; it is truncated or corrupt.")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)


def _find_idx(directory: Path, stem: str) -> Path:
    found = [c for c in (directory / stem, directory / f"{stem}.gz") if c.is_file()]
    if len(found) == 2:  # which one is meant cannot be told; they may hold different data
        raise DatasetError(f"{directory}: holds both {found[0].name} and {found[1].name}, the "
                           f"same IDX file raw and gzipped; remove one of them so that it is "
                           f"clear which data is used.")
    if found:
        return found[0]
    raise DatasetError(f"{directory}: neither {stem} nor {stem}.gz found. Pass --data-dir pointing "
                       f"at a folder with the four MNIST-style IDX files.")


def _idx_split(directory: Path, prefix: str, num_classes: int) -> tuple[Split, tuple[int, int]]:
    """One split of an IDX folder and its image size (rows, cols)."""
    images_path = _find_idx(directory, f"{prefix}-images-idx3-ubyte")
    labels_path = _find_idx(directory, f"{prefix}-labels-idx1-ubyte")
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DatasetError(f"{images_path}: holds labels, not images (magic {IDX_LABELS_MAGIC}).")
    if labels.ndim != 1:
        raise DatasetError(f"{labels_path}: holds images, not labels (magic {IDX_IMAGES_MAGIC}).")
    if len(images) != len(labels):
        raise DatasetError(f"{images_path} has {len(images)} images but {labels_path} has "
                           f"{len(labels)} labels; the pair does not belong together.")
    if len(images) == 0 or images.shape[1] * images.shape[2] == 0:
        raise DatasetError(f"{images_path}: holds no images (header: {images.shape}).")
    _check_labels(labels, num_classes, labels_path)
    return (Split(images.reshape(len(images), -1).astype(np.float32) / 255.0,
                  labels.astype(np.int64)), images.shape[1:])


def _check_labels(labels: np.ndarray, num_classes: int, source: Path | str) -> None:
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        first = int(bad.argmax())
        raise DatasetError(f"{source}: label {int(labels[first])} at index {first} is outside "
                           f"0..{num_classes - 1} ({int(bad.sum())} such labels); this data set "
                           f"has {num_classes} classes. The file is corrupt or belongs to "
                           f"another data set.")


def _data_folder(directory: Path, holding: str) -> None:
    """Refuse a ``--data-dir`` that is not a folder, saying which it is."""
    if directory.is_file():
        raise DatasetError(f"{directory} is a file, not a folder: pass --data-dir with the "
                           f"folder that holds {holding}.")
    if not directory.is_dir():
        raise DatasetError(f"{directory}: data directory not found. Pass --data-dir with the "
                           f"folder that holds {holding}.")


def load_idx_dataset(name: str, directory: str | Path) -> Dataset:
    """MNIST-layout folder: train-/t10k-{images-idx3,labels-idx1}-ubyte[.gz], 10 classes."""
    directory = Path(directory)
    _data_folder(directory, f"the {name} IDX files")
    (train, train_size), (test, test_size) = (_idx_split(directory, "train", 10),
                                              _idx_split(directory, "t10k", 10))
    if train_size != test_size:
        raise DatasetError(f"{directory}: training images are {train_size[0]}x{train_size[1]} "
                           f"but test images are {test_size[0]}x{test_size[1]}; the two splits "
                           f"must come from the same data set.")
    return Dataset(name, train, test, (1, *train_size), 10)


# ----------------------------------------------------------------------------------- CIFAR-10
class _ForbiddenGlobal(pickle.UnpicklingError):
    """A global a batch pickle may not call; ``name`` says which."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def _latin1_encode(text: str, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """``_codecs.encode`` as pickles of protocol < 3 call it for every bytes object; only the
    latin-1 they use is needed, so no other codec can be reached from a data file."""
    try:
        latin1 = codecs.lookup(encoding).name == "iso8859-1"
    except LookupError:
        latin1 = False
    if not latin1:
        raise _ForbiddenGlobal(f"_codecs.encode with the codec {encoding!r}")
    return codecs.encode(text, "latin-1", errors)


def _batch_globals() -> dict[tuple[str, str], object]:
    """The only callables a CIFAR-10 batch pickle may name: a numpy uint8 array, written by
    Python 2 cPickle (numpy.core) or by Python 3 with numpy 2 (numpy._core)."""
    from numpy._core import multiarray, numeric

    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray,
                                              ("numpy", "dtype"): np.dtype,
                                              ("_codecs", "encode"): _latin1_encode}
    for core in ("numpy.core", "numpy._core"):
        allowed[(f"{core}.multiarray", "_reconstruct")] = multiarray._reconstruct
        allowed[(f"{core}.multiarray", "scalar")] = multiarray.scalar
        allowed[(f"{core}.numeric", "_frombuffer")] = numeric._frombuffer  # protocol 5
    return allowed


class _BatchUnpickler(pickle.Unpickler):
    """Unpickles only what a CIFAR-10 batch holds; a pickle can otherwise call any function
    (``os.system`` in ``__reduce__``), so anything else is refused before it is imported."""

    def find_class(self, module: str, name: str):
        found = _batch_globals().get((module, name))
        if found is None:
            raise _ForbiddenGlobal(f"{module}.{name}")
        return found


def _load_batch_pickle(path: Path):
    try:
        with open(path, "rb") as f:
            return _BatchUnpickler(f, encoding="bytes").load()
    except _ForbiddenGlobal as err:
        raise DatasetError(f"{path}: refused: the pickle calls {err.name}, which no CIFAR-10 "
                           f"batch holds (only numpy arrays, bytes, lists and ints); loading it "
                           f"could run code. Nothing in it was run. Replace the file with the "
                           f"original from https://www.cs.toronto.edu/~kriz/cifar.html.") from None


def load_cifar10(directory: str | Path) -> Dataset:
    """CIFAR-10 python layout: data_batch_1..5 and test_batch (pickles of uint8 rows)."""
    directory = Path(directory)
    if (directory / "cifar-10-batches-py").is_dir():
        directory = directory / "cifar-10-batches-py"
    _data_folder(directory, "the CIFAR-10 batches (cifar-10-batches-py)")

    def batch(file_name: str) -> Split:
        path = directory / file_name
        if not path.is_file():
            raise DatasetError(f"{path}: file not found (CIFAR-10 python layout expected).")
        try:
            entry = _load_batch_pickle(path)
            images = np.asarray(entry[b"data"], dtype=np.uint8)
            labels = np.asarray(entry[b"labels"], dtype=np.int64)
        except DatasetError:
            raise
        except (pickle.UnpicklingError, EOFError, IndexError, KeyError, TypeError,
                ValueError) as err:
            raise DatasetError(f"{path}: not a CIFAR-10 batch pickle ({err!r}).") from err
        if images.ndim != 2 or images.shape[1] != 3072 or len(images) != len(labels) \
                or not len(images):
            raise DatasetError(f"{path}: expected (N, 3072) images and N > 0 labels, got "
                               f"{images.shape} and {labels.shape}.")
        _check_labels(labels, 10, path)
        return Split(images.astype(np.float32) / 255.0, labels)

    parts = [batch(f"data_batch_{i}") for i in range(1, 6)]
    train = Split(np.concatenate([p.images for p in parts]),
                  np.concatenate([p.labels for p in parts]))
    return Dataset("cifar10", train, batch("test_batch"), (3, 32, 32), 10)


# ------------------------------------------------------------------------------------- digits
def load_digits_dataset(test_fraction: float = 0.2, seed: int = 0) -> Dataset:
    """scikit-learn's 8x8 digits (1,797 images, ships with the package): the no-download default.

    There is no official split; a fixed stratified split (seed 0, 20 % test) keeps runs comparable.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = (bunch.data / 16.0).astype(np.float32)
    x_tr, x_te, y_tr, y_te = train_test_split(images, bunch.target.astype(np.int64),
                                              test_size=test_fraction, random_state=seed,
                                              stratify=bunch.target)
    return Dataset("digits", Split(x_tr, y_tr), Split(x_te, y_te), (1, 8, 8), 10)


# ------------------------------------------------------------------------------- binarization
SIGN_BINARIZATIONS = ("threshold", "centered-sign", "median")  # pixels to +-1
BINARIZATIONS = (*SIGN_BINARIZATIONS, "uint8", "none")


def binarize(images: np.ndarray, mode: str = "threshold", threshold: float = 0.5,
             mean: np.ndarray | None = None, median: float | None = None) -> np.ndarray:
    """Map [0, 1] images to exact bipolar values {-1, +1} for a 1-bit first layer.

    - ``threshold``: +1 where pixel >= ``threshold`` else -1 (BNN-PYNQ's MNIST input is this with
      0.5: it feeds 2x - 1 to a sign activation).
    - ``centered-sign``: +1 where pixel >= the per-feature mean ``mean`` (of the training split)
      else -1; keeps information in low-contrast images such as Fashion-MNIST.
    - ``median``: +1 where pixel > ``median`` (one number: the median of all training-split
      pixels) else -1. This is the input binarization of Colombo et al. (arXiv 2412.00119) for
      Fashion-MNIST; note the strict ``>`` (their rule), so on MNIST (median 0) every non-zero
      pixel is +1.
    - ``uint8``: the integer pixels 0..255 (as float32), for an 8-bit first layer: the
      accelerator's input is then the raw pixel bytes.
    - ``none``: leave the images as they are, in [0, 1] (VISPA's float-activation MLPs).
    sign(0) is taken as +1, as Brevitas' binary quantizer and FINN's bipolar type do.
    """
    if mode == "none":
        return images
    if mode == "uint8":
        return np.round(images * 255.0).astype(np.float32)
    if mode == "threshold":
        reference = threshold
    elif mode == "centered-sign":
        if mean is None:
            raise ValueError("centered-sign binarization needs the training-split mean")
        reference = mean
    elif mode == "median":
        if median is None:
            raise ValueError("median binarization needs the training-split median")
        return np.where(images > median, 1.0, -1.0).astype(np.float32)
    else:
        raise ValueError(f"unknown binarization {mode!r}; choose one of {BINARIZATIONS}")
    return np.where(images >= reference, 1.0, -1.0).astype(np.float32)


DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10")


def load_dataset(name: str, data_dir: str | Path | None = None, binarization: str = "threshold",
                 threshold: float = 0.5) -> Dataset:
    """Load ``name`` (see :data:`DATASETS`) and binarize its images with :func:`binarize`."""
    if name == "digits":
        raw = load_digits_dataset()
    elif name in ("mnist", "fashion-mnist", "cifar10"):
        if data_dir is None:
            raise DatasetError(f"dataset {name!r} is read from disk: pass --data-dir (e.g. "
                               f"../shared/data/{name}); only 'digits' is built in.")
        raw = load_cifar10(data_dir) if name == "cifar10" else load_idx_dataset(name, data_dir)
    else:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {DATASETS}.")
    mean = raw.train.images.mean(axis=0) if binarization == "centered-sign" else None
    median = float(np.median(raw.train.images)) if binarization == "median" else None

    def convert(split: Split) -> Split:
        return Split(binarize(split.images, binarization, threshold, mean, median), split.labels)

    dataset = Dataset(raw.name, convert(raw.train), convert(raw.test), raw.image_shape,
                      raw.num_classes)
    check_dataset(dataset)
    return dataset


def check_dataset(dataset: Dataset) -> None:
    """Every invariant a model relies on, checked before any training starts: non-empty splits of
    float images (N, features) and int labels (N,), one image size for both splits, labels in
    0..classes-1, finite pixels (sign(NaN) would binarize silently to -1)."""
    for split_name, split in (("train", dataset.train), ("test", dataset.test)):
        where = f"{split_name} split of {dataset.name}"
        images, labels = split.images, split.labels
        if images.ndim != 2 or labels.ndim != 1 or len(images) != len(labels) or not len(labels):
            raise DatasetError(f"{where}: expected N > 0 images of shape (N, features) and N "
                               f"labels, got {images.shape} and {labels.shape}.")
        if images.shape[1] != dataset.in_features:
            raise DatasetError(f"{where}: images have {images.shape[1]} values but the data set "
                               f"declares {dataset.image_shape} ({dataset.in_features}).")
        if images.dtype != np.float32 or not np.issubdtype(labels.dtype, np.integer):
            raise DatasetError(f"{where}: expected float32 images and integer labels, got "
                               f"{images.dtype} and {labels.dtype}.")
        _check_labels(labels, dataset.num_classes, where)
        bad = ~np.isfinite(images).all(axis=1)
        if bad.any():
            raise DatasetError(f"{where}: sample {int(bad.argmax())} has NaN/inf pixel values "
                               f"({int(bad.sum())} such samples). Fix or drop them before "
                               f"training.")


def fingerprint(dataset: Dataset) -> str:
    """Hash of the binarized images and labels of both splits: a run records it so that a moved
    data set (--data-dir on resume) is accepted only if it is the same data."""
    import hashlib

    digest = hashlib.blake2b(digest_size=16)
    for split in (dataset.train, dataset.test):
        digest.update(np.ascontiguousarray(split.images).tobytes())
        digest.update(np.ascontiguousarray(split.labels, dtype=np.int64).tobytes())
    return digest.hexdigest()


def holdout_split(split: Split, holdout: int, seed: int) -> tuple[Split, Split]:
    """Re-split a training split into (train, held-out validation) with a seeded shuffle: the
    protocol of Colombo et al. for Fashion-MNIST (60k training images -> 50k / 10k)."""
    if not 0 < holdout < len(split):
        raise DatasetError(f"cannot hold out {holdout} of {len(split)} training samples; choose "
                           f"0 < holdout < {len(split)}")
    order = np.random.default_rng(seed).permutation(len(split))
    keep, held = order[:-holdout], order[-holdout:]
    return (Split(split.images[keep], split.labels[keep]),
            Split(split.images[held], split.labels[held]))
