"""VISPA: the covariance is PSD with unit diagonal, rank 0 is BinaryConnect with clipping, the
gradient estimator matches finite differences of the expected loss, resume, export."""

import json
from dataclasses import replace

import pytest
import torch

from xnorflow.cli import main
from xnorflow.export.qonnx_export import UnsupportedModelError, check_binary_model
from xnorflow.train.brevitas_quant import clip_latent_weights
from xnorflow.train.configs import VispaConfig
from xnorflow.train.models import BinaryMLP
from xnorflow.train.runs import open_run
from xnorflow.train.vispa import VispaTrainer, _SampledWeight, build_vispa_model, vispa_layers


def test_covariance_stays_psd_with_unit_diagonal_during_training(tmp_path):
    trainer = VispaTrainer(VispaConfig(model="tfc", epochs=1, rank=4, ensemble_samples=0),
                           tmp_path, show_progress=False, verbose=False)
    trainer.fit()
    for layer, vispa in vispa_layers(trainer.model):
        m = layer.parametrizations.weight.original.detach().double()
        vispa = vispa.double()
        if m.numel() > 5000:
            continue  # the eigen-decomposition below is for the small layers
        sigma = vispa.covariance(m).detach()
        m_hat, _ = vispa.normalized(m)
        assert torch.linalg.eigvalsh(sigma).min() > -1e-9
        assert torch.allclose(sigma.diagonal() + m_hat.reshape(-1) ** 2,
                              torch.ones(m.numel(), dtype=torch.float64), atol=1e-9)
        assert vispa.z.abs().max() > 0  # the covariance is not degenerate


def test_rank_zero_is_binaryconnect_with_clipping():
    """The paper's LP special case: latent weights, sign forward, identity STE, clipping."""
    torch.manual_seed(0)
    vispa = build_vispa_model(VispaConfig(model="tfc", rank=0), (64,), 10)
    plain = BinaryMLP(64, 10, [64] * 3, "bc", act_quantizer="approxsign")
    state = {k.replace("parametrizations.weight.original", "weight"): v
             for k, v in vispa.state_dict().items()}
    plain.load_state_dict(state)
    opt_v = torch.optim.SGD(vispa.parameters(), lr=0.5, momentum=0.9)
    opt_p = torch.optim.SGD(plain.parameters(), lr=0.5, momentum=0.9)
    x = torch.where(torch.rand(200, 64) < 0.5, -1.0, 1.0)
    y = torch.randint(0, 10, (200,))
    for step in range(10):
        for model, opt in ((vispa, opt_v), (plain, opt_p)):
            idx = slice(20 * step, 20 * step + 20)
            loss = torch.nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        with torch.no_grad():  # VispaTrainer._after_step for rank 0, and BC's clipping
            for layer, _ in vispa_layers(vispa):
                layer.parametrizations.weight.original.clamp_(-1, 1)
        clip_latent_weights(plain)
    vispa_state = {k.replace("parametrizations.weight.original", "weight"): v
                   for k, v in vispa.state_dict().items()}
    for key, value in plain.state_dict().items():
        assert torch.equal(value, vispa_state[key]), key
    assert max(p.abs().max() for p in plain.parameters()) > 0


def expected_quadratic_loss(m, z, a, b, scale):
    """E_r 1/2 |A (m + Z^T r) - b|^2 with r ~ N(0, I/S): closed form."""
    mean = a @ m - b
    return 0.5 * mean @ mean + 0.5 * torch.trace(a @ z.T @ z @ a.T) / scale


def unit_diagonal(raw_m, raw_z, scale):
    root = (raw_m ** 2 + (raw_z ** 2).sum(0) / scale).sqrt()
    return raw_m / root, raw_z / root


def test_sampled_weight_forward_and_backward_are_the_estimator():
    """On the unit diagonal the forward is w = m + Z^T r; the backward returns g for m and
    sqrt(S) r g^T for Z (Theorem 1's one-draw estimate, with the authors' sqrt(S) scaling)."""
    torch.manual_seed(1)
    n, k, scale = 6, 3, 100.0
    m, z = unit_diagonal(torch.randn(2, n, dtype=torch.float64),
                         torch.randn(k, 2, n, dtype=torch.float64), scale)
    m, z = m.requires_grad_(True), z.requires_grad_(True)
    r = torch.randn(k, dtype=torch.float64) / scale ** 0.5
    w = _SampledWeight.apply(m, z, r, scale, scale ** 0.5)
    assert torch.allclose(w, (m + torch.tensordot(r, z, dims=1)).detach())
    g = torch.randn(2, n, dtype=torch.float64)
    grad_m, grad_z = torch.autograd.grad(w, (m, z), g)
    assert torch.equal(grad_m, g)
    assert torch.allclose(grad_z, scale ** 0.5 * r.view(k, 1, 1) * g)


def test_gradient_estimator_is_unbiased_for_the_expected_loss():
    """Theorem 1 on a smooth loss, through xnorflow's own autograd function: averaged over the
    2K sigma points r = +-sqrt(K/S) e_i (which have exactly the mean 0 and covariance I/S of
    r ~ N(0, I/S)), the gradients :class:`_SampledWeight` returns for m and Z equal the exact
    gradient of E_r 1/2 |A (m + Z^T r) - b|^2 -- exactly, because that loss is quadratic in r.
    Compared with central finite differences of the closed form."""
    torch.manual_seed(2)
    n, k, scale = 4, 3, 100.0
    a, b = torch.randn(2, n, dtype=torch.float64), torch.randn(2, dtype=torch.float64)
    m, z = unit_diagonal(torch.tensor([0.5, -0.3, 0.8, -0.1], dtype=torch.float64),
                         torch.randn(k, n, dtype=torch.float64), scale)
    sigma_points = [sign * (k / scale) ** 0.5 * e
                    for e in torch.eye(k, dtype=torch.float64) for sign in (1, -1)]
    grad_m, grad_z = torch.zeros_like(m), torch.zeros_like(z)
    for r in sigma_points:
        mm, zz = m.clone().requires_grad_(True), z.clone().requires_grad_(True)
        w = _SampledWeight.apply(mm, zz, r, scale, 1.0)  # z_grad_scale 1: plain r g^T
        loss = 0.5 * ((a @ w - b) ** 2).sum()
        gm, gz = torch.autograd.grad(loss, (mm, zz))
        grad_m += gm / len(sigma_points)
        grad_z += gz / len(sigma_points)
    eps = 1e-6
    fd_m = torch.stack([(expected_quadratic_loss(m + eps * e, z, a, b, scale)
                         - expected_quadratic_loss(m - eps * e, z, a, b, scale)) / (2 * eps)
                        for e in torch.eye(n, dtype=torch.float64)])
    fd_z = torch.zeros_like(z)
    for i in range(k):
        for j in range(n):
            e = torch.zeros_like(z)
            e[i, j] = eps
            fd_z[i, j] = (expected_quadratic_loss(m, z + e, a, b, scale)
                          - expected_quadratic_loss(m, z - e, a, b, scale)) / (2 * eps)
    assert torch.allclose(grad_m, fd_m, atol=1e-7)
    assert torch.allclose(grad_z, fd_z, atol=1e-7)
    assert grad_z.abs().max() > 1e-3  # the covariance term is not trivially zero


def test_resume_is_bit_identical(tmp_path):
    config = VispaConfig(model="tfc", epochs=3, rank=2, ensemble_samples=2)
    full = VispaTrainer(config, tmp_path / "full", show_progress=False, verbose=False)
    full.fit()
    VispaTrainer(config, tmp_path / "split", show_progress=False, verbose=False).fit(stop_after=2)
    resumed = VispaTrainer(config, tmp_path / "split", show_progress=False, verbose=False)
    resumed.resume()
    resumed.fit()
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key


def test_trained_model_exports_with_bipolar_weights_and_reports_both_accuracies(tmp_path,
                                                                              capsys):
    run = tmp_path / "run"
    assert main(["train", "--algo", "vispa", "--rank", "4", "--model", "tfc", "--epochs", "2",
                 "--out", str(run), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "ensemble L40 test acc" in out and "deployed sign(m) network" in out
    summary = json.loads((run / "summary.json").read_text())
    assert summary["deployed_sign_m_test_acc"] == summary["final_test_acc"] > 0.3
    assert 0.3 < summary["ensemble_L40_test_acc"] <= 1.0
    assert main(["export", str(run), "--verify", "360", "--no-progress"]) == 0
    assert "argmax 360/360 identical" in capsys.readouterr().out
    import onnx
    graph = onnx.load(run / "model.qonnx.onnx").graph
    quant_ops = {n.op_type for n in graph.node if "Quant" in n.op_type}
    assert quant_ops == {"BipolarQuant"}


def test_weights_only_binarization_trains_and_is_refused_by_export(tmp_path):
    # one epoch of W1A32 (the authors' recipe: rank 8, lr 0.1, float [0, 1] pixels) with a
    # per-class affine head on digits; the test is about the export refusal
    trainer = VispaTrainer(VispaConfig(model="tfc", epochs=1, activations="float",
                                       ensemble_samples=0,
                                       head="batch-norm"), tmp_path,
                           show_progress=False, verbose=False)
    history = trainer.fit()
    assert history[-1].test_acc > 0.3
    assert (trainer.config.rank, trainer.config.lr) == (8, 0.1)
    model = open_run(tmp_path).model()
    # the pixels reach the first binary layer as they are (a sign would make them all +1)
    pixels = torch.rand(2, 64)
    assert torch.equal(model.features[0](pixels), pixels)
    with pytest.raises(UnsupportedModelError, match="ReLU"):
        check_binary_model(model)


def test_defaults_follow_the_authors_settings_for_binary_and_float_activations():
    binary = VispaConfig()
    assert (binary.rank, binary.lr, binary.weight_decay) == (4, 0.5, 1e-5)
    weights_only = VispaConfig(activations="float")
    assert (weights_only.rank, weights_only.lr, weights_only.weight_decay) == (8, 0.1, 5e-4)
    assert VispaConfig(activations="float", lr=0.3).lr == 0.3  # an explicit value wins
    assert (binary.binarization, weights_only.binarization) == ("threshold", "none")
    assert VispaConfig(activations="float", binarization="threshold").binarization == "threshold"


def test_ensemble_every_epoch_records_the_authors_best_epoch_and_resumes_bit_identically(
        tmp_path):
    config = VispaConfig(model="tfc", epochs=3, rank=2, ensemble_samples=3,
                         ensemble_eval="every-epoch")
    full = VispaTrainer(config, tmp_path / "full", show_progress=False, verbose=False)
    history = full.fit()
    accuracies = [r.ensemble_test_acc for r in history]
    assert all(0.1 < a <= 1.0 for a in accuracies)
    summary = json.loads((tmp_path / "full" / "summary.json").read_text())
    assert summary["best_epoch_ensemble_L3_test_acc"] == max(accuracies)
    assert history[summary["best_ensemble_epoch"] - 1].ensemble_test_acc == max(accuracies)
    assert summary["ensemble_L3_test_acc"] == accuracies[-1]
    with open(tmp_path / "full" / "metrics.csv") as f:
        assert "ensemble_test_acc" in f.readline()
    split = VispaTrainer(config, tmp_path / "split", show_progress=False, verbose=False)
    split.fit(stop_after=1)
    resumed = VispaTrainer(config, tmp_path / "split", show_progress=False, verbose=False)
    resumed.resume()
    resumed.fit()
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    assert [r.ensemble_test_acc for r in resumed.history] == accuracies
    # evaluating the ensemble does not change what is learnt
    final_only = VispaTrainer(replace(config, ensemble_eval="final"), tmp_path / "final",
                              show_progress=False, verbose=False)
    final_only.fit()
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, final_only.model.state_dict()[key]), key
