"""Shared passes: forward/backward computations several proxies read from.

A proxy declares the passes it reads (:meth:`zcnas.proxy.Proxy.requests`); the context merges
requests with the same kind and spec, runs the merged pass once, and hands every proxy the same
result. So grad_norm, snip and fisher share one backward (foresight recipe), and NASWOT shares
its forward with the first batch of the MFNAS stable proxy (official network, batch 128).

``ce`` pass: a fresh seeded network (:meth:`ScoringContext.network`; pruned unless the spec
says ``prune=False``, in the spec's memory format), BN in train mode, the cross-entropy loss of
each shared batch, and what the requests ``collect``:

- ``grads``: per batch, the weight gradient of every conv/linear module (name -> tensor);
- ``hamming``: NASWOT's kernel K = sum over ReLUs of c c^T + (1-c)(1-c)^T on batch 0, where
  c are the binary codes of the ReLU input (the network keeps ReLU probes on dead edges, so
  every ReLU of the naive network is counted);
- ``fisher``: per conv/linear module, foresight's per-channel Fisher 0.5 * mean_n (sum_hw
  act * dL/dact)^2 on batch 0;
- ``losses``: the mean loss of each batch;
- ``hessian``: GraSP's Hessian-gradient product ``Hg = d(sum_W <stop_grad(g), g>)/dW`` per
  conv/linear weight on batch 0, with ``g = dL/dW`` of that batch. The network is then set up
  for the double backward (:func:`zcnas.models.hessian.for_double_backward`) and batch 0's
  gradient is taken with ``create_graph=True``; on the CPU its first-order values (``grads``,
  ``fisher``, ``losses``) are bitwise those of the plain backward, so a proxy reads the same
  numbers whether or not GraSP shares its pass (``tests/proxies/test_grasp.py``). So
  foresight's suite runs grad_norm, snip, fisher and GraSP on one forward;
- ``jacobian``: per batch, the input Jacobian ``J`` of jacov and EPE-NAS, the gradient of the
  sum of all logits with respect to the input batch (one backward of ``ones``; row ``n`` is
  image ``n``'s, flattened). It reads the same forward as the loss: the loss's backward runs
  first and keeps the graph, the Jacobian's backward last. The loss's backward computes no
  input gradient (only the parameters' are asked for), and the Jacobian's reaches no weight,
  so both are bitwise what they are alone. With foresight's spec, jacov shares the forward
  of grad_norm, snip, fisher and GraSP, as foresight's six measures all read one network's
  weights.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from zcnas.models.hessian import conv_double_backward, for_double_backward
from zcnas.proxy import PassRequest

CE_COLLECT = frozenset({"grads", "hamming", "fisher", "losses", "hessian", "jacobian"})


@dataclass(frozen=True)
class CESpec:
    """The network and batches of a ``ce`` pass (hashable: it keys the sharing).

    ``prune=False`` builds the naive network (every edge, as the reference code does);
    ``channels_last`` sets the memory format of the network and its input batches (``None``:
    the context's default).
    """

    affine: bool = True
    track: bool = True
    init: str = "default"
    batch_size: int = 128
    input: str = "real"
    num_classes: int | None = None
    prune: bool = True
    channels_last: bool | None = None


@dataclass
class CEResult:
    model: nn.Module
    layers: list[str]
    grads: list[dict[str, torch.Tensor]] = field(default_factory=list)
    hamming: torch.Tensor | None = None
    fisher: dict[str, torch.Tensor] | None = None
    losses: list[float] = field(default_factory=list)
    #: per conv/linear layer, GraSP's Hg on batch 0 (None where the loss does not reach it)
    hessian: dict[str, torch.Tensor | None] | None = None
    #: per batch, the input Jacobian of the summed logits, (N, C*H*W) float32
    jacobians: list[torch.Tensor] = field(default_factory=list)


def ce_request(spec: CESpec, n_batches: int, *collect: str) -> PassRequest:
    unknown = set(collect) - CE_COLLECT
    if unknown:
        raise ValueError(f"unknown ce collect {sorted(unknown)}; valid: {sorted(CE_COLLECT)}")
    return PassRequest("ce", spec, n_batches, frozenset(collect))


class HammingKernel:
    """Accumulates NASWOT's K from ReLU inputs; a tensor read by several ReLUs is coded once."""

    def __init__(self, n: int, device: torch.device) -> None:
        self.k = torch.zeros(n, n, dtype=torch.float64, device=device)
        self._seen: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def add(self, x: torch.Tensor) -> None:
        key, ref = id(x), x
        hit = self._seen.get(key)
        if hit is not None and hit[0] is x:
            self.k += hit[1]
            return
        x = x.detach()
        if x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last):
            x = x.permute(0, 2, 3, 1)  # a view: feature order does not change c c^T
        flat = x.reshape(x.shape[0], -1)
        # c c^T + (1-c)(1-c)^T = 2 c c^T + D - s_i - s_j  (one matmul instead of two), with
        # s_i = sum_k c_ik = (c c^T)_ii: the row sums are the diagonal, no pass of their own
        cc = _code_products(flat)
        s = cc.diagonal()
        part = 2 * cc + flat.shape[1] - s[:, None] - s[None, :]
        self._seen[key] = (ref, part)  # the reference keeps x alive, so ids stay unique
        self.k += part


def _code_products(flat: torch.Tensor) -> torch.Tensor:
    """``c c^T`` in float64 for the 0/1 codes ``c = 1[flat > 0]`` (NaN codes 0), exactly.

    On the CPU the codes are int8 (a compare into bool, whose bytes are int8 0/1: one pass
    writing a quarter of float32's bytes) and the product is an int8 GEMM into int32
    (``torch._int_mm``): exact, and about 3x faster than the float32 codes and matmul at
    NB201's shapes (``benchmarks.scoring_floor``). Elsewhere (other devices, one feature per
    image, a torch without a working CPU int8 GEMM) the codes are float32, whose matmul is
    exact too (each entry counts at most D < 2^24 ones).
    """
    if flat.device.type == "cpu" and flat.shape[1] > 1 and _int8_products():
        # (one feature: c.T's strides are ambiguous and the int8 kernel misreads them)
        c = flat.gt(0).view(torch.int8)
        return torch._int_mm(c, c.T).double()
    # sign(relu(x)): the 0/1 codes in two cheap passes; torch's sign maps NaN to 0 on the
    # CPU and CUDA, nan_to_num_ is a guard for any other backend
    c = torch.relu(flat).sign_().nan_to_num_(0.0).float()
    return (c @ c.T).double()


@functools.lru_cache(maxsize=1)
def _int8_products() -> bool:
    """Whether this torch has a fast, working int8 GEMM on the CPU: oneDNN is built in and
    ``torch._int_mm`` (a private op; CPU kernel since torch 2.3) gives a known product."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch, "_int_mm")):
        return False
    c = (torch.arange(17 * 8).reshape(17, 8) % 3 == 0).to(torch.int8)
    try:
        got = torch._int_mm(c, c.T)
    except (RuntimeError, NotImplementedError):
        return False
    return torch.equal(got.double(), c.double() @ c.double().T)


def ce_pass(ctx: Any, req: PassRequest) -> CEResult:
    spec: CESpec = req.spec
    collect = req.collect
    net = ctx.network(affine=spec.affine, track=spec.track, init=spec.init,
                      num_classes=spec.num_classes, prune=spec.prune,
                      relu_probes="hamming" in collect, channels_last=spec.channels_last)
    batches = ctx.batches(spec.batch_size, req.n_batches, spec.input)
    if spec.channels_last is not None:
        batches = [(memory_format(x, spec.channels_last), y) for x, y in batches]
    if "hessian" in collect:
        net = for_double_backward(net)
    layers = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    params = list(net.parameters())
    out = CEResult(model=net, layers=[name for name, _ in layers])
    backward = bool(collect & {"grads", "fisher", "losses", "hessian"})
    jacobian = "jacobian" in collect
    for b, (x, y) in enumerate(batches):
        handles: list[Any] = []
        kernel = None
        if b == 0 and "hamming" in collect:
            kernel = HammingKernel(x.shape[0], x.device)
            handles += [m.register_forward_pre_hook(_relu_hook(kernel))
                        for m in net.modules() if isinstance(m, nn.ReLU)]
        fisher_acts: dict[str, tuple[torch.Tensor, list]] = {}
        if b == 0 and "fisher" in collect:
            handles += [m.register_forward_hook(_fisher_hook(name, fisher_acts))
                        for name, m in layers]
        grads: dict[str, torch.Tensor] | None = None
        if jacobian:  # an alias of the batch that asks for its gradient
            x = x.detach().requires_grad_(True)
        try:
            if backward and b == 0 and "hessian" in collect:
                logits = net(x)
                loss = F.cross_entropy(logits, y)
                weights = [m.weight for _, m in layers]
                g, hg = grad_and_hvp(loss, weights, keep_graph=jacobian)
                grads = {name: gw if gw is not None else torch.zeros_like(w)
                         for (name, _), gw, w in zip(layers, g, weights, strict=True)}
                out.hessian = {name: h for (name, _), h in zip(layers, hg, strict=True)}
                out.losses.append(float(loss.detach()))
            elif backward:
                _drop_grads(params)
                logits = net(x)
                loss = F.cross_entropy(logits, y)
                loss.backward(retain_graph=jacobian, inputs=params)
                out.losses.append(float(loss.detach()))
            elif jacobian:
                logits = net(x)
            else:
                with torch.no_grad():
                    net(x)
            if jacobian:
                out.jacobians.append(_input_jacobian(logits, x))
        finally:
            for h in handles:
                h.remove()
        if kernel is not None:
            out.hamming = kernel.k
            kernel = None
        if "grads" in collect and grads is not None:
            out.grads.append(grads)
        elif "grads" in collect:
            # the gradients themselves, not copies: the next batch's backward starts from no
            # gradient (_drop_grads) and allocates new ones, so nothing writes into these
            out.grads.append({
                name: (m.weight.grad.detach() if m.weight.grad is not None
                       else torch.zeros_like(m.weight))
                for name, m in layers
            })
        if fisher_acts:
            out.fisher = {name: _fisher(act, grads) for name, (act, grads) in fisher_acts.items()}
    _drop_grads(params)
    return out


def _input_jacobian(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Rows: d(sum of ``logits``)/d(``x``) per image, flattened (N, C*H*W); zeros when the
    logits do not depend on the input (or need no gradient at all, e.g. a cell always zero)."""
    grad = None
    if logits.requires_grad:
        (grad,) = torch.autograd.grad(logits, x, grad_outputs=torch.ones_like(logits),
                                      allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    return grad.detach().reshape(grad.shape[0], -1)


def _drop_grads(params: list[torch.Tensor]) -> None:
    """``net.zero_grad(set_to_none=True)`` on a list taken once (no module walk per call)."""
    for p in params:
        p.grad = None


def grad_and_hvp(
    loss: torch.Tensor, weights: list[torch.Tensor], keep_graph: bool = False
) -> tuple[list[torch.Tensor | None], list[torch.Tensor | None]]:
    """GraSP's two products of one loss: ``g = dL/dW`` (detached) and
    ``Hg = d(sum_W <stop_grad(g), g>)/dW``, from one create-graph backward and one double
    backward; ``None`` where the loss (or ``g``) does not reach a weight. ``keep_graph``: the
    forward graph survives the double backward (another backward reads it after)."""
    g = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
    z = sum((gw.detach() * gw).sum() for gw in g if gw is not None)
    return [gw.detach() if gw is not None else None for gw in g], hvp(z, weights, keep_graph)


def hvp(z: Any, weights: list[torch.Tensor],
        keep_graph: bool = False) -> list[torch.Tensor | None]:
    """``dz/dW``, or ``None`` per weight when ``z`` does not depend on it (or on nothing, e.g.
    a cell that is always zero). On the CPU, convolutions' double backward runs as
    :func:`zcnas.models.hessian.conv_double_backward` writes it."""
    if not isinstance(z, torch.Tensor) or not z.requires_grad:
        return [None] * len(weights)
    with conv_double_backward():
        return list(torch.autograd.grad(z, weights, allow_unused=True, retain_graph=keep_graph))


def memory_format(x: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``x`` channels-last or contiguous (a 4-D batch; other tensors unchanged, no copy if
    already so)."""
    if x.dim() != 4:
        return x
    return x.contiguous(memory_format=torch.channels_last if channels_last else
                        torch.contiguous_format)


def _relu_hook(kernel: HammingKernel) -> Callable:
    def hook(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        kernel.add(inputs[0])

    return hook


def _fisher_hook(name: str, store: dict) -> Callable:
    def hook(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> None:
        grads: list[torch.Tensor] = []
        if output.requires_grad:  # the first backward's gradient (a double backward may
            # reach the output again: that one is not dL/dact)
            output.register_hook(lambda g: None if grads else grads.append(g.detach()))
        store[name] = (output.detach(), grads)

    return hook


def _fisher(act: torch.Tensor, grads: list[torch.Tensor]) -> torch.Tensor:
    """Per-channel 0.5 * mean_n (sum_spatial act * grad)^2; zeros when no gradient reached."""
    if not grads:
        return torch.zeros(act.shape[1], dtype=act.dtype, device=act.device)
    g = act * grads[0]
    if g.dim() > 2:
        g = g.sum(dim=tuple(range(2, g.dim())))
    return g.pow(2).mean(0).mul(0.5)


PASSES: dict[str, Callable[[Any, PassRequest], Any]] = {"ce": ce_pass}
