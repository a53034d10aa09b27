"""Genotype -> torch.nn.Module: the NATS-Bench networks, any space's builder, network bodies."""

from zcnas.models.body import Body, block_indices, body
from zcnas.models.network import (
    Cell,
    NatsNetwork,
    build_model,
    build_network,
    build_sss_network,
    build_tss_network,
    count_flops,
    count_parameters,
)

__all__ = ["Body", "Cell", "NatsNetwork", "block_indices", "body", "build_model",
           "build_network", "build_sss_network", "build_tss_network", "count_flops",
           "count_parameters"]
