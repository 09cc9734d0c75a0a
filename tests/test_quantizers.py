"""Forward values and backward gradients of every ProxConnect++ pair against hand-computed
values."""

import math

import pytest
import torch

from xnorflow.train.pairs import PAIRS, pair_for
from xnorflow.train.quantizers import (
    binary_sign,
    forward_value,
    prox_binary,
    quantize,
    sign_swish,
    sign_swish_grad,
)

X = [-2.0, -0.5, 0.0, 0.05, 0.3, 1.5]
# SS_5 and SS'_5 at X, computed by hand (math module, double precision) from the BNN+ formulas
SS5 = [-1.0008171204173142, -1.1988022226830537, 0.0, 0.24742004314039545, 1.082588308598286,
       1.0071815388166852]
DSS5 = [-0.003631252444292286, -0.0846215652336886, 5.0, 4.846162874685169, 1.561975849635367,
        -0.03034020970180903]


def run(pair_name, progress, xs=X):
    x = torch.tensor(xs, dtype=torch.float64, requires_grad=True)
    y = quantize(pair_for(pair_name), x, progress)
    y.backward(torch.ones_like(y))
    return y.detach().tolist(), x.grad.tolist()


def test_sign_of_zero_is_plus_one():
    assert binary_sign(torch.tensor([-0.0, 0.0, -1e-30])).tolist() == [1.0, 1.0, -1.0]


def test_signswish_values_and_closed_form_gradient():
    x = torch.tensor(X, dtype=torch.float64, requires_grad=True)
    assert sign_swish(x, 5.0).tolist() == pytest.approx(SS5, abs=1e-7)
    assert sign_swish_grad(x, 5.0).tolist() == pytest.approx(DSS5, abs=1e-6)
    sign_swish(x, 5.0).sum().backward()  # autograd of the forward formula agrees with SS'
    assert x.grad.tolist() == pytest.approx(DSS5, abs=1e-6)


def test_prox_binary_piecewise():
    v = torch.tensor([-1.6, -0.2, 0.0, 0.3, 0.7, 1.5, 1.8], dtype=torch.float64)
    assert prox_binary(v, 0.5).tolist() == pytest.approx([-1.1, -0.7, 0.5, 0.8, 1.0, 1.0, 1.3])
    assert prox_binary(v, 0.0).tolist() == pytest.approx(v.tolist())  # P_0 = identity
    assert prox_binary(v, math.inf).tolist() == [-1, -1, 1, 1, 1, 1, 1]  # P_inf = sign
    assert prox_binary(v, 1.0).tolist() == [-1, -1, 1, 1, 1, 1, 1]  # mu >= 1: |v| <= 2 binary


def test_bc_sign_forward_identity_backward():
    assert run("bc", 0.3) == ([-1, -1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1])


def test_bnn_sign_forward_clipped_identity_backward():
    assert run("bnn", 0.3) == ([-1, -1, 1, 1, 1, 1], [0, 1, 1, 1, 1, 0])


def test_approxsign_sign_forward_bireal_backward():
    # X = [-2, -0.5, 0, 0.05, 0.3, 1.5]: max(0, 2 - 2|x|) = [0, 1, 2, 1.9, 1.4, 0]
    values, grads = run("approxsign", 0.5)
    assert values == [-1.0, -1.0, 1.0, 1.0, 1.0, 1.0]
    assert grads == pytest.approx([0.0, 1.0, 2.0, 1.9, 1.4, 0.0])


def test_bnn_plus_sign_forward_signswish_backward():
    values, grads = run("bnn+", 0.3)
    assert values == [-1, -1, 1, 1, 1, 1]
    assert grads == pytest.approx(DSS5, abs=1e-6)


def test_pc_proximal_forward_identity_backward():
    # progress 0.4 -> mu = 1.25 * 0.4 = 0.5
    values, grads = run("pc", 0.4, [-1.6, -0.2, 0.0, 0.3, 0.7, 1.8])
    assert values == pytest.approx([-1.1, -0.7, 0.5, 0.8, 1.0, 1.3])
    assert grads == [1, 1, 1, 1, 1, 1]
    assert run("pc", 0.0, [-0.2, 0.3])[0] == pytest.approx([-0.2, 0.3])  # mu = 0: BC's latent
    assert run("pc", 0.8, [-0.2, 0.3])[0] == [-1, 1]  # mu = 1: binary


def test_bnn_plus_plus_prox_of_signswish_forward_signswish_backward():
    # mu = 0.5: |SS| < 0.5 is pulled up by 0.5, |SS| in [0.5, 1.5] snaps to 1
    values, grads = run("bnn++", 0.4)
    assert values == pytest.approx([-1, -1, 0.5, 0.7474200431403955, 1, 1], abs=1e-7)
    assert grads == pytest.approx(DSS5, abs=1e-6)
    assert run("bnn++", 0.0)[0] == pytest.approx(SS5, abs=1e-7)  # mu = 0: pure SignSwish
    assert run("bnn++", 1.0)[0] == [-1, -1, 1, 1, 1, 1]  # mu = 1.25: sign


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_every_pair_is_sign_once_annealed_and_sign_preserving(name):
    x = torch.linspace(-1, 1, 2001, dtype=torch.float32)
    x = torch.cat([x, torch.tensor([-1e-12, 1e-12, -3e-8])])
    assert torch.equal(forward_value(pair_for(name), x, 1.0), binary_sign(x))
    for progress in (0.3, 0.7):  # mu > 0: no value is pulled to 0, the sign of x is kept
        assert torch.equal(binary_sign(forward_value(pair_for(name), x, progress)), binary_sign(x))


def test_schedule_values():
    assert pair_for("pc").schedule_values(0.5) == {"mu": 0.625}
    assert pair_for("bnn").schedule_values(0.5) == {}
    assert pair_for("bnn++").mu(2.0) == 1.25  # clamped to the end of the schedule


def test_unknown_pair_is_a_clear_error():
    with pytest.raises(ValueError, match=r"unknown quantizer pair 'xnor'; choose one of"):
        pair_for("xnor")


def test_every_backward_kind_is_defined_once():
    from xnorflow.train.pairs import BACKWARD_KINDS
    from xnorflow.train.quantizers import BACKWARD_QUANTIZERS

    assert sorted(BACKWARD_QUANTIZERS) == sorted(BACKWARD_KINDS)
