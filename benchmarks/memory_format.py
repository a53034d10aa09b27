"""Seconds per proxy with channels-last vs contiguous tensors on the CPU, at one thread.

Run (the numbers in results/benchmarks/memory-format-cpu.txt)::

    ZCNAS_DATA=../shared/data python -m benchmarks.memory_format --archs 4 \
        --out results/benchmarks/memory-format-cpu.txt

For every proxy and architecture, in one process with ``torch.set_num_threads(1)``, the proxy is
scored on a fresh context three times, each with its networks and inputs in one memory format:

- ``channels_last``: every float32 network and input batch channels-last (the context's CPU
  default before issue 19);
- ``contiguous``: every network and input batch contiguous (NCHW);
- ``default``: whatever the code chooses now (the context's default, or the ``channels_last=``
  the proxy passes).

Each (proxy, arch, format) is timed ``--rounds`` times (formats interleaved) and the minimum
kept; the table gives the sum over the architectures, the ratio, and the largest relative
difference of the scores between the two forced formats (rounding only: the formats compute
the same function). The default suite scores proxies that share a pass together; here each
proxy is timed alone, so a proxy that reads a shared pass pays for the whole pass.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import torch

from benchmarks._machine import cpu_name
from benchmarks.scoring_speed import sample_archs
from zcnas.registry import create_proxies
from zcnas.scoring import InputBank, ScoringContext

PROXIES = ("fisher,grad_norm,grasp,jacov,epe_nas,synflow,naswot,stable,zico,gradsign,meco,swap,"
           "az_expressivity,zen,te_nas_ntk")
FORMATS = ("channels_last", "contiguous", "default")


class FormatContext(ScoringContext):
    """A context whose networks and inputs are forced into one memory format."""

    def __init__(self, *args, fmt: str = "default", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fmt = fmt

    def _format(self, x: torch.Tensor) -> torch.Tensor:
        if self.fmt == "default" or x.dim() != 4:
            return x
        if self.fmt == "channels_last":
            return x.contiguous(memory_format=torch.channels_last)
        return x.contiguous()

    def network(self, **kwargs):
        if self.fmt != "default":
            kwargs["channels_last"] = self.fmt == "channels_last"
        return super().network(**kwargs)

    def batches(self, batch_size, n=1, kind="real"):
        return [(self._format(x), y) for x, y in super().batches(batch_size, n, kind)]

    def ones(self, batch_size=1, dtype=torch.float64):
        return self._format(super().ones(batch_size, dtype))


def measure(proxy, arch: str, bank: InputBank, fmt: str) -> tuple[float, float]:
    ctx = FormatContext(arch, inputs=bank, seed=0, fmt=fmt, requests=proxy.requests())
    start = time.perf_counter()
    value = proxy.score(ctx)
    return time.perf_counter() - start, value


def rel_diff(a: float, b: float) -> float:
    if a == b or (math.isnan(a) and math.isnan(b)):
        return 0.0
    if not (math.isfinite(a) and math.isfinite(b)):
        return math.inf
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--proxies", default=PROXIES)
    parser.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    archs = sample_archs(args.archs, seed=1)
    bank = InputBank("cifar10", seed=0, root=args.data, source="real")
    proxies = create_proxies(args.proxies)
    for p in proxies:  # warm-up: data loading, kernel selection
        measure(p, archs[0], bank, "contiguous")
    lines = [
        f"# benchmarks.memory_format: {len(archs)} archs x {args.rounds} rounds, one thread, "
        f"torch {torch.__version__}, {cpu_name()}",
        "# archs: " + "; ".join(archs),
        "# seconds summed over the archs (min over rounds); ratio = channels_last / contiguous;",
        "# max_rel = largest relative score difference, channels_last vs contiguous; ratios "
        "within 0.95-1.05 are run-to-run noise on this shared machine",
        f"{'proxy':<16} {'channels_last':>13} {'contiguous':>11} {'default':>8} {'ratio':>6} "
        f"{'faster':>14} {'max_rel':>9}",
    ]
    print("\n".join(lines), flush=True)
    for p in proxies:
        best = {f: [math.inf] * len(archs) for f in FORMATS}
        values = {f: [math.nan] * len(archs) for f in FORMATS}
        for _ in range(args.rounds):
            for i, arch in enumerate(archs):
                for fmt in FORMATS:
                    sec, val = measure(p, arch, bank, fmt)
                    best[fmt][i] = min(best[fmt][i], sec)
                    values[fmt][i] = val
        tot = {f: sum(best[f]) for f in FORMATS}
        ratio = tot["channels_last"] / tot["contiguous"]
        rel = max(rel_diff(a, b) for a, b in zip(values["channels_last"], values["contiguous"],
                                                  strict=True))
        faster = "contiguous" if ratio > 1 else "channels_last"
        line = (f"{p.spec():<16} {tot['channels_last']:>13.2f} {tot['contiguous']:>11.2f} "
                f"{tot['default']:>8.2f} {ratio:>6.2f} {faster:>14} {rel:>9.1e}")
        lines.append(line)
        print(line, flush=True)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
