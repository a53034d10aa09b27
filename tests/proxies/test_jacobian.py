"""jacov and epe_nas: closed forms, literal numpy transcriptions of the reference scorers, the
reference Jacobian on the naive network, sharing, determinism, degenerate cells."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from zcnas.registry import create_scorers
from zcnas.scoring import InputBank, ScoringContext
from zcnas_proxies.jacobian import EpeNas, Jacov, epe_nas_score, input_jacobians, jacov_score

ARCH = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|none~0|nor_conv_3x3~1|avg_pool_3x3~2|"
NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
BS = 16
K = 1e-5


@pytest.fixture(scope="module")
def bank(data_root):
    return InputBank("cifar10", seed=0, source="real", root=data_root)


# --- literal transcriptions of the reference scorers (numpy) -------------------------------------


def ref_jacov(jacob):
    corrs = np.corrcoef(jacob)
    v, _ = np.linalg.eig(corrs)
    return float(-np.sum(np.log(v + K) + 1.0 / (v + K)))


def ref_epe(jacob, labels, n_classes):
    per_class = {}
    for i, label in enumerate(labels):
        if label in per_class:
            per_class[label] = np.vstack((per_class[label], jacob[i]))
        else:
            per_class[label] = jacob[i]
    scores = {}
    for c in per_class:
        try:
            corrs = np.array(np.corrcoef(per_class[c]))
            s = np.sum(np.log(abs(corrs) + K))
            if n_classes > 100:
                s /= len(corrs)
        except TypeError:
            continue
        scores[c] = s
    score = 0.0
    if n_classes <= 100:
        for c in scores:
            score += np.absolute(scores[c])
    else:
        for c in scores:
            for cj in scores:
                score += np.absolute(scores[c] - scores[cj])
        if scores:
            score /= len(scores)
    return float(score)


# --- closed forms and numpy agreement ------------------------------------------------------------


def test_jacov_closed_form_identity_correlation():
    # zero-mean orthogonal rows: corrcoef = I, every eigenvalue 1
    jac = torch.tensor([[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0], [1.0, 1.0, -1.0, -1.0]])
    assert jacov_score(jac) == pytest.approx(-3 * (math.log(1 + K) + 1 / (1 + K)))


def test_epe_closed_form():
    r = torch.tensor([1.0, 2.0, 4.0])
    jac = torch.stack([r, 2 * r, r, -r, r + 1])
    labels = torch.tensor([0, 0, 1, 1, 2])
    # classes 0 and 1: |corr| = 1 everywhere (4 entries); class 2 alone: corrcoef = 1
    assert epe_nas_score(jac, labels, 10) == pytest.approx(9 * math.log(1 + K))
    # > 100 classes: per-class mean, pairwise |differences|, the single-image class skipped
    assert epe_nas_score(jac, labels, 120) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("n_classes", [10, 120])
def test_match_numpy_reference_on_random_jacobians(n_classes):
    gen = torch.Generator().manual_seed(0)
    jac = torch.randn(40, 90, generator=gen)
    labels = torch.randint(0, 7, (40,), generator=gen)
    labels[labels == 6] = 5
    labels[0] = 6  # one single-image class
    ref = ref_jacov(jac.numpy())
    assert jacov_score(jac) == pytest.approx(ref, rel=1e-9)
    assert epe_nas_score(jac, labels, n_classes) == pytest.approx(
        ref_epe(jac.numpy(), labels.numpy(), n_classes), rel=1e-9)


def test_constant_jacobian_is_nan():
    jac = torch.randn(5, 8, generator=torch.Generator().manual_seed(1))
    jac[2] = 0
    assert math.isnan(jacov_score(jac))
    assert math.isnan(epe_nas_score(jac, torch.tensor([0, 0, 0, 1, 1]), 10))


# --- the reference Jacobian on the naive network -------------------------------------------------


def test_matches_literal_reference_on_naive_network(bank):
    ctx = ScoringContext(ARCH, inputs=bank, seed=0)
    build = ctx.network

    def network(**kw):
        pruned = build(**kw)
        pruned.load_state_dict(build(**{**kw, "prune": False}).state_dict(), strict=False)
        return pruned

    ctx.network = network
    got_jacov = Jacov(batch_size=BS).score(ctx)
    got_epe = EpeNas(batch_size=BS).score(ctx)
    _, y = ctx.batch(BS)

    def reference_jacobian(channels_last):  # jacov's tensors contiguous, EPE-NAS's the default
        naive = build(affine=False, track=False, prune=False, channels_last=channels_last)
        x, _ = ctx.batch(BS)
        x = (x.contiguous() if channels_last is False else x.clone()).requires_grad_(True)
        out = naive(x)
        out.backward(torch.ones_like(out))
        return x.grad.detach().reshape(BS, -1).numpy()

    assert got_jacov == pytest.approx(ref_jacov(reference_jacobian(False)), rel=1e-5)
    assert got_epe == pytest.approx(ref_epe(reference_jacobian(None), y.numpy(), 10), rel=1e-5)


# --- sharing, determinism, degenerate cells ------------------------------------------------------


def _counting_context(bank, proxies):
    """A context declaring ``proxies``' requests, and the list of the networks it builds."""
    ctx = ScoringContext(ARCH, inputs=bank, seed=0,
                         requests=[r for p in proxies for r in p.requests()])
    built = []
    build = ctx.network
    ctx.network = lambda **kw: built.append(kw) or build(**kw)
    return ctx, built


def test_epe_nas_reads_its_own_channels_last_pass_shared_across_batch_counts(bank):
    proxies = [EpeNas(batch_size=BS), EpeNas(batch_size=BS, n_batches=2), Jacov(batch_size=BS)]
    ctx, built = _counting_context(bank, proxies)
    shared = [p.score(ctx) for p in proxies]
    # EPE-NAS's two batch counts share one pass; jacov (foresight's contiguous spec) its own
    assert len(built) == 2 and len(ctx.pass_seconds) == 2
    assert [kw["channels_last"] for kw in built] == [None, False]
    alone = [p.score(ScoringContext(ARCH, inputs=bank, seed=0)) for p in proxies]
    assert shared == alone
    jac2, labels2, _ = input_jacobians(ctx, BS, 2, shared=False)
    assert len(built) == 2 and jac2.shape[0] == 2 * BS and labels2.shape == (2 * BS,)
    assert torch.equal(jac2[:BS], input_jacobians(ctx, BS, 1, shared=False)[0])


def test_jacov_shares_the_forward_of_the_foresight_gradient_proxies(bank):
    """jacov at foresight's batch reads the ce pass of grad_norm, snip, fisher and GraSP: one
    network, one forward; every value is bitwise the value it has alone."""
    names = "jacov,grad_norm,snip,fisher,grasp"

    def suite():
        return create_scorers(",".join(f"{n}(batch_size={BS})" for n in names.split(",")))

    proxies = suite()
    ctx, built = _counting_context(bank, proxies)
    shared = [p.score(ctx) for p in proxies]
    assert len(built) == 1 and len(ctx.pass_seconds) == 1
    alone = [p.score(ScoringContext(ARCH, inputs=bank, seed=0, requests=list(p.requests())))
             for p in suite()]
    assert shared == alone


def test_deterministic_across_contexts(bank):
    def run():
        ctx = ScoringContext(ARCH, inputs=bank, seed=0)
        return [Jacov(batch_size=BS).score(ctx), EpeNas(batch_size=BS).score(ctx)]

    assert run() == run()


def test_all_none_cell_is_nan(bank):
    ctx = ScoringContext(NONE, inputs=bank, seed=0)
    values = [Jacov(batch_size=BS).score(ctx), EpeNas(batch_size=BS).score(ctx)]
    assert all(isinstance(v, float) and math.isnan(v) for v in values)


def test_recipe_declared():
    assert (Jacov.info.batch_size, EpeNas.info.batch_size) == (64, 256)
    assert not Jacov.info.needs_labels and EpeNas.info.needs_labels
    assert Jacov.info.needs_images and EpeNas.info.needs_images
