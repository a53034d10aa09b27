"""The reference codes' naive NB201 networks, written out independently for the leading-edge tests.

Two module trees, each built the way its reference code builds it (test code written from the
references' descriptions; no reference code is copied here):

- :class:`ForesightNB201`: SamsungLabs/zero-cost-nas ``foresight/models/nasbench2.py`` (used by
  grad_norm, snip, fisher, grasp, jacov, synflow, and GradSign's fork): every edge holds all five
  candidate ops and a keep mask selects one; cells' BN ``affine=False, track_running_stats=False``
  (so their convs carry a bias); ``use_bn=False`` is foresight's BN-free copy for synflow, which
  drops the BN of the stem, the cells and the head but keeps the four BN layers of the two
  reduction blocks;
- :class:`NatsNB201`: the official NATS-Bench ``TinyNetwork`` / ``InferCell`` (NASWOT, MFNAS,
  ZiCo, AZ-NAS, TE-NAS, Zen, SWAP, EPE-NAS): one op per edge in a ``layers`` list ordered by
  target node, ``op`` Sequentials, affine/tracked BN configurable; :class:`NatsThin` is TE-NAS's
  one-cell, one-channel network for linear regions.

In both, ``none`` is ``x.mul(0.)``, a node is Python's ``sum`` of its incoming edges in order
(``0 + e_1 + ...``), every edge is computed (dead ones included), and the tensors are contiguous
(NCHW) as in the references' CUDA runs. The ``load_*`` functions copy the weights of zcnas's
naive network (``ctx.network(prune=False)``; a pruned network holds the same values) module by
module, so a reference layout and zcnas score the same weights.
"""

from __future__ import annotations

import torch
from torch import nn

from zcnas.models.network import Cell as ZCell
from zcnas.spaces import nats_tss

OPS = ("none", "avg_pool_3x3", "nor_conv_3x3", "nor_conv_1x1", "skip_connect")  # foresight order


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


class Identity(nn.Module):
    def forward(self, x):
        return x


class Pool(nn.Module):
    def __init__(self):
        super().__init__()
        self.avgpool = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x):
        return self.avgpool(x)


class ReLUConvBN(nn.Module):
    def __init__(self, c_in, c_out, k, stride, *, affine, track, bn=True):
        super().__init__()
        layers = [nn.ReLU(inplace=False),
                  nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, bias=not affine)]
        if bn:
            layers.append(nn.BatchNorm2d(c_out, affine=affine, track_running_stats=track))
        self.op = nn.Sequential(*layers)

    def forward(self, x):
        return self.op(x)


class Reduction(nn.Module):
    """The ResNet basic block between stages: affine, tracked BN in every reference."""

    def __init__(self, c_in, c_out, *, names="foresight"):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, affine=True, track=True)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, affine=True, track=True)
        short = nn.Sequential(nn.AvgPool2d(2, 2, 0), nn.Conv2d(c_in, c_out, 1, bias=False))
        self.short_name = "residual" if names == "foresight" else "downsample"
        setattr(self, self.short_name, short)

    def forward(self, x):
        block = self.conv_b(self.conv_a(x))
        return getattr(self, self.short_name)(x) + block


def _edge_op(name, c, *, affine, track, bn=True):
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return Identity()
    if name == "avg_pool_3x3":
        return Pool()
    return ReLUConvBN(c, c, 3 if name == "nor_conv_3x3" else 1, 1, affine=affine, track=track,
                      bn=bn)


# --- foresight -------------------------------------------------------------------------------


class SearchCell(nn.Module):
    def __init__(self, cell, c, *, use_bn):
        super().__init__()
        self.options = nn.ModuleList(
            _edge_op(name, c, affine=False, track=False, bn=use_bn)
            for _ in nats_tss.EDGES for name in OPS)
        self.keep = [cell.op(src, dst) == name
                     for dst in range(1, 4) for src in range(dst) for name in OPS]

    def forward(self, x):
        nodes, idx = [x], 0
        for dst in range(1, 4):
            terms = []
            for src in range(dst):
                for _ in OPS:
                    if self.keep[idx]:
                        terms.append(self.options[idx](nodes[src]))
                    idx += 1
            nodes.append(sum(terms))
        return nodes[-1]

    def op_of(self, src, dst):
        """The kept module of edge ``src -> dst``."""
        base = (nats_tss.EDGES.index((src, dst))) * len(OPS)
        return next(self.options[base + k] for k in range(len(OPS)) if self.keep[base + k])


class ForesightNB201(nn.Module):
    def __init__(self, arch, num_classes=10, *, use_bn=True):
        super().__init__()
        cell = nats_tss.as_cell(arch)
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False),
                                  *([nn.BatchNorm2d(16)] if use_bn else []))
        self.stack_cell1 = nn.Sequential(*[SearchCell(cell, 16, use_bn=use_bn) for _ in range(5)])
        self.reduction1 = Reduction(16, 32)
        self.stack_cell2 = nn.Sequential(*[SearchCell(cell, 32, use_bn=use_bn) for _ in range(5)])
        self.reduction2 = Reduction(32, 64)
        self.stack_cell3 = nn.Sequential(*[SearchCell(cell, 64, use_bn=use_bn) for _ in range(5)])
        self.lastact = nn.Sequential(*([nn.BatchNorm2d(64)] if use_bn else []),
                                     nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.stem(x)
        x = self.reduction1(self.stack_cell1(x))
        x = self.reduction2(self.stack_cell2(x))
        x = self.lastact(self.stack_cell3(x))
        return self.classifier(self.global_pooling(x).view(x.size(0), -1))

    def layer_pairs(self):
        """(reference layer, zcnas layer name) for the 17 layers of ``net.cells``."""
        stacks = [self.stack_cell1, self.stack_cell2, self.stack_cell3]
        out = []
        for i in range(17):
            if i in (5, 11):
                out.append((self.reduction1 if i == 5 else self.reduction2, f"cells.{i}"))
            else:
                out.append((stacks[i // 6][i % 6], f"cells.{i}"))
        return out


def _copy(dst: nn.Module, src: nn.Module) -> None:
    with torch.no_grad():
        for name, t in src.named_parameters(recurse=False):
            if getattr(dst, name, None) is not None:
                getattr(dst, name).copy_(t)


def _copy_conv_bn(dst_seq: nn.Sequential, src_seq: nn.Sequential) -> None:
    """ReLU-conv-BN Sequentials: copy the conv (index 1) and, where both have it, the BN."""
    _copy(dst_seq[1], src_seq[1])
    if len(dst_seq) > 2 and isinstance(src_seq[2], nn.BatchNorm2d):
        _copy(dst_seq[2], src_seq[2])


def load_foresight(ref: ForesightNB201, net: nn.Module) -> ForesightNB201:
    """Copy zcnas's naive network ``net`` (cells' BN affine=False) into ``ref``."""
    _copy(ref.stem[0], net.stem[0])
    if len(ref.stem) > 1:
        _copy(ref.stem[1], net.stem[1])
    modules = dict(net.named_modules())
    for layer, name in ref.layer_pairs():
        ours = modules[name]
        if isinstance(layer, Reduction):
            _copy_conv_bn(layer.conv_a.op, ours.conv_a)
            _copy_conv_bn(layer.conv_b.op, ours.conv_b)
            _copy(layer.residual[1], ours.downsample[1])
            continue
        for src, dst in nats_tss.EDGES:
            op = layer.op_of(src, dst)
            if isinstance(op, ReLUConvBN):
                _copy_conv_bn(op.op, ours.edges[f"e{src}{dst}"])
    if isinstance(ref.lastact[0], nn.BatchNorm2d):
        _copy(ref.lastact[0], net.lastact[0])
    _copy(ref.classifier, net.classifier)
    return ref.train()


# --- NATS-Bench ------------------------------------------------------------------------------


class InferCell(nn.Module):
    def __init__(self, cell, c, *, affine, track):
        super().__init__()
        self.layers = nn.ModuleList()
        self.node_in: list[list[int]] = []
        self.node_ix: list[list[int]] = []
        for dst in range(1, 4):
            ix, ins = [], []
            for op, src in cell.inputs(dst):
                ix.append(len(self.layers))
                ins.append(src)
                self.layers.append(_edge_op(op, c, affine=affine, track=track))
            self.node_ix.append(ix)
            self.node_in.append(ins)

    def forward(self, x):
        nodes = [x]
        for ix, ins in zip(self.node_ix, self.node_in, strict=True):
            nodes.append(sum(self.layers[i](nodes[j]) for i, j in zip(ix, ins, strict=True)))
        return nodes[-1]


class NatsNB201(nn.Module):
    """``TinyNetwork`` (forward returns the logits; the official one returns (out, logits))."""

    def __init__(self, arch, num_classes=10, *, affine=True, track=True):
        super().__init__()
        cell = nats_tss.as_cell(arch)
        self.stem = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1, bias=False), nn.BatchNorm2d(16))
        layers = []
        for c_in, c_out, reduce in ((16, 16, False),) * 5 + ((16, 32, True),) + (
                (32, 32, False),) * 5 + ((32, 64, True),) + ((64, 64, False),) * 5:
            layers.append(Reduction(c_in, c_out, names="nats") if reduce
                          else InferCell(cell, c_out, affine=affine, track=track))
        self.cells = nn.ModuleList(layers)
        self.lastact = nn.Sequential(nn.BatchNorm2d(64), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(64, num_classes)

    def forward(self, x):
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.view(x.size(0), -1))


def _load_cell(layer: InferCell, ours: ZCell) -> None:
    """Edges a pruned ``ours`` does not build keep ``layer``'s own weights."""
    for k, (src, dst) in enumerate(nats_tss.EDGES):
        op = layer.layers[k]
        if isinstance(op, ReLUConvBN) and f"e{src}{dst}" in ours.edges:
            _copy_conv_bn(op.op, ours.edges[f"e{src}{dst}"])


def load_nats(ref: NatsNB201, net: nn.Module) -> NatsNB201:
    """Copy zcnas's network ``net`` into ``ref`` (a conv bias ``ref`` lacks is dropped: with
    train-mode BN after it, it cancels; edges a pruned ``net`` lacks keep ``ref``'s weights)."""
    _copy(ref.stem[0], net.stem[0])
    _copy(ref.stem[1], net.stem[1])
    for layer, ours in zip(ref.cells, net.cells, strict=True):
        if isinstance(layer, Reduction):
            _copy_conv_bn(layer.conv_a.op, ours.conv_a)
            _copy_conv_bn(layer.conv_b.op, ours.conv_b)
            _copy(layer.downsample[1], ours.downsample[1])
        else:
            _load_cell(layer, ours)
    _copy(ref.lastact[0], net.lastact[0])
    _copy(ref.classifier, net.classifier)
    return ref.train()


class NatsThin(nn.Module):
    """TE-NAS's linear-region network: no stem, one 1-channel ``InferCell``, BN + ReLU."""

    def __init__(self, arch):
        super().__init__()
        self.cell = InferCell(nats_tss.as_cell(arch), 1, affine=True, track=False)
        self.lastact = nn.Sequential(nn.BatchNorm2d(1), nn.ReLU(inplace=True))

    def forward(self, x):
        return self.lastact(self.cell(x))


def load_thin(ref: NatsThin, thin: nn.Module) -> NatsThin:
    _load_cell(ref.cell, thin.cell)
    _copy(ref.lastact[0], thin.lastact[0])
    return ref.train()
