"""Leakage guard: proxies never see the benchmark's accuracies.

Every built-in proxy scores the same architectures twice, once with the full data folder
(lookup table and archives present) and once with a folder holding only the CIFAR-10 images;
the scores must be bitwise identical. A static check backs it: no proxy module imports the
lookup package.
"""

import ast
import struct
from pathlib import Path

import pytest

import zcnas_proxies
from zcnas.registry import create_proxy, list_proxies
from zcnas.scoring.engine import make_items, score_archs

ARCHS = ["|nor_conv_1x1~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"]


def _bits(x: float) -> bytes:
    return struct.pack("<d", x)


def test_every_proxy_scores_identically_with_and_without_the_lookup(data_root, tmp_path,
                                                                   monkeypatch):
    monkeypatch.delenv("ZCNAS_DATA", raising=False)
    monkeypatch.delenv("TORCH_HOME", raising=False)
    if not (data_root / "nats-tss").is_dir():
        pytest.skip("no lookup table in the data folder")
    images_only = tmp_path / "data"
    images_only.mkdir()
    (images_only / "cifar10").symlink_to(data_root / "cifar10", target_is_directory=True)
    # small batches keep it quick (te_nas_ntk's 64-image NTK alone is 14 s per cell); the
    # lookup either leaks into a recipe or not, whatever its batch size
    proxies = [create_proxy(f"{n}(batch_size={min(16, create_proxy(n).info.batch_size)})")
               for n in list_proxies()]
    results = {}
    for label, root in (("with lookup", data_root), ("without", images_only)):
        rows = score_archs(make_items(ARCHS, "nats-tss"), proxies, root=root, workers=1,
                           progress=False)
        results[label] = {(r.arch, r.proxy): _bits(r.value) for r in rows}
    assert len(results["without"]) == len(ARCHS) * len(proxies)
    differ = [k for k, v in results["with lookup"].items() if results["without"][k] != v]
    assert not differ, f"scores changed when the lookup table was removed: {differ}"


def test_no_proxy_module_imports_the_lookup():
    folder = Path(zcnas_proxies.__file__).parent
    offenders = []
    for path in sorted(folder.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            offenders += [f"{path.name}: {n}" for n in names
                          if n.startswith(("zcnas.lookup", "nats_bench"))]
    assert not offenders
