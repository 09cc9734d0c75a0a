"""The ProxConnect++ trainer on the shared loop: determinism, bit-identical resume (also at
another thread count, and from the checkpoint's own configuration), atomic checkpoints,
divergence handling, refusals that lose nothing."""

import csv
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from xnorflow.errors import OutputConflict
from xnorflow.stages.train import resume_run, train_run
from xnorflow.train.configs import ConfigError, TrainConfig
from xnorflow.train.data import Dataset, DatasetError, Split, load_dataset
from xnorflow.train.runs import CHECKPOINT, RunRecordError, load_record, open_run, save_record
from xnorflow.train.trainer import Trainer, TrainingDiverged, evaluate

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


def test_resume_is_bit_identical_even_at_another_thread_count(tmp_path):
    """The run records its thread count (float sums are split across threads) and a resumed
    run uses it, whatever the process was set to."""
    straight = train(tmp_path / "straight")
    interrupted = Trainer(small_config(), tmp_path / "split", dataset=DIGITS,
                          show_progress=False, verbose=False)
    interrupted.fit(stop_after=2)  # the run stops after epoch 2 of 3
    assert load_record(tmp_path / "split" / CHECKPOINT)["epoch"] == 2
    assert not (tmp_path / "split" / "model.pt").exists()  # written when the run finishes
    threads = torch.get_num_threads()
    torch.set_num_threads(1 if threads > 1 else 2)
    try:
        resumed = train(tmp_path / "split", resume=True)
    finally:
        torch.set_num_threads(threads)
    assert resumed.config.threads == straight.config.threads == threads
    assert len(resumed.history) == 3
    assert_same_state(straight, resumed)
    assert strip_time(resumed.history) == strip_time(straight.history)


@pytest.mark.parametrize("augment", ["shift", "affine"])
def test_moved_images_resume_bit_identically_and_change_what_is_learnt(tmp_path, augment):
    shifted = small_config(augment=augment, epochs=2)
    straight = train(tmp_path / "straight", shifted)
    interrupted = Trainer(shifted, tmp_path / "split", dataset=DIGITS, show_progress=False,
                          verbose=False)
    interrupted.fit(stop_after=1)
    resumed = train(tmp_path / "split", shifted, resume=True)
    assert_same_state(straight, resumed)
    assert strip_time(resumed.history) == strip_time(straight.history)
    unshifted = train(tmp_path / "none", small_config(augment="none", epochs=2))
    assert not torch.equal(straight.model.state_dict()["features.1.weight"],
                           unshifted.model.state_dict()["features.1.weight"])


def test_resume_takes_the_configuration_from_the_checkpoint(tmp_path):
    """`xnorflow train --resume --out RUN` alone continues a run trained with non-default
    options; options that would change the result are refused with the differences."""
    config = small_config(model="sfc", quantizer="bc", act_quantizer="bnn", epochs=2)
    Trainer(config, tmp_path, dataset=DIGITS, show_progress=False,
            verbose=False).fit(stop_after=1)
    with pytest.raises(RunRecordError) as err:
        resume_run(tmp_path, {"epochs": 5, "lr": 0.1}, progress=False)
    message = str(err.value)
    assert "--epochs: the run has 2, now 5 (the learning-rate and mu schedules" in message
    assert "--lr: the run has 0.005, now 0.1" in message
    assert load_record(tmp_path / CHECKPOINT)["epoch"] == 1  # nothing touched
    outcome = resume_run(tmp_path, {"model": "sfc", "epochs": 2}, progress=False)
    assert outcome.resumed_from == 1 and len(outcome.history) == 2
    assert outcome.config == replace(config, threads=outcome.config.threads)
    assert open_run(tmp_path).describe() == "SFC W1A1 (bc/bnn, digits)"


def test_resume_refuses_other_data(tmp_path):
    train(tmp_path, small_config(epochs=1))
    shuffled = Dataset("digits", Split(DIGITS.train.images[::-1].copy(),
                                       DIGITS.train.labels[::-1].copy()), DIGITS.test,
                       DIGITS.image_shape, DIGITS.num_classes)
    with pytest.raises(RunRecordError, match="trained on other data"):
        Trainer(small_config(epochs=1), tmp_path, dataset=shuffled).resume()


def test_outputs_logs_plot_and_model(tmp_path):
    trainer = train(tmp_path)
    rows = list(csv.DictReader(open(tmp_path / "metrics.csv")))
    assert [int(r["epoch"]) for r in rows] == [1, 2, 3]
    assert "mu" in rows[0] and float(rows[-1]["mu"]) > float(rows[0]["mu"])
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["epochs_trained"] == 3 and summary["algo"] == "proxconnect"
    assert summary["final_test_acc"] == trainer.history[-1].test_acc
    run = open_run(tmp_path)
    assert run.algo == "proxconnect" and run.record["content"] == "model"
    x, y = torch.from_numpy(DIGITS.test.images), torch.from_numpy(DIGITS.test.labels)
    assert evaluate(run.model(), x, y)[1] == trainer.history[-1].test_acc


def test_digits_training_learns(tmp_path):
    trainer = train(tmp_path, small_config(model="sfc", quantizer="bnn", epochs=8))
    assert trainer.history[-1].test_acc > 0.85  # chance is 0.10


def test_resume_refuses_a_different_run(tmp_path):
    train(tmp_path, small_config(epochs=1))
    other = Trainer(small_config(quantizer="bc", epochs=1), tmp_path, dataset=DIGITS,
                    show_progress=False)
    with pytest.raises(RunRecordError, match=r"--quantizer: the run has 'bnn\+\+', now 'bc'"):
        other.resume()


def test_a_run_folder_is_never_overwritten(tmp_path):
    """A second run into a finished run's folder, or a run into a folder of the user's, is
    refused before anything is written."""
    train(tmp_path / "run", small_config(epochs=1))
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(RunRecordError, match="already holds a run; pass --resume"):
        train_run(small_config(epochs=1), tmp_path / "run", progress=False)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.pt").write_text("my own model")
    with pytest.raises(OutputConflict, match="already holds files xnorflow did not write"):
        train_run(small_config(epochs=1), mine, progress=False)
    assert sorted(p.name for p in mine.iterdir()) == ["model.pt"]
    assert (mine / "model.pt").read_text() == "my own model"


def test_missing_damaged_and_foreign_records(tmp_path):
    with pytest.raises(RunRecordError, match="no checkpoint.pt to resume from"):
        resume_run(tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"not a checkpoint")
    with pytest.raises(RunRecordError, match="not a PyTorch file, or a damaged"):
        load_record(tmp_path / CHECKPOINT)
    torch.save(torch.nn.Linear(3, 2).state_dict(), tmp_path / "model.pt")
    with pytest.raises(RunRecordError, match="a bare PyTorch state_dict .* not an xnorflow run"):
        open_run(tmp_path)
    torch.save(torch.nn.Linear(3, 2), tmp_path / "model.pt")  # a pickled module: code
    with pytest.raises(RunRecordError, match="holds a torch.nn.modules.linear.Linear object"):
        open_run(tmp_path)


def test_atomic_save_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "c.pt"
    save_record({"epoch": 1}, path)

    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_record({"epoch": 2, "bad": Unpicklable()}, path)
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temp file left behind


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    trainer = Trainer(small_config(), tmp_path, dataset=DIGITS, show_progress=False, verbose=False)
    trainer.fit(stop_after=1)
    good = load_record(tmp_path / CHECKPOINT)
    # fault injection: the classifier's output blows up from here on (as with a too-high lr)
    trainer.model.features[-1].register_forward_hook(lambda module, inp, out: out * float("inf"))
    with pytest.raises(TrainingDiverged,
                       match=r"loss is nan at epoch 2, step 1.*epoch 1\) is kept"):
        trainer.fit()
    after = load_record(tmp_path / CHECKPOINT)
    assert after["epoch"] == 1
    for key, value in good["model"].items():
        assert torch.equal(value, after["model"][key])


def test_bad_inputs_are_rejected_before_training(tmp_path):
    images = DIGITS.train.images.copy()
    images[5, 3] = np.nan
    broken = Dataset("digits", Split(images, DIGITS.train.labels), DIGITS.test,
                     DIGITS.image_shape, DIGITS.num_classes)
    with pytest.raises(DatasetError, match=r"train split of digits: sample 5 has NaN/inf"):
        Trainer(small_config(), tmp_path, dataset=broken)
    labels = DIGITS.test.labels.copy()
    labels[7] = 10
    with pytest.raises(DatasetError, match=r"test split of digits: label 10 at index 7 is "
                                           r"outside 0..9"):
        Trainer(small_config(), tmp_path, dataset=Dataset(
            "digits", DIGITS.train, Split(DIGITS.test.images, labels), DIGITS.image_shape, 10))
    for bad in ({"epochs": 0}, {"batch_size": 0}, {"lr": 0.0}, {"dropout": 1.0},
                {"seed": -1}, {"model": "xfc"}):
        with pytest.raises(ConfigError):
            small_config(**bad)
    assert not any(tmp_path.iterdir())


def test_sfc_on_real_mnist_beats_95_percent(mnist_sfc_run):
    """The issue's acceptance run, shortened: SFC W1A1 on the official MNIST split."""
    summary = json.loads((mnist_sfc_run / "summary.json").read_text())
    assert summary["final_test_acc"] > 0.95


def test_runs_recorded_before_the_head_option_open_with_their_batch_norm_head(tmp_path):
    """Runs written before ``--head`` existed had a per-class BatchNorm1d; they still open, as
    batch-norm, while new runs default to TensorNorm."""

    from brevitas_examples.bnn_pynq.models.tensor_norm import TensorNorm

    from xnorflow.train.models import build_model
    from xnorflow.train.runs import config_of, new_record, save_record

    assert TrainConfig().head == "tensor-norm"
    assert isinstance(build_model("tfc", 64, 10).features[-1], TensorNorm)
    old_model = build_model("tfc", 64, 10, head="batch-norm")
    record = new_record("model", TrainConfig(model="tfc", head="batch-norm"), (64,), 10,
                        model=old_model.state_dict())
    del record["config"]["head"]  # as the earlier version wrote it
    assert config_of(record).head == "batch-norm"
    (tmp_path / "run").mkdir()
    save_record(record, tmp_path / "run" / "model.pt")
    model = open_run(tmp_path / "run").model()
    assert isinstance(model.features[-1], torch.nn.BatchNorm1d)
    images = torch.ones(3, 64)
    assert torch.equal(model(images), old_model.eval()(images))


def test_bc_and_pc_default_to_bnn_activations_and_the_record_names_them(tmp_path):
    """Identity backward through sign activations stalls at ~94 % (BENCHMARKS.md), so bc and pc
    train their activations with BNN's STE unless told otherwise; the run record says so."""
    from xnorflow.train.runs import config_of, new_record

    assert TrainConfig(quantizer="bc").act_quantizer == "bnn"
    assert TrainConfig(quantizer="pc").act_quantizer == "bnn"
    assert TrainConfig(quantizer="bnn++").act_quantizer == "bnn++"
    assert TrainConfig(quantizer="bc", act_quantizer="bc").act_quantizer == "bc"
    run = train_run(small_config(quantizer="bc", act_quantizer=None, epochs=1), tmp_path / "bc",
                    progress=False)
    summary = json.loads((tmp_path / "bc" / "summary.json").read_text())
    assert summary["config"]["act_quantizer"] == "bnn"
    assert run.history
    # a bc run recorded before the default changed (act_quantizer None) keeps bc activations
    record = new_record("model", small_config(quantizer="bc", act_quantizer="bc"), (64,), 10)
    record["config"]["act_quantizer"] = None
    assert config_of(record).act_quantizer == "bc"
