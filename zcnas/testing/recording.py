"""Building blocks of the conformance kit, public for a proxy's own tests: a recording
scoring context, stand-in and relabelled image banks, weight-init detection, fingerprints."""

from __future__ import annotations

import dataclasses
import inspect
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from zcnas.data.batches import Batch, normalize
from zcnas.datasets import get_dataset
from zcnas.proxy import PassRequest
from zcnas.scoring.context import InputBank, ScoringContext
from zcnas.testing._util import _PLAIN, _bits, _tensors_equal


@dataclass
class NetworkCall:
    """One ``ctx.network(...)`` call: every argument (defaults filled in), the network handed
    out, its fingerprint at hand-out (when recording snapshots), the ``training`` flag of
    every BatchNorm forward seen afterwards, and the init scheme its weights matched
    (:func:`observed_init`) when a conv/linear layer first ran (None if none ran)."""

    kwargs: dict[str, Any]
    network: nn.Module
    snapshot: dict[str, Any] | None = None
    bn_training: list[bool] = field(default_factory=list)
    init_at_first_use: str | None = None


@dataclass
class BatchCall:
    """One ``ctx.batches(batch_size, n, kind)`` call (recorded before it runs), the batches
    handed out (None when it raised) and their copies at hand-out (when recording snapshots)."""

    batch_size: int
    n: int
    kind: str
    batches: list[Batch] | None = None
    snapshot: list[Batch] | None = None


_NETWORK_SIGNATURE = inspect.signature(ScoringContext.network)
CONTEXT_ATTRS = ("arch", "arch_str", "space", "dataset", "num_classes", "resolution", "seed",
                 "device", "inputs")


class RecordingContext(ScoringContext):
    """A :class:`ScoringContext` that records what is asked of it (shared passes included):
    ``network_calls``, ``batch_calls``, ``ones_calls`` (``(batch_size, dtype)``) and
    ``pass_calls`` (the requests passed to ``run_pass``); ``initial`` holds its attributes
    as made. With
    ``snapshot=True`` it also keeps a copy of every network and batch as handed out."""

    def __init__(self, *args: Any, snapshot: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.snapshot = snapshot
        self.network_calls: list[NetworkCall] = []
        self.batch_calls: list[BatchCall] = []
        self.ones_calls: list[tuple[int, torch.dtype]] = []
        self.pass_calls: list[PassRequest] = []
        self.initial = {a: getattr(self, a) for a in CONTEXT_ATTRS}

    def network(self, **kwargs: Any) -> nn.Module:
        bound = _NETWORK_SIGNATURE.bind(self, **kwargs)
        bound.apply_defaults()
        args = {k: v for k, v in bound.arguments.items() if k != "self"}
        net = super().network(**kwargs)
        call = NetworkCall(args, net, fingerprint(net) if self.snapshot else None)
        handles: list[Any] = []

        def first_use(_module: nn.Module, _inputs: Any) -> None:
            if call.init_at_first_use is None:
                call.init_at_first_use = observed_init(net) or "unknown"
            for handle in handles:
                handle.remove()

        for module in net.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.register_forward_pre_hook(
                    lambda mod, _inputs, _call=call: _call.bn_training.append(mod.training))
            elif isinstance(module, nn.Conv2d | nn.Linear):
                handles.append(module.register_forward_pre_hook(first_use))
        self.network_calls.append(call)
        return net

    def batches(self, batch_size: int, n: int = 1, kind: str = "real") -> list[Batch]:
        call = BatchCall(batch_size, n, kind)
        self.batch_calls.append(call)
        out = super().batches(batch_size, n, kind)
        call.batches = out
        if self.snapshot:
            call.snapshot = [(x.clone(), y.clone()) for x, y in out]
        return out

    def ones(self, batch_size: int = 1, dtype: torch.dtype = torch.float64) -> torch.Tensor:
        self.ones_calls.append((batch_size, dtype))
        return super().ones(batch_size, dtype)

    def run_pass(self, request: PassRequest) -> Any:
        self.pass_calls.append(request)
        return super().run_pass(request)


class StandInImages(InputBank):
    """An input bank that has "real" images: seeded uniformly random pixels, normalised like
    the dataset's. For checks that need images to exist, not to be meaningful."""

    def __init__(self, dataset: str, *, seed: int = 0,
                 device: torch.device | str = "cpu") -> None:
        super().__init__(dataset, seed=seed, source="synthetic", device=device)
        self.source = "real"
        self._images: dict[int, list[Batch]] = {}

    def batches(self, kind: str, batch_size: int, n: int) -> list[Batch]:
        if kind != "real":
            return super().batches(kind, batch_size, n)
        got = self._images.get(batch_size)
        if got is None or len(got) < n:
            spec = get_dataset(self.dataset)
            rng = np.random.default_rng(self.seed + 7919)
            got = []
            for _ in range(n):  # successive draws: batch i is the same whatever n is
                pixels = rng.integers(0, 256, (batch_size, spec.resolution, spec.resolution, 3),
                                      dtype=np.uint8)
                x = normalize(pixels, spec)
                y = torch.from_numpy(rng.integers(0, spec.num_classes, batch_size))
                if self.device.type == "cpu":
                    x = x.contiguous(memory_format=torch.channels_last)
                got.append((x.to(self.device), y.to(self.device, torch.int64)))
            self._images[batch_size] = got
        return got[:n]


class RelabelledInputs(InputBank):
    """The batches of ``base`` with every label ``y`` replaced by ``(y + 1) % num_classes``
    (the same image tensors; the same label tensors on every call)."""

    def __init__(self, base: InputBank) -> None:
        super().__init__(base.dataset, seed=base.seed, root=base.root, source=base.source,
                         device=base.device)
        self.base = base
        self.num_classes = get_dataset(base.dataset).num_classes
        self._labels: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def batches(self, kind: str, batch_size: int, n: int) -> list[Batch]:
        out = []
        for x, y in self.base.batches(kind, batch_size, n):
            hit = self._labels.get(id(y))
            if hit is None or hit[0] is not y:
                hit = (y, (y + 1) % self.num_classes)
                self._labels[id(y)] = hit  # keeps y alive, so its id stays unique
            out.append((x, hit[1]))
        return out


def observed_init(net: nn.Module) -> str | None:
    """The init scheme of :mod:`zcnas.models.init` that ``net``'s conv/linear weights match
    best: per layer, the root-mean-square weight against each scheme's expected standard
    deviation (PyTorch default 1/sqrt(3 fan_in), Kaiming-normal sqrt(2/fan), N(0, 1)),
    summed as ``|log(rms / expected)|``. Sign changes (synflow's ``abs``) do not change it.
    None when the network has no weights to judge."""
    misfit = {"default": 0.0, "kaiming_normal_fan_in": 0.0, "kaiming_normal_fan_out": 0.0,
              "normal": 0.0}
    used = 0
    with torch.no_grad():
        for module in net.modules():
            if not isinstance(module, nn.Conv2d | nn.Linear) or module.weight.numel() < 64:
                continue
            w = module.weight
            rms = float(w.detach().double().pow(2).mean().sqrt())
            if not rms > 0 or not math.isfinite(rms):
                continue
            receptive = w[0][0].numel() if w.dim() > 2 else 1
            fan_in, fan_out = w.shape[1] * receptive, w.shape[0] * receptive
            expected = {"default": 1 / math.sqrt(3 * fan_in),
                        "kaiming_normal_fan_in": math.sqrt(2 / fan_in),
                        "kaiming_normal_fan_out": math.sqrt(2 / fan_out), "normal": 1.0}
            for scheme, std in expected.items():
                misfit[scheme] += abs(math.log(rms / std))
            used += 1
    return min(misfit, key=misfit.__getitem__) if used else None


def fingerprint(obj: Any, path: str = "result") -> dict[str, Any]:
    """A deep copy of every tensor, number and flag in ``obj`` (tensors, modules with their
    parameters, buffers, gradients and mode, dataclasses, dicts, lists), keyed by path."""
    out: dict[str, Any] = {}
    _fingerprint(obj, path, out, set())
    return out


def _fingerprint(obj: Any, path: str, out: dict[str, Any], seen: set[int]) -> None:
    if isinstance(obj, torch.Tensor):
        out[path] = obj.detach().clone()
        return
    if isinstance(obj, _PLAIN):
        out[path] = _bits(obj) if isinstance(obj, float) else obj
        return
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, nn.Module):
        for name, tensor in obj.state_dict(keep_vars=True).items():
            out[f"{path}.{name}"] = tensor.detach().clone()
        for name, param in obj.named_parameters():
            if param.grad is not None:
                out[f"{path}.{name}.grad"] = param.grad.detach().clone()
        out[f"{path}.training"] = tuple(m.training for m in obj.modules())
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            _fingerprint(getattr(obj, f.name), f"{path}.{f.name}", out, seen)
    elif isinstance(obj, dict):
        out[f"{path}.keys"] = repr(list(obj))
        for key, value in obj.items():
            _fingerprint(value, f"{path}[{key!r}]", out, seen)
    elif isinstance(obj, list | tuple):
        out[f"{path}.len"] = len(obj)
        for i, value in enumerate(obj):
            _fingerprint(value, f"{path}[{i}]", out, seen)
    elif isinstance(obj, np.ndarray):
        out[path] = obj.copy()
    else:
        out[f"{path}.type"] = type(obj).__qualname__


def fingerprint_difference(before: dict[str, Any], after: dict[str, Any]) -> str | None:
    """The first path at which two fingerprints differ, or None when they are identical."""
    for key in before.keys() | after.keys():
        if key not in before or key not in after:
            return key
    for key, a in before.items():
        b = after[key]
        if isinstance(a, torch.Tensor):
            if not _tensors_equal(a, b):
                return key
        elif isinstance(a, np.ndarray):
            if not np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"):
                return key
        elif a != b:
            return key
    return None


# --- the kit -----------------------------------------------------------------------------------
