"""What sharing one pass is worth on foresight's six proxies, on zcnas's own network and kernels.

Run (CPU; the numbers in results/benchmarks/pass-sharing-cpu.txt)::

    python -m benchmarks.pass_sharing --archs 30 --data ../shared/data \
        --out results/benchmarks/pass-sharing-cpu.txt

:mod:`benchmarks.foresight_speed` compares zcnas with foresight's own code, and that ratio mixes
three things: zcnas shares one pass among the proxies, builds only the live edges of a cell,
and has less overhead per proxy. This benchmark isolates the first. On the same network (the
pruned foresight-spec network of :func:`zcnas_proxies.gradient.foresight_spec`, with the
double-backward modules of :func:`zcnas.models.hessian.for_double_backward`), the same 64
real CIFAR-10 images, one thread, interleaved per cell (best of ``--rounds``):

- **shared** (what zcnas runs): one forward; GraSP's create-graph backward to the conv/linear
  weights and its double backward (``Hg``), the graph kept; the input Jacobian's backward of
  the same forward (jacov). grad_norm, snip and fisher read the first-order gradients.
- **separate** (foresight's sequence of passes): a forward and a backward to every parameter
  for each of grad_norm, snip and fisher; jacob_cov's forward and ``y.backward(ones)``, which
  also computes every weight's gradient; GraSP's first pass (forward, gradient of the weights)
  and its second (forward, create-graph backward, double backward).

Both compute the same numbers (``tests/scoring/test_pass_sharing.py``). synflow, which runs on
one image in both, is left out. Per convolution the shared pass runs about 8 convolution-sized
kernels (forward 1, create-graph backward 2, double backward 4, Jacobian 1) against the
separate passes' 22 (five forward-backward passes of 3, GraSP's second pass 1 + 2 + 4); the
double backward's kernels are the slow ones, so the time ratio is lower than 22 / 8.
"""

from __future__ import annotations

import argparse
import os
import time

import torch
import torch.nn.functional as F
from torch import nn

from benchmarks._machine import cpu_name, emit
from benchmarks.foresight_speed import (
    CONV_GROUPS,
    conv_group,
    live_convs,
    parse_timing_options,
)
from benchmarks.scoring_speed import sample_archs
from zcnas.models.hessian import for_double_backward
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.engine import freeze_heap
from zcnas.scoring.passes import grad_and_hvp
from zcnas_proxies.gradient import foresight_spec

BATCH = 64


def network(arch: str, bank: InputBank) -> nn.Module:
    """The pruned network of foresight's ``ce`` spec, set up for the double backward."""
    spec = foresight_spec(BATCH)
    ctx = ScoringContext(arch, inputs=bank)
    net = ctx.network(affine=spec.affine, track=spec.track, init=spec.init,
                      channels_last=spec.channels_last)
    return for_double_backward(net)


def _weights(net: nn.Module) -> list[torch.Tensor]:
    return [m.weight for m in net.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _drop_grads(net: nn.Module) -> None:
    for p in net.parameters():
        p.grad = None


def shared(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """zcnas's one pass: ``g``, ``Hg`` and the input Jacobian from one forward."""
    x = x.detach().requires_grad_(True)
    logits = net(x)
    g, hg = grad_and_hvp(F.cross_entropy(logits, y), _weights(net), keep_graph=True)
    (jac,) = torch.autograd.grad(logits, x, torch.ones_like(logits))
    return {"grads": g, "hessian": hg, "jacobian": [jac]}


def separate(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """foresight's passes one by one, each to what its code asks of autograd."""
    weights = _weights(net)
    grads: list[torch.Tensor] = []
    for _ in range(3):  # grad_norm, snip, fisher
        _drop_grads(net)
        F.cross_entropy(net(x), y).backward()
        grads = [w.grad for w in weights]
    _drop_grads(net)
    xj = x.detach().requires_grad_(True)  # jacob_cov: every leaf's gradient, the input's too
    out = net(xj)
    out.backward(torch.ones_like(out))
    jac = xj.grad
    _drop_grads(net)
    torch.autograd.grad(F.cross_entropy(net(x), y), weights)  # GraSP's first pass
    _, hg = grad_and_hvp(F.cross_entropy(net(x), y), weights)  # and its second
    return {"grads": grads, "hessian": hg, "jacobian": [jac]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    args = parse_timing_options(ap)

    archs = sample_archs(args.archs, args.seed)
    bank = InputBank("cifar10", seed=0, root=args.data)
    x, y = bank.batches("real", BATCH, 1)[0]
    x = x.contiguous()
    warm = network(archs[0], bank)
    shared(warm, x, y)
    separate(warm, x, y)
    freeze_heap()

    groups: dict[str, list[float]] = {}
    for i, arch in enumerate(archs):
        net = network(arch, bank)
        best = {"shared": float("inf"), "separate": float("inf")}
        for r in range(args.rounds):
            order = [("shared", shared), ("separate", separate)]
            if (i + r) % 2:
                order.reverse()
            for name, fn in order:
                start = time.perf_counter()
                fn(net, x, y)
                best[name] = min(best[name], time.perf_counter() - start)
        c = live_convs(arch)
        for key in ("all", conv_group(c)):
            g = groups.setdefault(key, [0, 0.0, 0.0])
            g[0] += 1
            g[1] += best["shared"]
            g[2] += best["separate"]

    lines = [
        "# foresight's passes one by one against zcnas's one shared pass, on zcnas's network",
        f"# machine: {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, one "
        f"thread; {len(archs)} distinct cells (seed {args.seed}), batch {BATCH}, interleaved per "
        f"cell, best of {args.rounds} round(s); allocator: {args.allocator}",
        "",
        f"{'cells (live convolutions)':28s}{'cells':>6s}{'shared s':>10s}{'separate s':>12s}"
        f"{'ratio':>8s}",
    ]
    for key in ("all", *CONV_GROUPS):
        if key in groups:
            n, s, p = groups[key]
            lines.append(f"{key:28s}{n:6d}{s / n:10.3f}{p / n:12.3f}{p / s:7.2f}x")
    emit("\n".join(lines), args.out)


if __name__ == "__main__":
    main()
