"""Devices a user can name: ``cpu``, ``cuda`` or ``cuda:N`` (checked before any work)."""

from __future__ import annotations

from zcnas.errors import UserError


def check_device(device: str) -> str:
    """``device`` if torch can use it here; one line naming the valid forms otherwise (an
    unknown name, ``cuda:abc``, ``meta``, or CUDA on a machine without a GPU)."""
    import torch

    text = str(device).strip()
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError, TypeError):
        raise UserError(f"unknown device {device!r}; use cpu, cuda or cuda:N") from None
    if dev.type not in ("cpu", "cuda"):
        raise UserError(f"device {device!r} is not supported; use cpu, cuda or cuda:N")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"--device {text} was asked for but no CUDA device is available "
                            "here; use --device cpu")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise UserError(f"--device {text}: this machine has {torch.cuda.device_count()} "
                            "CUDA device(s)")
    return text
