"""``BatchNorm2d`` whose train-mode pass on the CPU runs :mod:`zcnas.runtime.kernels`.

The networks' BN layers (:func:`zcnas.models.leaves.batchnorm2d`) are of this class. It is
``nn.BatchNorm2d`` (same parameters, buffers, state dict and running-statistics updates); only
where all of these hold does it take the compiled kernels (``benchmarks/batchnorm.py`` times
both, side by side):

- batch statistics (train mode, or no running statistics), more than one value per channel;
- a float32, 4-D, channels-last or NCHW contiguous CPU tensor and float32 parameters (or
  none), plain tensors;
- torch runs one thread (a scoring worker's setting; the kernels are single-threaded);
- no ``torch.func`` transform (``vmap``, ``grad``, ``jvp``), forward-mode AD, dispatch or
  function mode (fake tensors, op recorders), JIT trace nor ``torch.compile`` trace is active
  (``torch.fx.symbolic_trace`` traces into this forward: give its tracer this class as a
  leaf module);
- the kernels were built (:func:`zcnas.runtime.kernels.library`).

Elsewhere it is torch's ``nn.BatchNorm2d.forward``. The backward is the kernels' for a
channels-last batch and torch's kernel, given the kernels' statistics, for an NCHW one or a
batched gradient (``is_grads_batched``). Under
``create_graph`` (GraSP's Hessian-gradient product) the first-order values are still those and
the graph for the second order is torch's batch norm, recomputed on the saved input: the
gradient returned is ``ours + (torch's - torch's.detach())``, the same value with torch's
derivative.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.autograd import forward_ad
from torch.utils._python_dispatch import _get_current_dispatch_mode as _dispatch_mode

from zcnas.runtime import kernels

#: torch.compiler.is_compiling from torch 2.3, dynamo's own before
_compiling = getattr(getattr(torch, "compiler", None), "is_compiling", None) or (
    lambda: torch._dynamo.is_compiling())

_CHANNELS_LAST = torch.channels_last


class BatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with the compiled train-mode kernels on the CPU (module docstring)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        lib = self._kernels(x)
        if lib is None:
            return super().forward(x)
        # the running statistics' update as nn.BatchNorm2d's forward makes it
        factor = 0.0 if self.momentum is None else self.momentum
        track = self.training and self.track_running_stats
        if track and self.num_batches_tracked is not None:
            self.num_batches_tracked.add_(1)
            if self.momentum is None:
                factor = 1.0 / float(self.num_batches_tracked)
        y, mean, var = _TrainBatchNorm.apply(x, self.weight, self.bias, self.eps, lib)
        if track and self.running_mean is not None:
            m = x.numel() // x.shape[1]
            with torch.no_grad():
                self.running_mean.copy_(mean * factor + self.running_mean * (1 - factor))
                unbiased = (var * (m / (m - 1))).float()
                self.running_var.copy_(unbiased * factor + self.running_var * (1 - factor))
        return y

    def _kernels(self, x: torch.Tensor):
        """The kernels' library if this call may take them (module docstring), else None."""
        batch_stats = self.training or (self.running_mean is None and self.running_var is None)
        if not batch_stats or x.dim() != 4 or x.shape[1] != self.num_features:
            return None  # (torch's forward says what is wrong with a mismatched input)
        for t in (self.weight, self.bias, self.running_mean, self.running_var):
            if t is not None and (type(t) not in (torch.Tensor, nn.Parameter)
                                  or t.dtype != torch.float32 or t.device.type != "cpu"
                                  or t.shape != (self.num_features,)):
                return None
        return usable(x)


def usable(x: torch.Tensor):
    """The kernels' library if a train-mode batch norm of ``x`` may take them (the module
    docstring's conditions on the input, the thread count and the active modes), else None."""
    if not (type(x) is torch.Tensor and x.layout == torch.strided and x.dtype == torch.float32
            and x.device.type == "cpu" and x.dim() == 4 and x.numel() > x.shape[1] > 0):
        return None
    if torch.get_num_threads() != 1 or _transformed() or _layout(x) is None:
        return None  # (the layout is asked last: vmap refuses the question)
    return kernels.library()


def _transformed() -> bool:
    """Whether a functorch transform, forward-mode AD, a dispatch or function mode, a JIT trace
    or a ``torch.compile`` trace is active (the kernels are opaque to all of them)."""
    return (torch._C._functorch.peek_interpreter_stack() is not None
            or getattr(forward_ad, "_current_level", -1) >= 0
            or _dispatch_mode() is not None
            or torch._C._len_torch_function_stack() > 0
            or torch.jit.is_tracing() or torch.jit.is_scripting()
            or _compiling())


def _batched(g: torch.Tensor) -> bool:
    """Whether ``g`` carries a vmap batch dimension: ``torch.func``'s, or the legacy one of
    ``is_grads_batched`` (a tensor without the CPU dispatch key of a plain CPU tensor)."""
    return (torch._C._functorch.is_batchedtensor(g) or _transformed()
            or not torch._C._dispatch_keys(g).has(torch._C.DispatchKey.CPU))


def _ptr(t: torch.Tensor | None):
    return None if t is None else t.data_ptr()


def _layout(x: torch.Tensor) -> int | None:
    """1 for a channels-last contiguous batch, 0 for an NCHW contiguous one, else None."""
    if x.is_contiguous(memory_format=_CHANNELS_LAST):
        return 1
    return 0 if x.is_contiguous() else None


def _shape(x: torch.Tensor) -> tuple[int, int, int]:
    n, c, h, w = x.shape
    return n, c, h * w


def _param(p: torch.Tensor | None) -> torch.Tensor | None:
    return None if p is None else p.detach().contiguous()


def train_forward(lib, x: torch.Tensor, weight: torch.Tensor | None,
                  bias: torch.Tensor | None, eps: float):
    """``(y, mean, invstd, var)`` of a train-mode batch norm of ``x`` by the kernels (``lib``
    from :func:`usable`); ``var`` biased, float64."""
    n, c, hw = _shape(x)
    mean, invstd = torch.empty(c), torch.empty(c)
    var = torch.empty(c, dtype=torch.float64)
    y = torch.empty_like(x)
    w, b = _param(weight), _param(bias)
    if lib.bn_forward(x.data_ptr(), y.data_ptr(), n, c, hw, _layout(x), eps, _ptr(w), _ptr(b),
                      mean.data_ptr(), invstd.data_ptr(), var.data_ptr()):
        raise MemoryError("batch norm kernel: out of memory")
    return y, mean, invstd, var


def train_backward(lib, g: torch.Tensor, x: torch.Tensor, weight: torch.Tensor | None,
                   mean: torch.Tensor, invstd: torch.Tensor, eps: float):
    """``(gx, gw, gb)`` of :func:`train_forward` at the output gradient ``g``: the kernels'
    for a channels-last ``x``; torch's kernel, given these statistics, for an NCHW one or a
    batched ``g`` (``is_grads_batched``: then on the tensors themselves, so vmap sees it)."""
    n, c, hw = _shape(x)
    mask = [True, weight is not None, weight is not None]
    if _batched(g):
        return torch.ops.aten.native_batch_norm_backward(g, x, weight, None, None, mean, invstd,
                                                          True, eps, mask)
    if not _layout(x):  # NCHW: torch's backward is fast there (its forward is not)
        return torch.ops.aten.native_batch_norm_backward(
            g.detach(), x.detach(), None if weight is None else weight.detach(), None, None,
            mean, invstd, True, eps, mask)
    g_in = g.detach().to(torch.float32).contiguous(memory_format=_CHANNELS_LAST)
    w = _param(weight)  # held here: the kernel reads it
    gx = torch.empty_like(x)
    gw, gb = torch.empty(c), torch.empty(c)
    if lib.bn_backward(g_in.data_ptr(), x.data_ptr(), gx.data_ptr(), n * hw, c, mean.data_ptr(),
                       invstd.data_ptr(), _ptr(w), gw.data_ptr(), gb.data_ptr()):
        raise MemoryError("batch norm kernel: out of memory")
    return gx, gw, gb


class _TrainBatchNorm(torch.autograd.Function):
    """``(y, mean, biased var)`` of a train-mode batch norm by the kernels; ``mean`` and
    ``var`` (float64) take no gradient."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, lib):
        y, mean, invstd, var = train_forward(lib, x, weight, bias, eps)
        ctx.save_for_backward(x, weight, bias, mean, invstd)
        ctx.eps, ctx.lib = eps, lib
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, g, _mean, _var):
        x, weight, bias, mean, invstd = ctx.saved_tensors
        if g is None:
            return None, None, None, None, None
        gx, gw, gb = train_backward(ctx.lib, g, x, weight, mean, invstd, ctx.eps)
        grads = [gx, None if weight is None else gw, None if bias is None else gb]
        if torch.is_grad_enabled() and not _batched(g):
            # create_graph: torch's derivative, the kernels' values
            grads = _with_torch_derivative(grads, g, x, weight, bias, ctx.eps)
        return grads[0], grads[1], grads[2], None, None


def _with_torch_derivative(values, g, x, weight, bias, eps):
    """``values`` (the kernels' gradients of x, weight, bias) carrying the graph of torch's
    batch-norm backward at ``g``: ``v + (t - t.detach())`` for torch's gradient ``t``.

    ``t`` is taken with respect to views of the tensors, not the tensors themselves: a hook on
    one of them (foresight's Fisher hooks a convolution's output, which BN reads) must see only
    the gradient the outer backward hands it, not this inner one."""
    views = [None if t is None else t.view_as(t) for t in (x, weight, bias)]
    inputs = [(i, v) for i, v in enumerate(views) if v is not None and v.requires_grad]
    if not inputs:
        return values
    y = torch.batch_norm(views[0], views[1], views[2], None, None, True, 0.0, eps, False)
    theirs = torch.autograd.grad(y, [v for _, v in inputs], g, create_graph=True,
                                 allow_unused=True)
    out = list(values)
    for (i, _), t in zip(inputs, theirs, strict=True):
        if t is not None and out[i] is not None:
            out[i] = out[i] + (t - t.detach())
    return out
