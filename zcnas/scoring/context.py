"""What a proxy sees: one architecture, its networks, the shared batches and shared passes.

A :class:`ScoringContext` is made per architecture. Every network it builds is fresh and
seeded (``torch.manual_seed(seed)`` inside a forked RNG, so scores do not depend on which
proxies ran before or on the order of architectures). Batches come from an
:class:`InputBank` that is shared by every architecture of a run, so all architectures see the
same images. Shared passes (:mod:`zcnas.scoring.passes`) are run at most once per context:
several proxies that read the same forward/backward pass pay for it once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from zcnas.data.batches import Batch, fixed_batches
from zcnas.datasets import canonical_dataset, get_dataset
from zcnas.errors import UserError
from zcnas.models.init import initialise, remove_batchnorm
from zcnas.models.network import build_model, builder_options, count_flops, count_parameters
from zcnas.proxy import PassRequest
from zcnas.spaces import Costs, SearchSpace, get_space

INPUT_KINDS = ("real", "gaussian")


class InputBank:
    """Fixed seeded batches shared by all architectures of a run.

    ``source='real'`` reads images of ``dataset`` (train split) from ``root``;
    ``source='synthetic'`` has no images: asking for ``real`` batches is then an error, and
    ``gaussian`` batches (N(0, 1) inputs with uniform labels) are always available. Batches
    ``0..k-1`` are the same whatever ``n`` is asked for, so a 1-batch and a 2-batch recipe
    with the same batch size share their first batch.
    """

    def __init__(
        self, dataset: str, *, seed: int = 0, root: Any = None, source: str = "real",
        device: torch.device | str = "cpu",
    ) -> None:
        if source not in ("real", "synthetic"):
            raise UserError(f"unknown input source {source!r}; valid: real, synthetic")
        self.dataset = canonical_dataset(dataset)
        self.seed, self.root, self.source = seed, root, source
        self.device = torch.device(device)
        self._cache: dict[tuple[str, int], list[Batch]] = {}

    def batches(self, kind: str, batch_size: int, n: int) -> list[Batch]:
        if kind not in INPUT_KINDS:
            raise ValueError(f"unknown input kind {kind!r}; valid: {INPUT_KINDS}")
        if kind == "real" and self.source != "real":
            raise UserError(f"real {self.dataset} images are needed but none are available; "
                            "pass --data PATH or set ZCNAS_DATA")
        cached = self._cache.get((kind, batch_size))
        if cached is None or len(cached) < n:
            source = "real" if kind == "real" else "synthetic"
            got = fixed_batches(self.dataset, n, batch_size, self.seed, root=self.root,
                                source=source, device=self.device)
            if self.device.type == "cpu":  # mkldnn convolutions are ~2x faster channels-last
                got = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in got]
            self._cache[(kind, batch_size)] = cached = got
        return cached[:n]


class ScoringContext:
    """One architecture, ready to be scored by any number of proxies."""

    def __init__(
        self, arch: Any, *, space: str | SearchSpace = "nats-tss", dataset: str = "cifar10",
        inputs: InputBank | None = None, seed: int = 0, device: torch.device | str = "cpu",
        requests: Iterable[PassRequest] = (),
    ) -> None:
        self.search_space = get_space(space)
        self.space = self.search_space.name
        self.arch = self.search_space.as_genotype(arch)
        self.arch_str = self.search_space.format_arch(self.arch)
        self.dataset = canonical_dataset(dataset)
        info = get_dataset(self.dataset)
        self.num_classes, self.resolution = info.num_classes, info.resolution
        self.seed = seed
        self.device = torch.device(device)
        self.inputs = inputs if inputs is not None else InputBank(
            self.dataset, seed=seed, source="synthetic", device=self.device)
        self._requests = merge_requests(requests)
        self._memo: dict[Any, Any] = {}
        self.pass_seconds: dict[Any, float] = {}

    # --- networks ------------------------------------------------------------------------------

    def network(
        self, *, affine: bool = True, track: bool = True, bn: bool = True,
        init: str = "default", dtype: torch.dtype = torch.float32, num_classes: int | None = None,
        prune: bool = True, relu_probes: bool = False, channels_last: bool | None = None,
    ) -> nn.Module:
        """A fresh, seeded network of the architecture, on the device, in train mode.

        ``affine``/``track``: the cells' BN options; ``bn=False`` removes every BN;
        ``init``: a scheme of :mod:`zcnas.models.init`; ``prune``/``relu_probes``: see
        :func:`zcnas.models.build_network`; a pruned network has exactly the weights of the
        naive one with the same seed. A space whose builder does not take an option builds
        its own network (see :mod:`zcnas.spaces.base`). On CPU float32 networks are
        channels-last.
        """
        classes = num_classes if num_classes is not None else self.num_classes
        with torch.random.fork_rng(devices=[]):  # the caller's RNG is never touched
            torch.manual_seed(self.seed)
            net = build_model(self.search_space, self.arch, classes, affine=affine,
                              track=track, prune=False)
            if prune and self._prunes:  # the pruned network has the naive one's weights
                if callable(getattr(net, "prune_", None)):  # pruned in place (NATS networks)
                    net.prune_(relu_probes=relu_probes)
                else:
                    naive, net = net, build_model(self.search_space, self.arch, classes,
                                                  affine=affine, track=track, prune=True,
                                                  relu_probes=relu_probes)
                    net.load_state_dict(naive.state_dict(), strict=False)
        gen = torch.Generator().manual_seed(self.seed)
        initialise(net, init, gen)
        if not bn:
            remove_batchnorm(net)
        if channels_last is None:
            channels_last = self.device.type == "cpu" and dtype == torch.float32
        net = _placed(net, self.device, dtype, channels_last)
        # built in train mode: the walk of ``train()`` (a Module.__setattr__ per module) only
        # where some module is not
        return net if all(m.training for m in net.modules()) else net.train()

    @functools.cached_property
    def _prunes(self) -> bool:
        accepted = builder_options(self.search_space.model_builder())
        return accepted is None or "prune" in accepted

    def costs(self) -> Costs:
        """Parameters and FLOPs of the network for this dataset: the space's analytic count
        when it has one, else counted on a built network (FLOPs of conv and linear layers,
        :func:`zcnas.models.count_flops`)."""
        def compute() -> Costs:
            analytic = self.search_space.costs(self.arch, self.dataset)
            if analytic is not None:
                return analytic
            net = self.network(channels_last=False).cpu()
            return Costs(count_parameters(net), count_flops(net, self.resolution))

        return self.memo(("costs",), compute)

    # --- inputs --------------------------------------------------------------------------------

    def batches(self, batch_size: int, n: int = 1, kind: str = "real") -> list[Batch]:
        """``n`` shared batches ``(x, y)`` on the device (do not modify them in place)."""
        return self.inputs.batches(kind, batch_size, n)

    def batch(self, batch_size: int, kind: str = "real") -> Batch:
        return self.batches(batch_size, 1, kind)[0]

    def ones(self, batch_size: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        """An all-ones input (synflow)."""
        return torch.ones(batch_size, 3, self.resolution, self.resolution, dtype=dtype,
                          device=self.device)

    # --- sharing -------------------------------------------------------------------------------

    def memo(self, key: Any, compute: Callable[[], Any]) -> Any:
        """``compute()`` once per context under ``key``; later calls return the same object."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    def run_pass(self, request: PassRequest) -> Any:
        """The result of a shared pass, covering every merged request of the same kind/spec."""
        from zcnas.scoring.passes import PASSES

        ident = (request.kind, request.spec)
        merged = self._requests.get(ident)
        if merged is None or merged.n_batches < request.n_batches or not (
            request.collect <= merged.collect
        ):  # an undeclared request: run it as asked (correct, just not shared)
            merged = merge_requests([request] + ([merged] if merged else []))[ident]
            self._requests[ident] = merged
            self._memo.pop(("pass", ident), None)

        def compute() -> Any:
            start = time.perf_counter()
            out = PASSES[request.kind](self, merged)
            self.pass_seconds[ident] = time.perf_counter() - start
            return out

        return self.memo(("pass", ident), compute)

    @property
    def requests(self) -> dict[tuple[str, Any], PassRequest]:
        return dict(self._requests)


def _placed(net: nn.Module, device: torch.device, dtype: torch.dtype,
            channels_last: bool) -> nn.Module:
    """``net.to(device=device, dtype=dtype)``, then ``net.to(memory_format=channels_last)``
    when asked, for a fresh network: the same tensors and strides without the module walks
    where nothing moves (a fresh network is already on the CPU in float32, where both walks
    cost several ms for nothing but the 4-d weights' copies). A network with gradients or
    5-d tensors takes ``Module.to`` itself."""
    tensors = [*net.parameters(), *net.buffers()]
    walk = any(t.grad is not None or t.dim() == 5 for t in tensors)  # Module.to's own cases
    if walk or any(t.device != device or (t.is_floating_point() and t.dtype != dtype)
                   for t in tensors):
        net = net.to(device=device, dtype=dtype)
        tensors = [*net.parameters(), *net.buffers()]
    if channels_last and walk:
        return net.to(memory_format=torch.channels_last)
    if channels_last:
        with torch.no_grad():
            for t in tensors:
                if t.dim() == 4:  # as Module.to(memory_format=...): restrided even where a
                    # size-1 dim makes the tensor channels-last contiguous already
                    t.data = t.data.to(memory_format=torch.channels_last)
    return net


def merge_requests(requests: Iterable[PassRequest]) -> dict[tuple[str, Any], PassRequest]:
    """The passes ``requests`` run, by kind and spec: requests of the same pass merged into
    one (the most batches, every collect)."""
    out: dict[tuple[str, Any], PassRequest] = {}
    for req in requests:
        ident = (req.kind, req.spec)
        old = out.get(ident)
        if old is None:
            out[ident] = req
        else:
            out[ident] = PassRequest(req.kind, req.spec, max(old.n_batches, req.n_batches),
                                     old.collect | req.collect)
    return out
