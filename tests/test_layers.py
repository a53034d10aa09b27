"""The layering of the code base: no upward import, no space-specific branch outside the
spaces, a torch-free search core, a conformance kit that imports no built-in proxy."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from zcnas import layers

REPO = Path(layers.__file__).resolve().parents[1]


def test_no_upward_import():
    assert layers.violations() == []
    assert layers.main() == 0


def test_an_upward_import_is_found():
    here = Path("x.py")
    planted = [
        layers.Import("zcnas.search.driver", "torch", 1, here),
        layers.Import("zcnas.spaces.nats_tss", "zcnas.models.network", 2, here),
        layers.Import("zcnas_proxies.synflow", "zcnas.lookup", 3, here),
        layers.Import("zcnas.scoring.engine", "zcnas_proxies.cost", 4, here),
        layers.Import("zcnas.scoring.engine", "zcnas.models", 5, here),  # downward: fine
    ]
    bad = layers.violations(planted)
    assert len(bad) == 5  # the space -> models import breaks the order and, below, a rule
    assert any("search core is torch-free" in b for b in bad)
    assert any("layer 1 (zcnas.spaces) may not import layer 4 (zcnas.models)" in b for b in bad)
    assert any("never reads the benchmark" in b for b in bad)
    assert any("found through entry points" in b for b in bad)
    assert not any("engine.py" in b and "zcnas.models" in b for b in bad)


def test_type_checking_imports_do_not_count(tmp_path):
    pkg = tmp_path / "zcnas" / "spaces"
    pkg.mkdir(parents=True)
    (tmp_path / "proxies").mkdir()
    (pkg / "__init__.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import torch\n"
        "def f():\n    import pandas\n")
    found = layers.imports(tmp_path)
    assert [i.target for i in found] == ["typing", "pandas"]  # a lazy import still counts
    assert len(layers.violations(found)) == 1


SPACE_BRANCH = re.compile(
    r"""(space\w*|\.space)\s*(==|!=|\bin\b|\bnot in\b)\s*[\(\[]?\s*["']"""
    r"""|["'](nats-tss|nats-sss|tss|sss)["']\s*(==|!=)""")


def test_no_space_branches_outside_the_spaces():
    hits = []
    for folder in (REPO / "zcnas", REPO / "proxies"):
        for path in folder.rglob("*.py"):
            if path.is_relative_to(REPO / "zcnas" / "spaces"):
                continue
            for no, line in enumerate(path.read_text().splitlines(), 1):
                if SPACE_BRANCH.search(line.split("#", 1)[0]):
                    hits.append(f"{path.relative_to(REPO)}:{no}: {line.strip()}")
    assert hits == []
    assert SPACE_BRANCH.search('if space == "nats-tss":')  # the pattern catches the old shape
    assert SPACE_BRANCH.search('x = a if config.space != "nats-sss" else b')
    assert SPACE_BRANCH.search('if ctx.space in ("nats-tss", "nats-sss"):')


def _modules_after(code: str) -> list[str]:
    proc = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted("
                           "m for m in sys.modules)))"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_the_search_core_and_the_method_records_import_no_torch_pandas_matplotlib():
    mods = _modules_after("import zcnas.search, zcnas.search.driver, zcnas.search.spec\n"
                          "from zcnas.search import METHODS, list_methods\n"
                          "[METHODS.get(m) for m in list_methods()]")
    heavy = [m for m in mods if m.split(".")[0] in ("torch", "pandas", "matplotlib")]
    assert heavy == []


def test_the_conformance_kit_imports_no_builtin_proxy():
    mods = _modules_after("import zcnas.testing")
    assert [m for m in mods if m.startswith("zcnas_proxies")] == []
