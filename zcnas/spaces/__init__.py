"""Search spaces: genotypes, their string forms, isomorphism keys and evolution operators.

Pure Python (no torch). A space is a :class:`SearchSpace` object (see
:mod:`zcnas.spaces.base` for the contract); the built-ins ``nats-tss`` (:mod:`.nats_tss`, the
NAS-Bench-201 cell) and ``nats-sss`` (:mod:`.nats_sss`, five layer widths) register through
the ``zcnas.spaces`` entry-point group, as a third-party space does::

    from zcnas.spaces import get_space, list_spaces
    tss = get_space("tss")                      # names and aliases
    cell = tss.parse_arch("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|none~2|")
    tss.canonical_key(cell), tss.neighbours(cell)[:2]

Index <-> arch mapping follows the benchmark's own order: :class:`ArchOrder` wraps the official
``meta_archs`` list (:func:`zcnas.lookup.load_order` finds it); a space may compute its order
(:meth:`SearchSpace.index_order`, the size space does).
"""

from __future__ import annotations

from zcnas.errors import ArchError, UnknownNameError
from zcnas.plugins import Registry
from zcnas.spaces.base import ArchOrder, Costs, SearchSpace, validate_space

#: Search-space plugins (entry-point group ``zcnas.spaces``): name -> SearchSpace instance.
SPACES = Registry("zcnas.spaces", kind="search space", validate=validate_space,
                  list_command="zcnas info")


#: The order the built-in spaces are listed in.
BUILTIN_ORDER = ("nats-tss", "nats-sss")


def list_spaces(filter: str | None = None) -> list[str]:
    """Names of every installed search space, built-ins first (no plugin is imported)."""
    rank = {n: i for i, n in enumerate(BUILTIN_ORDER)}
    return sorted(SPACES.names(filter), key=lambda n: (rank.get(n, len(rank)), n))


def canonical_space(name: str | SearchSpace) -> str:
    """The registered name of a space given by name, alias (case-insensitive) or object."""
    return get_space(name).name


def get_space(name: str | SearchSpace) -> SearchSpace:
    """The :class:`SearchSpace` registered as ``name`` or having it as an alias; a space
    object is returned unchanged. One-line :class:`UnknownNameError` otherwise."""
    if isinstance(name, SearchSpace):
        return name
    text = str(name).strip()
    names = SPACES.names()
    for candidate in (text, text.lower()):
        if candidate in names:
            return SPACES.get(candidate)
    wanted = text.lower()
    builtins = [e.name for e in SPACES.entries() if e.dist == SPACES.builtin]
    for n in sorted(names, key=lambda n: n not in builtins):  # built-in aliases first
        try:
            space = SPACES.get(n)
        except UnknownNameError:
            raise
        except Exception:  # noqa: BLE001 - a broken plugin never hides the others
            continue
        if wanted in (a.lower() for a in space.aliases):
            return space
    raise UnknownNameError(f"unknown search space {name!r}; valid spaces: {', '.join(names)}")


def resolve_arch(text: str, space: str | SearchSpace = "nats-tss",
                 order: ArchOrder | None = None):
    """Parse an arch string or a benchmark index (ASCII digits) into ``(genotype, index or
    None)``. An index needs the benchmark's order: ``order``, or the one the space computes."""
    sp = get_space(space)
    s = str(text).strip()
    if order is None:
        order = sp.index_order()
    if s.isascii() and s.isdigit():
        if not sp.indexed:
            raise ArchError(f"{sp.name} has no benchmark index: give an arch string "
                            f"({sp.arch_format}), not {s}")
        if order is None:
            raise ArchError(f"index {s} needs the benchmark's arch order; pass --data PATH or "
                            "set ZCNAS_DATA")
        return sp.parse_arch(order.arch(int(s))), int(s)
    g = sp.parse_arch(s)
    return g, (order.index(g) if order is not None else None)


__all__ = ["SPACES", "ArchOrder", "Costs", "SearchSpace", "canonical_space", "get_space",
           "list_spaces", "resolve_arch"]
