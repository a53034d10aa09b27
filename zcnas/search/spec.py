"""Ladder specs: a fidelity ladder written as text, from registered stage plugins.

``zcnas search --ladder SPEC`` replaces a method's default ladder. A spec lists the stages,
cheapest first, separated by top-level commas; each stage is a registered evaluator
(:data:`zcnas.fidelity.EVALUATORS`) with its options, plus reserved options that say how the
stage promotes and how much it may take::

    proxy(promote_fraction=0.05,promote_min=100),lookup(epochs=12)
    proxy(proxy=ensemble:az_nas,promote_top=8),my_fidelity(steps=3)

Reserved options: ``promote_top`` (K best), ``promote_fraction`` (best share), ``promote_min``
(results before promoting), ``promote_sync`` (successive halving: wait for the stage to
close), ``max_evals`` and ``max_cost`` (caps of the stage). Every stage but the last needs a
``promote_top`` or a ``promote_fraction``. Option values are numbers, ``true``/``false`` or
text (which may hold parentheses and commas, e.g. an ensemble spec).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from zcnas.errors import UserError
from zcnas.proxy import ProxyError, literal, split_specs
from zcnas.search.ladder import Ladder, Promotion, Stage

if TYPE_CHECKING:  # pragma: no cover
    from zcnas.search.method import BuildContext

_PROMOTE = {"promote_top": "top_k", "promote_fraction": "fraction",
            "promote_min": "min_results", "promote_sync": "sync"}
_CAPS = ("max_evals", "max_cost")


def parse_call(text: str) -> tuple[str, dict[str, Any]]:
    """``'name(a=1,b=x(y,z))'`` -> ``('name', {'a': 1, 'b': 'x(y,z)'})``."""
    s = text.strip()
    name, paren, body = s.partition("(")
    name = name.strip()
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise UserError(f"malformed ladder stage {s!r}; expected NAME or NAME(key=value,...)")
    if not paren:
        return name, {}
    if not body.endswith(")"):
        raise UserError(f"malformed ladder stage {s!r}: missing ')'")
    body = body[:-1]
    kwargs: dict[str, Any] = {}
    if body.strip():
        try:
            parts = split_specs(body)
        except ProxyError:
            raise UserError(f"malformed ladder stage {s!r}: unbalanced parentheses or an "
                            "empty option") from None
        for part in parts:
            key, sep, raw = part.partition("=")
            key = key.strip()
            if not sep or not key.isidentifier():
                raise UserError(f"malformed option {part.strip()!r} in ladder stage {s!r}; "
                                "expected key=value")
            kwargs[key] = literal(raw.strip())
    return name, kwargs


def parse_ladder(text: str, ctx: BuildContext) -> Ladder:
    """The :class:`Ladder` a spec describes (see the module docstring); one-line errors."""
    from zcnas.fidelity.base import EVALUATORS

    try:
        specs = split_specs(text)
    except ProxyError:
        raise UserError(f"malformed --ladder {text!r}: unbalanced parentheses or an empty "
                        "stage") from None
    stages = []
    for i, spec in enumerate(specs):
        name, options = parse_call(spec)
        promote = {_PROMOTE[k]: options.pop(k) for k in list(options) if k in _PROMOTE}
        caps = {k: options.pop(k) for k in list(options) if k in _CAPS}
        last = i == len(specs) - 1
        rule = None
        if promote:
            if last:
                raise UserError(f"ladder stage {i} ({name}) is the last: it promotes to nothing")
            try:
                rule = Promotion(**promote)
            except (TypeError, ValueError) as err:
                raise UserError(f"ladder stage {i} ({name}): {err}") from None
        elif not last:
            raise UserError(f"ladder stage {i} ({name}) needs promote_top=K or "
                            "promote_fraction=F: how many of its cells go on")
        factory = EVALUATORS.get(name)
        try:
            evaluator = factory(ctx, **options)
        except TypeError as err:
            raise UserError(f"ladder stage {i} ({name}): {err}") from None
        stages.append(Stage(evaluator, rule, **caps))
    if not stages:
        raise UserError("--ladder names no stage")
    return Ladder(stages, select=ctx.select("top"))
