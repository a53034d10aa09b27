"""The macro structure of the NATS-Bench networks and their official parameter/FLOP counts.

Both spaces share one skeleton (NATS-Bench ``TinyNetwork`` / ``DynamicShapeTinyNet``)::

    stem: conv3x3(3 -> C0) + BN
    layers: cells (stride 1) and ResNet basic-block reductions (stride 2)
    head: BN + ReLU, global average pool, linear

A :class:`NetworkPlan` lists those layers for a genotype; :mod:`zcnas.models` builds the torch
module from it and :func:`count_costs` counts, in pure Python, what NATS-Bench reports.

Counting convention (reverse-engineered from, and tested against, the official archives):
parameters are all trainable weights of the full build (dead edges included, BN affine pairs
included, running statistics excluded); FLOPs count multiply-adds of convolutions and the
linear layer (plus their biases) per image; pooling, BN, ReLU and additions count zero.
"""

from __future__ import annotations

from dataclasses import dataclass

from zcnas.datasets import get_dataset
from zcnas.spaces import nats_sss, nats_tss
from zcnas.spaces.base import Costs

_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}


@dataclass(frozen=True, slots=True)
class Layer:
    kind: str  # "cell" or "reduce"
    c_in: int
    c_out: int


@dataclass(frozen=True, slots=True)
class NetworkPlan:
    cell: nats_tss.Cell
    stem: int
    layers: tuple[Layer, ...]
    num_classes: int
    resolution: int


def tss_plan(arch, dataset: str = "cifar10", *, C: int = 16, N: int = 5) -> NetworkPlan:
    """The topology-space network: 3 stages of ``N`` cells at ``C, 2C, 4C`` channels."""
    cell = nats_tss.as_cell(arch)
    info = get_dataset(dataset)
    layers: list[Layer] = []
    c_prev = C
    for stage in range(3):
        c = C * 2**stage
        if stage:
            layers.append(Layer("reduce", c_prev, c))
        layers.extend(Layer("cell", c, c) for _ in range(N))
        c_prev = c
    return NetworkPlan(cell, C, tuple(layers), info.num_classes, info.resolution)


def sss_plan(arch, dataset: str = "cifar10") -> NetworkPlan:
    """The size-space network: cell, reduce, cell, reduce, cell at the five given widths."""
    ch = nats_sss.as_widths(arch).channels
    info = get_dataset(dataset)
    layers = []
    c_prev = ch[0]
    for i, c in enumerate(ch):
        layers.append(Layer("reduce" if i % 2 else "cell", c_prev, c))
        c_prev = c
    return NetworkPlan(
        nats_tss.parse_arch(nats_sss.SSS_CELL), ch[0], tuple(layers),
        info.num_classes, info.resolution,
    )


def _conv(c_in: int, c_out: int, k: int, hw: int, *, bn: bool = True) -> tuple[int, int]:
    """(params, flops) of a bias-free conv, plus an affine BN if ``bn``."""
    return c_in * c_out * k * k + (2 * c_out if bn else 0), c_in * c_out * k * k * hw


def _edge_costs(op: str, c_in: int, c_out: int, hw: int) -> tuple[int, int]:
    if op == "none" or (op == "skip_connect" and c_in == c_out):
        return 0, 0
    if op in _KERNEL:
        return _conv(c_in, c_out, _KERNEL[op], hw)
    # skip with a width change is a 1x1 conv + BN (FactorizedReduce, stride 1);
    # avg_pool with a width change is preceded by a 1x1 ReLU-conv-BN.
    if op == "skip_connect" or (op == "avg_pool_3x3" and c_in != c_out):
        return _conv(c_in, c_out, 1, hw)
    return 0, 0  # avg_pool at equal width: no weights, pooling FLOPs are not counted


def count_costs(plan: NetworkPlan) -> Costs:
    """Parameters and FLOPs as NATS-Bench's ``get_cost_info`` reports them."""
    res = plan.resolution
    params, flops = _conv(3, plan.stem, 3, res * res)
    for layer in plan.layers:
        if layer.kind == "reduce":
            res //= 2
            hw = res * res
            for p, f in (
                _conv(layer.c_in, layer.c_out, 3, hw),
                _conv(layer.c_out, layer.c_out, 3, hw),
                _conv(layer.c_in, layer.c_out, 1, hw, bn=False),
            ):
                params, flops = params + p, flops + f
        else:
            hw = res * res
            for op, (src, _dst) in zip(plan.cell.ops, nats_tss.EDGES, strict=True):
                c_in = layer.c_in if src == 0 else layer.c_out
                p, f = _edge_costs(op, c_in, layer.c_out, hw)
                params, flops = params + p, flops + f
    c_last = plan.layers[-1].c_out
    params += 2 * c_last  # head BN
    params += c_last * plan.num_classes + plan.num_classes
    flops += c_last * plan.num_classes + plan.num_classes
    return Costs(params, flops)
