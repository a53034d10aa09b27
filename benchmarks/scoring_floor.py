"""A stable yardstick for scoring speed: the kernel floor of the suite's own shapes, and where
the rest of the time goes.

Run (CPU, one thread; the numbers in results/benchmarks/scoring-floor-cpu.txt)::

    python -m benchmarks.scoring_floor --archs 10 --data ../shared/data \
        --out results/benchmarks/scoring-floor-cpu.txt

For each proxy set (the default suite ``synflow,naswot,stable`` and the components of
``ensemble:zcnas``), on the same seeded sample of distinct topology cells, one torch thread,
in this process:

1. **wall**: seconds per cell of the scoring itself (one :class:`ScoringContext` per cell,
   every proxy of the set on it, as a worker of ``zcnas score`` runs them), best of three
   rounds;
2. **kernel floor**: every convolution (forward and backward) and matrix product the set runs
   is recorded with its arguments (a ``TorchDispatchMode``: shapes, dtypes, memory format
   (contiguous, channels-last or a transposed matrix; other strides are re-timed as
   contiguous), stride, padding, groups, which gradients the backward computes); each
   distinct call is then re-run alone on
   fresh tensors of that layout, best of ``--reps`` repetitions in each of the three rounds,
   and the floor is the sum over all calls of those best times. Wall and floor are timed in
   interleaved rounds (the scoring once, then every call), so a slow spell of a shared machine
   weighs on both alike and a call's best time comes from three moments; each round's own
   wall / floor is printed beside them, the spread of the yardstick on this machine. The floor
   is what the set would cost if its convolutions and matmuls ran at the best speed this
   machine reaches *on those very shapes* and everything else (BN, ReLU, node sums, autograd,
   Python) were free. The recording run also times each call where it runs (the kernel alone,
   inside the scoring): those calls' time in place against their floor says how much of the
   gap is the kernels running slower inside the scoring (cold caches, layouts), and the wall
   less that time is what the rest costs (the in-place times come from the recording run,
   the wall from the best round: two runs of the same cells, so the split is as noisy as
   the rounds' ratios);
3. **peak-GEMM floor**: the same calls' FLOPs divided by the machine's best 2048^3 float32
   matmul rate on one thread (the yardstick of ``benchmarks.scoring_speed``; it flatters small
   NB201 convolutions, which never reach that rate);
   **the same proxies at 2 images per batch** (each round, after the wall): the same
   networks, ops, Python and autograd bookkeeping, network builds and per-weight statistics,
   with the kernels nearly free; a bound from above on what Python and autograd cost (tighter
   than the every-op run's time outside the ops below, whose timing cost is only estimated);
4. **kernels compared**, side by side: ``nn.AvgPool2d(3, 1, 1, count_include_pad=False)``
   against zcnas's depthwise-convolution pooling (forward + backward at the NB201 shapes of
   a 128-image batch, both memory formats), and GradSign's per-sample gradients by
   ``torch.func.vmap`` against one batched pass with per-sample BN at 128 images (both
   zcnas's: the proxy takes the batched pass up to 16 images, where it is faster, and vmap
   above; same cells, same batch, scores compared);
5. **the rest, by op class**: a run of its own times every op where it runs (the floor's
   calls, batch norm, ReLU, sums (node sums and autograd's gradient accumulation), the
   pooling's division, other tensor ops), with the bytes each moves (every tensor it reads
   and writes counted once: a lower bound, since batch norm, say, reads its inputs more than
   once);
   that run's wall less every op is what lies outside them (Python, the autograd engine, and
   the timing itself, which slows that run: its cost per op is calibrated on a small add and
   taken out; ops with more arguments likely cost the timing more, so what remains is an
   estimate from above). Those bytes at the machine's float32 copy rates say what separate,
   unfused element-wise kernels could reach at best, in two cases: *warm*, one 2 or 8 MB
   buffer copied again and again (in cache; NB201's tensors at 128 images are 2-8 MB), and
   *cold*, a cycle of copies through 64 pairs of 8 MB buffers (512 MB read, 512 MB written:
   out of cache; a 128-image pass keeps hundreds of MB of activations for its backward, so
   many of its tensors are out of cache when the next op reads them). What separate kernels
   could reach lies between the two bounds (warm if every tensor were in cache, cold if none).
   Each class's time over its bytes at the cold rate ("x cold") says how far it runs from the
   memory; the report sets both bounds beside the time 1.3x the floor leaves for everything
   but the floor's calls.
   (An earlier version read the op classes from ``torch.profiler``, whose own cost per event
   inflated the many small ops: its profiled wall was 2.5x the unprofiled one.)
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections import Counter, defaultdict
from pathlib import Path

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from benchmarks._machine import as_scoring_worker, cpu_name, emit
from benchmarks.scoring_speed import matmul_rate, sample_archs
from zcnas.proxy import with_batch_at_most
from zcnas.registry import create_scorers
from zcnas.scoring import InputBank, ScoringContext
from zcnas.scoring.context import merge_requests

SETS = {
    "default suite": "synflow,naswot,stable",
    "ensemble:zcnas": "meco,stable,jacov,gradsign,az_progressivity,az_trainability",
}
aten = torch.ops.aten
#: interleaved rounds of wall and floor timing (see :func:`measure`)
ROUNDS = 3
CONV, CONV_BWD = aten.convolution.default, aten.convolution_backward.default
MATMUL = {aten.mm.default, aten.bmm.default, aten.addmm.default, aten.baddbmm.default,
          aten._int_mm.default}
RECORDED = {CONV, CONV_BWD, *MATMUL}


def _describe(x):
    if isinstance(x, torch.Tensor):
        layout = "c"
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(
                memory_format=torch.channels_last):
            layout = "cl"
        elif x.dim() == 2 and not x.is_contiguous() and x.T.is_contiguous():
            layout = "t"  # a transposed matrix (NASWOT's c @ c.T)
        return ("T", tuple(x.shape), x.dtype, layout)
    if isinstance(x, list | tuple):
        return tuple(_describe(v) for v in x)
    return x


def _make(d, gen):
    if isinstance(d, tuple) and d and d[0] == "T":
        _, shape, dtype, layout = d
        if layout == "t":
            return _make(("T", shape[::-1], dtype, "c"), gen).T
        t = torch.randn(shape, generator=gen, dtype=torch.float64).to(dtype)
        return t.to(memory_format=torch.channels_last) if layout == "cl" else t
    if isinstance(d, tuple):
        return [_make(v, gen) for v in d]
    return d


def _op(name: str, overload: str = "default"):
    """An aten overload, or None where this torch has no such op."""
    packet = getattr(aten, name, None)
    return getattr(packet, overload, None) if packet is not None else None


#: the classes of the ops outside the floor, timed where they run (see :class:`Recorder`)
REST = (
    ("batch norm", {_op(n) for n in (
        "native_batch_norm", "native_batch_norm_backward", "_native_batch_norm_legit",
        "_native_batch_norm_legit_functional", "_batch_norm_with_update",
        "batch_norm_backward")} - {None}),
    ("ReLU", {_op("relu"), _op("relu_"), _op("threshold_backward")} - {None}),
)
SUMS = "sums (node sums, gradient accumulation)"
_ADDS = {_op("add", "Tensor"), _op("add_", "Tensor")}
#: ops that move no data (every overload): allocations, and views and in-place views torch
#: does not mark as views
NO_DATA = frozenset({
    "empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "_unsafe_view",
    "t_", "transpose_", "swapdims_", "swapaxes_", "squeeze_", "unsqueeze_", "as_strided_",
    "detach_", "resize_", "set_"})
#: in-place ops that write ``self`` without reading it (every overload)
WRITE_ONLY_SELF = frozenset({"copy_", "fill_", "zero_", "uniform_", "normal_", "random_"})
POOL_DIVISION = "pooling's division (by the tap counts)"
FLOOR_CALLS = "the floor's calls (convolutions, matmuls)"
OTHER = "other tensor ops"


def rest_class(func, args) -> str:
    for name, funcs in REST:
        if func in funcs:
            return name
    if func in _ADDS and len(args) >= 2 and all(isinstance(a, torch.Tensor) for a in args[:2]) \
            and args[0].shape == args[1].shape and args[0].numel() > 1:
        return SUMS  # two whole tensors (not ``x + eps``)
    if func is aten.div.Tensor and len(args) == 2 and all(
            isinstance(a, torch.Tensor) for a in args) and _is_pool_division(
            [list(args[0].shape), list(args[1].shape)]):
        return POOL_DIVISION
    return OTHER


def nbytes(obj) -> int:
    """Bytes of every tensor in ``obj`` (nested lists and tuples), each once: its elements, or
    the memory under it where that is less (an expanded tensor); none on the meta device."""
    seen: set = set()

    def count(x) -> int:
        if isinstance(x, list | tuple):
            return sum(count(v) for v in x)
        if not isinstance(x, torch.Tensor) or x.device.type == "meta":
            return 0
        size = x.numel() * x.element_size()
        if x.layout is not torch.strided or not size:  # sparse: no storage to look under
            return size
        key = (x.data_ptr(), tuple(x.shape), x.stride(), x.dtype)
        if key in seen:  # x + x reads x once
            return 0
        seen.add(key)
        return min(size, x.untyped_storage().nbytes())

    return count(obj)


def _packet(func) -> str:
    return func.overloadpacket.__name__


def moved_bytes(func, args, kwargs, out) -> int:
    """The bytes an op moves, each tensor counted once (:func:`nbytes`): every tensor
    argument it reads and every result (an in-place op's ``self`` is read and written, also
    when the op returns nothing; an ``out=`` tensor and the ``self`` of ``copy_``/``fill_``/
    ``zero_`` are only written); none for views and allocations. Ops that read a tensor twice
    (batch norm's statistics, then its normalisation) move more."""
    if getattr(func, "is_view", False) or _packet(func) in NO_DATA:
        return 0
    reads, writes = [], []
    for i, arg in enumerate(func._schema.arguments):
        value = args[i] if i < len(args) else kwargs.get(arg.name)
        info = arg.alias_info
        written = info is not None and info.is_write
        if written and out is None:
            writes.append(value)  # an in-place op that returns nothing (a _foreach_ op)
        if written and (arg.kwarg_only or _packet(func) in WRITE_ONLY_SELF):
            continue  # written, not read: the result counts it
        reads.append(value)
    return nbytes(reads) + nbytes(out if out is not None else writes)


class Recorder(TorchDispatchMode):
    """Counts every recorded aten call by its full signature, and times it where it runs.

    With ``rest=True`` it times every op instead, by class: the recorded calls as
    :data:`FLOOR_CALLS`, the others by :func:`rest_class`, each with the bytes it moves
    (:func:`moved_bytes`). Timing every op slows the run (the mode's own cost lies between
    the ops), so the two are separate runs.
    """

    def __init__(self, rest: bool = False) -> None:
        super().__init__()
        self.calls: Counter = Counter()
        self.in_place: defaultdict = defaultdict(float)
        self.time_rest = rest
        self.rest: defaultdict = defaultdict(lambda: [0, 0.0, 0])  # class -> calls, s, bytes
        self.other: defaultdict = defaultdict(lambda: [0, 0.0])  # OTHER's ops -> calls, s

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if not self.time_rest and func not in RECORDED:
            return func(*args, **kwargs)
        start = time.perf_counter()
        out = func(*args, **kwargs)
        elapsed = time.perf_counter() - start
        if not self.time_rest:
            key = (func, _describe(tuple(args)))
            self.calls[key] += 1
            self.in_place[key] += elapsed
            return out
        cls = FLOOR_CALLS if func in RECORDED else rest_class(func, args)
        if cls == OTHER:
            op = self.other[str(func)]
            op[0] += 1
            op[1] += elapsed
        entry = self.rest[cls]
        entry[0] += 1
        entry[1] += elapsed
        entry[2] += moved_bytes(func, args, kwargs, out)
        return out


def timing_cost(loops: int = 2000) -> float:
    """Seconds the every-op :class:`Recorder` adds to one op (its dispatch into Python, the
    clock, the class and byte count), best of 3 loops of a small two-tensor add."""
    a, b = torch.zeros(4), torch.ones(4)
    best = []
    for mode in (contextlib.nullcontext, lambda: Recorder(rest=True)):
        t = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            with mode():
                for _ in range(loops):
                    torch.add(a, b)
            t = min(t, time.perf_counter() - start)
        best.append(t / loops)
    return max(0.0, best[1] - best[0])


def copy_rate(size: int, reps: int, total: int | None = None) -> float:
    """Bytes per second of ``size``-byte float32 copies (read + write), best of ``reps``.

    ``total=None``: one buffer copied again and again (warm: it stays in cache once it fits).
    ``total``: a cycle of copies from ``total`` bytes of distinct sources into as many bytes
    of distinct destinations, so each copy reads and writes memory the cycle's other copies
    have pushed out of cache (cold), as many of a network pass's tensors are when the next op
    reads them.
    """
    pairs = [(torch.randn(size // 4), torch.empty(size // 4))
             for _ in range(max(1, (total or size) // size))]
    for src, dst in pairs:  # touch every page before timing
        dst.copy_(src)
    best = float("inf")
    for _ in range(reps + 1):
        start = time.perf_counter()
        for src, dst in pairs:
            dst.copy_(src)
        best = min(best, time.perf_counter() - start)
    return 2 * size * len(pairs) / best


def flops(func, sig) -> float:
    """FLOPs of one call (multiply-adds x 2; an int8 product's operations count alike)."""
    shapes = [a[1] if isinstance(a, tuple) and a and a[0] == "T" else None for a in sig]
    if func is CONV:
        x, w = shapes[0], shapes[1]
        n = x[0]
        out = _conv_out(x, w, sig[3], sig[4], sig[5])
        return 2.0 * n * w[0] * out * w[1] * w[2] * w[3]
    if func is CONV_BWD:
        gout, w = shapes[0], shapes[2]
        mask = sig[10]
        per = 2.0 * gout[0] * gout[1] * gout[2] * gout[3] * w[1] * w[2] * w[3]
        return per * (int(mask[0]) + int(mask[1]))
    if func in (aten.mm.default, aten.addmm.default, aten._int_mm.default):
        a, b = (shapes[1], shapes[2]) if func is aten.addmm.default else (shapes[0], shapes[1])
        return 2.0 * a[0] * a[1] * b[1]
    a, b = (shapes[0], shapes[1]) if func is aten.bmm.default else (shapes[1], shapes[2])
    return 2.0 * a[0] * a[1] * a[2] * b[2]


def _conv_out(x, w, stride, padding, dilation) -> int:
    ho = (x[2] + 2 * padding[0] - dilation[0] * (w[2] - 1) - 1) // stride[0] + 1
    wo = (x[3] + 2 * padding[1] - dilation[1] * (w[3] - 1) - 1) // stride[1] + 1
    return ho * wo


def _is_pool(func, sig) -> bool:
    """A depthwise 3x3 ones-kernel convolution: zcnas's avg_pool_3x3."""
    w = sig[1][1] if func is CONV else sig[2][1]
    groups = sig[8] if func is CONV else sig[9]
    return w[1] == 1 and groups == w[0] and w[2:] == (3, 3) and groups > 1


def best_time(func, sig, reps: int) -> float:
    gen = torch.Generator().manual_seed(0)
    args = [_make(a, gen) for a in sig]
    func(*args)
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        func(*args)
        best = min(best, time.perf_counter() - start)
    return best


def score_all(archs, proxies, bank) -> None:
    for arch in archs:
        ctx = ScoringContext(arch, inputs=bank, requests=[r for p in proxies for r in p.requests()])
        for p in proxies:
            p.score(ctx)


SMALL_BATCH = 2


def small_batches(proxies) -> list:
    """The same proxies with every batch at most :data:`SMALL_BATCH` images: the same
    networks, ops, Python and autograd bookkeeping, with kernels nearly free. Refused when
    the smaller batches would merge passes the proxies run apart (fewer passes: the bound
    would undercount) or a proxy keeps its batch."""
    small = [with_batch_at_most(p, SMALL_BATCH) for p in proxies]
    if any(s is p and p.batch_size > SMALL_BATCH for s, p in zip(small, proxies, strict=True)):
        raise ValueError("a proxy refuses a batch of at most "
                         f"{SMALL_BATCH}: no small-batch bound for this set")
    if len(merge_requests(r for p in small for r in p.requests())) != len(
            merge_requests(r for p in proxies for r in p.requests())):
        raise ValueError(f"at {SMALL_BATCH} images the set's shared passes merge: no "
                         "small-batch bound for this set")
    return small


def _is_pool_division(shapes) -> bool:
    """The pooling's division by its (1, 1, H, W) tap-count map."""
    return (len(shapes) >= 2 and len(shapes[0]) == 4 and len(shapes[1]) == 4
            and shapes[1][:2] == [1, 1] and shapes[1][2:] == shapes[0][2:])


def measure(name: str, spec: str, archs, bank, reps: int, peak: float,
            copy: tuple[float, float],
            rounds: int = ROUNDS) -> list[str]:
    """Wall and floor of one proxy set, measured in ``rounds`` interleaved rounds (see the
    module docstring): each round times the scoring once, then every distinct call ``reps``
    times; the wall is the best round, each call's time its best over every round."""
    proxies = create_scorers(spec)
    score_all(archs[:1], proxies, bank)  # warm-up: imports, first allocations
    rec = Recorder()
    with rec:
        score_all(archs, proxies, bank)
    calls = list(rec.calls.items())
    n = len(archs)
    every = Recorder(rest=True)
    start = time.perf_counter()
    with every:
        score_all(archs, proxies, bank)
    every_wall = (time.perf_counter() - start) / n
    small = small_batches(proxies)
    score_all(archs[:1], small, bank)
    walls, round_floors, small_walls = [], [], []
    best = [float("inf")] * len(calls)
    for _ in range(rounds):
        start = time.perf_counter()
        score_all(archs, proxies, bank)
        walls.append((time.perf_counter() - start) / n)
        start = time.perf_counter()
        score_all(archs, small, bank)
        small_walls.append((time.perf_counter() - start) / n)
        this = 0.0
        for i, ((func, sig), count) in enumerate(calls):
            t = best_time(func, sig, reps)
            best[i] = min(best[i], t)
            this += t * count
        round_floors.append(this / n)
    wall = min(walls)
    floor = peak_floor = conv_floor = pool_floor = mm_floor = 0.0
    for ((func, sig), count), b in zip(calls, best, strict=True):
        t = b * count
        f = flops(func, sig) * count
        floor += t
        peak_floor += f / peak
        if func in MATMUL:
            mm_floor += t
        elif _is_pool(func, sig):
            pool_floor += t
        else:
            conv_floor += t
    floor, peak_floor = floor / n, peak_floor / n
    in_place = sum(rec.in_place.values()) / n
    ratios = " ".join(f"{w / f:.2f}" for w, f in zip(walls, round_floors, strict=True))
    lines = [
        f"## {name}: {spec}",
        "",
        f"{'':44s}{'s/cell':>9s}{'wall / it':>11s}",
        f"{f'wall (one thread, best of {rounds} rounds)':44s}{wall:9.3f}{1:11.2f}",
        f"{'kernel floor (own shapes, best of reps)':44s}{floor:9.3f}{wall / floor:11.2f}",
        f"{'  wall / floor of each round':44s}{ratios:>20s}",
        f"{'  of it: convolutions':44s}{conv_floor / n:9.3f}",
        f"{'  of it: pooling (depthwise 3x3)':44s}{pool_floor / n:9.3f}",
        f"{'  of it: matmuls':44s}{mm_floor / n:9.3f}",
        f"{'  the same calls timed where they ran':44s}{in_place:9.3f}"
        f"   ({in_place / floor:.2f}x the floor)",
        f"{'  the rest of the wall (BN, ReLU, sums, ...)':44s}{wall - in_place:9.3f}"
        f"   ({(wall - in_place) / floor:.2f}x the floor)",
        f"{'peak-GEMM floor (FLOPs / 2048^3 rate)':44s}{peak_floor:9.3f}{wall / peak_floor:11.2f}",
        f"{f'the same proxies at <= {SMALL_BATCH} images per batch':44s}{min(small_walls):9.3f}"
        f"{wall / min(small_walls):11.2f}",
        "  (what does not grow with the batch: Python, autograd, network builds, per-weight",
        "  statistics, and the kernels at that batch: a bound from above on Python and autograd)",
        f"{'distinct kernel calls re-timed':44s}{len(rec.calls):9d}",
        "",
    ]
    return lines + rest_lines(every, n, every_wall, in_place, floor, copy, timing_cost())


def rest_lines(rec: Recorder, n: int, wall: float, in_place: float, floor: float,
               copy: tuple[float, float], per_op: float = 0.0) -> list[str]:
    """Where a run's wall goes, every op timed where it ran (``rec``, a ``rest=True``
    recorder, and that run's wall per cell), with the bytes each class moved; and what the ops
    outside the floor would cost at the machine's copy rates (``copy``: warm and cold, see
    :func:`copy_rate`), added to the floor's calls as they ran in the recording run
    (``in_place``, timed alone there). ``per_op``: what the timing adds to each op
    (:func:`timing_cost`), taken out of the time outside the ops."""
    warm, cold = copy
    ops = sum(t for _, t, _ in rec.rest.values()) / n
    moved = sum(b for cls, (_, _, b) in rec.rest.items() if cls != FLOOR_CALLS) / n
    lines = [
        f"every op timed where it ran, in a run of its own (wall {wall:.3f} s/cell; the timing "
        "slows it);",
        "GB = each tensor an op reads or writes, once (a lower bound: batch norm reads its inputs "
        "more than once);",
        f"the machine copies float32 at {warm / 1e9:.1f} GB/s warm (one thread, the faster of "
        "2 and 8 MB buffers, in cache)",
        f"and {cold / 1e9:.1f} GB/s cold (64 pairs of 8 MB buffers, 512 MB read and 512 MB "
        "written, out of cache); 'x cold' = s/cell over",
        "the class's GB at the cold rate:",
        "",
        f"{'op class':44s}{'s/cell':>9s}{'share':>7s}{'calls':>7s}{'GB/cell':>9s}{'GB/s':>7s}"
        f"{'x cold':>8s}",
    ]
    for cls, (calls, sec, byts) in sorted(rec.rest.items(), key=lambda kv: -kv[1][1]):
        rate = gb = slow = ""
        if cls != FLOOR_CALLS:
            rate = f"{byts / max(sec, 1e-12) / 1e9:7.1f}"
            gb = f"{byts / n / 1e9:9.2f}"
            slow = f"{sec * cold / byts:8.2f}" if byts > 0 else ""
        lines.append(f"{cls:44s}{sec / n:9.3f}{sec / n / wall:7.1%}{calls / n:7.0f}{gb:>9s}"
                     f"{rate:>7s}{slow:>8s}")
        if cls == OTHER:  # a mix: name its heaviest ops
            for op, (op_calls, op_sec) in sorted(rec.other.items(), key=lambda kv: -kv[1][1])[:3]:
                lines.append(f"{f'  of it {op}':44s}{op_sec / n:9.3f}{'':7s}{op_calls / n:7.0f}")
    outside = wall - ops
    room = 1.3 * floor - in_place
    calls = sum(c for c, _, _ in rec.rest.values()) / n
    timing = calls * per_op
    lines += [
        f"{'outside any op (Python, autograd, timing)':44s}{outside:9.3f}"
        f"{outside / wall:7.1%}",
        f"{f'  of it the timing ({calls:.0f} ops x {per_op * 1e6:.0f} us)':44s}{timing:9.3f}",
        f"{'  so Python and the autograd engine (est.)':44s}{outside - timing:9.3f}"
        f"{(outside - timing) / (wall - timing):7.1%}",
        "",
        "the ops outside the floor's calls, their bytes at a copy rate, beside the floor's "
        f"calls as they ran ({in_place:.3f}):",
    ]
    for label, rate in (("warm", warm), ("cold", cold)):
        bound = moved / rate
        lines.append(f"  {label}: {bound:.3f} s/cell, so {(in_place + bound) / floor:.2f}x the "
                     "floor with Python free")
    lines.append("the least that separate (unfused) kernels could reach: warm if every tensor "
                 "were in cache, cold if none.")
    if room <= 0:
        lines.append("The floor's calls as they ran already take 1.3x the floor or more.")
    else:
        lines.append(f"1.3x the floor leaves {room:.3f} s/cell beside the floor's calls: "
                     f"{room * warm / moved:.2f}x the warm copy time, "
                     f"{room * cold / moved:.2f}x the cold." if moved > 0 else
                     f"1.3x the floor leaves {room:.3f} s/cell beside the floor's calls.")
    lines[-1] += " (fused kernels: benchmarks.fusion_probe)"
    return lines + [""]


def pooling_lines(reps: int) -> list[str]:
    from zcnas.models.ops import AvgPool3x3

    ref = torch.nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    ours = AvgPool3x3()
    lines = ["## kernels compared", "",
             "3x3 average pooling, forward + backward, one thread (ms, best of reps):", "",
             f"{'shape':22s}{'layout':>8s}{'AvgPool2d':>11s}{'depthwise':>11s}{'speed-up':>10s}"
             f"{'max |diff|':>12s}"]
    for shape in ((128, 16, 32, 32), (128, 32, 16, 16), (128, 64, 8, 8)):
        for layout in ("c", "cl"):
            x = torch.randn(shape)
            if layout == "cl":
                x = x.to(memory_format=torch.channels_last)
            x.requires_grad_(True)
            times = []
            for f in (ref, ours):
                best = float("inf")
                for _ in range(reps + 1):
                    start = time.perf_counter()
                    y = f(x)
                    y.backward(torch.ones_like(y))
                    best = min(best, time.perf_counter() - start)
                times.append(best * 1e3)
            with torch.no_grad():
                diff = float((ref(x) - ours(x)).abs().max())
            lines.append(f"{str(shape):22s}{layout:>8s}{times[0]:11.2f}{times[1]:11.2f}"
                         f"{times[0] / times[1]:9.2f}x{diff:12.1e}")
    return lines + [""]


def gradsign_lines(archs, bank) -> list[str]:
    from zcnas_proxies.gradsign import gradsign_score as vmapped
    from zcnas_proxies.gradsign import gradsign_score_batched as batched

    x, y = bank.batches("real", 128, 1)[0]
    x = x.contiguous()
    times = {"vmap": 0.0, "batched": 0.0}
    worst = 0.0
    for arch in archs:
        values = {}
        for name, fn in (("vmap", vmapped), ("batched", batched)):
            net = ScoringContext(arch, inputs=bank).network(affine=False, track=False,
                                                            channels_last=False)
            start = time.perf_counter()
            values[name] = fn(net, x, y)
            times[name] += time.perf_counter() - start
        worst = max(worst, abs(values["batched"] - values["vmap"]) / max(abs(values["vmap"]), 1))
    n = len(archs)
    return ["GradSign per-sample gradients (128 images, one thread, s/cell):", "",
            f"vmap of one sample's gradient (zcnas)     {times['vmap'] / n:7.3f}",
            f"batched pass, per-sample BN (<= 16 img)  {times['batched'] / n:7.3f}   "
            f"({times['vmap'] / times['batched']:.2f}x; scores differ by <= {worst:.1e} relative)",
            ""]


def run(n_archs: int, root, reps: int, seed: int, sets: list[str]) -> str:
    torch.set_num_threads(1)
    archs = sample_archs(n_archs, seed)
    bank = InputBank("cifar10", seed=0, root=root)
    bank.batches("real", 128, 2)
    as_scoring_worker()
    peak = max(matmul_rate(1) for _ in range(3))
    copy = (max(copy_rate(size << 20, 10 * reps) for size in (2, 8)),
            copy_rate(8 << 20, 2, total=512 << 20))
    lines = [
        "# zcnas scoring: wall vs the kernel floor of the suite's own shapes, one thread",
        f"# machine: {cpu_name()}, {os.cpu_count()} cores, "
        f"torch {torch.__version__}; {n_archs} distinct cells (seed {seed}); cifar10 images",
        f"# peak float32 matmul (2048^3, one thread, best of 3): {peak / 1e9:.1f} GFLOP/s",
        "",
    ]
    for name in sets:
        lines += measure(name, SETS[name], archs, bank, reps, peak, copy)
    lines += pooling_lines(reps) + gradsign_lines(archs, bank)
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", type=int, default=10)
    ap.add_argument("--data", default=os.environ.get("ZCNAS_DATA"))
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--sets", default=",".join(SETS),
                    help=f"comma-separated, of: {', '.join(SETS)}")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    sets = [s.strip() for s in args.sets.split(",")]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        ap.error(f"unknown set {unknown[0]!r}; valid: {', '.join(SETS)}")
    report = run(args.archs, args.data, args.reps, args.seed, sets)
    emit(report, args.out)


if __name__ == "__main__":
    main()
