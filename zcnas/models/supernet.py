"""The weight-sharing supernet of the topology space (NAS-Bench-201 cells).

One network holds every op on every edge of every cell: the NB201 skeleton (stem, three stages
of five cells joined by ResNet reductions, head) where each cell edge is a list of the five
candidate ops. Cell ops use BN without affine parameters (Ning et al., NeurIPS'21: affine BN
hurts weight sharing); the stem, reductions and head are the official, affine ones.

A forward pass runs either

* one path (``arch``): every cell applies the ops of one genotype, and only the edges that can
  reach the cell output, exactly like the stand-alone network of that genotype (SPOS); or
* a relaxation (``weights``, shape (6, 5)): every edge outputs the weighted sum of its allowed
  ops, DARTS-style, so the weights can be trained by gradient.

Pruning (:meth:`Supernet.prune`) removes ops from an edge's candidates; the mask travels with
the ``state_dict``. A genotype that needs a pruned op is refused with one line, unless an
isomorphic genotype inside the supernet computes the same function (:meth:`Supernet.resolve`).

:class:`PathSampler` draws training paths de-isomorphically: a class of isomorphic cells
uniformly (among the classes with a member inside the supernet, or among a given pool, e.g.
the current population), then one of its members inside the supernet uniformly.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from zcnas.errors import OutsideSupernetError
from zcnas.models.network import edge_name
from zcnas.models.ops import ResNetReduction, make_op
from zcnas.spaces import nats_tss
from zcnas.spaces.plan import tss_plan

OPS = nats_tss.OPS
NUM_OPS = len(OPS)
_NONE = OPS.index("none")


class SuperCell(nn.Module):
    """A cell whose every edge holds all five candidate ops (``edges['e01'][k]`` = op ``k``)."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.edges = nn.ModuleDict()
        for src, dst in nats_tss.EDGES:
            width_in = c_in if src == 0 else c_out
            self.edges[edge_name(src, dst)] = nn.ModuleList(
                make_op(op, width_in, c_out, affine=False, track=True) for op in OPS)
        self.c_out = c_out

    def forward_path(self, x: torch.Tensor, choice: Sequence[int],
                     live: Sequence[bool]) -> torch.Tensor:
        nodes: list[torch.Tensor | None] = [x]
        for dst in range(1, nats_tss.NUM_NODES):
            out = None
            for src in range(dst):
                e = nats_tss.EDGES.index((src, dst))
                if live[e]:
                    y = self.edges[edge_name(src, dst)][choice[e]](nodes[src])
                    out = y if out is None else out + y
            nodes.append(out)
        if nodes[-1] is None:  # a cell that computes zero
            shape = list(x.shape)
            shape[1] = self.c_out
            return x.new_zeros(shape)
        return nodes[-1]

    def forward_relaxed(self, x: torch.Tensor, weights: torch.Tensor,
                        mask: np.ndarray) -> torch.Tensor:
        nodes = [x]
        for dst in range(1, nats_tss.NUM_NODES):
            out = None
            for src in range(dst):
                e = nats_tss.EDGES.index((src, dst))
                ops = self.edges[edge_name(src, dst)]
                for k in range(NUM_OPS):
                    if k == _NONE or not mask[e, k]:  # `none` adds w * 0
                        continue
                    y = weights[e, k] * ops[k](nodes[src])
                    out = y if out is None else out + y
            if out is None:
                shape = list(x.shape)
                shape[1] = self.c_out
                out = x.new_zeros(shape)
            nodes.append(out)
        return nodes[-1]


class Supernet(nn.Module):
    """The topology-space supernet for ``dataset`` (its class count and resolution).

    ``forward(x, arch)`` runs one path; ``forward(x, weights=w)`` the relaxation with ``w``
    (6 x 5, rows = edges, columns = :data:`OPS`; masked ops are skipped). ``channels`` and
    ``cells`` (per stage) default to NAS-Bench-201's 16 and 5; a narrower, shallower supernet
    trains more steps per CPU second (results/supernet/README.md).
    """

    def __init__(self, dataset: str = "cifar10", *, num_classes: int | None = None,
                 channels: int = 16, cells: int = 5) -> None:
        super().__init__()
        plan = tss_plan(("skip_connect",) * nats_tss.NUM_EDGES, dataset, C=channels, N=cells)
        self.dataset = dataset
        self.channels, self.n_cells = channels, cells
        self.num_classes = num_classes or plan.num_classes
        self.stem = nn.Sequential(nn.Conv2d(3, plan.stem, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(plan.stem))
        self.cells = nn.ModuleList(
            ResNetReduction(layer.c_in, layer.c_out) if layer.kind == "reduce"
            else SuperCell(layer.c_in, layer.c_out) for layer in plan.layers)
        c_last = plan.layers[-1].c_out
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_last), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_last, self.num_classes)
        #: allowed[e, k]: op k is still a candidate on edge e
        self.allowed = np.ones((nats_tss.NUM_EDGES, NUM_OPS), dtype=bool)
        self.pruned_at: list[dict[str, Any]] = []

    # --- the op table ------------------------------------------------------------------------

    def get_extra_state(self) -> dict[str, Any]:
        return {"allowed": self.allowed.tolist(), "pruned_at": list(self.pruned_at)}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.allowed = np.array(state["allowed"], dtype=bool)
        self.pruned_at = list(state.get("pruned_at", []))

    def contains(self, arch: Any) -> bool:
        cell = nats_tss.as_cell(arch)
        return all(self.allowed[e, OPS.index(op)] for e, op in enumerate(cell.ops))

    def resolve(self, arch: Any) -> nats_tss.Cell:
        """``arch`` as a cell inside the supernet: itself, else an isomorphic cell whose ops
        are all still candidates (the same function of the input, computed by that cell's own
        shared weights); otherwise :class:`OutsideSupernetError`.
        """
        cell = nats_tss.as_cell(arch)
        if self.contains(cell):
            return cell
        key = nats_tss.canonical_key(cell)
        for c in _class_of(key):
            if self.contains(c):
                return c
        e = next(e for e, op in enumerate(cell.ops) if not self.allowed[e, OPS.index(op)])
        src, dst = nats_tss.EDGES[e]
        kept = ", ".join(OPS[k] for k in range(NUM_OPS) if self.allowed[e, k])
        raise OutsideSupernetError(
            f"{nats_tss.format_arch(cell)} uses {cell.ops[e]} on edge {src}->{dst}, which was "
            f"pruned from the supernet (that edge keeps: {kept}); evaluate cells inside the "
            "pruned space or use an unpruned supernet")

    def holds(self, arch: Any) -> bool:
        """Whether :meth:`resolve` succeeds: ``arch`` or an isomorph is inside."""
        try:
            self.resolve(arch)
            return True
        except OutsideSupernetError:
            return False

    def prune(self, elites: Iterable[Any], *, label: str = "",
              edges: Iterable[int] | None = None) -> list[tuple[int, str]]:
        """Keep on each edge (of ``edges``, default all) only the ops some elite uses there
        (G-EvoNAS); returns the ``(edge, op)`` pairs removed. Elites are resolved into the
        supernet first."""
        cells = [self.resolve(a) for a in elites]
        if not cells:
            raise ValueError("pruning needs at least one elite")
        used = np.zeros_like(self.allowed)
        for c in cells:
            for e, op in enumerate(c.ops):
                used[e, OPS.index(op)] = True
        keep = set(range(nats_tss.NUM_EDGES)) if edges is None else set(edges)
        for e in set(range(nats_tss.NUM_EDGES)) - keep:
            used[e] = True
        removed = [(e, OPS[k]) for e in range(nats_tss.NUM_EDGES) for k in range(NUM_OPS)
                   if self.allowed[e, k] and not used[e, k]]
        self.allowed &= used
        self.pruned_at.append({"label": label, "elites": len(cells),
                               "removed": [[e, op] for e, op in removed]})
        return removed

    def space_size(self) -> int:
        """How many genotypes the supernet still holds."""
        return int(np.prod(self.allowed.sum(axis=1)))

    # --- forward -----------------------------------------------------------------------------

    def forward(self, x: torch.Tensor, arch: Any = None, *,
                weights: torch.Tensor | None = None) -> torch.Tensor:
        if (arch is None) == (weights is None):
            raise ValueError("give exactly one of arch (a path) or weights (a relaxation)")
        x = self.stem(x)
        if weights is None:
            cell = self.resolve(arch)
            choice = [OPS.index(op) for op in cell.ops]
            live = nats_tss.live_edges(cell)
            for m in self.cells:
                x = m.forward_path(x, choice, live) if isinstance(m, SuperCell) else m(x)
        else:
            if tuple(weights.shape) != (nats_tss.NUM_EDGES, NUM_OPS):
                raise ValueError(f"weights must be 6 x 5, got {tuple(weights.shape)}")
            for m in self.cells:
                x = m.forward_relaxed(x, weights, self.allowed) if isinstance(m, SuperCell) \
                    else m(x)
        return self.classifier(self.global_pooling(self.lastact(x)).flatten(1))

    def extract(self, arch: Any):
        """The stand-alone :class:`~zcnas.models.NatsNetwork` of ``arch`` (cell BN without
        affine, dead edges not built) holding the supernet's weights for that path: it returns
        the same logits as ``self(x, arch)``. Use it to fine-tune or export one sub-network."""
        from zcnas.models.network import build_network

        cell = self.resolve(arch)
        if (self.channels, self.n_cells) != (16, 5):
            raise ValueError("extract() builds NAS-Bench-201's network (16 channels, 5 cells "
                             f"per stage); this supernet has {self.channels} and {self.n_cells}")
        net = build_network(cell, "nats-tss", self.dataset, num_classes=self.num_classes,
                            affine=False)
        own = self.state_dict()
        mapped = {}
        for name in net.state_dict():
            parts = name.split(".")
            if len(parts) > 3 and parts[2] == "edges":  # cells.i.edges.eXY.rest
                e = nats_tss.EDGES.index((int(parts[3][1]), int(parts[3][2])))
                k = OPS.index(cell.ops[e])
                mapped[name] = own[".".join(parts[:4] + [str(k)] + parts[4:])]
            else:
                mapped[name] = own[name]
        net.load_state_dict(mapped)
        return net

    def path_parameters(self, arch: Any) -> list[nn.Parameter]:
        """The parameters a path uses (shared skeleton + its ops on its live edges)."""
        cell = self.resolve(arch)
        live = nats_tss.live_edges(cell)
        params = [p for name, p in self.named_parameters() if ".edges." not in name]
        for m in self.cells:
            if isinstance(m, SuperCell):
                for e, (src, dst) in enumerate(nats_tss.EDGES):
                    if live[e]:
                        op = m.edges[edge_name(src, dst)][OPS.index(cell.ops[e])]
                        params.extend(op.parameters())
        return params


def _class_of(key: str) -> tuple[nats_tss.Cell, ...]:
    return _members_by_key().get(key, ())


@functools.lru_cache(maxsize=1)
def _members_by_key() -> dict[str, tuple[nats_tss.Cell, ...]]:
    return {nats_tss.canonical_key(m[0]): m for m in nats_tss.isomorphism_classes()}


class PathSampler:
    """De-isomorphic path sampling for a supernet (its current op table).

    ``sample(rng)`` draws one genotype: a class uniformly, then a member inside the supernet
    uniformly. With ``pool`` (arch strings, e.g. the current population) it draws one of the
    pool's distinct cells uniformly (fine-tuning on the search region): exactly the cells
    that get scored, each resolved into the supernet.
    """

    def __init__(self, supernet: Supernet, pool: Iterable[Any] | None = None) -> None:
        self.supernet = supernet
        self._mask = supernet.allowed.copy()
        if pool is None:
            inside = [tuple(c for c in cls if supernet.contains(c))
                      for cls in nats_tss.isomorphism_classes()]
        else:
            cells: dict[str, nats_tss.Cell] = {}
            for a in pool:
                try:
                    cells.setdefault(nats_tss.canonical_key(a), supernet.resolve(a))
                except OutsideSupernetError:
                    continue
            inside = [(c,) for c in cells.values()]
        self.classes = [c for c in inside if c]
        if not self.classes:
            raise OutsideSupernetError("no cell of the pool is inside the pruned supernet")

    def sample(self, rng: np.random.Generator) -> nats_tss.Cell:
        if not np.array_equal(self._mask, self.supernet.allowed):
            raise RuntimeError("the supernet was pruned after this sampler was made")
        cls = self.classes[int(rng.integers(len(self.classes)))]
        return cls[int(rng.integers(len(cls)))]

    def __len__(self) -> int:
        return len(self.classes)


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: Iterable[torch.Tensor], forward) -> int:
    """Re-estimate every tracked BN's running statistics for one sub-network: reset them,
    then run ``forward(x)`` in train mode over ``batches`` with a cumulative average (momentum
    None). Leaves the model in eval mode; returns the number of batches used."""
    bns = [m for m in model.modules()
           if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    model.train()
    n = 0
    try:
        for x in batches:
            forward(x)
            n += 1
    finally:
        for m, mom in zip(bns, saved, strict=True):
            m.momentum = mom
        model.eval()
    return n
