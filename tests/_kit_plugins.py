"""Example proxies for tests/test_testing.py: one well-behaved proxy and deliberately broken
variants, each breaking one rule that a check of :mod:`zcnas.testing` must catch."""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F

from zcnas.proxy import PassRequest, Proxy, ProxyInfo
from zcnas.scoring.passes import CESpec, ce_request


def _info(name: str, **changes) -> ProxyInfo:
    return dataclasses.replace(MeanLogit.info, name=name, **changes)


class MeanLogit(Proxy):
    """Mean logit of a fresh network on gaussian batches: follows every rule."""

    info = ProxyInfo(
        name="kit_mean_logit", version="1", reference="zcnas.testing example",
        code="tests/_kit_plugins.py", needs_labels=False, needs_images=False, input="gaussian",
        bn="train", init="default", batch_size=16,
    )

    def inputs(self, ctx):
        return ctx.batches(self.batch_size, self.n_batches, "gaussian")

    def score(self, ctx) -> float:
        net = ctx.network()
        with torch.no_grad():
            return float(sum(net(x).double().mean() for x, _ in self.inputs(ctx))) / self.n_batches


# --- determinism / types ----------------------------------------------------------------------


class GlobalRng(MeanLogit):
    info = _info("kit_global_rng")

    def score(self, ctx) -> float:
        return super().score(ctx) + float(torch.rand(()))  # the global RNG: not reproducible


class SeedsGlobalRng(MeanLogit):
    info = _info("kit_seeds_global_rng")

    def score(self, ctx) -> float:
        torch.manual_seed(0)  # deterministic, but resets everyone's RNG
        return super().score(ctx)


class ReturnsTensor(MeanLogit):
    info = _info("kit_returns_tensor")

    def score(self, ctx):
        return torch.tensor(super().score(ctx))


class ReturnsNumpy(MeanLogit):
    info = _info("kit_returns_numpy")

    def score(self, ctx):
        return np.float64(super().score(ctx))


class RaisesOnAllNone(MeanLogit):
    info = _info("kit_raises_on_all_none")

    def score(self, ctx) -> float:
        if all(op == "none" for op in ctx.arch.ops):
            raise ValueError("nothing to score in an all-none cell")
        return super().score(ctx)


# --- mutation ---------------------------------------------------------------------------------


class MutatesBatch(MeanLogit):
    info = _info("kit_mutates_batch")

    def inputs(self, ctx):
        batches = super().inputs(ctx)
        batches[0][0].mul_(2.0)  # in place on the shared batch
        return batches


class _ReadsGrads(MeanLogit):
    """Sum of squared weight gradients of the shared ``ce`` pass (gaussian inputs)."""

    info = _info("kit_reads_grads", needs_labels=True)

    def _request(self):
        return ce_request(CESpec(batch_size=self.batch_size, input="gaussian"), 1, "grads")

    def requests(self):
        return (self._request(),)

    def batches_read(self, result):
        return result.grads[:1]

    def score(self, ctx) -> float:
        result = ctx.run_pass(self._request())
        return float(sum(g.double().pow(2).sum() for b in self.batches_read(result)
                         for g in b.values()))


class ReadsGrads(_ReadsGrads):
    info = _info("kit_reads_grads_ok", needs_labels=True)


class MutatesPass(_ReadsGrads):
    info = _info("kit_mutates_pass", needs_labels=True)

    def score(self, ctx) -> float:
        value = super().score(ctx)
        for g in ctx.run_pass(self._request()).grads[0].values():
            g.mul_(0.5)  # changes what every other proxy reads
        return value


class GreedyPass(_ReadsGrads):
    info = _info("kit_greedy_pass", needs_labels=True)

    def batches_read(self, result):
        return result.grads  # every batch of the merged pass, not the n it asked for


class ChangesSeed(MeanLogit):
    info = _info("kit_changes_seed")

    def score(self, ctx) -> float:
        value = super().score(ctx)
        ctx.seed += 1  # later ctx.network calls build other networks
        return value


# --- honest metadata --------------------------------------------------------------------------


class AsksRealImages(MeanLogit):
    info = _info("kit_asks_real_images")

    def inputs(self, ctx):
        return ctx.batches(self.batch_size, self.n_batches, "real")


class NeverAsksImages(MeanLogit):
    info = _info("kit_never_asks_images", needs_images=True, input="real")


class UsesLabels(MeanLogit):
    info = _info("kit_uses_labels")  # needs_labels=False, but ...

    def score(self, ctx) -> float:
        net = ctx.network()
        with torch.no_grad():
            return float(sum(F.cross_entropy(net(x), y) for x, y in self.inputs(ctx)))


class DeclaresNoBn(MeanLogit):
    info = _info("kit_declares_no_bn", bn="none")  # ... but ctx.network() keeps BN


class EvalModeBn(MeanLogit):
    info = _info("kit_eval_mode_bn")

    def score(self, ctx) -> float:
        net = ctx.network().eval()
        with torch.no_grad():
            return float(sum(net(x).double().mean() for x, _ in self.inputs(ctx)))


class WrongInit(MeanLogit):
    info = _info("kit_wrong_init", init="normal")  # ... but builds with the default init


class OnesDrawsBatches(MeanLogit):
    info = _info("kit_ones_draws_batches", input="ones")


class HardcodedBatch(MeanLogit):
    info = _info("kit_hardcoded_batch")

    def inputs(self, ctx):
        return ctx.batches(4, self.n_batches, "gaussian")  # ignores self.batch_size


class PeeksAtImages(MeanLogit):
    info = _info("kit_peeks_at_images")  # input='gaussian', but uses images when present

    def inputs(self, ctx):
        kind = "real" if ctx.inputs.source == "real" else "gaussian"
        return ctx.batches(self.batch_size, self.n_batches, kind)


# --- metadata ---------------------------------------------------------------------------------


class InheritsInfo(MeanLogit):
    """No info of its own: it would share MeanLogit's name."""


class SwallowsKwargs(MeanLogit):
    info = _info("kit_swallows_kwargs")

    def __init__(self, **kwargs):
        super().__init__(**{k: v for k, v in kwargs.items() if k in ("batch_size", "n_batches")})


class ConfigDoubles(MeanLogit):
    info = _info("kit_config_doubles")
    params = {"alpha": 1.0}

    def config(self):
        return {**super().config(), "alpha": self.alpha * 2}


class CommaParam(MeanLogit):
    info = _info("kit_comma_param")
    params = {"mode": "a"}


class UnhashableRequest(MeanLogit):
    info = _info("kit_unhashable_request")

    def requests(self):
        return [PassRequest("ce", {"batch_size": self.batch_size})]
