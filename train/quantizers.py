r"""ProxConnect++ forward/backward quantizer pairs for binary weights and activations.

Lu, Yu, Li, Partovi Nia, "Understanding Neural Network Binarization with Forward and Backward
Proximal Quantizers", NeurIPS 2023 (arXiv 2402.17710) -- "PC++" below.

PC++ keeps latent real weights :math:`w`; the network computes with the forward quantizer
:math:`F(w)` and the gradient flows through the backward quantizer :math:`B`:

.. math::  \theta = B(w) + \mathrm{stopgrad}\big(F(w) - B(w)\big), \qquad
           \partial L/\partial w = B'(w)\, \partial L/\partial \theta .

PC++'s decomposition criterion builds the forward quantizer from the backward one and a
proximal map: :math:`F = P_\mu \circ B`. With :math:`\mu = \infty` the proximal map is ``sign``;
annealing :math:`\mu \to \infty` during training drives :math:`F` to ``sign``. Every method of the
family is then one backward quantizer and one :math:`\mu` schedule:

========  ===========================  ===================================  ================
pair      forward F                    backward B (gradient B')             mu
========  ===========================  ===================================  ================
bc        sign                         identity (1)                         inf
pc        P_mu                         identity (1)                         annealed
bnn       sign = sign o clip           clip to [-1, 1] (1{|w| <= 1})        inf
bnn+      sign = sign o SS_beta        SignSwish SS_beta (SS'_beta)         inf
bnn++     P_mu o SS_beta               SignSwish SS_beta (SS'_beta)         annealed
========  ===========================  ===================================  ================

Faithfulness note: the PC++ paper body was not available to us offline. Known for sure (issue
#2 and the BNN+ paper, Darabi et al. 2018, arXiv 1812.11800): BC = (sign, identity); BNN =
(sign, clip); BNN+ = (sign, SignSwish); BNN++ moves SignSwish into the forward quantizer; PC
computes the loss at F(w) with mu annealed so that F -> sign. *Our reading* (marked as such):
the proximal map :math:`P_\mu` is the proximal operator of :math:`\mu\,\big||w| - 1\big|` (the
Manhattan binary regularizer of BNN+, eq. "R1"), and mu grows linearly with the training step.
"""

from __future__ import annotations

import math

import torch

from .pairs import BackwardQuantizer, QuantizerPair


# ------------------------------------------------------------------------------ elementary maps
def binary_sign(x: torch.Tensor) -> torch.Tensor:
    """sign with sign(0) = +1, as Brevitas' binary quantizer and FINN's bipolar type define it."""
    return (x >= 0).to(x.dtype).mul_(2.0).sub_(1.0)


def prox_binary(v: torch.Tensor, mu: float) -> torch.Tensor:
    r"""Proximal map of :math:`\mu\,r` with :math:`r(w) = \big||w| - 1\big|` (our reading of PC++'s
    :math:`P^\mu_r` for the binary set {-1, 1}):

    .. math::
        P_\mu(v) = \begin{cases}
            \mathrm{sign}(v)\,(|v| + \mu) & |v| < 1 - \mu \\
            \mathrm{sign}(v)              & 1 - \mu \le |v| \le 1 + \mu \\
            \mathrm{sign}(v)\,(|v| - \mu) & |v| > 1 + \mu
        \end{cases}

    :math:`P_0` is the identity, :math:`P_\infty` is ``sign``; for :math:`\mu \ge 1` every
    :math:`|v| \le 1 + \mu` is mapped exactly to :math:`\pm 1`.
    """
    return binary_sign(v) * _pulled_magnitude(v.abs(), mu)


def _pulled_magnitude(a: torch.Tensor, mu: float) -> torch.Tensor:
    """|P_mu(v)| as a function of a = |v|."""
    if math.isinf(mu):
        return torch.ones_like(a)
    return torch.where(a < 1 - mu, a + mu, torch.where(a > 1 + mu, a - mu, torch.ones_like(a)))


def sign_swish(x: torch.Tensor, beta: float) -> torch.Tensor:
    r"""SignSwish of BNN+ (Darabi et al. 2018):
    :math:`SS_\beta(x) = 2\sigma(\beta x)\,[1 + \beta x (1 - \sigma(\beta x))] - 1`."""
    s = torch.sigmoid(beta * x)
    return 2 * s * (1 + beta * x * (1 - s)) - 1


def sign_swish_grad(x: torch.Tensor, beta: float) -> torch.Tensor:
    r""":math:`SS'_\beta(x) = \beta\,[2 - \beta x \tanh(\beta x / 2)] / [1 + \cosh(\beta x)]`
    (BNN+, the derivative used as the backward pass)."""
    bx = beta * x
    return beta * (2 - bx * torch.tanh(bx / 2)) / (1 + torch.cosh(bx))


# --------------------------------------------------------------------------- backward quantizers
def _approxsign(x: torch.Tensor) -> torch.Tensor:
    c = x.clamp(-1.0, 1.0)
    return 2 * c - c * c.abs()


# kind -> (B(x), B'(x)), each a function of (x, beta): the one place a backward quantizer is
# defined (pairs.BACKWARD_KINDS names them without importing torch).
BACKWARD_QUANTIZERS = {
    "identity": (lambda x, beta: x, lambda x, beta: torch.ones_like(x)),
    "clip": (lambda x, beta: x.clamp(-1.0, 1.0), lambda x, beta: x.abs().le(1.0).to(x.dtype)),
    "approxsign": (lambda x, beta: _approxsign(x),
                   lambda x, beta: (2 - 2 * x.abs()).clamp(min=0.0)),
    "signswish": (sign_swish, sign_swish_grad),
}


def backward_value(backward: BackwardQuantizer, x: torch.Tensor) -> torch.Tensor:
    """B(x)."""
    return BACKWARD_QUANTIZERS[backward.kind][0](x, backward.beta)


def backward_grad(backward: BackwardQuantizer, x: torch.Tensor) -> torch.Tensor:
    """B'(x), the gradient the backward pass multiplies by."""
    return BACKWARD_QUANTIZERS[backward.kind][1](x, backward.beta)


def _forward_quantizer(x: torch.Tensor, backward: BackwardQuantizer, mu: float) -> torch.Tensor:
    """F(x) = P_mu(B(x)). Every B here preserves the sign of x, so the sign is taken from x
    itself: a tiny negative x whose B(x) rounds to 0.0 still maps to -1, exactly as the deployed
    sign(x) network does."""
    if math.isinf(mu):  # |P_inf| = 1 whatever B(x) is: skip computing B (a third of a step)
        return binary_sign(x)
    return binary_sign(x) * _pulled_magnitude(backward_value(backward, x).abs(), mu)


class _ProxConnectFunction(torch.autograd.Function):
    """Forward: F(x) = P_mu(B(x)) computed exactly (no b + (f - b) rounding); backward:
    g * B'(x)."""

    @staticmethod
    def forward(ctx, x, backward: BackwardQuantizer, mu: float):
        ctx.save_for_backward(x)
        ctx.backward_quantizer = backward
        return _forward_quantizer(x, backward, mu)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return grad_output * backward_grad(ctx.backward_quantizer, x), None, None


# ------------------------------------------------------------------------------------ the pairs
def forward_value(pair: QuantizerPair, x: torch.Tensor, progress: float) -> torch.Tensor:
    """F(x) of ``pair`` at training progress ``progress`` (no gradient bookkeeping)."""
    return _forward_quantizer(x, pair.backward, pair.mu(progress))


def quantize(pair: QuantizerPair, x: torch.Tensor, progress: float) -> torch.Tensor:
    """F(x) in the forward pass, B'(x) in the backward pass."""
    return _ProxConnectFunction.apply(x, pair.backward, pair.mu(progress))
