"""Local binary trainer (Colombo et al.): semantics of one step, reference == bit-packed over many
steps, trainer resume, real-data accuracy, and the export into Brevitas/QONNX."""

import numpy as np
import pytest
import torch

from xnorflow.stages.train import resume_run
from xnorflow.train.configs import LocalBinaryConfig
from xnorflow.train.data import load_dataset
from xnorflow.train.local_binary import reference
from xnorflow.train.local_binary.brevitas_model import to_brevitas
from xnorflow.train.local_binary.model import (
    BMLPError,
    BMLPShape,
    BMLPState,
    default_group_sizes,
    init_state,
    predict,
    readout,
    reinforcement_draws,
    reinforcement_threshold,
    stream_key,
)
from xnorflow.train.local_binary.packed import PackedBMLP, pack_inputs
from xnorflow.train.local_binary.trainer import LocalBinaryTrainer, epoch_order
from xnorflow.train.runs import RunRecordError


def random_bipolar(rng, shape):
    return np.where(rng.random(shape) < 0.5, -1, 1).astype(np.int8)


def assert_same_steps(shape, x, y, steps, batch, seed=5, train_acc=0.3, rng_seed=0):
    """Run the reference and the bit-packed step side by side; compare after every step."""
    rng = np.random.default_rng(rng_seed)
    ref = init_state(shape, seed)
    packed = PackedBMLP(ref.copy())
    thresholds = [reinforcement_threshold(0.5, train_acc, f) for f in shape.fan_ins]
    total_marked = 0
    for step in range(steps):
        idx = rng.choice(len(y), batch, replace=False)
        r_ref = reference.train_step(ref, x[idx], y[idx], thresholds, step, seed)
        r_fast = packed.train_step(x[idx], pack_inputs(x[idx]), y[idx], thresholds, step, seed)
        fast = packed.to_state()
        for layer, (a, b) in enumerate(zip(ref.weights, fast.weights)):
            assert np.array_equal(a, b), f"step {step}, layer {layer}: hidden weights differ"
        assert np.array_equal(r_ref.predictions, r_fast.predictions), f"step {step}"
        assert r_ref.wrong_samples == r_fast.wrong_samples, f"step {step}"
        assert r_ref.updated_neurons == r_fast.updated_neurons, f"step {step}"
        total_marked += sum(r_ref.updated_neurons)
    return ref, total_marked


# ------------------------------------------------------------------------------ one step's rules
def test_wrong_samples_use_argmax_and_the_top2_margin():
    o = np.array([[9, 1, 1],     # right, margin 8
                  [5, 3, 1],     # right, margin 2 < 4 -> wrong
                  [1, 7, 1],     # argmax 1 != 0 -> wrong
                  [6, 6, 0]])    # tie: argmax 0, margin 0 -> wrong
    y = np.array([0, 0, 0, 0])
    assert reference.wrong_samples(o, y, margin=4).tolist() == [False, True, True, True]
    assert reference.wrong_samples(o, y, margin=0).tolist() == [False, False, True, False]


def test_only_the_least_wrong_neuron_of_each_group_is_marked():
    h = np.array([[-5, -1, 3, -7, -2, 4, -9]])
    t = np.array([[1, 1, 1, 1, -1, 1, 1]])  # wrong: h*t < 0 -> neurons 0, 1, 3, 6
    mask = reference.marked_neurons(h, t, group_size=3)  # groups [0,1,2] [3,4,5] [6]
    assert mask.astype(int).tolist() == [[0, 1, 0, 1, 0, 0, 1]]
    # ties go to the lowest index; a group without a wrong neuron marks nothing
    mask = reference.marked_neurons(np.array([[-2, -2, 5]]), np.ones((1, 3), int), 3)
    assert mask.astype(int).tolist() == [[1, 0, 0]]
    assert not reference.marked_neurons(np.array([[2, 3]]), np.ones((1, 2), int), 2).any()


def test_update_moves_marked_neurons_towards_their_target():
    shape = BMLPShape(6, (3,), 2, (3,), margin_ratio=0.0)
    state = BMLPState(shape, [np.array([[1, 1, 1]] * 6, np.int32)],
                      [np.array([[1, -1], [-1, 1], [1, -1]], np.int8)])
    x = np.array([[1, 1, 1, 1, 1, -1]], np.int8)   # H = 4 for every neuron, A = +1
    y = np.array([1])                               # O = A.B = [1, -1]: wrong (class 0 wins)
    result = reference.train_step(state, x, y, [0], step=0, seed=0)
    assert result.wrong_samples == [1] and result.updated_neurons == [1]
    # target B[:, 1] = [-1, 1, -1]: neurons 0 and 2 are wrong with |H| = 4 -> the first is
    # marked, and W[:, 0] += 2 * x * (-1)
    assert state.weights[0][:, 0].tolist() == [-1, -1, -1, -1, -1, 3]
    assert state.weights[0][:, 1:].tolist() == [[1, 1]] * 6


def test_hidden_weights_start_odd_and_stay_odd_within_saturation():
    shape = BMLPShape(64, (35, 21), 10, (7, 21), weight_bits=8)
    rng = np.random.default_rng(0)
    x, y = random_bipolar(rng, (400, 64)), rng.integers(0, 10, 400)
    state, _ = assert_same_steps(shape, x, y, steps=60, batch=50, train_acc=0.0)
    for w in state.weights:
        assert w.dtype == np.int32 and (w % 2 == 1).all()
        assert np.abs(w).max() == shape.weight_limit == 127  # saturation was reached, kept odd


def test_reinforcement_probability_and_draws():
    # p = 0.5 * sqrt(1 - 0.75) * sqrt(2 / (pi * 784)), as a 16-bit threshold
    assert reinforcement_threshold(0.5, 0.75, 784) == int(0.25 * np.sqrt(2 / (np.pi * 784)) * 65536)
    assert reinforcement_threshold(0.5, 1.0, 784) == 0
    draws = reinforcement_draws(stream_key(3, 7, 0), 784, 525)
    assert draws.shape == (784, 525) and draws.dtype == np.uint16
    threshold = reinforcement_threshold(0.5, 0.0, 784)
    rate = (draws < threshold).mean()
    assert abs(rate - threshold / 65536) < 0.002   # 411,600 draws: 10 standard deviations
    assert not np.array_equal(draws, reinforcement_draws(stream_key(3, 8, 0), 784, 525))


def test_group_sizes_default_to_the_papers_and_bad_shapes_are_refused():
    assert default_group_sizes((525, 525)) == (105, 105)
    with pytest.raises(BMLPError, match="no published group size for width"):
        default_group_sizes((100,))
    with pytest.raises(BMLPError, match="group size"):
        BMLPShape(10, (5,), 2, (7,))
    with pytest.raises(BMLPError, match="weight_bits"):
        BMLPShape(10, (5,), 2, (5,), weight_bits=40)


# ---------------------------------------------------------------- reference == bit-packed
@pytest.mark.parametrize("in_features, widths, groups, batch", [
    (100, (35, 21), (7, 21), 77),     # groups divide the widths, odd batch
    (64, (33, 17), (10, 4), 130),     # last groups shorter, batch over two 64-bit words
    (130, (75,), (75,), 64),          # one layer, input over three words
])
def test_packed_step_is_bit_identical_to_the_reference_on_random_data(in_features, widths,
                                                                       groups, batch):
    rng = np.random.default_rng(1)
    shape = BMLPShape(in_features, widths, 10, groups)
    x, y = random_bipolar(rng, (1000, in_features)), rng.integers(0, 10, 1000)
    _, marked = assert_same_steps(shape, x, y, steps=100, batch=batch)
    assert marked > 1000  # the steps really updated weights


def test_packed_step_is_bit_identical_to_the_reference_on_mnist_batches(mnist_dir):
    data = load_dataset("mnist", mnist_dir, "median")
    x, y = data.train.images[:3000].astype(np.int8), data.train.labels[:3000]
    shape = BMLPShape(784, (135, 75), 10, (45, 75))  # 784 inputs: even fan-in, ties possible
    _, marked = assert_same_steps(shape, x, y, steps=30, batch=100)
    assert marked > 500


# ------------------------------------------------------------------------------ trainer
def small_config(**changes):
    return LocalBinaryConfig(**{"widths": [35, 35], "epochs": 3, "seed": 2, **changes})


def test_resume_is_bit_identical_with_either_engine_and_any_thread_count(tmp_path):
    """Integer arithmetic: a run may be split, lengthened on resume, switch engines and thread
    counts, and still equal the uninterrupted run bit for bit."""
    full = LocalBinaryTrainer(small_config(), tmp_path / "full", show_progress=False,
                              verbose=False)
    full.fit()
    LocalBinaryTrainer(small_config(epochs=2, threads=2), tmp_path / "split",
                       show_progress=False, verbose=False).fit()
    outcome = resume_run(tmp_path / "split", {"epochs": 3, "engine": "reference", "threads": 1},
                         progress=False)
    assert outcome.resumed_from == 2 and outcome.config.engine == "reference"
    resumed = LocalBinaryTrainer(outcome.config, tmp_path / "split", show_progress=False)
    resumed.resume()
    for a, b in zip(full.state.weights, resumed.state.weights):
        assert np.array_equal(a, b)
    assert [r.train_acc for r in full.history] == [r.train_acc for r in outcome.history]
    for name in ("checkpoint.pt", "model.pt", "metrics.csv", "curves.png", "summary.json"):
        assert (tmp_path / "split" / name).is_file()


def test_epoch_order_is_the_trainers_order():
    """One function orders the samples for the trainer and the HLS C simulation."""
    assert np.array_equal(epoch_order(3, 0, 10), np.random.default_rng([3, 0]).permutation(10))
    assert not np.array_equal(epoch_order(3, 0, 100), epoch_order(3, 1, 100))


def test_resume_refuses_another_run(tmp_path):
    LocalBinaryTrainer(small_config(epochs=1), tmp_path, show_progress=False,
                       verbose=False).fit()
    other = LocalBinaryTrainer(small_config(widths=[75, 75]), tmp_path, show_progress=False,
                               verbose=False)
    with pytest.raises(RunRecordError, match="--widths: the run has"):
        other.resume()


def test_fashion_mnist_with_the_papers_protocol_learns(fashion_dir, tmp_path):
    """Paper protocol: 50k/10k re-split of the training images, median binarization. Two
    epochs of the 135-135 network are far above chance (the paper reaches 85.68 % in 50)."""
    config = LocalBinaryConfig(widths=[135, 135], dataset="fashion-mnist",
                               data_dir=str(fashion_dir), holdout=10000, epochs=2)
    trainer = LocalBinaryTrainer(config, tmp_path, show_progress=False, verbose=False)
    assert len(trainer.dataset.train) == 50000 and len(trainer.val) == 10000
    history = trainer.fit()
    assert history[-1].val_acc > 0.78 and history[-1].test_acc > 0.78


# ------------------------------------------------------------------------------ export
def test_brevitas_model_reproduces_the_readout_on_real_mnist(mnist_dir, tmp_path):
    from xnorflow.export.qonnx_export import check_binary_model, export_qonnx_model
    from xnorflow.export.verify import execute_graph

    config = LocalBinaryConfig(widths=[75, 35], group_sizes=[75, 35], dataset="mnist",
                               data_dir=str(mnist_dir), epochs=1)
    trainer = LocalBinaryTrainer(config, tmp_path, show_progress=False, verbose=False)
    trainer.fit()
    images = trainer.dataset.test.images[:2000]
    expected = readout(trainer.state, images)[-1]
    model = to_brevitas(trainer.state)
    check_binary_model(model)
    with torch.no_grad():
        logits = model(torch.from_numpy(images)).numpy()
    assert np.array_equal(logits, expected.astype(np.float32))  # integer readout, exactly
    assert np.array_equal(logits.argmax(1), predict(trainer.state, images))
    assert (logits.argmax(1) == trainer.dataset.test.labels[:2000]).mean() > 0.8
    wrapper = export_qonnx_model(model)
    assert {n.op_type for n in wrapper.graph.node if "Quant" in n.op_type} == {"BipolarQuant"}
    qonnx_logits = execute_graph(wrapper, images[:300], progress=False)
    assert np.array_equal(qonnx_logits, expected[:300].astype(np.float32))


# ------------------------------------------------------------------- the authors' convention
def authors_step(weights, classifiers, x, y, thresholds, step, seed, margins, groups, limit):
    """The authors' rule written out sample by sample, neuron by neuron (numpy.sign, so
    sign(0) = 0 everywhere), to check the vectorized reference step against."""
    a = x.astype(np.int64)
    for layer, (w, b) in enumerate(zip(weights, classifiers)):
        h = a @ np.sign(w).astype(np.int64)
        act = np.sign(h)
        o = act @ b.astype(np.int64)
        delta = np.zeros_like(w, dtype=np.int64)
        any_wrong = False
        for n in range(len(y)):
            top = np.sort(o[n])
            if o[n].argmax() == y[n] and top[-1] - top[-2] >= margins[layer]:
                continue
            any_wrong = True
            t = b[:, y[n]].astype(np.int64)
            width, gamma = w.shape[1], groups[layer]
            for start in range(0, width, gamma):
                candidates = [j for j in range(start, min(start + gamma, width))
                              if h[n, j] * t[j] < 0]
                if candidates:
                    j = min(candidates, key=lambda k: (abs(h[n, k]), k))
                    delta[:, j] += 2 * a[n] * t[j]
        if any_wrong:
            w += delta.astype(np.int32)
            draws = reinforcement_draws(stream_key(seed, step, layer), *w.shape)
            w += np.where(draws < thresholds[layer], 2 * np.sign(w), 0).astype(np.int32)
            np.clip(w, -limit, limit, out=w)
        a = act


def test_authors_convention_step_follows_their_rule_with_zeros_everywhere():
    """Small integer weights and ternary classifiers, so zero weights, zero pre-activations
    (an even fan-in of 16), zero activations and zero targets all occur."""
    shape = BMLPShape(16, (5, 3), 3, (5, 3), margin_ratio=0.25, weight_bits=6,
                      convention="authors")
    rng = np.random.default_rng(1)
    weights = [rng.integers(-2, 3, size=(16, 5)).astype(np.int32),
               rng.integers(-2, 3, size=(5, 3)).astype(np.int32)]
    classifiers = [rng.integers(-1, 2, size=(5, 3)).astype(np.int8),
                   rng.integers(-1, 2, size=(3, 3)).astype(np.int8)]
    state = BMLPState(shape, [w.copy() for w in weights], classifiers)
    mine = [w.copy() for w in weights]
    thresholds = [reinforcement_threshold(0.5, 0.0, f) * 40 for f in shape.fan_ins]
    x, y = random_bipolar(rng, (200, 16)), rng.integers(0, 3, 200)
    seen_zero_activation = False
    for step in range(20):
        idx = slice(10 * step, 10 * step + 10)
        seen_zero_activation |= (readout(state, x[idx])[0] == 0).any() or \
            (np.sign(x[idx] @ np.sign(state.weights[0])) == 0).any()
        reference.train_step(state, x[idx], y[idx], thresholds, step, seed=2)
        authors_step(mine, classifiers, x[idx], y[idx], thresholds, step, 2, shape.margins,
                     shape.group_sizes, shape.weight_limit)
        for ours, theirs in zip(state.weights, mine):
            assert np.array_equal(ours, theirs), f"step {step}"
    assert seen_zero_activation
    assert all((w == 0).any() for w in weights)  # zero weights took part
    assert predict(state, x).tolist() == [int(np.argmax(o)) for o in readout(state, x)[-1]]


def test_authors_convention_initialization_configuration_and_refusals(tmp_path, capsys):
    from xnorflow.cli import main
    from xnorflow.train.configs import ConfigError

    shape = BMLPShape(784, (525, 525), 10, (105, 105), convention="authors")
    state = init_state(shape, 0)
    zeros = np.mean([(w == 0).mean() for w in state.weights])
    assert 0.008 < zeros < 0.018                           # int(N(0, 64^2)): ~1.25 % zeros
    assert (state.weights[0] % 2 == 0).mean() > 0.45        # even values are drawn too
    classifier_zeros = np.mean([(b == 0).mean() for b in state.classifiers])
    assert 0.004 < classifier_zeros < 0.025 and set(np.unique(state.classifiers[0])) == {-1, 0, 1}
    bipolar = init_state(BMLPShape(784, (525, 525), 10, (105, 105)), 0)
    assert all((w % 2 == 1).all() for w in bipolar.weights)
    assert all(set(np.unique(b)) == {-1, 1} for b in bipolar.classifiers)

    assert LocalBinaryConfig(convention="authors").engine == "reference"
    assert LocalBinaryConfig().engine == "packed"
    with pytest.raises(ConfigError, match="use --engine reference"):
        LocalBinaryConfig(convention="authors", engine="packed")
    with pytest.raises(BMLPError, match="needs --engine reference"):
        PackedBMLP(state)

    run = tmp_path / "run"
    assert main(["train", "--algo", "local-binary", "--convention", "authors", "--widths",
                 "35,35", "--epochs", "20", "--out", str(run), "--no-progress"]) == 0
    summary = __import__("json").loads((run / "summary.json").read_text())
    assert summary["config"]["convention"] == "authors" and summary["final_test_acc"] > 0.5  # 73 %
    capsys.readouterr()
    assert main(["export", str(run), "--no-progress"]) != 0
    err = capsys.readouterr().err
    assert "ternary" in err and "--convention bipolar" in err and "Traceback" not in err
    assert not (run / "model.qonnx.onnx").exists()
    assert main(["hls", "--trainer", str(run), "--out", str(tmp_path / "hls")]) != 0
    assert "--convention bipolar" in capsys.readouterr().err


def test_the_run_thread_count_also_bounds_numpy_blas():
    """The reference step multiplies with NumPy's BLAS; --threads must bound its pool too."""
    from threadpoolctl import threadpool_info

    from xnorflow.train.loop import cpu_threads

    with cpu_threads(1):
        pools = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert pools and all(p["num_threads"] == 1 for p in pools)
