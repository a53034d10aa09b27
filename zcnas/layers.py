"""The layering of zcnas, checked from the source: ``python -m zcnas.layers`` prints the import
graph between subpackages and exits with 1 when an import goes upward.

Every ``import`` statement of every module counts, at module level or inside a function (a
lazy import is still a dependency). The layers, lowest first; a module may import its own
layer and the ones below, never one above:

====  =================================================================================
0     errors, ``_version``, ``_text``, ``_io``, paths, datasets, plugins
1     spaces (genotypes: no torch, no pandas, no matplotlib)
2     proxy (the proxy contract), ensemble, registry
3     runtime (score store, progress), lookup (NATS-Bench tables)
4     models, data (torch)
5     scoring (the context, shared passes, the engine)
6     the built-in proxies (``zcnas_proxies``, plugins like any third party's)
7     fidelity (evaluators)
8     search (the core: searchers, ladder, driver, method records: no torch, no pandas)
9     methods (the built-in method records)
10    analysis, experiments, describe, inventory, testing, layers, cli, and the package
      itself (``zcnas.score_model`` is its facade)
====  =================================================================================

Imports under ``if TYPE_CHECKING:`` are annotations only and do not count.

Besides the order, a few rules name imports that are always wrong:

- nothing in ``zcnas`` imports ``zcnas_proxies`` (the built-ins are found through entry
  points, as a third party's);
- the built-in proxies never import the lookup (scores never depend on the benchmark);
- the genotype side (spaces) and the search core import no torch, pandas or matplotlib.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

LAYERS: tuple[tuple[str, ...], ...] = (
    ("zcnas.errors", "zcnas._version", "zcnas._text", "zcnas._io", "zcnas.paths",
     "zcnas.datasets", "zcnas.plugins"),
    ("zcnas.spaces",),
    ("zcnas.proxy", "zcnas.ensemble", "zcnas.registry"),
    ("zcnas.runtime", "zcnas.lookup"),
    ("zcnas.models", "zcnas.data"),
    ("zcnas.scoring",),
    ("zcnas_proxies",),
    ("zcnas.fidelity",),
    ("zcnas.search",),
    ("zcnas.methods",),
    ("zcnas.analysis", "zcnas.experiments", "zcnas.describe", "zcnas.inventory",
     "zcnas.testing", "zcnas.layers", "zcnas.cli", "zcnas"),
)
#: (importer prefix, imported prefix, why): imports that are wrong whatever the layers say.
FORBIDDEN: tuple[tuple[str, str, str], ...] = (
    ("zcnas", "zcnas_proxies", "the built-in proxies are plugins, found through entry points"),
    ("zcnas_proxies", "zcnas.lookup", "a proxy never reads the benchmark"),
    ("zcnas.spaces", "torch", "the genotype side is torch-free"),
    ("zcnas.spaces", "pandas", "the genotype side is pandas-free"),
    ("zcnas.spaces", "matplotlib", "the genotype side draws nothing"),
    ("zcnas.search", "torch", "the search core is torch-free"),
    ("zcnas.search", "pandas", "the search core is pandas-free"),
    ("zcnas.search", "matplotlib", "the search core draws nothing"),
)


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    target: str  # the imported module
    line: int
    path: Path


def _unit(name: str) -> str | None:
    """The layer unit (longest listed prefix) of a module name, or None (third party)."""
    best = None
    for layer in LAYERS:
        for unit in layer:
            if (name == unit or name.startswith(unit + ".")) and (
                    best is None or len(unit) > len(best)):
                best = unit
    return best


def _level(unit: str) -> int:
    return next(i for i, layer in enumerate(LAYERS) if unit in layer)


def _modules(root: Path) -> Iterator[tuple[str, Path]]:
    for package, folder in (("zcnas", root / "zcnas"), ("zcnas_proxies", root / "proxies")):
        for path in sorted(folder.rglob("*.py")):
            rel = path.relative_to(folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            yield ".".join([package, *parts]), path


def imports(root: str | Path | None = None) -> list[Import]:
    """Every import statement of zcnas and the built-in proxies (relative ones resolved)."""
    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    out = []
    for module, path in _modules(root):
        tree = ast.parse(path.read_text(), filename=str(path))
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        typing_only = {id(n) for block in ast.walk(tree) if _is_type_checking(block)
                       for stmt in block.body for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                out += [Import(module, a.name, node.lineno, path) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                out.append(Import(module, base, node.lineno, path))
    return out


def _is_type_checking(node: ast.AST) -> bool:
    if not isinstance(node, ast.If):
        return False
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def violations(found: list[Import] | None = None) -> list[str]:
    """One line per import that breaks the layering."""
    found = imports() if found is None else found
    bad = []
    for imp in found:
        src, dst = _unit(imp.module), _unit(imp.target)
        where = f"{imp.path.name}:{imp.line} {imp.module} imports {imp.target}"
        for a, b, why in FORBIDDEN:
            if (imp.module == a or imp.module.startswith(a + ".")) and (
                    imp.target == b or imp.target.startswith(b + ".")):
                bad.append(f"{where}: {why}")
        if src is not None and dst is not None and _level(dst) > _level(src):
            bad.append(f"{where}: layer {_level(src)} ({src}) may not import layer "
                       f"{_level(dst)} ({dst})")
    return sorted(set(bad))


def graph(found: list[Import] | None = None) -> dict[str, set[str]]:
    """Layer unit -> the units (and heavy third-party packages) it imports."""
    found = imports() if found is None else found
    heavy = ("torch", "pandas", "matplotlib", "numpy", "scipy", "nats_bench", "ray")
    out: dict[str, set[str]] = {}
    for imp in found:
        src = _unit(imp.module)
        dst = _unit(imp.target) or next(
            (h for h in heavy if imp.target == h or imp.target.startswith(h + ".")), None)
        if src is not None and dst is not None and dst != src:
            out.setdefault(src, set()).add(dst)
    return out


def main() -> int:
    found = imports()
    g = graph(found)
    for layer_no, layer in enumerate(LAYERS):
        for unit in layer:
            deps = ", ".join(sorted(g.get(unit, ()))) or "-"
            print(f"{layer_no:>2}  {unit:<20} -> {deps}")
    bad = violations(found)
    for line in bad:
        print(f"upward import: {line}")
    print(f"{len(bad)} upward import(s)" if bad else "layering ok")
    return 1 if bad else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
