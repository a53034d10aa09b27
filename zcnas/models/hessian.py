"""A network set up for a cheaper double backward (Hessian-vector products, GraSP).

Autograd's generic double backward of two NB201 building blocks does work nobody asked for:

- ``avg_pool_3x3`` is a depthwise convolution with a kernel of ones
  (:class:`zcnas.models.ops.AvgPool3x3`); the convolution double backward also computes the
  gradient of that constant kernel, one convolution per channel (16-64 per pool);
- a cell's BN (train mode, no affine parameters, no running statistics) goes through the
  general batch-norm double backward, written for affine, tracked BN, a chain of about thirty
  elementwise passes.

:func:`for_double_backward` swaps those modules for versions whose first backward is autograd's
own CPU kernel call (so first-order gradients are bitwise the same on the CPU; on a GPU the plain
BN may take cuDNN's kernels instead) and whose second backward is written out:

- window sum ``S``: its backward is the adjoint ``S^T``, and the backward of ``S^T`` is ``S``
  (one depthwise convolution per order);
- batch norm ``y = (x - mean) r`` with ``r = 1/sqrt(var + eps)``, per channel over
  (N, H, W): the first backward is ``gx = B(g) = r (g - mean(g) - y mean(g y))``; for an
  upstream ``u`` on ``gx``, ``dL/dg = B(u)`` (``B`` is self-adjoint) and
  ``dL/dx = -r (mean(u gx) y + mean(g y) B(u) + mean(u y) gx)``.

Other modules (affine or tracked BN of the stem and the reductions, convolutions) are left
as they are. The values are those of the plain network; double-backward results differ from
autograd's by float rounding. ``tests/models/test_hessian.py`` checks both orders.

The convolutions' own double backward is mended where it runs, not by swapping modules:
inside :func:`conv_double_backward` (this thread, CPU tensors) autograd's
``_convolution_double_backward`` takes the gradient of the weight as a convolution of the
transposed ``ggI`` with the transposed ``gO`` as its kernel (a 32x32 kernel in the first stage,
which oneDNN runs about 1.8x slower than its weight-gradient kernel: 7.2 against 4.1 ms for a
3x3, 16-channel convolution of 64 images on the EPYC). The block's version asks
``convolution_backward`` for the same two products, each for only the output it needs.
``benchmarks/double_backward.py`` times it against autograd's own, interleaved.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator

import torch
from torch import nn
from torch.autograd.function import once_differentiable

from zcnas.models.ops import AvgPool3x3, _tap_counts


class _WindowSum(torch.autograd.Function):
    """The sum over each pixel's 3x3 window: a depthwise convolution with ones, padding 1."""

    @staticmethod
    def forward(ctx, x, ones):
        ctx.save_for_backward(x, ones)
        return nn.functional.conv2d(x, ones, padding=1, groups=ones.shape[0])

    @staticmethod
    def backward(ctx, grad):
        x, ones = ctx.saved_tensors
        return _WindowSumAdjoint.apply(grad, x, ones), None


class _WindowSumAdjoint(torch.autograd.Function):
    """``grad -> d<grad, window_sum(x)>/dx`` by autograd's own kernel call (``x`` gives only
    the shape and memory layout); its backward is the window sum."""

    @staticmethod
    def forward(ctx, grad, x, ones):
        ctx.save_for_backward(ones)
        return torch.ops.aten.convolution_backward(
            grad, x, ones, None, [1, 1], [1, 1], [1, 1], False, [0, 0], ones.shape[0],
            [True, False, False])[0]

    @staticmethod
    def backward(ctx, gg):
        (ones,) = ctx.saved_tensors
        return _WindowSum.apply(gg, ones), None, None


class HessianAvgPool3x3(AvgPool3x3):
    """:class:`AvgPool3x3` with the window sum's backward written out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            return self.forward(x.unsqueeze(0)).squeeze(0)
        c, h, w = x.shape[-3:]
        ones = torch.ones((c, 1, 3, 3), dtype=x.dtype, device=x.device)
        return _WindowSum.apply(x, ones) / _tap_counts(h, w, x.dtype, x.device)


class _BatchNorm(torch.autograd.Function):
    """Train-mode batch norm without affine parameters or running statistics."""

    @staticmethod
    def forward(ctx, x, eps):
        y, mean, invstd = torch.ops.aten.native_batch_norm(x, None, None, None, None, True,
                                                           0.0, eps)
        ctx.save_for_backward(x, y, mean, invstd)
        ctx.eps = eps
        return y

    @staticmethod
    def backward(ctx, g):
        x, y, mean, invstd = ctx.saved_tensors
        return _BatchNormBackward.apply(g, x, y, mean, invstd, ctx.eps), None


def _channel_dot(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Per-channel mean of ``a * b`` over (N, H, W), shaped (1, C, 1, 1)."""
    return (a * b).mean(dim=(0, 2, 3), keepdim=True)


class _BatchNormBackward(torch.autograd.Function):
    """``g -> gx``, autograd's own kernel call; its backward is the closed form of the module
    docstring."""

    @staticmethod
    def forward(ctx, g, x, y, mean, invstd, eps):
        gx = torch.ops.aten.native_batch_norm_backward(
            g, x, None, None, None, mean, invstd, True, eps, [True, False, False])[0]
        ctx.save_for_backward(g, y, invstd, gx)
        return gx

    @staticmethod
    @once_differentiable
    def backward(ctx, u):
        g, y, invstd, gx = ctx.saved_tensors
        r = invstd.view(1, -1, 1, 1)
        u_mean = u.mean(dim=(0, 2, 3), keepdim=True)
        uy = _channel_dot(u, y)
        # B(u) = r u - r mean(u) - r mean(u y) y: d/dg
        bu = torch.addcmul(-r * u_mean, -r * uy, y).addcmul_(r, u)
        dx = None
        if ctx.needs_input_grad[1]:
            # -r (mean(u gx) y + mean(g y) B(u) + mean(u y) gx), B(u) expanded
            m = _channel_dot(g, y)
            k_y = -r * (_channel_dot(u, gx) - m * r * uy)
            dx = torch.addcmul(m * r * r * u_mean, k_y, y)
            dx.addcmul_(-m * r * r, u).addcmul_(-r * uy, gx)
        return (bu if ctx.needs_input_grad[0] else None), dx, None, None, None, None


class HessianBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d(c, affine=False, track_running_stats=False)`` in train mode, with the
    double backward written out."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or x.dim() != 4:
            return super().forward(x)
        return _BatchNorm.apply(x, self.eps)


def for_double_backward(net: nn.Module) -> nn.Module:
    """Swap ``net``'s 3x3 average pools and its train-mode BN without affine parameters or
    running statistics for the versions above (in place; the same values). Returns ``net``."""
    for parent in list(net.modules()):
        for name, child in list(parent.named_children()):
            new = _replacement(child)
            if new is not None:
                setattr(parent, name, new)
    return net


def _replacement(m: nn.Module) -> nn.Module | None:
    if type(m) is AvgPool3x3:
        return HessianAvgPool3x3()
    if type(m) is nn.BatchNorm2d and not m.affine and not m.track_running_stats:
        new = HessianBatchNorm2d(m.num_features, eps=m.eps, affine=False,
                                 track_running_stats=False)
        new.train(m.training)
        return new
    return None


_OP = "aten::_convolution_double_backward"
_AUTOGRAD_DOUBLE_BACKWARD = torch.ops.aten._convolution_double_backward.default
_STATE = threading.local()
_REGISTRATION = threading.Lock()
_LIBRARY: torch.library.Library | None = None
_REGISTERED: bool | None = None  # None: not tried yet; False: left to autograd (_register)


def _conv_double_backward(ggI, ggW, ggb, gO, weight, x, stride, padding, dilation, transposed,
                          output_padding, groups, output_mask):
    """``aten::_convolution_double_backward`` on the CPU: for a convolution ``y = conv(x, W)``
    with first backward ``gI = conv_x^T(gO, W)``, ``gW = conv_W^T(gO, x)`` and upstream
    gradients ``ggI``, ``ggW``, ``ggb`` of those, the gradients of ``<ggI, gI> + <ggW, gW> +
    <ggb, gb>`` with respect to ``gO``, ``x`` and ``W`` (``None`` where not asked or zero).
    Outside :func:`conv_double_backward`, and for transposed convolutions, autograd's own."""
    if transposed or not getattr(_STATE, "active", False):
        return _AUTOGRAD_DOUBLE_BACKWARD.decompose(
            ggI, ggW, ggb, gO, weight, x, stride, padding, dilation, transposed,
            output_padding, groups, output_mask)
    g_out = g_x = g_w = None
    if output_mask[0]:  # d/dgO = conv(ggI, W) + conv(x, ggW) + ggb
        for a, w in ((ggI, weight), (x, ggW)):
            if a is not None and w is not None:
                t = torch.ops.aten.convolution(a, w, None, stride, padding, dilation, False,
                                               output_padding, groups)
                g_out = t if g_out is None else g_out + t
        if ggb is not None:
            bias = ggb.view(1, -1, *([1] * (gO.dim() - 2)))
            g_out = bias.expand_as(gO).clone() if g_out is None else g_out + bias
    if output_mask[1] and ggW is not None:  # d<ggW, gW>/dx: x's gradient of conv(x, ggW)
        g_x = torch.ops.aten.convolution_backward(
            gO, x, ggW, None, stride, padding, dilation, False, output_padding, groups,
            [True, False, False])[0]
    if output_mask[2] and ggI is not None:  # d<ggI, gI>/dW: W's gradient of conv(ggI, W)
        g_w = torch.ops.aten.convolution_backward(
            gO, ggI, weight, None, stride, padding, dilation, False, output_padding, groups,
            [False, True, False])[1]
    return g_out, g_x, g_w


def _register() -> bool:
    """Whether :func:`_conv_double_backward` is registered: tried once per process, and
    done where that is safe: the op must
    still be autograd's composite (the fallback calls it) and nothing else may hold its
    ``AutogradCPU`` slot (another library, a second import of this module). Else every
    double backward stays autograd's own and the block changes nothing."""
    global _LIBRARY, _REGISTERED
    with _REGISTRATION:
        if _REGISTERED is None:
            has = torch._C._dispatch_has_kernel_for_dispatch_key
            _REGISTERED = has(_OP, "CompositeImplicitAutograd") and not has(_OP, "AutogradCPU")
            if _REGISTERED:
                _LIBRARY = torch.library.Library("aten", "IMPL")
                _LIBRARY.impl("_convolution_double_backward", _conv_double_backward,
                              "AutogradCPU")
        return _REGISTERED


@contextlib.contextmanager
def conv_double_backward() -> Iterator[None]:
    """Within the block, on this thread, CPU convolutions' double backward takes both of its
    weight-shaped and input-shaped products from ``convolution_backward`` (see the module
    docstring): the same values up to float rounding (GraSP within 3.1e-5 relative over 30
    seeded cells); times in ``results/benchmarks/double-backward-cpu.txt``.

    The kernel is registered for ``AutogradCPU`` on first use. Outside such a block it calls
    autograd's own: other code gets the same values, at the price of a Python call (and the
    GIL) per CPU convolution double backward for the rest of the process. Autograd runs a CPU
    graph on the thread that calls ``backward``, which is why a thread-local switch is enough
    (another thread meanwhile gets autograd's own)."""
    if not _register():
        yield
        return
    before = getattr(_STATE, "active", False)
    _STATE.active = True
    try:
        yield
    finally:
        _STATE.active = before
