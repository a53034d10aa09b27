"""TE-NAS indicators: NTK condition number (trainability) and number of linear regions.

TE-NAS (VITA-Group/TENAS) ranks candidates by the **sum of the ranks** of the two indicators over
a population; that rank sum is an ensemble built elsewhere. Here are the two raw indicators.

``te_nas_ntk`` (``lib/procedures/ntk.py`` ``get_ntk_n``; per-architecture NB201 port:
cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_te_nas_score.py``):

- the official NB201 network in train mode (BN batch statistics), one batch of real training
  images; for every sample ``i`` the sum of its logits is back-propagated
  (``logit[i:i+1].backward(ones)``) and the gradients of all parameters named ``*weight*``
  (conv, linear and BN weights) are flattened into row ``i`` of J;
- NTK = J J^T; score = largest / smallest eigenvalue (condition number; lower is better);
  NaN -> 1e5 and +-inf -> +-float max (``np.nan_to_num(..., nan=100000.0)``, the AZ-NAS fix of
  TENAS's missing NaN guard). A cell whose output is always zero has J = 0 and scores 1e5.
- Batch: 64, the per-architecture NB201 setting (the AZ-NAS port's loader batch). TENAS's own
  NB201 run (``prune_launch.py``) uses 72, but it scores a pruned *supernet* (C=3, N=1), not an
  architecture's network.
- Initialisation: PyTorch's default. TENAS *means* Kaiming-normal fan-out for the NTK (and
  fan-in for the linear regions), but ``prune_launch.py`` passes ``--init kaiming_normal`` and
  ``init_model`` only knows ``kaiming_norm_fanin/_fanout``, so no re-initialisation happens;
  the AZ-NAS port does not re-initialise either. ``TeNasNtk(init="kaiming_normal_fan_out")``
  gives the intended variant.
- Dead edges are not built: their weights get exactly zero gradient in the reference, adding
  zero to every NTK entry.
- Cost: one backward pass per sample (64), each through the whole batch (BN couples the
  samples, so per-sample gradients cannot be split off one backward); batching the 64 VJPs
  with ``is_grads_batched`` (vmap) is exact but slower on CPU. About 10 s for a mid-size cell
  on 2 CPU cores at batch 64 (0.7 s at ``batch_size=16``).

``te_nas_lr`` (``lib/procedures/linear_region_counter.py``, ``prune_tenas.py``): TENAS counts
linear regions on a "thin" network, not the full one (``model_config_thin``: C=1, N=1,
``depth=1``, ``use_stem=False``): the input goes straight into **one cell with 1 channel** (every
edge of the naive cell computed), then the head's BN + ReLU. Inputs are (1000, 1, 3, 3): random
3x3 crops of real training images, one random channel each (``RandomCrop(3)``,
``RandChannel(1)``), ``sample_batch=3`` batches of 1000, BN in train mode per batch (affine
BN). Every ``nn.ReLU`` with a 4-D input is hooked; a sample's code is the sign of all post-ReLU
values; the score is the number of distinct codes among the 3000 samples (``calc_LR``'s sum
of 1/multiplicity). TENAS repeats this ``--repeat 3`` times with a re-initialised network (we
average the counts; TENAS averages relative changes of a supernet). Higher is better.

(The AZ-NAS port instead counts patterns of 64 Gaussian images on the full network, which
almost always gives 64; we follow TENAS.)

Deviations: NTK eigenvalues in float64 (the reference: float32 ``symeig``/``eigh``); the fixed
shared batch without augmentation; LR crops and channels drawn by a seeded generator from the
first 3000 fixed images (the same crops for every architecture; each repeat draws new crops
of the same images instead of new images); the LR count is exact (the reference sums
1/multiplicity in float16, which rounds multiplicities above 2048).
"""

from __future__ import annotations

import copy
import math

import numpy as np
import torch
from torch import nn

from zcnas.models.init import initialise
from zcnas.models.network import Cell
from zcnas.proxy import Proxy, ProxyError, ProxyInfo
from zcnas.spaces import nats_tss

TENAS = ("Chen, Gong & Wang, Neural Architecture Search on ImageNet in Four GPU Hours: A "
         "Theoretically Inspired Perspective (TE-NAS), ICLR 2021")
TENAS_CODE = "https://github.com/VITA-Group/TENAS"
NAN_COND = 100000.0
_LR_SEED = 0x7E4A5  # crops/channels and thin-net weights: derived from ctx.seed
_WORD = 62


# --- NTK --------------------------------------------------------------------------------------


def ntk_gram(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The reference's NTK: per-sample gradients of sum(logits_i) w.r.t. ``*weight*`` params."""
    weights = [p for name, p in net.named_parameters() if "weight" in name and p.requires_grad]
    logits = net(x)
    n = x.shape[0]
    rows = []
    for i in range(n):
        grads = torch.autograd.grad(logits[i].sum(), weights, retain_graph=i + 1 < n,
                                    allow_unused=True)
        rows.append(torch.cat([g.reshape(-1) for g in grads if g is not None]))
    jac = torch.stack(rows)
    gram = torch.zeros(n, n, dtype=torch.float64, device=jac.device)
    step = 1 << 16
    for start in range(0, jac.shape[1], step):
        block = jac[:, start:start + step].double()
        gram += block @ block.T
    return gram


def condition_number(gram: torch.Tensor) -> float:
    """eig[-1] / eig[0] with the reference's NaN/inf mapping."""
    eig = torch.linalg.eigvalsh(gram)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = np.float64(eig[-1].item()) / np.float64(eig[0].item())
    return float(np.nan_to_num(value, nan=NAN_COND))


class TeNasNtk(Proxy):
    info = ProxyInfo(
        name="te_nas_ntk", version="1", reference=TENAS,
        code=f"{TENAS_CODE} (lib/procedures/ntk.py); per-architecture NB201 port "
             "https://github.com/cvlab-yonsei/AZ-NAS (NB201/ZeroShotProxy/compute_te_nas_score.py)",
        needs_labels=False, needs_images=True, input="real", bn="train", init="default",
        higher_is_better=False, batch_size=64,
        deviations="eigenvalues in float64; fixed un-augmented batch; PyTorch default init as "
                   "the reference code effectively runs (its Kaiming option is never applied)",
    )
    params = {"init": "default"}

    def check(self) -> None:
        if self.init not in ("default", "kaiming_normal_fan_out", "kaiming_normal_fan_in"):
            raise ProxyError(f"proxy 'te_nas_ntk': init={self.init!r} not in default, "
                             "kaiming_normal_fan_out, kaiming_normal_fan_in")

    def score(self, ctx) -> float:
        net = ctx.network(affine=True, track=False, init=self.init)
        x = ctx.batch(self.batch_size, "real")[0]
        return condition_number(ntk_gram(net, x))


# --- linear regions ---------------------------------------------------------------------------


class ThinNetwork(nn.Module):
    """TENAS's LR network for one cell: no stem, one 1-channel cell, then BN + ReLU."""

    def __init__(self, cell) -> None:
        super().__init__()
        self.cell = Cell(nats_tss.as_cell(cell), 1, 1, affine=True, track=False, prune=False)
        self.lastact = nn.Sequential(nn.BatchNorm2d(1), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lastact(self.cell(x))


def default_init(model: nn.Module, generator: torch.Generator) -> None:
    """PyTorch's own conv/linear initialisation, drawn from ``generator``; BN weight 1, bias 0."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.kaiming_uniform_(m.weight, a=math.sqrt(5), generator=generator)
                if m.bias is not None:
                    fan_in = m.weight[0].numel()
                    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
                    m.bias.uniform_(-bound, bound, generator=generator)
            elif isinstance(m, nn.BatchNorm2d) and m.affine:
                m.weight.fill_(1.0)
                m.bias.zero_()


def pack_rows(bits: torch.Tensor) -> torch.Tensor:
    """(samples, bits) booleans -> (samples, words) int64 codes (62 bits a word)."""
    words = []
    for start in range(0, bits.shape[1], _WORD):
        chunk = bits[:, start:start + _WORD].to(torch.int64)
        shifts = torch.arange(chunk.shape[1], device=bits.device)
        words.append((chunk << shifts).sum(1))
    return torch.stack(words, dim=1)


def linear_regions(net: nn.Module, inputs: list[torch.Tensor]) -> int:
    """Distinct sign patterns of every 4-D-input ReLU's output over all samples of ``inputs``."""
    feats: list[torch.Tensor] = []

    def hook(_m, inp, out):
        if isinstance(inp, tuple) and inp[0].dim() == 4:
            feats.append(out.detach().flatten(1) > 0)

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    codes = []
    try:
        with torch.no_grad():
            for x in inputs:
                feats.clear()
                net(x)
                if feats:
                    codes.append(pack_rows(torch.cat(feats, dim=1)))
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return 0
    return int(torch.unique(torch.cat(codes), dim=0).shape[0])


def random_crops(x: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """One random ``size`` x ``size`` crop of one random channel per image: (N, 1, size, size)."""
    n, c, h, w = x.shape
    chan = torch.randint(0, c, (n,), generator=generator)
    top = torch.randint(0, h - size + 1, (n,), generator=generator)
    left = torch.randint(0, w - size + 1, (n,), generator=generator)
    off = torch.arange(size)
    rows = (top[:, None] + off)[:, :, None]
    cols = (left[:, None] + off)[:, None, :]
    idx = torch.arange(n)[:, None, None]
    dev = x.device
    crops = x[idx.to(dev), chan[:, None, None].to(dev), rows.to(dev), cols.to(dev)]
    return crops.unsqueeze(1).contiguous()


class TeNasLr(Proxy):
    info = ProxyInfo(
        name="te_nas_lr", version="1", reference=TENAS,
        code=f"{TENAS_CODE} (lib/procedures/linear_region_counter.py, prune_tenas.py)",
        needs_labels=False, needs_images=True, input="real", bn="train", init="default",
        batch_size=1000, n_batches=3, spaces=("nats-tss",),
        deviations="fixed images, seeded crops (same for every architecture; repeats re-crop "
                   "the same images); exact distinct-pattern count; PyTorch default init as "
                   "the reference code effectively runs",
        per_arch=True,
    )
    params = {"repeat": 3, "crop": 3, "init": "default"}

    def check(self) -> None:
        if self.repeat < 1 or self.crop < 1:
            raise ProxyError("proxy 'te_nas_lr': repeat and crop must be >= 1")
        if self.init not in ("default", "kaiming_normal_fan_in", "kaiming_normal_fan_out"):
            raise ProxyError(f"proxy 'te_nas_lr': init={self.init!r} not in default, "
                             "kaiming_normal_fan_in, kaiming_normal_fan_out")

    def score(self, ctx) -> float:
        with torch.random.fork_rng(devices=[]):  # construction draws from the global RNG
            master = ThinNetwork(ctx.arch)  # re-initialised on the CPU, then copied over
            net = copy.deepcopy(master).to(ctx.device).train()
        images = [x for x, _ in ctx.batches(self.batch_size, self.n_batches, "real")]
        init_gen = torch.Generator().manual_seed(ctx.seed + _LR_SEED)
        crop_gen = torch.Generator().manual_seed(ctx.seed + _LR_SEED + 1)  # arch-independent
        counts = []
        for _ in range(self.repeat):
            if self.init == "default":
                default_init(master, init_gen)
            else:
                initialise(master, self.init, init_gen)
            net.load_state_dict(master.state_dict())
            crops = [random_crops(x, self.crop, crop_gen) for x in images]
            counts.append(linear_regions(net, crops))
        return float(sum(counts) / len(counts))
