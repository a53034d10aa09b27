"""Genotype -> torch network, exactly as NATS-Bench builds it.

Topology space (``TinyNetwork``): stem conv3x3(3 -> 16) + BN; three stages of five cells at
16 / 32 / 64 channels joined by ResNet basic-block reductions; BN, ReLU, global average pool,
linear. Size space (``DynamicShapeTinyNet``): the same skeleton with one cell per stage and the
five genotype widths. The layer list comes from :mod:`zcnas.spaces.plan`.

Dead-path elimination (``prune=True``, the default): edges that cannot change a cell's output
(see :func:`zcnas.spaces.nats_tss.live_edges`) are not built, and a cell whose output is always
zero returns zeros. Module names are the same in both builds, so the pruned network loads the
naive network's ``state_dict`` (``strict=False``) and returns the same logits.
"""

from __future__ import annotations

import torch
from torch import nn

from zcnas.models.ops import ResNetReduction, Zero, make_op
from zcnas.spaces import canonical_space, nats_tss
from zcnas.spaces.plan import NetworkPlan, sss_plan, tss_plan


def edge_name(src: int, dst: int) -> str:
    return f"e{src}{dst}"


class Cell(nn.Module):
    """One cell: node ``j`` is the sum of its incoming edge ops; the output is node 3."""

    def __init__(
        self, cell: nats_tss.Cell, c_in: int, c_out: int, *,
        affine: bool = True, track: bool = True, prune: bool = True,
    ) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        live = nats_tss.live_edges(cell) if prune else (True,) * nats_tss.NUM_EDGES
        self.edges = nn.ModuleDict()
        for op, (src, dst), keep in zip(cell.ops, nats_tss.EDGES, live, strict=True):
            if keep:
                width_in = c_in if src == 0 else c_out
                self.edges[edge_name(src, dst)] = make_op(op, width_in, c_out, affine=affine,
                                                          track=track)
        self._inputs = [
            [src for src in range(dst) if edge_name(src, dst) in self.edges]
            for dst in range(nats_tss.NUM_NODES)
        ]
        self.zero = Zero(c_in, c_out) if not self._inputs[-1] else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.zero is not None:
            return self.zero(x)
        nodes = [x]
        for dst in range(1, nats_tss.NUM_NODES):
            terms = [self.edges[edge_name(src, dst)](nodes[src]) for src in self._inputs[dst]]
            nodes.append(sum(terms) if terms else None)
        return nodes[-1]


class NatsNetwork(nn.Module):
    """A NATS-Bench network built from a :class:`NetworkPlan`; ``forward`` returns logits."""

    def __init__(
        self, plan: NetworkPlan, *, affine: bool = True, track_running_stats: bool = True,
        prune: bool = True,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.stem = nn.Sequential(
            nn.Conv2d(3, plan.stem, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(plan.stem),
        )
        self.cells = nn.ModuleList(
            ResNetReduction(layer.c_in, layer.c_out) if layer.kind == "reduce"
            else Cell(plan.cell, layer.c_in, layer.c_out, affine=affine,
                      track=track_running_stats, prune=prune)
            for layer in plan.layers
        )
        c_last = plan.layers[-1].c_out
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, plan.num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the classifier, shape (N, C_last)."""
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.global_pooling(self.lastact(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_network(
    arch,
    space: str = "nats-tss",
    dataset: str = "cifar10",
    *,
    num_classes: int | None = None,
    affine: bool = True,
    track_running_stats: bool = True,
    prune: bool = True,
) -> NatsNetwork:
    """Build the network of ``arch`` (a genotype or arch string) for ``dataset``.

    ``num_classes`` overrides the dataset's class count (NASWOT builds a 1-output net);
    ``affine``/``track_running_stats`` set the cells' BN (the official networks use True/True;
    foresight and NASLib use False/False); the stem, reduction and head BN stay affine as in
    the official code. Weights use PyTorch's default initialisation: seed with
    ``torch.manual_seed`` or re-initialise explicitly.
    """
    space = canonical_space(space)
    plan = tss_plan(arch, dataset) if space == "nats-tss" else sss_plan(arch, dataset)
    if num_classes is not None:
        plan = NetworkPlan(plan.cell, plan.stem, plan.layers, num_classes, plan.resolution)
    return NatsNetwork(plan, affine=affine, track_running_stats=track_running_stats, prune=prune)


def count_parameters(model: nn.Module) -> int:
    """Trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_flops(model: nn.Module, resolution: int) -> int:
    """Multiply-adds of convolutions and linear layers (plus biases) for one image.

    The NATS-Bench convention (pooling, BN and ReLU count zero); measured with forward hooks.
    """
    total = 0

    def conv_hook(m: nn.Conv2d, _inp, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        positions = out.shape[2] * out.shape[3]
        total += kh * kw * m.in_channels * m.out_channels // m.groups * positions
        if m.bias is not None:
            total += m.out_channels * positions

    def linear_hook(m: nn.Linear, _inp, _out) -> None:
        nonlocal total
        total += m.in_features * m.out_features + (m.out_features if m.bias is not None else 0)

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, resolution, resolution))
    finally:
        model.train(was_training)
        for h in handles:
            h.remove()
    return total
