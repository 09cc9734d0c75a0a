import gzip
import hashlib
import pickle
import struct

import numpy as np
import pytest

from xnorflow.train.data import (
    DatasetError,
    binarize,
    load_cifar10,
    load_dataset,
    load_idx_dataset,
    read_idx,
)


def write_idx(path, array, magic=None, gz=False):
    array = np.asarray(array, dtype=np.uint8)
    if magic is None:
        magic = 2051 if array.ndim == 3 else 2049
    header = struct.pack(">II", magic, array.shape[0]) + b"".join(
        struct.pack(">I", d) for d in array.shape[1:])
    payload = header + array.tobytes()
    if gz:
        payload = gzip.compress(payload)
    path.write_bytes(payload)
    return path


def make_idx_dir(tmp_path, n_train=6, n_test=4, gz=True):
    rng = np.random.default_rng(0)
    suffix = ".gz" if gz else ""
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}",
                  rng.integers(0, 256, (n, 28, 28)), gz=gz)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", rng.integers(0, 10, n), gz=gz)
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_idx_round_trip(tmp_path, gz):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = write_idx(tmp_path / ("x.gz" if gz else "x"), images, gz=gz)
    np.testing.assert_array_equal(read_idx(path), images)
    labels = write_idx(tmp_path / "y", [3, 1, 4])
    np.testing.assert_array_equal(read_idx(labels), [3, 1, 4])


def test_idx_dataset_scales_to_unit_range(tmp_path):
    ds = load_idx_dataset("mnist", make_idx_dir(tmp_path))
    assert ds.train.images.shape == (6, 784) and ds.test.images.shape == (4, 784)
    assert ds.train.images.dtype == np.float32 and 0 <= ds.train.images.min() <= 1
    assert ds.image_shape == (1, 28, 28) and ds.num_classes == 10


def test_truncated_idx_names_file(tmp_path):
    path = write_idx(tmp_path / "imgs", np.zeros((3, 28, 28)))
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(DatasetError, match=r"imgs: header promises 2352 bytes .* holds 2252"):
        read_idx(path)


def test_wrong_magic_names_file(tmp_path):
    path = write_idx(tmp_path / "bad", np.zeros((3, 28, 28)), magic=1234)
    with pytest.raises(DatasetError, match=r"bad: wrong magic number 1234"):
        read_idx(path)


def test_corrupt_gzip_names_file(tmp_path):
    path = write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.ones((50, 28, 28)), gz=True)
    path.write_bytes(path.read_bytes()[:-30])  # an interrupted download
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz: cannot decompress"):
        read_idx(path)


def test_too_short_for_header(tmp_path):
    path = tmp_path / "tiny"
    path.write_bytes(b"\x00\x00")
    with pytest.raises(DatasetError, match="too short"):
        read_idx(path)


def test_label_image_count_mismatch(tmp_path):
    make_idx_dir(tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", [1, 2, 3], gz=True)
    with pytest.raises(DatasetError, match=r"has 4 images but .*t10k-labels.* has 3 labels"):
        load_idx_dataset("mnist", tmp_path)


def test_images_and_labels_swapped(tmp_path):
    make_idx_dir(tmp_path, gz=False)
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(
        (tmp_path / "train-images-idx3-ubyte").read_bytes())
    with pytest.raises(DatasetError, match="holds images, not labels"):
        load_idx_dataset("mnist", tmp_path)


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(DatasetError, match="data directory not found"):
        load_idx_dataset("mnist", tmp_path / "nope")
    with pytest.raises(DatasetError, match=r"train-images-idx3-ubyte.gz found"):
        load_idx_dataset("mnist", tmp_path)
    with pytest.raises(DatasetError, match="pass --data-dir"):
        load_dataset("mnist", None)
    with pytest.raises(DatasetError, match="unknown dataset"):
        load_dataset("imagenet", tmp_path)


def test_binarize_modes():
    x = np.array([[0.0, 0.49, 0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(binarize(x, "threshold"), [[-1, -1, 1, 1]])
    mean = np.array([0.1, 0.6, 0.5, 1.0], dtype=np.float32)
    np.testing.assert_array_equal(binarize(x, "centered-sign", mean=mean), [[-1, -1, 1, 1]])
    assert binarize(x, "none") is x
    with pytest.raises(ValueError, match="unknown binarization"):
        binarize(x, "otsu")


def test_digits_default_is_bipolar_and_stratified():
    ds = load_dataset("digits")
    assert (len(ds.train), len(ds.test)) == (1437, 360)
    assert set(np.unique(ds.train.images)) == {-1.0, 1.0}
    assert ds.in_features == 64
    assert np.bincount(ds.test.labels).min() >= 35  # stratified: every class present


def test_real_mnist_official_split(mnist_dir):
    # md5 of the uncompressed official training-image file, as the shared data README states
    raw = gzip.decompress((mnist_dir / "train-images-idx3-ubyte.gz").read_bytes())
    assert hashlib.md5(raw).hexdigest() == "6bbc9ace898e44ae57da46a324031adb"
    assert read_idx(mnist_dir / "train-images-idx3-ubyte.gz").shape == (60000, 28, 28)
    ds = load_dataset("mnist", mnist_dir)
    assert (len(ds.train), len(ds.test)) == (60000, 10000)
    assert set(np.unique(ds.test.images)) == {-1.0, 1.0}
    np.testing.assert_array_equal(np.bincount(ds.test.labels),
                                  [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])


def test_cifar10_pickle_layout(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8),
                         b"labels": [0, 1, 2]}, f)
    ds = load_cifar10(tmp_path)
    assert ds.train.images.shape == (15, 3072) and ds.image_shape == (3, 32, 32)
    (folder / "test_batch").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="test_batch: not a CIFAR-10 batch pickle"):
        load_cifar10(tmp_path)


def test_median_binarization_uses_one_global_training_median():
    from xnorflow.train.data import binarize
    images = np.array([[0.0, 0.2, 0.4], [0.4, 0.6, 1.0]], np.float32)
    out = binarize(images, "median", median=0.4)
    assert out.tolist() == [[-1, -1, -1], [-1, 1, 1]]  # strict >, as the paper's code
    with pytest.raises(ValueError, match="median"):
        binarize(images, "median")


def test_holdout_split_is_seeded_and_disjoint():
    from xnorflow.train.data import Split, holdout_split
    split = Split(np.arange(20, dtype=np.float32).reshape(10, 2), np.arange(10))
    train, held = holdout_split(split, 3, seed=1)
    again, _ = holdout_split(split, 3, seed=1)
    assert len(train) == 7 and len(held) == 3
    assert sorted(train.labels.tolist() + held.labels.tolist()) == list(range(10))
    assert np.array_equal(train.labels, again.labels)
    with pytest.raises(DatasetError, match="hold out"):
        holdout_split(split, 10, seed=1)
