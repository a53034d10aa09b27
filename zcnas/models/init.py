"""Weight initialisation schemes the proxy recipes use (see ``zcnas.proxy.INITS``).

- ``default``: PyTorch's own initialisation at construction (foresight, ZiCo, MeCo, MFNAS,
  NASWOT): nothing to do here;
- ``kaiming_normal_fan_in``: conv and linear weights Kaiming-normal (fan-in, ReLU gain), biases
  zero, BN weight 1 and bias 0 (AZ-NAS ``init_model(..., 'kaiming_norm_fanin')``, TE-NAS LR);
- ``kaiming_normal_fan_out``: the same with fan-out (TE-NAS NTK);
- ``normal``: every conv/linear weight N(0, 1), biases zero, BN weight 1 and bias 0 (Zen-NAS,
  SWAP ``network_weight_gaussian_init``).

Randomness comes from the ``generator`` argument, never from the global RNG.
"""

from __future__ import annotations

import torch
from torch import nn

SCHEMES = ("default", "kaiming_normal_fan_in", "kaiming_normal_fan_out", "normal")


def initialise(model: nn.Module, scheme: str, generator: torch.Generator | None = None) -> None:
    """Re-initialise ``model`` in place with ``scheme``."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown init scheme {scheme!r}; valid: {', '.join(SCHEMES)}")
    if scheme == "default":
        return
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                if scheme == "normal":
                    m.weight.normal_(0.0, 1.0, generator=generator)
                else:
                    mode = "fan_in" if scheme == "kaiming_normal_fan_in" else "fan_out"
                    nn.init.kaiming_normal_(m.weight, mode=mode, nonlinearity="relu",
                                            generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, nn.BatchNorm2d | nn.GroupNorm | nn.LayerNorm):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()


def remove_batchnorm(model: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` by ``Identity`` in place (synflow's BN-free network)."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.BatchNorm2d):
            setattr(model, name, nn.Identity())
        else:
            remove_batchnorm(child)
    return model
