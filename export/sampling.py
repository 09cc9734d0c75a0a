"""The order in which checks take test images: a seeded, stratified permutation of the test set.

Test sets can be sorted by class (Fashion-MNIST's IDX files, a folder exported class by class),
so "the first N test images" may hold one class only. Every check that runs N images takes the
first N of :func:`stratified_order` instead: every prefix of it holds the classes in proportion
to their counts, and the first K (K classes) hold one image of each.
"""

from __future__ import annotations

import numpy as np

SAMPLE_SEED = 0  # fixed, so that a check run twice sees the same images


def stratified_order(labels: np.ndarray, seed: int = SAMPLE_SEED) -> np.ndarray:
    """A seeded permutation of ``range(len(labels))`` whose every prefix is stratified.

    Each class is shuffled; its r-th image (0-based, of n_c) gets the key r / n_c, and the
    images are sorted by key, ties broken by a seeded order of the classes. A prefix of length
    L >= K then holds every class at least once, and each class c at most one image more than
    its share L * n_c / N and at most K * n_c / N fewer (within one for equal classes)."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    classes = np.unique(labels)
    tie_rank = rng.permutation(len(classes))  # which class goes first among equal keys
    keys = np.empty(len(labels), dtype=np.float64)
    ties = np.empty(len(labels), dtype=np.int64)
    for rank, cls in zip(tie_rank, classes):
        members = rng.permutation(np.flatnonzero(labels == cls))
        keys[members] = np.arange(len(members)) / len(members)
        ties[members] = rank
    return np.lexsort((ties, keys))  # the last key is the primary one


def describe_sample(labels: np.ndarray, test_set_size: int, seed: int | None) -> str:
    """One line on which test images a check ran, e.g. "seeded stratified sample (seed 0) of
    200 of the 10000 test images: 10 classes, per class 18..23". ``seed`` None: the images
    were taken in test-set order."""
    _, counts = np.unique(labels, return_counts=True)
    classes = (f"{len(counts)} classes, per class {counts.min()}..{counts.max()}" if len(counts)
               else "no images")
    if seed is None:
        return f"first {len(labels)} of the {test_set_size} test images: {classes}"
    if len(labels) == test_set_size:
        return (f"all {test_set_size} test images, in a seeded stratified order (seed {seed}): "
                f"{classes}")
    return (f"seeded stratified sample (seed {seed}) of {len(labels)} of the {test_set_size} "
            f"test images: {classes}")
