"""The body of a network: what proxies that read intermediate features walk through.

AZ-NAS, Zen-NAS and the MFNAS stable proxy are defined on a network's feature blocks, as their
reference code walks NATS-Bench's ``TinyNetwork``: the stem, the blocks (``cells``: the cells
and the reduction blocks, in order) and the head's activation before global pooling
(``lastact``). :func:`body` finds those parts in any model a search space builds:

1. a model with ``stem`` and ``cells`` attributes (NATS-Bench's layout; ``lastact`` optional);
2. an ``nn.Sequential``: its first child is the stem, the blocks are the next children up to
   the head, which starts at the first global pooling, flatten or linear child;
3. anything else: a one-line :class:`~zcnas.proxy.ProxyError` naming what is needed.

``features(x)`` of the result is the pre-pooling feature map; :func:`block_indices` says which
block every module belongs to (the stable proxy's "weights inside the cells", per cell).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from zcnas.proxy import ProxyError

_HEAD_START = (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d, nn.Flatten, nn.Linear)


@dataclass(frozen=True)
class Body:
    stem: nn.Module
    blocks: tuple[nn.Module, ...]
    lastact: nn.Module

    def block_outputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem output and the output of every block (with autograd graph)."""
        feature = self.stem(x)
        out = [feature]
        for block in self.blocks:
            feature = block(feature)
            out.append(feature)
        return out

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The feature map before global pooling: stem, every block, the head activation."""
        x = self.stem(x)
        for block in self.blocks:
            x = block(x)
        return self.lastact(x)


def body(net: nn.Module, *, proxy: str = "this proxy") -> Body:
    """The stem, blocks and head activation of ``net`` (see the module docstring)."""
    if hasattr(net, "stem") and hasattr(net, "cells"):
        lastact = getattr(net, "lastact", None)
        return Body(net.stem, tuple(net.cells), lastact if lastact is not None else nn.Identity())
    if isinstance(net, nn.Sequential):
        children = list(net.children())
        cut = next((i for i, m in enumerate(children) if isinstance(m, _HEAD_START)),
                   len(children))
        if cut == 0:
            raise ProxyError(f"{proxy} needs feature blocks, but the model starts with its head "
                             f"({type(children[0]).__name__})")
        return Body(children[0], tuple(children[1:cut]), nn.Identity())
    raise ProxyError(f"{proxy} reads feature blocks: the model ({type(net).__name__}) needs "
                     "'stem' and 'cells' attributes (NATS-Bench layout) or to be an "
                     "nn.Sequential")


def block_indices(net: nn.Module, *, proxy: str = "this proxy") -> dict[str, int]:
    """Qualified name -> block position, for every module inside the blocks of ``net`` (the
    blocks included; for a NATS-Bench network ``cells.i...`` -> ``i``)."""
    where = {id(m): i for i, block in enumerate(body(net, proxy=proxy).blocks)
             for m in block.modules()}
    return {name: where[id(m)] for name, m in net.named_modules() if id(m) in where}
