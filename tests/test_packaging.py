"""The wheel ships every subpackage: pyproject's explicit package list matches the tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _on_disk() -> set[str]:
    """Import names of every folder under zcnas/ and proxies/ holding an __init__.py."""
    found = set()
    for top, import_name in (("zcnas", "zcnas"), ("proxies", "zcnas_proxies")):
        for init in (ROOT / top).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / top).parts
            if "__pycache__" not in rel:
                found.add(".".join((import_name, *rel)))
    return found


def test_every_subpackage_is_listed():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    missing = sorted(_on_disk() - listed)
    assert not missing, f"add to [tool.setuptools] packages in pyproject.toml: {missing}"


def test_every_listed_package_exists():
    listed = set(_pyproject()["tool"]["setuptools"]["packages"])
    absent = sorted(listed - _on_disk())
    assert not absent, f"listed in pyproject.toml but no __init__.py on disk: {absent}"


def test_proxies_folder_installs_as_zcnas_proxies():
    setuptools = _pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"] == {"zcnas_proxies": "proxies"}
    assert "proxies" not in setuptools["packages"]  # bare `proxies` is a PyPI name


def test_builtin_entry_points_point_into_zcnas_proxies():
    eps = _pyproject()["project"]["entry-points"]["zcnas.proxies"]
    assert len(eps) == 24
    for name, target in eps.items():
        module, _, attr = target.partition(":")
        assert module.startswith("zcnas_proxies.") and attr, (name, target)
