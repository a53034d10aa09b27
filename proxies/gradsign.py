"""GradSign: how consistently the per-sample gradients agree in sign.

Recipe (cmu-catalyst/GradSign ``zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py``,
run through ``zero-cost-nas-code/build.py``: the foresight pipeline with ``--batch_size 128``):

- network: foresight's NB201 model (cells' BN ``affine=False, track_running_stats=False``),
  PyTorch default initialisation, train mode;
- one batch of B = 128 real training images; for each sample ``i`` alone (``inputs[[i]]``) a
  forward, the CE loss and a backward, so every BN normalises with the statistics of that single
  sample (spatial statistics only);
- ``g_i``: the flattened weight gradients of every Conv2d/Linear layer (zeros where none);
- score = ``nansum_theta |sum_i sign(g_i(theta))|``.

The B per-sample backward passes are batched, in one of two ways (the same gradients to
rounding; per-sample gradients agree with a float64 loop at least as well as a float32 loop
does, so signs flip only where a gradient is at rounding level):

- ``torch.func`` (:func:`gradsign_score`): ``vmap`` of ``grad`` of a ``functional_call`` on
  one sample, in chunks; inside ``vmap`` each sample still runs the network as a batch of one,
  so BN uses per-sample statistics exactly as in the reference loop. The BN running buffers
  are dropped first (``replace_all_batch_norm_modules_``): in train mode they never change the
  output. Any network.
- One batched pass (:func:`gradsign_score_batched`): every train-mode BN replaced by its
  single-sample form (``instance_norm``), so no operation mixes samples and the backward of
  the summed per-sample losses carries each sample's own output gradient at every layer; each
  Conv2d/Linear layer's per-sample weight gradient is then the product of its captured input
  (unfolded, or through a grouped convolution for large maps) and output gradient. Only for
  NATS networks (where only BN mixes samples) with plain convolutions, on the CPU.

The proxy takes the batched pass for at most :data:`BATCHED_UP_TO` images and ``vmap`` above:
on the 2-core AMD EPYC, one thread, 12 cells x 2 rounds interleaved, 179 against 219 ms per
cell at 16 images (the scores equal), 299 against 289 ms at 32; at 128 the batched pass is
slower (``results/benchmarks/scoring-floor-cpu.txt``).

Memory format: contiguous (NCHW), faster than channels-last on the CPU for these per-sample
passes (``results/benchmarks/memory-format-cpu.txt``; the scores moved by <= 2e-5 relative).

Zero-source conv edges (source node always zero) are not built; the reference computes them
(ReLU(0) -> conv + bias -> per-sample BN of a constant): their weight gradient is zero, and the
BN's rounding noise flips a few near-zero gradient signs (about 1e-4 relative on such a cell).

Deviations: a fixed seeded batch without augmentation; zero-source conv edges not built.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_, vmap

from zcnas.models.network import Cell, NatsNetwork
from zcnas.models.ops import AvgPool, AvgPool3x3, ReLUConvBN, ResNetReduction, WidthChange, Zero
from zcnas.proxy import Proxy, ProxyInfo

# elements held at once (per-sample gradients, or one layer's unfolded inputs): 128 MiB float32
CHUNK_ELEMENTS = 2**25
BATCHED_UP_TO = 16  # images: one batched pass up to here, vmap above (module docstring)


def _weight_layers(net: nn.Module) -> list[tuple[str, nn.Module]]:
    """The layers whose weights vote: every Conv2d and Linear, in module order."""
    return [(name, m) for name, m in net.named_modules() if isinstance(m, nn.Conv2d | nn.Linear)]


def _score_of(votes: dict[str, torch.Tensor]) -> float:
    """``nansum |sum_i sign(g_i)|`` from the per-weight sums of signs, in float64."""
    total = torch.zeros((), dtype=torch.float64)
    for v in votes.values():
        total += torch.nansum(v.abs(), dtype=torch.float64).cpu()
    return float(total)


def gradsign_score(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                   chunk: int | None = None) -> float:
    """``nansum |sum_i sign(dL_i/dW)|`` over Conv2d/Linear weights, one sample per BN batch.

    ``net`` is modified: its BN layers lose their running buffers (outputs in train mode are
    unchanged).
    """
    replace_all_batch_norm_modules_(net)
    layers = _weight_layers(net)
    params = {f"{name}.weight": m.weight.detach() for name, m in layers}
    rest = {k: v.detach() for k, v in net.named_parameters() if k not in params}
    buffers = dict(net.named_buffers())

    def sample_loss(p, xi, yi):
        out = functional_call(net, (p, rest, buffers), (xi.unsqueeze(0),))
        return F.cross_entropy(out, yi.unsqueeze(0))

    per_sample = vmap(grad(sample_loss), in_dims=(None, 0, 0))
    if chunk is None:
        n_weights = sum(p.numel() for p in params.values())
        chunk = max(1, min(32, CHUNK_ELEMENTS // max(n_weights, 1)))
    votes = {k: torch.zeros_like(v) for k, v in params.items()}
    for xc, yc in zip(x.split(chunk), y.split(chunk), strict=True):
        grads = per_sample(params, xc, yc)
        for k, g in grads.items():
            votes[k] += torch.sign(g).sum(0)
    return _score_of(votes)


@contextmanager
def _single_sample_pass(net: nn.Module):
    """Every BatchNorm normalises each sample on its own, as a BN of a batch of one without
    running statistics (what :func:`gradsign_score` makes of every BN, in either mode), no
    parameter takes a gradient, and autograd is on; all restored on exit."""
    bns = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
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


def gradsign_score_batched(net: nn.Module, x: torch.Tensor, y: torch.Tensor,
                           chunk: int | None = None) -> float:
    """:func:`gradsign_score` from one batched pass (see the module docstring): for networks
    in which only train-mode BatchNorm layers mix the samples of a batch.

    ``net`` is left as it was (its BN layers and ``requires_grad`` flags are restored).
    """
    layers = _weight_layers(net)
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
                if name not in seen or len(seen[name]) < 2:
                    continue  # not run, or fed by no input (a Zero's new zeros): no gradient
                inp, gout = seen.pop(name)
                step = max(1, CHUNK_ELEMENTS // max(1, _unfolded_size(m, inp)))
                for i in range(0, inp.shape[0], step):
                    g = _per_sample_weight_grad(m, inp[i:i + step], gout[i:i + step])
                    votes[name] += torch.sign(g).sum(0).view_as(votes[name])
    return _score_of(votes)


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


#: the modules of a NATS network (zcnas.models): none mixes the samples of a batch but BN
_SAMPLEWISE = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU, nn.Linear, nn.Sequential, nn.ModuleList,
               nn.ModuleDict, nn.Identity, nn.AvgPool2d, nn.AdaptiveAvgPool2d, NatsNetwork,
               Cell, ReLUConvBN, WidthChange, AvgPool, AvgPool3x3, Zero, ResNetReduction)


def _batchable(net: nn.Module, x: torch.Tensor) -> bool:
    """Whether :func:`gradsign_score_batched` handles ``net`` on ``x``: a NATS network made
    only of the modules above (exactly those classes), plain convolutions, on the CPU (where
    its speed was measured)."""
    return x.device.type == "cpu" and isinstance(net, NatsNetwork) and all(
        type(m) in _SAMPLEWISE and (type(m) is not nn.Conv2d or (
            m.groups == 1 and m.padding_mode == "zeros" and m.dilation == (1, 1)
            and isinstance(m.padding, tuple)))
        for m in net.modules())


class GradSign(Proxy):
    info = ProxyInfo(
        name="gradsign", version="1",
        reference="Zhang & Jia, GradSign: Model Performance Inference with Theoretical Insights, "
                  "ICLR 2022",
        code="https://github.com/cmu-catalyst/GradSign "
             "(zero-cost-nas-code/foresight/pruners/measures/grad_conflict.py)",
        needs_labels=True, needs_images=True, input="real", bn="train", init="default",
        batch_size=128, n_batches=1,
        deviations="fixed seeded batch without augmentation; per-sample gradients batched "
                   "(torch.func.vmap, or one pass with per-sample BN up to 16 images, equal to "
                   "rounding; the same per-sample BN statistics as the reference loop)",
    )

    def score(self, ctx) -> float:
        batches = ctx.batches(self.batch_size, self.n_batches)
        x = torch.cat([b[0] for b in batches]) if len(batches) > 1 else batches[0][0]
        y = torch.cat([b[1] for b in batches]) if len(batches) > 1 else batches[0][1]
        # contiguous (NCHW): faster than channels-last on the CPU for the per-sample passes
        # (results/benchmarks/memory-format-cpu.txt)
        x = x.contiguous()
        net = ctx.network(affine=False, track=False, channels_last=False)
        if x.shape[0] <= BATCHED_UP_TO and _batchable(net, x):
            return gradsign_score_batched(net, x, y)
        return gradsign_score(net, x, y)
