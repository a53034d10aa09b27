"""Conformance checks, group 3: nothing the context hands out is modified (batches, shared
passes, networks), and sharing a pass does not change a score."""

from __future__ import annotations

import dataclasses

from zcnas.scoring.context import ScoringContext
from zcnas.testing._util import _all_collect, _kwargs, _tensors_equal
from zcnas.testing.kit import Kit, register_check
from zcnas.testing.recording import fingerprint, fingerprint_difference


@register_check("batches_unchanged", group=3,
                doc='the shared input batches are not modified')
def batches_unchanged(kit: Kit) -> str | None:
    kit.require_scorable()
    drawn = 0
    for ctx in kit.records():
        for call in ctx.batch_calls:
            if call.batches is None or call.snapshot is None:
                continue
            again = ctx.inputs.batches(call.kind, call.batch_size, call.n)
            for i, ((x0, y0), (x1, y1), (x2, y2)) in enumerate(
                    zip(call.snapshot, call.batches, again, strict=True)):
                drawn += 1
                where = (f"batch {i} of ctx.batches({call.batch_size}, {call.n}, "
                         f"kind={call.kind!r})")
                if not (_tensors_equal(x0, x1) and _tensors_equal(x0, x2)):
                    raise AssertionError(f"scoring modified the images of {where} in place "
                                         "(clone before changing a shared batch)")
                if not (_tensors_equal(y0, y1) and _tensors_equal(y0, y2)):
                    raise AssertionError(f"scoring modified the labels of {where} in place")
    return None if drawn else "n/a: draws no batches"


@register_check("shared_passes_unchanged", group=3,
                doc=('shared-pass results and co-scored proxies (stable, naswot) are '
                     'unchanged by scoring; scoring twice gives the same value'))
def shared_passes_unchanged(kit: Kit) -> str | None:
    kit.require_scorable()
    proxy = kit.fast
    reqs = kit.read_requests()
    refs = kit.reference_proxies(reqs)
    arch = kit.archs[0]
    ctx = kit.context(arch, kit.shared_bank(), [proxy, *refs], extra=reqs)
    before_refs = [kit.score(r, ctx) for r in refs]
    before = [fingerprint(ctx.run_pass(req)) for req in reqs]
    first = kit.score(proxy, ctx)
    for req, fp in zip(reqs, before, strict=True):
        where = fingerprint_difference(fp, fingerprint(ctx.run_pass(req)))
        if where is not None:
            raise AssertionError(f"scoring modified the shared {req.kind!r} pass result at "
                                 f"{where} (never change what a pass returns)")
    after_refs = [kit.score(r, ctx) for r in refs]
    for ref, b, a in zip(refs, before_refs, after_refs, strict=True):
        if not kit.same(a, b):
            raise AssertionError(f"{ref.spec()} scored {b!r} before and {a!r} after this "
                                 f"proxy on the same context ({arch})")
    second = kit.score(proxy, ctx)
    if not kit.same(first, second):
        raise AssertionError(f"scoring twice on the same context gave {first!r} then "
                             f"{second!r} ({arch})")
    if not reqs:
        return "n/a: reads no shared pass (scoring twice gave the same value)"
    return None


@register_check("sharing", group=3,
                doc=('the score is the same alone and with its passes shared with other '
                     'proxies'))
def sharing(kit: Kit) -> str | None:
    kit.require_scorable()
    proxy = kit.fast
    reqs = kit.read_requests()
    if not reqs:
        return "n/a: reads no shared pass"
    refs = kit.reference_proxies(reqs)
    # what any other proxy could add to the same pass: more batches, everything collected
    wider = [dataclasses.replace(r, n_batches=r.n_batches + 1,
                                 collect=r.collect | _all_collect(r.kind)) for r in reqs]
    arch = kit.archs[0]
    alone = kit.score(proxy, kit.context(arch, kit.shared_bank(), [proxy]))
    ctx = kit.context(arch, kit.shared_bank(), [proxy, *refs], extra=wider)
    for ref in refs:
        kit.score(ref, ctx)
    shared = kit.score(proxy, ctx)
    if not kit.same(alone, shared):
        raise AssertionError(f"scored {alone!r} alone but {shared!r} with its passes shared "
                             f"(merged with wider requests) on {arch}")
    return None


@register_check("fresh_networks", group=3,
                doc=('changes to a network from ctx.network do not leak into later ones; the'
                     " context's attributes are unchanged"))
def fresh_networks(kit: Kit) -> str | None:
    kit.require_scorable()
    records = kit.records()
    for rec in records:
        for a, value in rec.initial.items():
            if getattr(rec, a) != value:
                raise AssertionError(f"scoring changed ctx.{a} from {value!r} to "
                                     f"{getattr(rec, a)!r}")
    calls = [(rec, c) for rec in records for c in rec.network_calls]
    if not calls:
        return "n/a: builds no network via ctx.network"
    for rec, call in calls:
        again = ScoringContext.network(rec, **call.kwargs)
        if again is call.network:
            raise AssertionError("ctx.network returned the same object twice")
        where = fingerprint_difference(call.snapshot or {}, fingerprint(again))
        if where is not None:
            raise AssertionError(f"a later ctx.network({_kwargs(call.kwargs)}) differs from "
                                 f"the one handed out, at {where}")
    return None
