"""Published ranking correlations on NAS-Bench-201 / NATS-Bench-TSS, with their sources.

Printed beside our own numbers by ``zcnas correlate`` (topology space only). Values are as
published; see ``SOURCES`` for what each source measured against (the ground-truth column
differs between papers, which alone moves rho by a few hundredths).
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCES: dict[str, str] = {
    "foresight": "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021; "
                 "SamsungLabs/zero-cost-nas notebooks/nasbench201_correlations.ipynb "
                 "(|rho|, default init, cifar10-valid ground truth)",
    "vkdnw": "VKDNW (CVPR 2025) Table 1, independent reproduction with the authors' code, "
             "mean of 5 runs (Kaiming init, AZ-NAS code base; cifar10 ori-test, x-test)",
    "vkdnw-own": "Tybl & Neumann, VKDNW (CVPR 2025) Table 1, VKDNW_single and VKDNW_agg, "
                 "mean of 5 runs on the 9,445 NB201 cells without unreachable operations "
                 "(ondratybl/VKDNW NB201/paper_preparation.ipynb)",
    "aznas": "Lee & Ham, AZ-NAS (CVPR 2024), cvlab-yonsei/AZ-NAS NB201/tss_general.ipynb "
             "(seed 1, all 15,625 cells)",
    "aznas-paper": "AZ-NAS (CVPR 2024) paper table, via the wizwand.com aggregator",
    "gradsign": "Zhang & Jia, GradSign (ICLR 2022), as quoted in VKDNW Table 1",
    "meco": "Jiang et al., MeCo (NeurIPS 2023), abstract",
}


@dataclass(frozen=True)
class Published:
    proxy: str  # our proxy name or ensemble spec
    dataset: str
    metric: str  # "spearman" | "kendall"
    value: float
    source: str  # key of SOURCES


def _rows() -> list[Published]:
    # proxy: {dataset: [(source, rho, tau or None), ...]}
    table = {
        "flops": {"cifar10": [("vkdnw", 0.799, 0.623)], "cifar100": [("vkdnw", 0.763, 0.586)],
                  "ImageNet16-120": [("vkdnw", 0.718, 0.545)]},
        "grad_norm": {"cifar10": [("foresight", 0.594, None), ("vkdnw", 0.438, 0.328)],
                      "cifar100": [("foresight", 0.637, None), ("vkdnw", 0.451, 0.341)],
                      "ImageNet16-120": [("foresight", 0.578, None), ("vkdnw", 0.418, 0.310)]},
        "snip": {"cifar10": [("foresight", 0.596, None), ("vkdnw", 0.591, 0.431)],
                 "cifar100": [("foresight", 0.637, None), ("vkdnw", 0.597, 0.440)],
                 "ImageNet16-120": [("foresight", 0.578, None), ("vkdnw", 0.521, 0.389)]},
        "grasp": {"cifar10": [("foresight", 0.514, None), ("vkdnw", 0.505, 0.352)],
                  "cifar100": [("foresight", 0.547, None), ("vkdnw", 0.498, 0.349)],
                  "ImageNet16-120": [("foresight", 0.549, None), ("vkdnw", 0.502, 0.359)]},
        "fisher": {"cifar10": [("foresight", 0.360, None)],
                   "cifar100": [("foresight", 0.385, None)],
                   "ImageNet16-120": [("foresight", 0.327, None)]},
        "synflow": {"cifar10": [("foresight", 0.737, None), ("vkdnw", 0.758, 0.561)],
                    "cifar100": [("foresight", 0.763, None), ("vkdnw", 0.750, 0.553)],
                    "ImageNet16-120": [("foresight", 0.751, None), ("vkdnw", 0.719, 0.531)]},
        "jacov": {"cifar10": [("foresight", 0.731, None), ("vkdnw", 0.800, 0.616)],
                  "cifar100": [("foresight", 0.704, None), ("vkdnw", 0.820, 0.639)],
                  "ImageNet16-120": [("foresight", 0.701, None), ("vkdnw", 0.779, 0.602)]},
        "naswot": {"cifar10": [("vkdnw", 0.762, 0.571)], "cifar100": [("vkdnw", 0.799, 0.607)],
                   "ImageNet16-120": [("vkdnw", 0.794, 0.605)]},
        "zen": {"cifar10": [("vkdnw", 0.103, 0.102)], "cifar100": [("vkdnw", 0.072, 0.079)],
                "ImageNet16-120": [("vkdnw", 0.109, 0.091)]},
        "gradsign": {"cifar10": [("gradsign", 0.765, None)],
                     "cifar100": [("gradsign", 0.793, None)],
                     "ImageNet16-120": [("gradsign", 0.783, None)]},
        "zico": {"cifar10": [("vkdnw", 0.802, 0.607)], "cifar100": [("vkdnw", 0.809, 0.614)],
                 "ImageNet16-120": [("vkdnw", 0.779, 0.587)]},
        "meco": {"cifar10": [("meco", 0.89, None)]},
        "vkdnw": {"cifar10": [("vkdnw-own", 0.815, 0.618)],
                  "cifar100": [("vkdnw-own", 0.829, 0.634)],
                  "ImageNet16-120": [("vkdnw-own", 0.814, 0.622)]},
        "ensemble:vkdnw": {"cifar10": [("vkdnw-own", 0.919, 0.750)],
                           "cifar100": [("vkdnw-own", 0.919, 0.753)],
                           "ImageNet16-120": [("vkdnw-own", 0.906, 0.743)]},
        "ensemble:te_nas": {"cifar10": [("vkdnw", 0.722, 0.536)],
                            "cifar100": [("vkdnw", 0.723, 0.537)],
                            "ImageNet16-120": [("vkdnw", 0.709, 0.523)]},
        "ensemble:az_nas": {"cifar10": [("aznas", 0.913, 0.741), ("vkdnw", 0.892, 0.712)],
                            "cifar100": [("aznas-paper", 0.90, None), ("vkdnw", 0.880, 0.696)],
                            "ImageNet16-120": [("aznas-paper", 0.89, None),
                                               ("vkdnw", 0.859, 0.673)]},
    }
    out = []
    for proxy, per in table.items():
        for ds, entries in per.items():
            for src, rho, tau in entries:
                out.append(Published(proxy, ds, "spearman", rho, src))
                if tau is not None:
                    out.append(Published(proxy, ds, "kendall", tau, src))
    return out


PUBLISHED: tuple[Published, ...] = tuple(_rows())

#: The best published training-free ensembles (not proxies of ours; printed as targets).
BEST_TRAINING_FREE = (
    ("VKDNW_agg", "cifar10", 0.919, 0.750, "vkdnw"),
    ("AZ-NAS", "cifar10", 0.913, 0.741, "aznas"),
)


def lookup(proxy: str, dataset: str, metric: str) -> list[Published]:
    return [p for p in PUBLISHED if p.proxy == proxy and p.dataset == dataset
            and p.metric == metric]


def gap(proxy: str, dataset: str, metric: str, value: float) -> float | None:
    """Distance of ``value`` from the published range (0 inside it; signed: + above, - below);
    None when nothing was published."""
    rows = lookup(proxy, dataset, metric)
    if not rows:
        return None
    lo, hi = min(r.value for r in rows), max(r.value for r in rows)
    return value - hi if value > hi else (value - lo if value < lo else 0.0)


def format_range(proxy: str, dataset: str, metric: str) -> str:
    """``'0.737-0.758 [foresight, vkdnw]'`` or ``''`` when nothing was published."""
    rows = lookup(proxy, dataset, metric)
    if not rows:
        return ""
    lo, hi = min(r.value for r in rows), max(r.value for r in rows)
    vals = f"{lo:.3f}" if lo == hi else f"{lo:.3f}-{hi:.3f}"
    return f"{vals} [{', '.join(r.source for r in rows)}]"


__all__ = ["BEST_TRAINING_FREE", "PUBLISHED", "SOURCES", "Published", "format_range", "gap",
           "lookup"]
