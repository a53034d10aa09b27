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

import inspect
from dataclasses import replace

import torch
from torch import nn

from zcnas.datasets import get_dataset
from zcnas.models.leaves import batchnorm2d, conv2d, linear, relu
from zcnas.models.ops import ResNetReduction, Zero, make_op
from zcnas.spaces import get_space, nats_tss
from zcnas.spaces.plan import NetworkPlan, sss_plan, tss_plan


def edge_name(src: int, dst: int) -> str:
    return f"e{src}{dst}"


class Cell(nn.Module):
    """One cell: node ``j`` is the sum of its incoming edge ops; the output is node 3.

    With ``relu_probes=True`` (only meaningful with ``prune=True``) the pruned cell still runs
    every ReLU of the naive cell on exactly the tensor the naive cell feeds it: a conv edge
    that cannot reach the output keeps a bare ``nn.ReLU`` probe (its output is discarded), and
    the nodes such probes read are computed. Forward hooks on ``nn.ReLU`` modules (NASWOT,
    SWAP, linear regions) then see the same inputs as in the naive network, at the cost of the
    pruned one plus a few element-wise ops.
    """

    def __init__(
        self, cell: nats_tss.Cell, c_in: int, c_out: int, *,
        affine: bool = True, track: bool = True, prune: bool = True, relu_probes: bool = False,
    ) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out
        self.genotype = cell
        self.pruned = prune
        live, built, probes = _structure(cell, prune, relu_probes)
        self.edges = nn.ModuleDict()
        for op, (src, dst), keep in zip(cell.ops, nats_tss.EDGES, built, strict=True):
            if keep:
                width_in = c_in if src == 0 else c_out
                self.edges[edge_name(src, dst)] = make_op(op, width_in, c_out, affine=affine,
                                                          track=track)
        self.probes = nn.ModuleDict()
        self._wire(live, probes)

    def prune_(self, relu_probes: bool = False) -> Cell:
        """Prune this naive cell in place: the modules of dead edges are dropped and the live
        ones kept as they are (the same cell as a pruned build loaded with this one's
        weights, without building it)."""
        if self.pruned:
            raise ValueError("the cell is already pruned")
        live, built, probes = _structure(self.genotype, True, relu_probes)
        for (src, dst), keep in zip(nats_tss.EDGES, built, strict=True):
            if not keep:
                del self.edges[edge_name(src, dst)]
        self.pruned = True
        self._wire(live, probes)
        return self

    def _wire(self, live: tuple[bool, ...], probes: list[tuple[int, int]]) -> None:
        """Which built edges feed each node, the probes and the output's inputs."""
        for src, dst in probes:
            self.probes[f"p{src}{dst}"] = relu()
        self._probe_sources = [src for src, _ in probes]
        self._inputs = [
            [src for src in range(dst) if edge_name(src, dst) in self.edges]
            for dst in range(nats_tss.NUM_NODES)
        ]
        # the output is built from live edges only; extra (probe-feeding) edges never reach it
        self._out_inputs = [
            src for src in range(nats_tss.NUM_NODES - 1)
            if live[nats_tss.EDGES.index((src, nats_tss.NUM_NODES - 1))]
        ]
        self.zero = Zero(self.c_in, self.c_out) if not self._out_inputs else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.zero is not None and not self.probes:
            return self.zero(x)
        nodes: list[torch.Tensor | None] = [x]
        last = nats_tss.NUM_NODES - 1
        for dst in range(1, last):
            terms = [self.edges[edge_name(src, dst)](nodes[src]) for src in self._inputs[dst]]
            nodes.append(_total(terms))
        for name, src in zip(self.probes, self._probe_sources, strict=True):
            value = nodes[src]
            self.probes[name](value if value is not None else x.new_zeros(x.shape))
        if self.zero is not None:
            return self.zero(x)
        return _total([self.edges[edge_name(src, last)](nodes[src]) for src in self._out_inputs])


def _total(terms: list[torch.Tensor]) -> torch.Tensor | None:
    """Sum of a node's inputs (no ``0 + t`` copy as with builtin ``sum``); None if no inputs."""
    if not terms:
        return None
    out = terms[0]
    for t in terms[1:]:
        out = out + t
    return out


_RELU_OPS = ("nor_conv_1x1", "nor_conv_3x3")


def _structure(
    cell: nats_tss.Cell, prune: bool, relu_probes: bool
) -> tuple[tuple[bool, ...], list[bool], list[tuple[int, int]]]:
    """The live edges, the edges to build and the ReLU probes of a cell's build."""
    live = nats_tss.live_edges(cell) if prune else (True,) * nats_tss.NUM_EDGES
    if prune and relu_probes:
        built, probes = _probe_plan(cell, live)
        return live, built, probes
    return live, list(live), []


def _probe_plan(
    cell: nats_tss.Cell, live: tuple[bool, ...]
) -> tuple[list[bool], list[tuple[int, int]]]:
    """Edges to build and ReLU probes to add so every naive-cell ReLU input is reproduced.

    In the naive cell each conv edge ``i -> j`` applies a ReLU to node ``i``. For a dead conv
    edge we add a probe on node ``i``; node ``i`` must then hold its naive value, so every
    non-``none`` edge from a non-zero node into it is built as well (recursively). Nodes that
    are always zero are fed to the probe as zeros.
    """
    nonzero = {0}
    for node in range(1, nats_tss.NUM_NODES):
        if any(op != "none" and src in nonzero for op, src in cell.inputs(node)):
            nonzero.add(node)
    last = nats_tss.NUM_NODES - 1
    probes = [
        (src, dst) for keep, op, (src, dst) in zip(live, cell.ops, nats_tss.EDGES, strict=True)
        if not keep and op in _RELU_OPS
    ]
    needed = {src for src, _ in probes if src in nonzero and src != 0}
    for node in range(last - 1, 0, -1):  # a needed node needs its non-zero sources
        if node in needed:
            needed.update(src for op, src in cell.inputs(node)
                          if op != "none" and src in nonzero and src != 0)
    built = [
        keep or (op != "none" and src in nonzero and dst in needed)
        for keep, op, (src, dst) in zip(live, cell.ops, nats_tss.EDGES, strict=True)
    ]
    # an edge built only to feed a needed node runs its own ReLU: no probe for it
    probes = [edge for edge in probes if not built[nats_tss.EDGES.index(edge)]]
    return built, probes


class NatsNetwork(nn.Module):
    """A NATS-Bench network built from a :class:`NetworkPlan`; ``forward`` returns logits."""

    def __init__(
        self, plan: NetworkPlan, *, affine: bool = True, track_running_stats: bool = True,
        prune: bool = True, relu_probes: bool = False,
    ) -> None:
        super().__init__()
        self.plan = plan
        self.stem = nn.Sequential(
            conv2d(3, plan.stem, 3, padding=1, bias=False),
            batchnorm2d(plan.stem),
        )
        self.cells = nn.ModuleList(
            ResNetReduction(layer.c_in, layer.c_out) if layer.kind == "reduce"
            else Cell(plan.cell, layer.c_in, layer.c_out, affine=affine,
                      track=track_running_stats, prune=prune, relu_probes=relu_probes)
            for layer in plan.layers
        )
        c_last = plan.layers[-1].c_out
        self.lastact = nn.Sequential(batchnorm2d(c_last), relu(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = linear(c_last, plan.num_classes)

    def prune_(self, relu_probes: bool = False) -> NatsNetwork:
        """Prune this naive network in place (:meth:`Cell.prune_` on every cell): the network
        a pruned build would be after loading this one's ``state_dict``, in a fraction of the
        time of a second build."""
        for cell in self.cells:
            if isinstance(cell, Cell):
                cell.prune_(relu_probes)
        return self

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features before the classifier, shape (N, C_last)."""
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        return self.global_pooling(self.lastact(x)).flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def build_tss_network(cell, num_classes: int, *, affine: bool = True, track: bool = True,
                      prune: bool = True, relu_probes: bool = False) -> NatsNetwork:
    """The topology space's model builder (named by :class:`zcnas.spaces.nats_tss.NatsTopology`):
    the NATS-Bench ``TinyNetwork`` of ``cell`` with a ``num_classes`` head."""
    plan = tss_plan(cell)
    return NatsNetwork(replace(plan, num_classes=num_classes), affine=affine,
                       track_running_stats=track, prune=prune, relu_probes=relu_probes)


def build_sss_network(widths, num_classes: int, *, affine: bool = True, track: bool = True,
                      prune: bool = True, relu_probes: bool = False) -> NatsNetwork:
    """The size space's model builder: NATS-Bench's ``DynamicShapeTinyNet`` of ``widths``."""
    plan = sss_plan(widths)
    return NatsNetwork(replace(plan, num_classes=num_classes), affine=affine,
                       track_running_stats=track, prune=prune, relu_probes=relu_probes)


def build_model(space, genotype, num_classes: int, **options) -> nn.Module:
    """The network of ``genotype`` from ``space``'s own builder, with a ``num_classes`` head.

    ``options`` (``affine``, ``track``, ``prune``, ``relu_probes``) are passed when the builder
    names them in its signature (or takes ``**kwargs``) and dropped otherwise: they describe
    the NATS-Bench networks and mean nothing to a model that has no such parts.
    """
    sp = get_space(space)
    builder = sp.model_builder()
    accepted = builder_options(builder)
    kwargs = {k: v for k, v in options.items() if accepted is None or k in accepted}
    return builder(sp.as_genotype(genotype), num_classes, **kwargs)


def builder_options(builder) -> frozenset[str] | None:
    """The keyword options a model builder accepts (None: any, it takes ``**kwargs``)."""
    params = inspect.signature(builder).parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return frozenset(p.name for p in params if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD))


def build_network(
    arch,
    space: str = "nats-tss",
    dataset: str = "cifar10",
    *,
    num_classes: int | None = None,
    affine: bool = True,
    track_running_stats: bool = True,
    prune: bool = True,
    relu_probes: bool = False,
) -> nn.Module:
    """Build the network of ``arch`` (a genotype or arch string) of ``space`` for ``dataset``.

    ``num_classes`` overrides the dataset's class count (NASWOT builds a 1-output net);
    ``affine``/``track_running_stats`` set the cells' BN (the official networks use True/True;
    foresight and NASLib use False/False); the stem, reduction and head BN stay affine as in
    the official code. ``relu_probes`` keeps, in a pruned build, every ReLU of the naive
    network with its naive input (see :class:`Cell`). Weights use PyTorch's default
    initialisation: seed with ``torch.manual_seed`` or re-initialise explicitly. Any
    registered space works (its builder takes the options it knows).
    """
    if num_classes is None:
        num_classes = get_dataset(dataset).num_classes
    return build_model(space, arch, num_classes, affine=affine, track=track_running_stats,
                       prune=prune, relu_probes=relu_probes)


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
