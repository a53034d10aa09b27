"""One generic plugin registry: entry points plus in-process registrations.

Every kind of plugin is found the same way, through an entry-point group (``zcnas.proxies``,
``zcnas.spaces``, ``zcnas.methods``, ``zcnas.evaluators``); the built-ins register through
the same groups, exactly as a third party does::

    [project.entry-points."zcnas.proxies"]
    my_proxy = "my_package.module:MyProxy"

Listing (:meth:`Registry.names`, :meth:`Registry.entries`) reads installed metadata only and
never imports a plugin. :meth:`Registry.get` imports and validates one plugin, on first use.
:meth:`Registry.load_all` loads everything and reports each broken plugin (fails to import,
fails validation, or its name is claimed by two distributions) instead of failing as a whole;
set ``ZCNAS_PLUGIN_RAISE=1`` to get the original exception and its traceback instead.

A name declared both by zcnas itself and by another distribution goes to zcnas (built-ins
win); the other declaration is listed by :meth:`Registry.clashes` and reported by
:meth:`Registry.load_all` as broken. Two third-party distributions claiming one name are a
conflict: neither is loaded, and the error names both.

Names of the form ``prefix:rest`` are handed to a factory registered with
:meth:`Registry.register_prefix` (the hook for ``ensemble:...`` scorers).

This module imports only the standard library and :mod:`zcnas.errors`.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib.metadata
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from zcnas.errors import UnknownNameError, UserError, one_line

RAISE_ENV = "ZCNAS_PLUGIN_RAISE"
#: The distribution whose plugins are the built-ins.
BUILTIN_DIST = "zcnas"
IN_PROCESS = "<in-process>"


class PluginError(UserError):
    """A plugin is installed but cannot be used (import or validation failed)."""


class PluginConflictError(PluginError):
    """Two different distributions declare the same name in one entry-point group."""


@dataclass(frozen=True)
class Entry:
    """One declared plugin: its name, ``module:attr`` target and source distribution.

    ``dist`` is ``"<in-process>"`` (and ``version`` None) for :meth:`Registry.register`.
    """

    name: str
    target: str
    dist: str
    version: str | None

    @property
    def source(self) -> str:
        return self.dist if self.version is None else f"{self.dist} {self.version}"


@dataclass(frozen=True)
class Broken:
    """A plugin that could not be loaded, with the one-line reason."""

    name: str
    dist: str
    version: str | None
    error: str
    target: str = ""

    @property
    def source(self) -> str:
        return self.dist if self.version is None else f"{self.dist} {self.version}"


def _raise_original() -> bool:
    return os.environ.get(RAISE_ENV, "").strip().lower() not in ("", "0", "false", "no")


def _norm_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _matcher(pattern: str | None) -> Callable[[str], bool]:
    """fnmatch-style; a pattern without wildcards matches as a substring."""
    if not pattern:
        return lambda _name: True
    pat = pattern.lower()
    if not any(ch in pat for ch in "*?["):
        pat = f"*{pat}*"
    return lambda name: fnmatch.fnmatchcase(name.lower(), pat)


class Registry:
    """Plugins of one kind, from entry-point group ``group`` and in-process registrations.

    ``kind`` is the word used in messages (``"proxy"``); ``validate(name, obj)`` raises
    (any exception, with a clear message) when a loaded object is not a valid plugin of this
    kind; ``list_command`` is the command messages point to for the full listing;
    ``builtin`` the distribution whose declarations win a name clash.
    """

    def __init__(self, group: str, *, kind: str,
                 validate: Callable[[str, Any], None] | None = None,
                 list_command: str | None = None, builtin: str = BUILTIN_DIST) -> None:
        self.group = group
        self.kind = kind
        self.validate = validate
        self.list_command = list_command
        self.builtin = builtin
        self._clashes: list[Entry] = []
        self._local: dict[str, Any] = {}
        self._prefixes: dict[str, Callable[[str], Any]] = {}
        self._scan: dict[str, list[tuple[Entry, importlib.metadata.EntryPoint]]] | None = None
        self._loaded: dict[str, Any] = {}
        self._failed: dict[str, BaseException] = {}

    def __repr__(self) -> str:
        return f"<Registry {self.kind} group={self.group!r}>"

    # --- discovery (no imports) -----------------------------------------------------------

    def _declared(self) -> dict[str, list[tuple[Entry, importlib.metadata.EntryPoint]]]:
        if self._scan is None:
            found: dict[str, list[tuple[Entry, importlib.metadata.EntryPoint]]] = {}
            for ep in importlib.metadata.entry_points(group=self.group):
                dist = getattr(ep, "dist", None)
                dname = (dist.name if dist is not None else None) or "<unknown distribution>"
                version = dist.version if dist is not None else None
                seen = found.setdefault(ep.name, [])
                # The same distribution seen twice on sys.path (editable + stale .egg-info,
                # a --target dir shadowing site-packages) is one declaration: first wins,
                # like imports.
                if any(_norm_dist(e.dist) == _norm_dist(dname) for e, _ in seen):
                    continue
                seen.append((Entry(ep.name, ep.value, dname, version), ep))
            self._clashes = []
            for name, decl in found.items():
                ours = [d for d in decl if _norm_dist(d[0].dist) == _norm_dist(self.builtin)]
                if ours and len(decl) > 1:  # built-ins win; the others are reported
                    self._clashes += [e for e, _ in decl if e is not ours[0][0]]
                    found[name] = ours
            self._scan = found
        return self._scan

    def clashes(self) -> list[Entry]:
        """Third-party declarations of a name a built-in already has (ignored, reported)."""
        self._declared()
        return list(self._clashes)

    def refresh(self) -> None:
        """Forget the entry-point scan and every loaded plugin (after installing one)."""
        self._scan = None
        self._loaded.clear()
        self._failed.clear()

    def names(self, filter: str | None = None) -> list[str]:
        """Sorted plugin names, without importing any plugin; ``filter`` is fnmatch-style."""
        match = _matcher(filter)
        return sorted(n for n in set(self._declared()) | set(self._local) if match(n))

    def entries(self, filter: str | None = None) -> list[Entry]:
        """Every declaration (both sides of a name clash), without importing any plugin."""
        match = _matcher(filter)
        out = [e for name, found in self._declared().items() if match(name) for e, _ in found]
        out += [e for e in self._clashes if match(e.name)]
        out += [Entry(name, target_of(obj), IN_PROCESS, None)
                for name, obj in self._local.items() if match(name)]
        return sorted(out, key=lambda e: (e.name, e.dist))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and (name in self._local or name in self._declared())

    # --- registration ---------------------------------------------------------------------

    def register(self, name: str, obj: Any = None) -> Any:
        """Register ``obj`` as ``name`` in this process; without ``obj``, a decorator.

        The name must not be taken already (by an entry point or an earlier registration).
        """
        if obj is None:
            return lambda target: self.register(name, target)
        if name in self._local:
            raise PluginConflictError(
                f"{self.kind} {name!r} is already registered in-process "
                f"({target_of(self._local[name])})")
        declared = self._declared().get(name)
        if declared:
            entry = declared[0][0]
            raise PluginConflictError(
                f"{self.kind} {name!r} is already declared by distribution {entry.source} "
                f"({entry.target}); pick another name")
        if self.validate is not None:
            self.validate(name, obj)
        self._local[name] = obj
        return obj

    def unregister(self, name: str) -> None:
        """Remove an in-process registration (entry points cannot be removed)."""
        if name not in self._local:
            raise self._unknown(name)
        del self._local[name]

    def register_prefix(self, prefix: str, factory: Callable[[str], Any]) -> None:
        """Route names ``prefix:rest`` to ``factory(rest)``, which returns the plugin object
        (for proxies: a :class:`~zcnas.proxy.Proxy` subclass). Extension point for
        ``ensemble:...``; the result is neither cached nor validated here."""
        if not prefix or ":" in prefix:
            raise ValueError(f"invalid prefix {prefix!r}")
        if prefix in self._prefixes:
            raise PluginConflictError(f"{self.kind} prefix {prefix + ':'!r} is already taken")
        self._prefixes[prefix] = factory

    # --- loading --------------------------------------------------------------------------

    def get(self, name: str) -> Any:
        """Load, validate and return the plugin ``name`` (cached)."""
        prefix, sep, rest = name.partition(":")
        if sep:
            factory = self._prefixes.get(prefix)
            if factory is None:
                known = ", ".join(f"{p}:" for p in sorted(self._prefixes)) or "none"
                raise UnknownNameError(f"unknown {self.kind} prefix {prefix + ':'!r} in "
                                       f"{name!r}; known prefixes: {known}")
            return factory(rest)
        if name in self._local:
            return self._local[name]
        if name in self._loaded:
            return self._loaded[name]
        declared = self._declared().get(name)
        if not declared:
            raise self._unknown(name)
        if len(declared) > 1:
            raise self._conflict(name, declared)
        if name in self._failed:
            return self._fail(name, declared[0][0], self._failed[name])
        entry, ep = declared[0]
        try:
            obj = ep.load()
            if self.validate is not None:
                self.validate(name, obj)
        except Exception as err:  # isolate any plugin failure, pluggy-style
            self._failed[name] = err
            return self._fail(name, entry, err)
        self._loaded[name] = obj
        return obj

    def load_all(self, filter: str | None = None) -> tuple[dict[str, Any], list[Broken]]:
        """Load every plugin (matching ``filter``): ``({name: obj}, [broken, ...])``.

        A plugin that fails is recorded and skipped; with ``ZCNAS_PLUGIN_RAISE=1`` the
        original exception propagates instead.
        """
        loaded: dict[str, Any] = {}
        broken: list[Broken] = []
        declared = self._declared()
        for name in self.names(filter):
            try:
                loaded[name] = self.get(name)
            except PluginError as err:
                if _raise_original():
                    raise
                for entry, _ in declared.get(name, ()):
                    broken.append(Broken(name, entry.dist, entry.version, one_line(
                        err.__cause__ if err.__cause__ is not None else err), entry.target))
        match = _matcher(filter)
        broken += [Broken(e.name, e.dist, e.version, f"the name is taken by the built-in "
                          f"{self.kind} of {self.builtin}; this one is ignored", e.target)
                   for e in self._clashes if match(e.name)]
        return loaded, broken

    # --- messages -------------------------------------------------------------------------

    def _fail(self, name: str, entry: Entry, err: BaseException) -> Any:
        if _raise_original():
            raise err
        raise PluginError(
            f"{self.kind} {name!r} from {entry.source} ({entry.target}) failed to load: "
            f"{one_line(err)} (set {RAISE_ENV}=1 for the traceback)") from err

    def _conflict(self, name: str, declared: Iterable[tuple[Entry, Any]]) -> PluginConflictError:
        who = " and ".join(f"{e.source} ({e.target})" for e, _ in declared)
        return PluginConflictError(
            f"{self.kind} {name!r} is declared by two distributions: {who}; "
            "uninstall one of them")

    def _unknown(self, name: str) -> UnknownNameError:
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.6)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        listing = f" (`{self.list_command}` shows all)" if self.list_command else ""
        return UnknownNameError(f"unknown {self.kind} {name!r}{hint}{listing}")


def target_of(obj: Any) -> str:
    """``module:qualname`` of a plugin object, for messages."""
    module = getattr(obj, "__module__", None) or "?"
    return f"{module}:{getattr(obj, '__qualname__', type(obj).__qualname__)}"
