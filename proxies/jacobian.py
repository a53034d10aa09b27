"""jacov and EPE-NAS: correlations between the input Jacobians of the images of a batch.

Both read ``J``, the gradient of the sum of all logits with respect to the input (one backward of
``ones`` on the logits; row ``n`` is image ``n``'s Jacobian, flattened), on foresight's NB201
model (cells' BN ``affine=False, track_running_stats=False``), PyTorch default initialisation,
BN in train mode, real training images. ``J`` is a collect of the shared ``ce`` pass
(:mod:`zcnas.scoring.passes`). jacov reads it on foresight's spec (contiguous NCHW tensors as
the reference's CUDA run), so at batch 64 it shares its forward with grad_norm, snip, fisher
and GraSP (foresight's six measures all read one network's weights, each on its own copy).
EPE-NAS reads it on the same network in the context's memory format (channels-last on the
CPU): its 256 images share nothing with the gradient proxies, and channels-last is 1.4x faster
there (``results/benchmarks/memory-format-cpu.txt``); so jacov and EPE-NAS no longer share a
Jacobian at equal batches. Only the input gradient is computed (``torch.autograd.grad`` w.r.t.
the input), not the unused weight gradients the references also accumulate. Before 6b1ec3c
jacov's Jacobian was channels-last on a network of its own; the two formats compute the same
function and move jacov by at most 5e-4 relative (same file), within its tolerance, so its
version stayed. Alone, jacov is slower contiguous on the CPU (batch 32: 0.28 against 0.21 s per
cell); within foresight's suite it saves a forward.

jacov (SamsungLabs/zero-cost-nas ``foresight/pruners/measures/jacob_cov.py``, NASLib
``jacov.py``; the v1 score of Mellor et al.): eigenvalues ``v`` of ``corrcoef(J)`` (images x
images), score ``-sum(log(v + k) + 1 / (v + k))`` with ``k = 1e-5``; batch 64. A NaN correlation
(an image with a constant Jacobian, e.g. a cell whose output is always zero) makes the reference's
``np.linalg.eig`` raise, which it reports as NaN: so do we.

EPE-NAS (VascoLopes/EPE-NAS ``search.py`` ``eval_score_perclass``; NASLib ``epe_nas.py``): the rows
of ``J`` grouped by label; per class ``s_c = sum(log(|corrcoef(J_c)| + k))`` (``k = 1e-5``); with
at most 100 classes the score is ``sum_c |s_c|``; with more (ImageNet16-120) each ``s_c`` is first
divided by the class's number of images and the score is ``sum_{c, c'} |s_c - s_c'| / #classes``.
A class with a single image has ``corrcoef = 1`` (its ``s_c`` is ``log(1 + k)``); with more than
100 classes the reference's ``len()`` of that 0-d matrix raises and the class is skipped: so is it
here. Batch 256 as in the paper (``--batch_size 256 --evaluate_size 256``).

Conv edges whose source node is always zero are not built (pruned network). foresight computes
them (ReLU(0) -> conv + bias -> BN of a constant): no input gradient passes the ReLU, but the
BN's output is rounding noise added to the target node, which moves jacov by a median 7e-6 (max
2.4e-4) relative on such cells (``results/fidelity/``). EPE-NAS's own reference network (affine
BN, no conv bias) computes exact zeros there, as we do.

Deviations (both): a fixed seeded batch without augmentation; ``eigvalsh`` (symmetric solver)
instead of ``np.linalg.eig``; float64 correlations as numpy computes them. EPE-NAS: the official
script scores the NATS network (affine, tracked BN, bias-free convs); we use the foresight/NASLib
network, jacov's (the same weights, the same Jacobian code); with default initialisation and
train-mode BN the two compute the same function family (a conv bias followed by
batch-statistics BN cancels; a fresh affine BN is the identity), only the random draws
differ. ``n_batches > 1`` stacks the Jacobians of distinct batches (the official script
re-evaluates the same batch).
"""

from __future__ import annotations

import dataclasses
import math

import torch

from zcnas.proxy import PassRequest, Proxy, ProxyInfo
from zcnas.scoring.passes import ce_request
from zcnas_proxies.gradient import foresight_spec

K = 1e-5


def jacobian_request(batch_size: int, n_batches: int, shared: bool = True) -> PassRequest:
    """The ``ce`` pass that collects ``J`` on foresight's network and batches: with ``shared``,
    foresight's own spec (contiguous, the pass of grad_norm, snip, fisher and GraSP: jacov);
    without, the context's memory format (channels-last on the CPU: EPE-NAS, which reads 256
    images that no gradient proxy shares and is 1.4x faster so)."""
    spec = foresight_spec(batch_size)
    if not shared:
        spec = dataclasses.replace(spec, channels_last=None)
    return ce_request(spec, n_batches, "jacobian")


def input_jacobians(ctx, batch_size: int, n_batches: int, shared: bool = True):
    """``(J, labels, n_outputs)`` for ``n_batches`` shared real batches (the rows of the
    batches stacked), from the context's ``ce`` pass (``shared``: see
    :func:`jacobian_request`)."""
    result = ctx.run_pass(jacobian_request(batch_size, n_batches, shared))
    rows = result.jacobians[:n_batches]
    labels = [y for _, y in ctx.batches(batch_size, n_batches, "real")]
    jac = rows[0] if len(rows) == 1 else torch.cat(rows)
    return jac, torch.cat(labels), ctx.num_classes


def jacov_score(jac: torch.Tensor) -> float:
    """-sum(log(v + k) + 1/(v + k)) over the eigenvalues v of corrcoef(jac); NaN if undefined."""
    corr = torch.corrcoef(jac.double())
    if not bool(torch.isfinite(corr).all()):
        return math.nan
    v = torch.linalg.eigvalsh(corr)
    return float(-(torch.log(v + K) + 1.0 / (v + K)).sum())


def _class_term(rows: torch.Tensor, many_classes: bool) -> float | None:
    if rows.shape[0] == 1:
        if many_classes:  # reference: len() of a 0-d corrcoef raises, the class is skipped
            return None
        r = rows[0] - rows[0].mean()
        var = (r * r).sum()
        corr = var / var  # corrcoef of one variable: 1, or NaN when it is constant
        return float(torch.log(corr.abs() + K))
    corr = torch.corrcoef(rows)
    s = float(torch.log(corr.abs() + K).sum())
    return s / rows.shape[0] if many_classes else s


def epe_nas_score(jac: torch.Tensor, labels: torch.Tensor, n_classes: int) -> float:
    """EPE-NAS ``eval_score_perclass`` of the Jacobian rows grouped by ``labels``."""
    many = n_classes > 100
    jac = jac.double()
    terms = []
    for c in torch.unique(labels).tolist():
        s = _class_term(jac[labels == c], many)
        if s is not None:
            terms.append(s)
    if not terms:
        return 0.0
    t = torch.tensor(terms, dtype=torch.float64)
    if not many:
        return float(t.abs().sum())
    return float((t[:, None] - t[None, :]).abs().sum() / len(terms))


class Jacov(Proxy):
    info = ProxyInfo(
        name="jacov", version="1",
        reference="Mellor et al., Neural Architecture Search without Training (v1, arXiv 2020); "
                  "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021",
        code="https://github.com/SamsungLabs/zero-cost-nas "
             "(foresight/pruners/measures/jacob_cov.py)",
        needs_labels=False, needs_images=True, input="real", bn="train", init="default",
        batch_size=64, n_batches=1,
        deviations="fixed seeded batch without augmentation; eigvalsh instead of eig; zero-source "
                   "conv edges not built (the reference's BN rounding noise there is absent)",
    )

    def requests(self):
        return (jacobian_request(self.batch_size, self.n_batches),)

    def score(self, ctx) -> float:
        jac, _, _ = input_jacobians(ctx, self.batch_size, self.n_batches)
        return jacov_score(jac)


class EpeNas(Proxy):
    info = ProxyInfo(
        name="epe_nas", version="1",
        reference="Lopes et al., EPE-NAS: Efficient Performance Estimation Without Training "
                  "for Neural Architecture Search, ICANN 2021",
        code="https://github.com/VascoLopes/EPE-NAS (search.py, eval_score_perclass); "
             "NASLib naslib/predictors/utils/pruners/measures/epe_nas.py",
        needs_labels=True, needs_images=True, input="real", bn="train", init="default",
        batch_size=256, n_batches=1,
        deviations="fixed seeded batch without augmentation; foresight/NASLib network (cells' "
                   "BN affine=False, conv bias) instead of the NATS network, the network "
                   "jacov reads; n_batches > 1 stacks distinct batches",
    )

    def requests(self):
        return (jacobian_request(self.batch_size, self.n_batches, shared=False),)

    def score(self, ctx) -> float:
        jac, labels, n_out = input_jacobians(ctx, self.batch_size, self.n_batches, shared=False)
        return epe_nas_score(jac, labels, n_out)
