"""Genotype -> torch.nn.Module for the NATS-Bench spaces."""

from zcnas.models.network import (
    Cell,
    NatsNetwork,
    build_network,
    count_flops,
    count_parameters,
)

__all__ = ["Cell", "NatsNetwork", "build_network", "count_flops", "count_parameters"]
