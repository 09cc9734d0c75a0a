"""Training loop: determinism, bit-identical resume, atomic checkpoints, divergence handling."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from xnorflow.train.checkpoint import CheckpointError, load_checkpoint, save_atomic
from xnorflow.train.data import Dataset, DatasetError, Split, load_dataset
from xnorflow.train.trainer import (CHECKPOINT, TrainConfig, Trainer, TrainingDiverged, evaluate,
                                    load_trained)

DIGITS = load_dataset("digits")


def small_config(**overrides):
    return replace(TrainConfig(model="tfc", quantizer="bnn++", dataset="digits", epochs=3,
                               batch_size=64, lr=5e-3, dropout=0.1, seed=3), **overrides)


def train(out_dir, config=None, resume=False, dataset=DIGITS):
    trainer = Trainer(config or small_config(), out_dir, dataset=dataset, show_progress=False,
                      verbose=False)
    if resume:
        trainer.resume()
    trainer.fit()
    return trainer


def assert_same_state(a, b):
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:
        assert torch.equal(sa[key], sb[key]), key


def strip_time(history):
    return [replace(r, seconds=0.0) for r in history]


def test_same_seed_same_run(tmp_path):
    a, b = train(tmp_path / "a"), train(tmp_path / "b")
    assert_same_state(a, b)
    assert strip_time(a.history) == strip_time(b.history)
    c = train(tmp_path / "c", small_config(seed=4))
    assert not torch.equal(a.model.state_dict()["features.1.weight"],
                           c.model.state_dict()["features.1.weight"])


def test_resume_is_bit_identical(tmp_path):
    straight = train(tmp_path / "straight")
    interrupted = Trainer(small_config(), tmp_path / "split", dataset=DIGITS, show_progress=False,
                          verbose=False)
    interrupted.fit(stop_after=2)  # the run stops after epoch 2 of 3
    assert load_checkpoint(tmp_path / "split" / CHECKPOINT)["epoch"] == 2
    resumed = train(tmp_path / "split", resume=True)  # a new process would do exactly this
    assert len(resumed.history) == 3
    assert_same_state(straight, resumed)
    assert strip_time(resumed.history) == strip_time(straight.history)


def test_outputs_logs_plot_and_model(tmp_path):
    trainer = train(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert "mu" in rows[0] and float(rows[-1]["mu"]) > float(rows[0]["mu"])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs_trained"] == 3
    assert summary["final_test_acc"] == trainer.history[-1].test_acc
    model = load_trained(tmp_path / "model.pt")
    x, y = torch.from_numpy(DIGITS.test.images), torch.from_numpy(DIGITS.test.labels)
    assert evaluate(model, x, y)[1] == trainer.history[-1].test_acc


def test_digits_training_learns(tmp_path):
    trainer = train(tmp_path, small_config(model="sfc", quantizer="bnn", epochs=8))
    assert trainer.history[-1].test_acc > 0.85  # chance is 0.10


def test_resume_refuses_a_different_run(tmp_path):
    train(tmp_path, small_config(epochs=1))
    other = Trainer(small_config(quantizer="bc"), tmp_path, dataset=DIGITS, show_progress=False)
    with pytest.raises(CheckpointError, match=r"quantizer: checkpoint 'bnn\+\+' vs now 'bc'"):
        other.resume()
    # a longer schedule on resume is allowed
    Trainer(small_config(epochs=5), tmp_path, dataset=DIGITS, show_progress=False).resume()


def test_missing_or_damaged_checkpoint(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint to resume from"):
        Trainer(small_config(), tmp_path, dataset=DIGITS).resume()
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="checkpoint is unreadable"):
        load_checkpoint(tmp_path / CHECKPOINT)


def test_atomic_save_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "c.pt"
    save_atomic({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_atomic({"epoch": 2, "bad": Unpicklable()}, path)
    assert load_checkpoint(path) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp file left behind


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer = Trainer(small_config(), tmp_path, dataset=DIGITS, show_progress=False, verbose=False)
    trainer.fit(stop_after=1)
    good = load_checkpoint(tmp_path / CHECKPOINT)
    # fault injection: the classifier's output blows up from here on (as with a too-high lr)
    trainer.model.features[-1].register_forward_hook(lambda module, inp, out: out * float("inf"))
    with pytest.raises(TrainingDiverged, match=r"loss is nan at epoch 2, step 1.*epoch 1\) is kept"):
        trainer.fit()
    after = load_checkpoint(tmp_path / CHECKPOINT)
    assert after["epoch"] == 1
    for key, value in good["model"].items():
        assert torch.equal(value, after["model"][key])


def test_non_finite_inputs_are_rejected_up_front(tmp_path):
    images = DIGITS.train.images.copy()
    images[5, 3] = np.nan
    broken = Dataset("digits", Split(images, DIGITS.train.labels), DIGITS.test,
                     DIGITS.image_shape, DIGITS.num_classes)
    with pytest.raises(DatasetError, match=r"train split of digits: sample 5 has NaN/inf"):
        Trainer(small_config(), tmp_path, dataset=broken)


def test_sfc_on_real_mnist_beats_95_percent(tmp_path, mnist_dir):
    """The issue's acceptance run, shortened: SFC W1A1 on the official MNIST split."""
    config = TrainConfig(model="sfc", quantizer="bnn", dataset="mnist", data_dir=str(mnist_dir),
                         epochs=2, seed=0)
    trainer = Trainer(config, tmp_path, show_progress=False, verbose=False)
    trainer.fit()
    assert trainer.history[-1].test_acc > 0.95
