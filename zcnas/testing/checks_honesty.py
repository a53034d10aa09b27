"""Conformance checks, group 5: the declared metadata is honest (BN, init, input, batch size,
images, labels)."""

from __future__ import annotations

from zcnas.proxy import INITS
from zcnas.testing._util import NEEDS_IMAGES, _first_line
from zcnas.testing.kit import CheckSkipped, Kit, register_check
from zcnas.testing.recording import RelabelledInputs


@register_check("honest_bn", group=5,
                doc=("bn='none' builds every network without BN; bn='train' runs BN in train"
                     " mode, bn='eval' in eval mode"))
def honest_bn(kit: Kit) -> str | None:
    kit.require_scorable()
    info = kit.info
    calls = [c for ctx in kit.records() for c in ctx.network_calls]
    if not calls:
        return "n/a: builds no network via ctx.network"
    if info.bn == "none":
        bad = [c for c in calls if c.kwargs["bn"]]
        if bad:
            raise AssertionError(f"declares bn='none' but built {len(bad)} of {len(calls)} "
                                 "network(s) with BN (call ctx.network(bn=False))")
    elif info.bn == "train":
        if any(not c.kwargs["bn"] for c in calls):
            raise AssertionError("declares bn='train' but built a network without BN "
                                 "(ctx.network(bn=False))")
        if any(not t for c in calls for t in c.bn_training):
            raise AssertionError("declares bn='train' but a BatchNorm layer ran in eval mode")
    elif info.bn == "eval":
        if any(not c.kwargs["bn"] for c in calls):
            raise AssertionError("declares bn='eval' but built a network without BN "
                                 "(ctx.network(bn=False))")
        if any(t for c in calls for t in c.bn_training):
            raise AssertionError("declares bn='eval' but a BatchNorm layer ran in train mode")
    else:
        return "n/a: bn='n/a'"
    return None


@register_check("honest_init", group=5,
                doc="every network's weights match the declared init when first used")
def honest_init(kit: Kit) -> str | None:
    kit.require_scorable()
    info = kit.info
    calls = [c for ctx in kit.records() for c in ctx.network_calls]
    if not calls:
        return "n/a: builds no network via ctx.network"
    if info.init == "n/a":
        return "n/a: init='n/a'"
    assert info.init in INITS
    for c in calls:
        # what the weights look like when first used (a proxy may re-draw them itself,
        # e.g. once per repeat); a network never run is judged by its ctx.network init
        seen = c.init_at_first_use or c.kwargs["init"]
        if seen != info.init:
            how = (f"its weights look like init={seen!r} when first used"
                   if c.init_at_first_use else f"it built networks with init={seen!r}")
            raise AssertionError(f"declares init={info.init!r} but {how} "
                                 f"(ctx.network(init={c.kwargs['init']!r}))")
    return None


@register_check("honest_input", group=5,
                doc=("input='none' uses no network or batches; 'ones' draws no batches; "
                     "'gaussian' no real images; 'real' draws real images"))
def honest_input(kit: Kit) -> str | None:
    kit.require_scorable()
    info = kit.info
    bank = "images" if info.input == "real" and not info.needs_images else "main"
    contexts = kit.records(bank)
    nets = [c for ctx in contexts for c in ctx.network_calls]
    batches = [c for ctx in contexts for c in ctx.batch_calls]
    ones = [c for ctx in contexts for c in ctx.ones_calls]
    kinds = sorted({c.kind for c in batches})
    if info.input == "none" and (nets or batches or ones):
        raise AssertionError(f"declares input='none' but built {len(nets)} network(s), drew "
                             f"{len(batches)} batch request(s) and {len(ones)} ones input(s)")
    if info.input == "ones" and batches:
        raise AssertionError(f"declares input='ones' but drew batches (kind={kinds})")
    if info.input == "gaussian" and "real" in kinds:
        raise AssertionError("declares input='gaussian' but drew real images")
    if info.input == "real" and "real" not in kinds:
        raise AssertionError(f"declares input='real' but never drew real images "
                             f"(kinds drawn: {kinds or 'none'})")
    return None


@register_check("honest_batch_size", group=5,
                doc='batches asked are <= batch_size x n_batches, the largest equal to them')
def honest_batch_size(kit: Kit) -> str | None:
    kit.require_scorable()
    proxy = kit.fast
    bs, nb = proxy.batch_size, proxy.n_batches
    contexts = kit.records()
    batches = [c for ctx in contexts for c in ctx.batch_calls]
    ones = [c for ctx in contexts for c in ctx.ones_calls]
    if not batches and not ones:
        return "n/a: draws no batches"
    for c in batches:
        if c.batch_size > bs or c.n > nb:
            raise AssertionError(f"asked for {c.n} batch(es) of {c.batch_size} but "
                                 f"batch_size={bs}, n_batches={nb}")
    for size, _dtype in ones:
        if size > bs:
            raise AssertionError(f"asked for a ones input of {size} but batch_size={bs}")
    if batches:
        big = max(c.batch_size for c in batches)
        most = max(c.n for c in batches)
        if big != bs:
            raise AssertionError(f"the largest batch asked is {big} but batch_size={bs}")
        if most != nb:
            raise AssertionError(f"asked for at most {most} batch(es) but n_batches={nb}")
    elif max(size for size, _ in ones) != bs:
        raise AssertionError(f"the largest ones input is {max(s for s, _ in ones)} but "
                             f"batch_size={bs}")
    return None


@register_check("honest_images", group=5,
                doc=('needs_images=False runs without a dataset and never asks for real '
                     'images; needs_images=True asks for them'))
def honest_images(kit: Kit) -> str | None:
    info = kit.info
    if not info.supports(kit.space):
        raise CheckSkipped(f"proxy declares spaces {info.spaces}, not {kit.space}")
    if info.needs_images:
        if kit.data_root is None:
            raise CheckSkipped(NEEDS_IMAGES)
        contexts = kit.records()
        if not any(c.kind == "real" for ctx in contexts for c in ctx.batch_calls):
            raise AssertionError("declares needs_images=True but never asked for real "
                                 "images; declare needs_images=False")
        return None
    contexts, error = kit.recording("main")  # a bank without any dataset
    if any(c.kind == "real" for ctx in contexts for c in ctx.batch_calls):
        raise AssertionError("declares needs_images=False but asked for real images "
                             "(ctx.batches(..., kind='real'))")
    if error is not None:
        raise AssertionError(f"fails without a dataset: {_first_line(error)}") from error
    return None


@register_check("honest_labels", group=5,
                doc='needs_labels=False: replacing every label leaves the score unchanged')
def honest_labels(kit: Kit) -> str | None:
    kit.require_scorable()
    if kit.info.needs_labels:
        return "n/a: declares needs_labels=True"
    proxy = kit.fast
    for arch in kit.archs[:1]:
        plain = kit.plain_score(arch)
        relabelled = kit.score(
            proxy, kit.context(arch, RelabelledInputs(kit.main_bank()), [proxy]))
        if not kit.same(plain, relabelled):
            raise AssertionError(f"declares needs_labels=False but replacing every label "
                                 f"changed the score from {plain!r} to {relabelled!r} "
                                 f"on {arch}")
    return None


@register_check("input_independent", group=5,
                doc='input gaussian/ones/none: same score with or without real images')
def input_independent(kit: Kit) -> str | None:
    kit.require_scorable()
    info = kit.info
    if info.input not in ("gaussian", "ones", "none"):
        return f"n/a: input={info.input!r}"
    proxy = kit.fast
    for arch in kit.archs[:2]:
        without = kit.score(proxy, kit.context(arch, kit.synthetic_bank(), [proxy]))
        with_images = kit.score(proxy, kit.context(arch, kit.image_bank(), [proxy]))
        if not kit.same(without, with_images):
            raise AssertionError(f"declares input={info.input!r} but scored {without!r} "
                                 f"without images and {with_images!r} with them on {arch}")
    return None
