"""Conformance checks, group 2: a proxy returns a float, deterministically, and leaves global
state alone."""

from __future__ import annotations

import contextlib
import io

from zcnas.testing._util import (
    _global_state,
    _qualname,
    _restore_global_state,
    _state_equal,
    _unusual_rng_states,
)
from zcnas.testing.kit import Kit, register_check


@register_check("returns_float", group=2,
                doc='score() returns a Python float')
def returns_float(kit: Kit) -> str | None:
    kit.require_scorable()
    archs = kit.archs + list(kit.degenerate.values())[:1]
    for arch in archs:
        value = kit.plain_score(arch)
        if type(value) is not float:
            raise AssertionError(f"score() returned {_qualname(type(value))} on {arch}; "
                                 "return a Python float (float(x))")
    return None


@register_check("determinism", group=2,
                doc='two fresh contexts give bitwise-identical scores (NaN == NaN)')
def determinism(kit: Kit) -> str | None:
    kit.require_scorable()
    proxy = kit.fast
    for arch in kit.archs:
        first = kit.plain_score(arch)  # a fresh context and bank, scored earlier
        second = kit.score(proxy, kit.context(arch, kit.main_bank(), [proxy]))
        if not kit.same(first, second):
            raise AssertionError(f"two fresh contexts gave {first!r} and {second!r} on "
                                 f"{arch} (use torch.Generator().manual_seed(ctx.seed), "
                                 "never the global RNG)")
    return None


@register_check("global_state", group=2,
                doc='scoring leaves global RNGs, torch flags and stdout/stderr untouched')
def global_state(kit: Kit) -> str | None:
    kit.require_scorable()
    proxy = kit.fast
    ctx = kit.context(kit.archs[0], kit.main_bank(), [proxy])
    callers = _global_state(kit.device)
    out, err = io.StringIO(), io.StringIO()
    try:
        _unusual_rng_states()  # so that seeding inside score() shows as a change
        before = _global_state(kit.device)
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            kit.score(proxy, ctx)
        after = _global_state(kit.device)
    finally:
        _restore_global_state(callers)  # a failing proxy must not change the caller's
    changed = [k for k in before if k in after and not _state_equal(before[k], after[k])]
    if changed:
        raise AssertionError(f"scoring changed global state: {', '.join(changed)} (own a "
                             "torch.Generator; set no global flags)")
    for stream, text in (("stdout", out.getvalue()), ("stderr", err.getvalue())):
        if text:
            raise AssertionError(f"scoring wrote to {stream}: {text.strip()[:80]!r}")
    return None
