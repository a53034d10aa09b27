"""VKDNW: the entropy of the Fisher information spectrum of a few weights (CVPR 2025).

Recipe (ondratybl/VKDNW ``NB201/ZeroShotProxy/compute_vkdnw_score.py`` as of commit a9944c3,
the version behind the paper's NB201 table, driven by ``NB201/tss_general_.py`` with
``--params_grad_len 128`` and ranked by ``NB201/tss_utils.py`` ``get_scores``; both files were
removed from the repository later, read at commit beb332b):

- Network: the official NB201 ``TinyNetwork`` (C=16, N=5; every edge built, dead ones
  included), affine and tracked BN, re-initialised Kaiming-normal fan-in (ReLU gain; biases 0;
  BN weight 1, bias 0), then put in **eval** mode: the BN layers use their fresh running
  statistics (mean 0, variance 1), so every image is processed independently.
- Input: one batch of 64 N(0, 1) images (``torch.randn``), no labels: data-free.
- Weights: the first scalar (flat index 0) of each of the first 128 parameter tensors in
  registration order (stem conv, stem BN weight and bias, then the cells' conv/BN tensors edge
  by edge, ...). ``theta`` has ``P = min(128, #tensors)`` entries.
- Per image ``b``: ``J_b = d logits / d theta`` (C x P; the reference takes ``torch.func``
  ``jacrev`` under ``vmap``, we tap a zero per-image perturbation into the layers that own the
  chosen scalars and run one backward per class, see :func:`weight_jacobian`). The model's class
  probabilities are smoothed, ``p = (1 - a) softmax + a / C`` with ``a = 0.05`` held as a
  float16 scalar (so ``1 - a`` is 0.9501953125 and ``a / C`` is rounded to float16, as the
  reference does; ``sum(p)`` is 1.00017), and ``L_b`` is the lower-triangular factor of
  ``diag(p) - p p^T`` (Tanabe and Sagae 1992: with ``q_k = 1 - sum_{j<=k} p_j``, ``q_C = 0``,
  ``q_0 = 1``, ``d_k = sqrt(p_k q_k / q_{k-1})``: ``L_kk = d_k`` and ``L_ik = -p_i d_k / q_k``
  for ``i > k``).
- FIM: ``F = mean_b (L_b J_b)^T (L_b J_b)``. This is the reference's code, which puts
  ``L^T L`` between the Jacobians; the paper's Fisher ``E[J^T (diag p - p p^T) J]`` would be
  ``L L^T``. We follow the code, whose numbers the paper reports.
- Spectrum: the singular values ``lambda`` of ``F`` (float32; a failed SVD gives
  ``lambda = (0, 0)``), their deciles ``Q_1..Q_9`` (``torch.quantile`` at 0.1, ..., 0.9, linear
  interpolation), ``t = Q / (sum |Q| + 1e-10)``; VKDNW ``= -sum t log(t + 1e-10)`` (at most
  ``ln 9``).
- VKDNW_single, the paper's single-proxy ranking: architectures are ordered by the number of
  parameter tensors ``aleph`` (the paper's "number of trainable layers"; ``21 + 45 k`` on NB201
  with ``k`` conv edges per cell), ties broken by VKDNW (the reference's dense rank of the tuple
  ``(vkdnw_dim, vkdnw_entropy)``). This proxy reports ``aleph + VKDNW / (ln 9 + 1e-6)``, which
  orders architectures exactly that way (the entropy term is below 1 and aleph is an integer);
  ``aleph=False`` reports VKDNW alone.
- VKDNW_agg is an ensemble (``ensemble:vkdnw`` in :mod:`zcnas.ensemble`): the AZ-NAS log-rank
  sum of VKDNW_single, jacov, expressivity, trainability and FLOPs.

Deviations: a seeded Gaussian batch fixed across architectures instead of the global CUDA RNG
(the reference draws a new batch per architecture in processing order); computed on the
context's device (CPU float32 by default) instead of CUDA; ``torch.linalg.svdvals`` instead of
``torch.svd(F).S``: the same singular values, except that float32 ``torch.svd`` on CPU floors
the smallest ones of these rank-deficient matrices (several deciles at one value near
``3e-5 max``, where ``svdvals`` and float64 agree on 1e-9..1e-5), which moves VKDNW by up to
1.5e-2 relative (``tests/proxies/test_vkdnw.py``). Any space's model works: its parameter
tensors in registration order, its own ``aleph``.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, jacrev, vmap

from zcnas.proxy import Proxy, ProxyError, ProxyInfo

REFERENCE = ("Tybl & Neumann, Training-free Neural Architecture Search through Variance of "
             "Knowledge of Deep Network Weights, CVPR 2025")
CODE = ("https://github.com/ondratybl/VKDNW (NB201/ZeroShotProxy/compute_vkdnw_score.py at "
        "a9944c3; NB201/tss_utils.py get_scores at beb332b)")
DEVIATIONS = ("seeded Gaussian batch fixed across architectures instead of the global CUDA RNG; "
              "CPU float32 by default; svdvals instead of torch.svd (whose float32 CPU "
              "result floors the smallest singular values)")
INIT = "kaiming_normal_fan_in"
ALPHA = 0.05  # the probability smoothing, held as float16 in the reference
DECILES = 9


def smoothed_probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``(1 - a) softmax(logits) + a / C`` with ``a = 0.05`` as a float16 scalar (B, C)."""
    alpha = torch.tensor(ALPHA, dtype=torch.float16, device=logits.device)
    return torch.softmax(logits, dim=1) * (1 - alpha) + alpha / logits.shape[1]


def covariance_factor(p: torch.Tensor) -> torch.Tensor:
    """Lower-triangular ``L`` (B, C, C) with ``L L^T = diag(p) - p p^T`` per row of ``p``."""
    c = p.shape[1]
    q = 1 - torch.cumsum(p, dim=1)
    q[:, -1] = 0
    q_prev = torch.cat([torch.ones_like(q[:, :1]), q[:, :-1]], dim=1)
    d = torch.sqrt(p * q / q_prev)
    below = torch.tril(torch.ones(c, c, dtype=torch.bool, device=p.device), diagonal=-1)
    safe_q = torch.where(q == 0, torch.ones_like(q), q)  # column C only has its diagonal
    off = -p[:, :, None] * (d / safe_q)[:, None, :]
    return torch.where(below, off, torch.zeros_like(off)) + torch.diag_embed(d)


def weight_jacobian(net: nn.Module, x: torch.Tensor, n_tensors: int,
                    classes: int | None = None) -> torch.Tensor:
    """Per-image Jacobian (B, C, P) of the logits w.r.t. the first scalar of each of the first
    ``n_tensors`` parameter tensors of ``net`` (eval mode: images are independent). With
    ``classes=k`` only the first k logits are differentiated on the fast path (the other rows
    are zero): the FIM never reads the last one.

    Conv, linear and (eval-mode, tracked) BN layers take the fast path,
    :func:`_jacobian_by_taps`; a network with any other owner of a chosen tensor is
    differentiated with ``torch.func`` (:func:`_jacobian_by_vmap`). Both give the same
    Jacobian up to float32 summation order (``tests/proxies/test_vkdnw.py``)."""
    modules = dict(net.named_modules())
    chosen = [name for name, _ in net.named_parameters()][:n_tensors]
    taps: dict[str, list[tuple[int, str]]] = {}
    for col, name in enumerate(chosen):
        owner, _, attr = name.rpartition(".")
        taps.setdefault(owner, []).append((col, attr))
    if all(_tappable(modules[owner], [a for _, a in t]) for owner, t in taps.items()):
        return _jacobian_by_taps(net, x, {modules[o]: t for o, t in taps.items()},
                                 len(chosen), classes)
    return _jacobian_by_vmap(net, x, n_tensors)


def _tappable(module: nn.Module, attrs: list[str]) -> bool:
    if isinstance(module, nn.Conv2d):
        return module.padding_mode == "zeros" and not isinstance(module.padding, str)
    if isinstance(module, nn.BatchNorm2d):
        return not module.training and module.track_running_stats
    return isinstance(module, nn.Linear) and set(attrs) <= {"weight", "bias"}


def _tap_term(module: nn.Module, inp: torch.Tensor, out: torch.Tensor, delta: torch.Tensor,
              cols: list[tuple[int, str]]) -> torch.Tensor:
    """d(out[:, 0]) / d(first scalar of each tapped tensor), per image, times ``delta``:
    what adding ``delta[b, col]`` to that scalar for image ``b`` alone adds to channel 0."""
    inp = inp.detach()[:, :1]
    term = torch.zeros((), dtype=out.dtype, device=out.device)
    for col, attr in cols:
        d = delta[:, col].reshape(-1, *([1] * (out.dim() - 1)))
        if attr == "bias":
            term = term + d
        elif isinstance(module, nn.Conv2d):  # weight[0, 0, 0, 0]: input channel 0 at tap (0, 0)
            (ph, pw), (sh, sw) = module.padding, module.stride
            xp = nn.functional.pad(inp, (pw, pw, ph, ph))
            ho, wo = out.shape[2:]
            term = term + d * xp[:, :, :sh * (ho - 1) + 1:sh, :sw * (wo - 1) + 1:sw]
        elif isinstance(module, nn.BatchNorm2d):  # weight[0] multiplies the normalised input
            mean, var = module.running_mean[0], module.running_var[0]
            term = term + d * (inp - mean) / torch.sqrt(var + module.eps)
        else:  # Linear weight[0, 0]
            term = term + d * inp
    return term


def _jacobian_by_taps(net: nn.Module, x: torch.Tensor,
                      taps: dict[nn.Module, list[tuple[int, str]]], n: int,
                      classes: int | None) -> torch.Tensor:
    """One forward with a per-image perturbation ``delta`` (B, P), zero, tapped into channel 0
    of every owner's output; then one backward per class for d logits / d delta."""
    delta = torch.zeros(x.shape[0], n, dtype=x.dtype, device=x.device, requires_grad=True)

    channel0 = torch.zeros(1, dtype=torch.long, device=x.device)

    def hook(module, inputs, out):
        term = _tap_term(module, inputs[0], out, delta, taps[module]).expand_as(out[:, :1])
        return out.index_add(1, channel0, term)

    handles = [m.register_forward_hook(hook) for m in taps]
    flags = [p.requires_grad for p in net.parameters()]
    try:
        for p in net.parameters():
            p.requires_grad_(False)
        with torch.enable_grad():
            logits = net(x)
            k = logits.shape[1] if classes is None else min(classes, logits.shape[1])
            rows = []
            for c in range(logits.shape[1]):
                g = None
                if c < k:
                    (g,) = torch.autograd.grad(logits[:, c].sum(), delta, allow_unused=True,
                                               retain_graph=c < k - 1)
                rows.append(torch.zeros_like(delta) if g is None else g)
    finally:
        for h in handles:
            h.remove()
        for p, f in zip(net.parameters(), flags, strict=True):
            p.requires_grad_(f)
    return torch.stack(rows, dim=1)


def _jacobian_by_vmap(net: nn.Module, x: torch.Tensor, n_tensors: int) -> torch.Tensor:
    """The reference's way: ``jacrev`` of one image's logits, ``vmap`` over the images."""
    params = {k: v.detach() for k, v in net.named_parameters()}
    buffers = {k: v.detach() for k, v in net.named_buffers()}
    chosen = list(params)[:n_tensors]
    theta = torch.stack([params[k].reshape(-1)[0] for k in chosen])

    def logits(theta: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
        swapped = dict(params)
        for i, k in enumerate(chosen):
            rest = params[k].reshape(-1)[1:]
            swapped[k] = torch.cat([theta[i:i + 1], rest]).reshape(params[k].shape)
        return functional_call(net, (swapped, buffers), (image.unsqueeze(0),)).squeeze(0)

    return vmap(jacrev(logits), in_dims=(None, 0))(theta, x)


def fisher_matrix(net: nn.Module, x: torch.Tensor, n_tensors: int) -> torch.Tensor:
    """The reference's FIM (P, P): ``mean_b (L_b J_b)^T (L_b J_b)`` (see the module docstring)."""
    net.eval()
    with torch.no_grad():
        factor = covariance_factor(smoothed_probabilities(net(x)))
    # the factor's last column is zero (d_C = 0): the last logit's row of J is never read
    jac = weight_jacobian(net, x, n_tensors, classes=factor.shape[1] - 1)
    lj = factor @ jac
    return (lj.transpose(1, 2) @ lj).mean(dim=0)


def spectrum_entropy(fisher: torch.Tensor) -> float:
    """VKDNW: the entropy of the normalised deciles of the FIM's singular values."""
    try:
        lam = torch.linalg.svdvals(fisher)
    except RuntimeError:  # the reference's LinAlgError fallback
        lam = torch.zeros(2, dtype=fisher.dtype, device=fisher.device)
    if not bool(torch.isfinite(lam).all()):
        return math.nan
    levels = torch.arange(0.1, 1.0, 0.1, dtype=lam.dtype, device=lam.device)
    q = torch.quantile(lam, levels)
    t = q / (float(q.abs().sum()) + 1e-10)
    return float(-(t * torch.log(t + 1e-10)).sum())


class Vkdnw(Proxy):
    """VKDNW_single: parameter-tensor count, ties broken by the Fisher spectrum entropy."""

    info = ProxyInfo(
        name="vkdnw", version="1", reference=REFERENCE, code=CODE, needs_labels=False,
        needs_images=False, input="gaussian", bn="eval", init=INIT, batch_size=64,
        deviations=DEVIATIONS,
        per_arch=True,
    )
    params = {"n_tensors": 128, "aleph": True}

    def check(self) -> None:
        if isinstance(self.n_tensors, bool) or not isinstance(self.n_tensors, int) \
                or self.n_tensors < 1:
            raise ProxyError(f"vkdnw: n_tensors must be a positive integer, got "
                             f"{self.n_tensors!r}")
        if not isinstance(self.aleph, bool):
            raise ProxyError(f"vkdnw: aleph must be true or false, got {self.aleph!r}")

    def score(self, ctx) -> float:
        net = ctx.network(affine=True, track=True, init=INIT, prune=False, channels_last=False)
        x = ctx.batch(self.batch_size, "gaussian")[0].contiguous()
        entropy = spectrum_entropy(fisher_matrix(net, x, self.n_tensors))
        if not self.aleph:
            return entropy
        aleph = sum(1 for _ in net.parameters())
        return aleph + entropy / (math.log(DECILES) + 1e-6)
