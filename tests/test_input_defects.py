"""Bad inputs that used to be accepted silently or failed deep inside a library: each is refused
up front with a message naming what is wrong, and nothing is run or written."""

from __future__ import annotations

import gzip
import os
import pickle
import shutil
import struct

import numpy as np
import pytest
from small_data import write_idx

from xnorflow.cli import main
from xnorflow.options import ConfigError
from xnorflow.train.configs import LocalBinaryConfig, TrainConfig
from xnorflow.train.data import DatasetError, load_cifar10, load_idx_dataset
from xnorflow.train.runs import load_record, save_record


def write_idx_folder(folder, size=28, n_train=60, n_test=20, seed=0):
    """An MNIST-layout folder of random ``size`` x ``size`` images."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for prefix, count in (("train", n_train), ("t10k", n_test)):
        write_idx(folder / f"{prefix}-images-idx3-ubyte",
                  rng.integers(0, 256, (count, size, size), dtype=np.uint8))
        write_idx(folder / f"{prefix}-labels-idx1-ubyte",
                  rng.integers(0, 10, count, dtype=np.uint8))
    return folder


def listing(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


# ------------------------------------------------------------------- CIFAR-10 pickles run code
class _RunsCommand:
    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def _cifar_folder(tmp_path, test_entry, protocol=2):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(1, 6):
        with open(folder / f"data_batch_{i}", "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (3, 3072), dtype=np.uint8),
                         b"labels": [0, 1, 2]}, f, protocol=protocol)
    with open(folder / "test_batch", "wb") as f:
        pickle.dump(test_entry, f, protocol=protocol)
    return folder


def test_cifar_pickle_that_calls_os_system_is_refused_without_running(tmp_path):
    marker = tmp_path / "pwned"
    _cifar_folder(tmp_path, {b"data": _RunsCommand(f"touch {marker}"), b"labels": [0]})
    with pytest.raises(DatasetError, match=r"test_batch: refused: the pickle calls "
                                           r"posix\.system") as err:
        load_cifar10(tmp_path)
    assert not marker.exists()
    assert "could run code" in str(err.value)


def test_cli_refuses_a_code_running_cifar_pickle_and_writes_nothing(tmp_path, capsys):
    marker = tmp_path / "pwned"
    _cifar_folder(tmp_path, _RunsCommand(f"touch {marker}"), protocol=4)
    out = tmp_path / "run"
    code = main(["train", "--model", "cnv", "--dataset", "cifar10", "--data-dir",
                 str(tmp_path), "--epochs", "1", "--out", str(out), "--no-progress"])
    assert code == 1 and not marker.exists() and not out.exists()
    err = capsys.readouterr().err
    assert "test_batch: refused" in err and "posix.system" in err and "Traceback" not in err


@pytest.mark.parametrize("protocol", [0, 2, 4, 5])
def test_cifar_batches_of_every_pickle_protocol_still_load(tmp_path, protocol):
    _cifar_folder(tmp_path, {b"data": np.full((2, 3072), 255, np.uint8), b"labels": [3, 4],
                             b"batch_label": b"testing batch 1 of 1",
                             b"filenames": [b"a.png", b"b.png"]}, protocol=protocol)
    ds = load_cifar10(tmp_path)
    assert ds.train.images.shape == (15, 3072) and ds.test.labels.tolist() == [3, 4]
    assert ds.test.images.max() == 1.0


class _Python2Pickler(pickle._Pickler):
    """Writes bytes as Python 2 str (BINSTRING), as cPickle wrote the original batches."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_bytes


def test_cifar_batch_as_python_2_cpickle_wrote_it_loads(tmp_path):
    folder = _cifar_folder(tmp_path, {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0]})
    entry = {b"data": np.arange(2 * 3072, dtype=np.int64).astype(np.uint8).reshape(2, 3072),
             b"labels": [7, 9], b"batch_label": b"testing batch 1 of 1"}
    with open(folder / "test_batch", "wb") as f:
        _Python2Pickler(f, protocol=2).dump(entry)
    raw = (folder / "test_batch").read_bytes()
    assert b"_codecs" not in raw  # no Python 3 bytes encoding in it
    # Python 2's numpy named its module numpy.core
    (folder / "test_batch").write_bytes(raw.replace(b"numpy._core.", b"numpy.core."))
    ds = load_cifar10(tmp_path)
    assert ds.test.labels.tolist() == [7, 9]
    np.testing.assert_array_equal(ds.test.images * 255, entry[b"data"].astype(np.float32))


def test_cifar_pickle_may_reach_no_codec_but_latin_1(tmp_path):
    folder = _cifar_folder(tmp_path, {b"labels": [0]})
    # _codecs.encode('x', 'rot13'); protocol < 3 pickles need it only with latin-1 for bytes
    (folder / "test_batch").write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00x"
                                        b"X\x05\x00\x00\x00rot13\x86R.")
    with pytest.raises(DatasetError, match="test_batch: refused: the pickle calls "
                                           "_codecs.encode with the codec 'rot13'"):
        load_cifar10(tmp_path)


# ---------------------------------------------------------------- raw and .gz of the same file
def test_raw_and_gzipped_copy_of_one_idx_file_is_refused(tmp_path):
    folder = write_idx_folder(tmp_path / "mnist")
    raw = folder / "t10k-labels-idx1-ubyte"
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(raw.read_bytes()))
    with pytest.raises(DatasetError, match=r"holds both t10k-labels-idx1-ubyte and "
                                           r"t10k-labels-idx1-ubyte\.gz.*remove one"):
        load_idx_dataset("mnist", folder)


# --------------------------------------------------------------- --data-dir without --dataset
def test_data_dir_with_the_built_in_digits_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"--data-dir .*digits.*built in.*Give --dataset"):
        TrainConfig(data_dir=str(tmp_path))
    with pytest.raises(ConfigError, match="--data-dir"):
        LocalBinaryConfig(widths=[35, 35], data_dir=str(tmp_path))
    TrainConfig(dataset="mnist", data_dir=str(tmp_path))  # what --data-dir is for


def test_cli_train_with_data_dir_and_no_dataset_exits_2_and_writes_nothing(tmp_path, capsys):
    data = write_idx_folder(tmp_path / "mnist")
    out = tmp_path / "run"
    assert main(["train", "--data-dir", str(data), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--data-dir" in err and "--dataset" in err
    assert not out.exists()


def test_cli_hls_fresh_bmlp_with_data_dir_and_no_dataset_exits_2(tmp_path, capsys):
    out = tmp_path / "hls"
    assert main(["hls", "--widths", "35,35", "--data-dir", str(tmp_path),
                 "--out", str(out)]) == 2
    assert "--dataset" in capsys.readouterr().err and not out.exists()


def test_resume_of_a_digits_run_with_data_dir_exits_2(digits_tfc_run, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(digits_tfc_run, run)
    before = listing(run)
    assert main(["train", "--resume", "--out", str(run), "--data-dir", str(tmp_path)]) == 2
    assert "--data-dir" in capsys.readouterr().err and listing(run) == before


def test_old_digits_run_that_recorded_a_data_dir_still_opens(digits_tfc_run, tmp_path):
    import torch

    from xnorflow.train.runs import open_run

    run = tmp_path / "run"
    shutil.copytree(digits_tfc_run, run)
    record = torch.load(run / "model.pt", weights_only=True)
    record["config"]["data_dir"] = "/somewhere/mnist"  # what the old default recorded
    torch.save(record, run / "model.pt")
    assert open_run(run).config.data_dir is None


def test_export_of_a_digits_run_with_data_dir_is_refused(digits_tfc_run, tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", str(digits_tfc_run), "--data-dir", str(tmp_path), "--out",
                 str(out), "--no-progress"]) == 2
    assert "trained on digits" in capsys.readouterr().err and not out.exists()


# ------------------------------------------------- export with data of another size or data set
@pytest.fixture(scope="module")
def idx_tfc_run(tmp_path_factory):
    """A TFC trained for one epoch on a small random 28x28 MNIST-layout folder."""
    from xnorflow.train.trainer import Trainer

    base = tmp_path_factory.mktemp("idx-run")
    data = write_idx_folder(base / "data")
    config = TrainConfig(model="tfc", dataset="mnist", data_dir=str(data), epochs=1,
                         batch_size=20)
    Trainer(config, base / "run", show_progress=False, verbose=False).fit()
    return base / "run", data


def _export(run, data, out, capsys):
    code = main(["export", str(run), "--data-dir", str(data), "--out", str(out),
                 "--no-progress"])
    return code, capsys.readouterr()


def test_export_with_images_of_another_size_names_both_shapes(idx_tfc_run, tmp_path, capsys):
    run, _ = idx_tfc_run
    small = write_idx_folder(tmp_path / "small", size=20)
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    code, printed = _export(run, small, out, capsys)
    assert code == 1 and listing(out.parent) == []
    assert "(1, 20, 20)" in printed.err and "(1, 28, 28)" in printed.err
    assert str(small) in printed.err and "Point --data-dir" in printed.err
    assert "Traceback" not in printed.err and "mat1" not in printed.err


def test_export_with_another_data_set_is_refused(idx_tfc_run, tmp_path, capsys):
    run, trained_on = idx_tfc_run
    other = write_idx_folder(tmp_path / "fashion", seed=1)  # same layout and size, other images
    out = tmp_path / "out" / "m.onnx"
    out.parent.mkdir()
    code, printed = _export(run, other, out, capsys)
    assert code == 1 and listing(out.parent) == []
    assert f"mnist at {other}: not the data" in printed.err
    assert f"mnist at {trained_on}" in printed.err


def test_export_with_the_same_data_moved_goes_on(idx_tfc_run, tmp_path, capsys):
    run, trained_on = idx_tfc_run
    moved = shutil.copytree(trained_on, tmp_path / "moved")
    code, printed = _export(run, moved, tmp_path / "m.onnx", capsys)
    assert code == 0, printed.err
    assert (tmp_path / "m.onnx").is_file() and (tmp_path / "m.verify.json").is_file()


def test_run_without_a_recorded_fingerprint_is_exported_unchecked(idx_tfc_run, tmp_path,
                                                                  capsys):
    run, _ = idx_tfc_run
    lone = tmp_path / "lone"
    lone.mkdir()
    # a model.pt as runs wrote it before it carried the fingerprint, no checkpoint beside it
    record = load_record(run / "model.pt", content="model")
    assert record.pop("data_fingerprint")  # new runs carry it in model.pt itself
    save_record(record, lone / "model.pt")
    other = write_idx_folder(tmp_path / "other", seed=1)
    code, printed = _export(lone / "model.pt", other, tmp_path / "m.onnx", capsys)
    assert code == 0, printed.err


def test_a_lone_model_file_carries_its_data_fingerprint(idx_tfc_run, tmp_path, capsys):
    run, _ = idx_tfc_run
    lone = tmp_path / "lone"
    lone.mkdir()
    shutil.copy(run / "model.pt", lone / "model.pt")
    other = write_idx_folder(tmp_path / "other", seed=1)
    code, printed = _export(lone / "model.pt", other, tmp_path / "m.onnx", capsys)
    assert code == 1 and "not the data the run" in printed.err
    assert not (tmp_path / "m.onnx").exists()


def test_build_with_another_data_set_is_refused_before_its_folder(idx_tfc_run, tmp_path,
                                                                  capsys):
    run, _ = idx_tfc_run
    other = write_idx_folder(tmp_path / "other", seed=1)
    out = tmp_path / "build"
    assert main(["build", str(run), "--data-dir", str(other), "--out", str(out),
                 "--no-progress"]) == 1
    assert "not the data the run" in capsys.readouterr().err and not out.exists()
