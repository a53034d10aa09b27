"""GradSign's per-sample gradients from ONE batched pass: an alternative that was measured and
not kept (``benchmarks.scoring_floor`` compares it with zcnas's ``torch.func.vmap`` code).

With every train-mode BN replaced by its single-sample form (``instance_norm``), no operation
mixes samples, so the backward of the summed per-sample losses carries each sample's own output
gradient at every layer; each Conv2d/Linear layer's per-sample weight gradient is then the
product of its captured input (unfolded, or through a grouped convolution for large maps) and
output gradient. It agrees with the vmap code to rounding (<= 6.2e-7 relative on 10 cells) but
was 1.5x slower on the 2-core Intel Xeon at one thread (2.01 against 1.31 s per cell).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

CHUNK_ELEMENTS = 2**25  # unfolded input elements of one layer held at once (128 MiB float32)


@contextmanager
def _single_sample_pass(net: nn.Module):
    """Every train-mode BatchNorm normalises each sample on its own (a train-mode BN of a batch
    of one; an eval-mode BN uses its running statistics and is left alone), no parameter takes
    a gradient, and autograd is on; all restored on exit."""
    bns = [m for m in net.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.training]
    if any("forward" in vars(m) for m in bns):
        raise RuntimeError("gradsign: a BatchNorm layer has its own forward attribute")
    grads = [(p, p.requires_grad) for p in net.parameters()]

    def per_sample(m):
        def forward(x):
            return F.instance_norm(x, weight=m.weight, bias=m.bias, eps=m.eps)
        return forward

    for m in bns:
        m.forward = per_sample(m)
    for p, _ in grads:
        p.requires_grad_(False)
    try:
        with torch.enable_grad():
            yield
    finally:
        for m in bns:
            del m.forward
        for p, flag in grads:
            p.requires_grad_(flag)


def _per_sample_weight_grad(m: nn.Module, inp: torch.Tensor, gout: torch.Tensor) -> torch.Tensor:
    """(B, out, in...) per-sample weight gradients of a Conv2d/Linear from its input and output
    gradient (how is chosen per shape, by speed on the CPU; all agree to rounding)."""
    b = inp.shape[0]
    if isinstance(m, nn.Linear):
        return gout.unsqueeze(2) * inp.unsqueeze(1)
    if m.groups != 1 or m.padding_mode != "zeros" or m.dilation != (1, 1):
        raise NotImplementedError("gradsign: grouped, dilated or non-zero-padded convolutions")
    kh, kw = m.kernel_size
    go = gout.reshape(b, gout.shape[1], -1)
    if (kh, kw) == (1, 1) and m.stride == (1, 1) and m.padding == (0, 0):
        return torch.bmm(go, inp.reshape(b, inp.shape[1], -1).transpose(1, 2))
    if inp.shape[-1] * inp.shape[-2] >= 1024 and m.stride == (1, 1):
        # large maps: one grouped convolution, the samples as groups: the input's channels are
        # the batch, each sample's output gradient a kernel (2x faster than unfold + bmm here)
        out = F.conv2d(inp.transpose(0, 1), gout.reshape(b * gout.shape[1], 1, *gout.shape[2:]),
                       padding=m.padding, groups=b)[:, :, :kh, :kw]
        return out.reshape(inp.shape[1], b, gout.shape[1], kh, kw).permute(1, 2, 0, 3, 4)
    return torch.bmm(go, _unfold(inp, m.kernel_size, m.stride, m.padding, gout.shape[2:]))


def _unfold(inp: torch.Tensor, kernel, stride, padding, out_hw) -> torch.Tensor:
    """(B, L, C*kh*kw): ``F.unfold`` transposed, from strided slices (2-4x faster on the CPU
    than torch's im2col at these shapes)."""
    (kh, kw), (sh, sw), (ph, pw), (ho, wo) = kernel, stride, padding, out_hw
    xp = F.pad(inp, (pw, pw, ph, ph)) if ph or pw else inp
    taps = [xp[:, :, dy:dy + sh * (ho - 1) + 1:sh, dx:dx + sw * (wo - 1) + 1:sw]
            for dy in range(kh) for dx in range(kw)]
    b, c = inp.shape[:2]
    return torch.stack(taps, dim=2).reshape(b, c * kh * kw, ho * wo).transpose(1, 2)


def gradsign_score(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   chunk: int | None = None) -> float:
    """``nansum |sum_i sign(dL_i/dW)|`` over Conv2d/Linear weights, one sample per BN batch.

    ``net`` is left as it was (its BN layers and ``requires_grad`` flags are restored).
    """
    layers = [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    votes = {name: torch.zeros_like(m.weight) for name, m in layers}
    chunk = chunk or x.shape[0]
    with _single_sample_pass(net):
        for xc, yc in zip(x.split(chunk), y.split(chunk), strict=True):
            seen: dict[str, list] = {}
            handles = [m.register_forward_hook(_capture(name, seen)) for name, m in layers]
            try:
                xc = xc.detach().requires_grad_(True)
                loss = F.cross_entropy(net(xc), yc, reduction="sum")  # sum of per-sample losses
                torch.autograd.grad(loss, xc)
            finally:
                for h in handles:
                    h.remove()
            for name, m in layers:
                if name not in seen or len(seen[name]) < 2:  # not on the loss's path: zero
                    continue
                inp, gout = seen.pop(name)
                step = max(1, CHUNK_ELEMENTS // max(1, _unfolded_size(m, inp)))
                for i in range(0, inp.shape[0], step):
                    g = _per_sample_weight_grad(m, inp[i:i + step], gout[i:i + step])
                    votes[name] += torch.sign(g).sum(0).view_as(votes[name])
    total = torch.zeros((), dtype=torch.float64)
    for v in votes.values():
        total += torch.nansum(v.abs(), dtype=torch.float64).cpu()
    return float(total)


def _capture(name: str, seen: dict[str, list]):
    def hook(_m, inputs, output):
        if name in seen:
            raise RuntimeError(f"gradsign: layer {name} runs twice in one forward")
        seen[name] = [inputs[0].detach()]
        if output.requires_grad:
            output.register_hook(lambda g: seen[name].append(g.detach()))
    return hook


def _unfolded_size(m: nn.Module, inp: torch.Tensor) -> int:
    """Elements of one sample's unfolded input of ``m`` (or of its per-sample gradient)."""
    if isinstance(m, nn.Linear):
        return m.in_features * m.out_features
    taps = m.kernel_size[0] * m.kernel_size[1]
    return max(m.in_channels * taps, m.out_channels) * inp.shape[-1] * inp.shape[-2]
