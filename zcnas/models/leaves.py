"""The leaf modules of a NATS network (Conv2d, BatchNorm2d, ReLU, Linear), built fast.

torch's module constructors spend most of a network build in Python: every attribute goes
through ``Module.__setattr__``, about 50 us per ``Conv2d`` and 20-50 us per ``BatchNorm2d``
on the 2-core EPYC, while scoring builds several networks of about 230 modules per
architecture. Here each leaf is a copy of a prototype that torch's own constructor built
once (same class, same attributes; the containers among them copied, so no two modules share
one), with its own parameter and buffer tensors:

- ``BatchNorm2d``, ``ReLU``: the prototype's values (torch initialises them without drawing).
- ``Conv2d``, ``Linear``: ``reset_parameters()`` at once, as their constructors end, so a
  network built from these draws the same numbers in the same order as one built with
  ``nn.Conv2d`` and ``nn.Linear`` (tests/models/test_leaves.py compares every weight bitwise
  and the generator's state after the build).

Prototypes are keyed by the default dtype and device (``torch.set_default_dtype``,
``set_default_tensor_type``). Under a torch function mode (``with torch.device(...)``,
``torch.set_default_device``), with global parameter, buffer or module registration hooks
installed, or for a layer without weights, the real constructor runs instead.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Callable

import torch
from torch import nn
from torch.nn import init
from torch.nn.modules import module as _module

_CONTAINERS = (dict, OrderedDict, list, set)
# torch function modes (``with torch.device(...)``, ``torch.set_default_device``) change what
# a constructor makes; under one the real constructor runs (a private counter, looked up once)
_MODES: Callable[[], int] | None = getattr(torch._C, "_len_torch_function_stack", None)
_DEVICE: Callable[[], object] = getattr(torch._C, "_get_default_device",
                                        lambda: torch.get_default_device())
_REGISTRATION_HOOKS = tuple(getattr(_module, f"_global_{kind}_registration_hooks", {})
                            for kind in ("parameter", "buffer", "module"))


class _Prototype:
    """A leaf built once by torch's constructor; :meth:`copy` makes new ones like it."""

    def __init__(self, make: Callable[[], nn.Module], drawn: bool) -> None:
        with torch.random.fork_rng(devices=[]):  # its draws are not the caller's
            self.module = module = make()
        if module._modules:
            raise ValueError(f"{type(module).__name__} is not a leaf module")
        self.state = {name: value for name, value in module.__dict__.items()
                      if name not in ("_parameters", "_buffers")}
        self.containers = [name for name, value in self.state.items()
                           if type(value) in _CONTAINERS]
        #: parameter -> the bound of its uniform draw; the others copy the prototype's values
        self.bounds: dict[str, float] = _default_bounds(module) if drawn else {}

    def copy(self) -> nn.Module:
        """A module of the prototype's class and attributes with its own containers and
        tensors: the prototype's values, or ``self.bounds``' uniform draws."""
        proto = self.module
        module = object.__new__(type(proto))
        state = module.__dict__
        state.update(self.state)
        for name in self.containers:
            state[name] = self.state[name].copy()
        params = {}
        for name, p in proto._parameters.items():  # in registration order: weight, bias
            if p is None:
                params[name] = None
                continue
            bound = self.bounds.get(name)
            value = (torch.empty_like(p).uniform_(-bound, bound) if bound is not None
                     else p.detach().clone())
            params[name] = nn.Parameter(value, p.requires_grad)
        state["_parameters"] = params
        state["_buffers"] = {name: None if b is None else b.clone()
                             for name, b in proto._buffers.items()}
        return module


_PROTOTYPES: dict[tuple, _Prototype] = {}
_LOCK = threading.Lock()


def _leaf(key: tuple, make: Callable[[], nn.Module], drawn: bool = False) -> nn.Module:
    if _MODES is None or _MODES() or any(_REGISTRATION_HOOKS):
        return make()
    key = (*key, torch.get_default_dtype(), str(_DEVICE()))
    proto = _PROTOTYPES.get(key)
    if proto is None:
        with _LOCK:  # published only once complete
            proto = _PROTOTYPES.get(key)
            if proto is None:
                proto = _PROTOTYPES[key] = _Prototype(make, drawn)
    return proto.copy()


def _default_bounds(layer: nn.Module) -> dict[str, float]:
    """The uniform bounds of ``Conv2d``/``Linear.reset_parameters``: the weight's
    ``kaiming_uniform_(a=sqrt(5))`` on its fan-in, the bias's 1/sqrt(fan-in)."""
    fan_in, _ = init._calculate_fan_in_and_fan_out(layer.weight)
    gain = init.calculate_gain("leaky_relu", math.sqrt(5))
    bounds = {"weight": math.sqrt(3.0) * (gain / math.sqrt(fan_in))}
    if layer.bias is not None:
        bounds["bias"] = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
    return bounds


def conv2d(c_in: int, c_out: int, kernel: int, *, stride: int = 1, padding: int = 0,
           bias: bool = True) -> nn.Conv2d:
    """``nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)``."""
    if not (c_in and c_out and kernel):
        return nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=bias)
    return _leaf(("conv", c_in, c_out, kernel, stride, padding, bias),
                 lambda: nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding,
                                   bias=bias), drawn=True)


def batchnorm2d(c: int, *, affine: bool = True, track: bool = True) -> nn.BatchNorm2d:
    """``nn.BatchNorm2d(c, affine=affine, track_running_stats=track)``."""
    return _leaf(("bn", c, affine, track),
                 lambda: nn.BatchNorm2d(c, affine=affine, track_running_stats=track))


def relu(inplace: bool = False) -> nn.ReLU:
    """``nn.ReLU(inplace=inplace)``."""
    return _leaf(("relu", inplace), lambda: nn.ReLU(inplace=inplace))


def linear(c_in: int, c_out: int, *, bias: bool = True) -> nn.Linear:
    """``nn.Linear(c_in, c_out, bias=bias)``."""
    if not (c_in and c_out):
        return nn.Linear(c_in, c_out, bias=bias)
    return _leaf(("linear", c_in, c_out, bias), lambda: nn.Linear(c_in, c_out, bias=bias),
                 drawn=True)
