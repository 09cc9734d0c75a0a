"""The test images every check runs: a seeded stratified order, so that any N of them hold every
class even when the test set is sorted by class."""

import json

import numpy as np
import pytest

from xnorflow.export.run_export import Reference, reference_for
from xnorflow.export.sampling import describe_sample, stratified_order
from xnorflow.stages.export import export_stage
from xnorflow.train.data import load_dataset
from xnorflow.train.models import model_inputs
from xnorflow.train.runs import open_run

SORTED = np.repeat(np.arange(10), 50)  # 10 classes x 50 images, sorted by class


def class_counts(labels: np.ndarray, classes: int) -> np.ndarray:
    return np.bincount(labels, minlength=classes)


def test_the_order_is_a_permutation_of_the_test_set():
    order = stratified_order(SORTED)
    assert order.dtype.kind == "i" and sorted(order) == list(range(len(SORTED)))


def test_every_prefix_of_a_class_sorted_set_holds_every_class():
    labels = SORTED[stratified_order(SORTED)]
    assert sorted(labels[:10]) == list(range(10))  # one of each class first
    for length in range(10, len(labels) + 1):
        assert len(np.unique(labels[:length])) == 10, length


@pytest.mark.parametrize("length", [10, 17, 25, 99, 200, 333, 500])
def test_prefixes_hold_the_classes_in_proportion(length):
    labels = SORTED[stratified_order(SORTED)]
    exact = length / 10
    assert np.abs(class_counts(labels[:length], 10) - exact).max() <= 1


def test_unequal_classes_are_all_there_and_in_proportion():
    sizes = np.array([3, 7, 40, 100, 250])
    labels = np.repeat(np.arange(5), sizes)
    order = stratified_order(labels, seed=5)
    assert sorted(order) == list(range(len(labels)))
    for length in (5, 12, 50, 150, 399):
        counts = class_counts(labels[order[:length]], 5)
        share = length * sizes / sizes.sum()
        assert (counts >= 1).all()
        # the bound of the r / n_c keys: at most one over the share, at most K n_c / N under
        assert (counts <= share + 1).all() and (counts >= share - 5 * sizes / sizes.sum()).all()


def test_the_seed_fixes_the_order():
    assert np.array_equal(stratified_order(SORTED, seed=3), stratified_order(SORTED, seed=3))
    assert not np.array_equal(stratified_order(SORTED, seed=3), stratified_order(SORTED, seed=4))
    assert np.array_equal(stratified_order(SORTED), stratified_order(SORTED, seed=0))


def test_labels_need_not_be_0_to_k():
    labels = np.array([7, 7, 7, 3, 3, 3, 42, 42, 42])
    assert sorted(labels[stratified_order(labels)][:3]) == [3, 7, 42]
    assert len(stratified_order(np.array([], dtype=np.int64))) == 0


def test_the_description_names_the_sample():
    labels = SORTED[stratified_order(SORTED)]
    assert describe_sample(labels[:25], 500, 0) == (
        "seeded stratified sample (seed 0) of 25 of the 500 test images: 10 classes, per class "
        "2..3")
    assert describe_sample(labels, 500, 0).startswith(
        "all 500 test images, in a seeded stratified order (seed 0)")


def test_a_prefix_of_a_reference_keeps_its_test_set_indices():
    images = np.zeros((6, 4), np.float32)
    whole = Reference(images, np.arange(6) % 3, np.zeros((6, 3)), 60,
                      np.array([9, 4, 51, 2, 30, 7]), seed=0)
    prefix = whole.first(4)
    assert prefix.indices.tolist() == [9, 4, 51, 2] and prefix.test_set_size == 60
    record = prefix.sample_record()
    assert record["test_set_indices"] == [9, 4, 51, 2] and record["seed"] == 0
    assert record["description"].startswith("seeded stratified sample (seed 0) of 4 of the 60")
    # a reference made by hand: the images in test-set order
    plain = Reference(images, np.arange(6) % 3, np.zeros((6, 3)), 6)
    assert plain.indices.tolist() == list(range(6))
    assert plain.describe_sample().startswith("first 6 of the 6 test images")


def test_reference_for_samples_every_class_of_the_run_data(digits_tfc_run):
    run = open_run(digits_tfc_run)
    model = run.model()
    reference = reference_for(run, model, 20, None)
    assert len(np.unique(reference.labels)) == 10
    assert len(reference.indices) == 20 and len(set(reference.indices.tolist())) == 20
    # the labels and images are those of the recorded test-set indices
    test = load_dataset(run.config.dataset, None, run.config.binarization).test
    assert np.array_equal(reference.labels, test.labels[reference.indices])
    assert np.array_equal(reference.images, model_inputs(model, test.images[reference.indices]))
    # a prefix of a larger sample: the checks of different sizes share their first images
    larger = reference_for(run, model, 100, None)
    assert np.array_equal(larger.indices[:20], reference.indices)


def test_reference_for_more_images_than_the_test_set_holds_all(digits_tfc_run):
    run = open_run(digits_tfc_run)
    reference = reference_for(run, run.model(), 100_000, None)
    assert len(reference.labels) == reference.test_set_size == 360
    assert sorted(reference.indices.tolist()) == list(range(360))
    assert reference.describe_sample().startswith("all 360 test images")


def test_the_export_report_records_the_sample(digits_tfc_run, tmp_path):
    export_stage(digits_tfc_run, tmp_path / "m.onnx", verify=30, progress=False)
    report = json.loads((tmp_path / "m.verify.json").read_text())
    sample = report["sample"]
    assert report["images"] == 30 and len(sample["test_set_indices"]) == 30
    assert sample["seed"] == 0 and sample["test_set_images"] == 360
    assert sample["description"] == ("seeded stratified sample (seed 0) of 30 of the 360 test "
                                     "images: 10 classes, per class 3..3")
