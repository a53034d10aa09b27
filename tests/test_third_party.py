"""A third-party distribution that brings its own search space, search method and ladder stage
is used by the CLI with no change to zcnas.

The distribution is pip-installed once into a temporary site folder (as the proxy registry
tests do); every check runs the real ``zcnas`` command in a fresh interpreter with that folder
on PYTHONPATH, so discovery goes through the installed entry-point metadata.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import zcnas

REPO = Path(zcnas.__file__).resolve().parents[1]

SPACE_MODULE = '''
"""A width space of a tiny CNN: three blocks, each 8, 16 or 24 channels wide or skipped."""

import itertools

from zcnas.errors import ArchError
from zcnas.search import Ladder, Method, Stage
from zcnas.search.searchers import RandomSearch
from zcnas.spaces import SearchSpace
from zcnas.fidelity import Evaluation, Evaluator
from zcnas.fidelity.stages import proxy

CHOICES = ("skip", "8", "16", "24")


class TinyCNN(SearchSpace):
    name = "tiny-cnn"
    aliases = ("tiny",)
    arch_format = "b-b-b with b in skip/8/16/24"
    size = 4 ** 3
    model = "zc_space_tiny.model:build"
    examples = ("8-16-24", "16-skip-8")
    degenerate = {"all skipped": "skip-skip-skip"}

    def parse_arch(self, text):
        parts = str(text).strip().split("-")
        if len(parts) != 3 or any(p not in CHOICES for p in parts):
            raise ArchError(f"malformed tiny-cnn arch {text!r}; expected {self.arch_format}")
        return tuple(parts)

    def format_arch(self, genotype):
        return "-".join(genotype)

    def canonical_key(self, arch):  # skipped blocks do not matter where they are
        g = self.as_genotype(arch)
        return "-".join([b for b in g if b != "skip"] + [b for b in g if b == "skip"])

    def sample(self, rng):
        return tuple(CHOICES[int(i)] for i in rng.integers(len(CHOICES), size=3))

    def mutate(self, arch, rng):
        g = list(self.as_genotype(arch))
        i = int(rng.integers(3))
        g[i] = [c for c in CHOICES if c != g[i]][int(rng.integers(3))]
        return tuple(g)

    def crossover(self, a, b, rng):
        return tuple(x if rng.random() < 0.5 else y
                     for x, y in zip(self.as_genotype(a), self.as_genotype(b)))

    def neighbours(self, arch):
        g = self.as_genotype(arch)
        return [g[:i] + (c,) + g[i + 1:] for i in range(3) for c in CHOICES if c != g[i]]

    def all_archs(self):
        return iter(itertools.product(CHOICES, repeat=3))


SPACE = TinyCNN()


class Widths(Evaluator):
    """A made-up fidelity: the total width, one second per cell."""

    name = "tiny-widths"

    def __init__(self, scale=1.0):
        self.scale = scale

    def estimate_cost(self, arch):
        return 1.0

    def evaluate(self, archs):
        return [Evaluation(a, SPACE.canonical_key(a), self.name,
                           self.scale * sum(int(b) for b in a.split("-") if b != "skip"), 1.0)
                for a in archs]


def tiny_eval(ctx, scale=1.0):
    return Widths(scale)


METHOD = Method(
    name="tiny-random", description="random search on the zero-cost fitness",
    searcher=lambda ctx: RandomSearch(ctx.config.space, ctx.config.seed),
    ladder=lambda ctx, searcher: Ladder([Stage(proxy(ctx))], select="top"), batch=4)

# a plugin that claims a built-in's name: listed as a clash, never used
CLASH = Method(
    name="rea", description="not the real one",
    searcher=lambda ctx: RandomSearch(ctx.config.space, ctx.config.seed),
    ladder=lambda ctx, searcher: Ladder([Stage(proxy(ctx))], select="top"))
'''

MODEL_MODULE = '''
from torch import nn


def build(genotype, num_classes):
    layers, c = [nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU()], 8
    for b in genotype:
        if b == "skip":
            continue
        w = int(b)
        layers += [nn.Conv2d(c, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        c = w
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, num_classes)]
    return nn.Sequential(*layers)
'''

ENTRY_POINTS = {
    "zcnas.spaces": {"tiny-cnn": "zc_space_tiny:SPACE"},
    "zcnas.methods": {"tiny-random": "zc_space_tiny:METHOD", "rea": "zc_space_tiny:CLASH"},
    "zcnas.evaluators": {"tiny-eval": "zc_space_tiny:tiny_eval"},
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tiny")
    proj = root / "project"
    pkg = proj / "zc_space_tiny"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(SPACE_MODULE))
    (pkg / "model.py").write_text(textwrap.dedent(MODEL_MODULE))
    eps = "".join(f'[project.entry-points."{g}"]\n'
                  + "".join(f'{k} = "{v}"\n' for k, v in items.items())
                  for g, items in ENTRY_POINTS.items())
    (proj / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "zc-space-tiny"\nversion = "1.0"\n'
        '[tool.setuptools]\npackages = ["zc_space_tiny"]\n' + eps)
    target = root / "site"
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "--disable-pip-version-check", "--target", str(target), str(proj)],
        capture_output=True, text=True)
    if proc.returncode != 0:  # offline without setuptools: lay out the metadata by hand
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(pkg, target / "zc_space_tiny")
        info = target / "zc_space_tiny-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zc-space-tiny\n"
                                       "Version: 1.0\n")
        (info / "entry_points.txt").write_text("".join(
            f"[{g}]\n" + "".join(f"{k} = {v}\n" for k, v in items.items())
            for g, items in ENTRY_POINTS.items()))
        (info / "RECORD").write_text("")
    return target


def zcnas_cli(site: Path, tmp_path: Path, *args: str, data: Path | None = None):
    env = {k: v for k, v in os.environ.items() if k not in ("ZCNAS_DATA", "TORCH_HOME")}
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(REPO)])
    env["ZCNAS_CACHE"] = str(tmp_path / "cache")
    if data is not None:
        env["ZCNAS_DATA"] = str(data)
    return subprocess.run([sys.executable, "-m", "zcnas.cli", *args], capture_output=True,
                          text=True, env=env, timeout=300, cwd=tmp_path)


def test_the_space_is_listed_and_described(site, tmp_path):
    r = zcnas_cli(site, tmp_path, "info")
    assert r.returncode == 0, r.stderr
    assert "tiny-cnn" in r.stdout and "b-b-b with b in skip/8/16/24" in r.stdout
    r = zcnas_cli(site, tmp_path, "arch", "16-skip-8", "--space", "tiny")
    assert r.returncode == 0, r.stderr
    assert "space       tiny-cnn" in r.stdout
    assert "iso class   " in r.stdout  # 16-skip-8 and 16-8-skip compute the same
    # params counted on the built model: conv 3->8, 8->16, 16->8, BN, head
    want = (3 * 8 * 9 + 8) + (8 * 16 * 9 + 16) + (16 * 8 * 9 + 8) + 2 * (8 + 16 + 8) + 8 * 10 + 10
    assert f"{want / 1e6:.6f}" in r.stdout
    r = zcnas_cli(site, tmp_path, "arch", "16-skip-9", "--space", "tiny-cnn")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "malformed tiny-cnn arch" in r.stderr
    r = zcnas_cli(site, tmp_path, "arch", "3", "--space", "tiny-cnn")
    assert r.returncode == 2 and "no benchmark index" in r.stderr


def test_the_space_is_scored_through_the_cli(site, tmp_path):
    r = zcnas_cli(site, tmp_path, "score", "--space", "tiny-cnn", "--archs", "all",
                  "--proxies", "synflow,params,flops,ensemble:az(synflow,params)",
                  "--workers", "2",
                  "--out", "tiny")
    assert r.returncode == 0, r.stderr
    import pandas as pd

    df = pd.read_csv(tmp_path / "tiny.csv")
    # (each built-in proxy on this space: test_every_builtin_proxy_scores_the_space)
    assert set(df.proxy) == {"synflow", "params", "flops", "ensemble:az(synflow,params)"}
    assert df.arch.nunique() == 64 and df.canonical.nunique() < 64  # isomorphs scored once
    assert (df.origin == "isomorph").any()
    wide = df.pivot(index="arch", columns="proxy", values="value")
    assert wide.loc["24-24-24", "params"] > wide.loc["8-8-8", "params"]
    assert wide.loc["8-16-24", "synflow"] == wide.loc["8-16-24", "synflow"]  # finite
    # scored again: everything from the store, bitwise the same
    r = zcnas_cli(site, tmp_path, "score", "--space", "tiny-cnn", "--archs", "all",
                  "--proxies", "synflow,params", "--workers", "1", "--out", "again")
    assert r.returncode == 0, r.stderr
    again = pd.read_csv(tmp_path / "again.csv")
    assert set(again.origin) <= {"store", "isomorph"}
    merged = again.merge(df, on=["arch", "proxy"])
    assert (merged.value_x == merged.value_y).all()


def test_every_builtin_proxy_scores_the_space(site, tmp_path, data_root):
    code = textwrap.dedent("""
        import json, math, sys
        from zcnas.registry import create_proxy, list_proxies
        from zcnas.scoring.engine import make_items, score_archs
        items = make_items(["8-16-24", "skip-skip-skip", "24-8-skip"], "tiny-cnn")
        proxies = [create_proxy(n) for n in list_proxies()]
        usable = [p for p in proxies if p.info.supports("tiny-cnn")]
        rows = score_archs(items, usable, space="tiny-cnn", root=sys.argv[1], workers=1,
                           progress=False)
        print(json.dumps({"refused": sorted(p.name for p in proxies if p not in usable),
                          "scored": sorted({r.proxy for r in rows}),
                          "finite": sorted({r.proxy for r in rows if math.isfinite(r.value)
                                            and r.arch == "8-16-24"})}))
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(REPO)])}
    proc = subprocess.run([sys.executable, "-c", code, str(data_root)], capture_output=True,
                          text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    # only the recipes defined on the NAS-Bench-201 cell itself are refused
    assert out["refused"] == ["meco", "te_nas_lr"]
    assert len(out["scored"]) == 22  # every built-in but the two above, vkdnw included
    assert set(out["finite"]) >= set(out["scored"]) - {"grasp", "zen"}


def test_the_space_is_searched_with_its_own_method_and_stage(site, tmp_path):
    r = zcnas_cli(site, tmp_path, "search", "--space", "tiny-cnn", "--method", "mfea",
                  "--fitness", "synflow", "--budget", "3", "--no-store", "--no-progress")
    assert r.returncode == 0, r.stderr
    chose = [ln for ln in r.stdout.splitlines() if ln.startswith("mfea on cifar10, seed 0: chose ")]
    assert len(chose) == 1 and "#" not in chose[0]  # a space without an order has no index
    r = zcnas_cli(site, tmp_path, "search", "--space", "tiny-cnn", "--method", "tiny-random",
                  "--ladder", "proxy(proxy=synflow,promote_top=3),tiny-eval(scale=2)",
                  "--budget", "8", "--no-store", "--no-progress", "--out", "run")
    assert r.returncode == 0, r.stderr
    assert "stage 1: tiny-widths" in r.stderr
    assert "cells at tiny-widths" in r.stdout
    runs = json.loads((tmp_path / "run" / "config.json").read_text())["configs"]
    assert runs[0]["method"] == "tiny-random" and runs[0]["space"] == "tiny-cnn"


def test_methods_list_shows_the_plugin_and_the_clash_without_breaking(site, tmp_path):
    r = zcnas_cli(site, tmp_path, "methods", "list")
    assert r.returncode == 0, r.stderr
    assert "tiny-random" in r.stdout and "zc-space-tiny 1.0" in r.stdout
    assert "tiny-eval" in r.stdout
    clash = [ln for ln in r.stdout.splitlines() if ln.startswith("rea ")]
    assert any("taken by the built-in" in ln for ln in clash), r.stdout
    r = zcnas_cli(site, tmp_path, "search", "--method", "rea", "--space", "tiny-cnn",
                  "--fitness", "synflow", "--budget", "2", "--no-store", "--no-progress",
                  "--lookup", "none")
    assert r.returncode == 0, r.stderr  # the built-in rea, on the zero-cost fitness


def test_a_class_is_scored_on_a_member_of_it():
    """A key that is an arch string of the class is its representative; one that parses but
    names another class is not used: the class's first member in the space's order is."""
    ns: dict = {}
    exec(textwrap.dedent(SPACE_MODULE), ns)  # the plugin's TinyCNN, without installing it
    tiny = ns["SPACE"]
    assert tiny.representative("skip-8-skip") == tiny.representative("8-skip-skip") \
        == "8-skip-skip"

    class OddKeys(ns["TinyCNN"]):
        """Keys that parse as arch strings of another class (the key's own key differs)."""

        def canonical_key(self, arch):
            first, *rest = super().canonical_key(arch).split("-")
            return "-".join(["24" if first == "8" else "8", *rest])

    odd = OddKeys()
    key = odd.canonical_key("8-16-skip")
    assert key == "24-16-skip" and odd.canonical_key(key) != key
    assert odd.representative("8-16-skip") == odd.representative("8-skip-16") == "skip-8-16"
