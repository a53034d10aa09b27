"""The weight-sharing fidelity: a trained topology-space supernet scores cells.

:class:`SupernetTrainer` owns one :class:`~zcnas.models.supernet.Supernet`, its optimiser and
its images, and does the four things the supernet-based searches need:

* ``train``: uniform single-path training (SPOS), paths drawn de-isomorphically; with a
  ``pool`` (the current population) only paths from the pool's classes are trained
  (fine-tuning to the search region, one-shot NAS with supernet fine-tuning);
* ``accuracy``: a cell's held-out accuracy with inherited weights, after re-estimating every
  BN's statistics for that path on fixed training batches;
* ``prune``: drop from each edge the ops no elite uses (G-EvoNAS);
* ``gradient_search``: relax the elites' op table into continuous edge-op weights, take a few
  gradient steps on them with the supernet's weights frozen (first-order DARTS on held-out
  batches), and return the best genotypes of the result (GENAS's gradient-guided local
  search).

:class:`SupernetEvaluator` puts a trainer behind the :class:`~zcnas.fidelity.base.Evaluator`
contract for the fidelity ladder: it warms the supernet up on first use, fine-tunes it on the
cells it is asked about, prunes it by its elites and offers gradient-found candidates to the
searcher, all on a schedule counted in evaluations; every second of that work is charged to
the evaluation that triggered it.

The supernet recipe is NAS-Bench-201's for its weight-sharing baselines (RSPS / SPOS): SGD,
momentum 0.9, Nesterov, lr 0.025 cosine to 0.001, weight decay 5e-4, batch 64.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from zcnas.datasets import get_dataset
from zcnas.errors import CheckpointError, OutsideSupernetError, UserError
from zcnas.fidelity.base import Evaluation, Evaluator
from zcnas.fidelity.train import (
    DeadlineExceeded,
    Recipe,
    accuracy,
    epoch_bar,
    read_state,
    run_epoch,
    save_state,
    stop_at,
)
from zcnas.spaces import nats_tss

SUPERNET_FORMAT = "zcnas-supernet-1"
POOL_FORMAT = "zcnas-supernet-pool-1"
#: member k of a pool is seeded ``seed + MEMBER_SEED_STRIDE * k`` (member 0: the run's seed)
MEMBER_SEED_STRIDE = 100_003


@dataclass(frozen=True)
class SupernetRecipe(Recipe):
    """Supernet optimisation (NAS-Bench-201's weight-sharing config: the NATS recipe with lr
    0.025 to 0.001 and batch 64; ``epochs`` is unused, schedules are given per call) and
    evaluation: ``recalib_batches`` training batches re-estimate BN statistics per path.
    ``channels`` / ``cells``: the supernet's width and cells per stage (NAS-Bench-201's 16 and
    5 by default)."""

    lr: float = 0.025
    min_lr: float = 0.001
    batch_size: int = 64
    recalib_batches: int = 4
    channels: int = 16
    cells: int = 5


def _cosine(lr0: float, lr1: float, t: float) -> float:
    return lr1 + (lr0 - lr1) * (1 + math.cos(math.pi * min(max(t, 0.0), 1.0))) / 2


class _GradientGuided:
    """GENAS's gradient-guided searches on the supernet(s) of :meth:`_nets` (the first one
    resolves cells: every supernet of a pool holds the same ops)."""

    net: Any
    data: Any
    recipe: SupernetRecipe
    device: str
    eval_limit: int | None

    def _nets(self) -> list[Any]:
        return [self.net]

    def gradient_search(self, elites: Sequence[str], *, steps: int = 5, lr: float = 0.1,
                        candidates: int = 4, deadline: float | None = None) -> list[str]:
        """GENAS-style gradient-guided local search around ``elites``.

        The elites' op table (the ops some elite uses on each edge) becomes a relaxation
        whose logits start at log(share of elites using the op); ``steps`` Adam steps on
        held-out cross-entropy move them with the supernet frozen; the ``candidates`` best
        genotypes of the result (highest sum of log-softmax weights, the argmax first) are
        returned as arch strings, elites excluded. ``deadline`` (a ``time.perf_counter()``
        value): stop at the first step past it and raise :class:`DeadlineExceeded`.
        """
        from zcnas.models.supernet import NUM_OPS, OPS

        cells = [self.net.resolve(a) for a in elites]
        if not cells:
            return []
        table = np.zeros((nats_tss.NUM_EDGES, NUM_OPS))
        for c in cells:
            for e, op in enumerate(c.ops):
                table[e, OPS.index(op)] += 1
        init = np.where(table > 0, np.log(np.maximum(table, 1e-9) / len(cells)), 0.0)
        alpha = self._relax(init, table > 0, steps=steps, lr=lr, deadline=deadline)
        mask = torch.tensor(table > 0)
        logp = torch.log_softmax(alpha.masked_fill(~mask, -math.inf), dim=1).numpy()
        seen = {nats_tss.canonical_key(c) for c in cells}
        out: list[str] = []
        for ops in _best_combinations(logp, 5 ** nats_tss.NUM_EDGES):
            cell = nats_tss.Cell(tuple(OPS[k] for k in ops))
            key = nats_tss.canonical_key(cell)
            if key in seen:
                continue
            seen.add(key)
            out.append(nats_tss.format_arch(cell))
            if len(out) >= candidates:
                break
        return out

    def refine(self, arch: Any, *, steps: int = 5, lr: float = 0.1,
               confidence: float = 0.8, deadline: float | None = None) -> str:
        """GENAS's differentiable local search of one candidate: its edge x op table is
        relaxed (probability ``confidence`` on its op, the rest shared by the other ops still
        in the supernet), ``steps`` Adam steps on held-out cross-entropy move the relaxation
        with the supernet frozen, and the argmax of each edge is taken back (ties: the
        candidate's own op). Returns an arch string (possibly the candidate itself)."""
        from zcnas.models.supernet import NUM_OPS, OPS

        cell = self.net.resolve(arch)
        allowed = self.net.allowed.copy()
        init = np.zeros((nats_tss.NUM_EDGES, NUM_OPS))
        for e, op in enumerate(cell.ops):
            k, others = OPS.index(op), max(int(allowed[e].sum()) - 1, 1)
            init[e] = np.log((1 - confidence) / others)
            init[e, k] = np.log(confidence)
        alpha = self._relax(init, allowed, steps=steps, lr=lr, deadline=deadline)
        alpha[~torch.tensor(allowed)] = -math.inf
        own = torch.tensor([OPS.index(op) for op in cell.ops])
        best = alpha.argmax(1)
        keep = alpha.gather(1, own[:, None])[:, 0] >= alpha.max(1).values
        ops = torch.where(keep, own, best)
        return nats_tss.format_arch(nats_tss.Cell(tuple(OPS[int(k)] for k in ops)))

    def _relax(self, init: np.ndarray, allowed: np.ndarray, *, steps: int, lr: float,
               deadline: float | None) -> torch.Tensor:
        """Adam on a (6, 5) table of logits (the ops ``allowed`` on each edge) for ``steps``
        held-out batches, the supernets' weights frozen (first-order DARTS; with several
        supernets, on the mean of their losses); returns the logits, on the CPU.
        ``deadline``: :class:`DeadlineExceeded` at the first step past it."""
        nets = self._nets()
        mask = torch.tensor(allowed, device=self.device)
        alpha = torch.tensor(init, dtype=torch.float32, device=self.device, requires_grad=True)
        opt = torch.optim.Adam([alpha], lr=lr, betas=(0.5, 0.999))
        params = [p for net in nets for p in net.parameters()]
        frozen = [p.requires_grad for p in params]
        for p in params:
            p.requires_grad_(False)
        saved_allowed = [net.allowed for net in nets]
        for net, was in zip(nets, saved_allowed, strict=True):
            net.allowed = was & allowed
            net.train()
        batches = list(itertools.islice(self.data.valid_batches(
            self.recipe.batch_size, device=self.device, limit=self.eval_limit), steps))
        stop = stop_at(deadline)
        try:
            for i in range(steps):
                if stop is not None:
                    stop(i)
                x, y = batches[i % len(batches)]
                w = torch.softmax(alpha.masked_fill(~mask, -math.inf), dim=1)
                loss = sum(torch.nn.functional.cross_entropy(net(x, weights=w), y)
                           for net in nets) / len(nets)
                opt.zero_grad()
                loss.backward()
                opt.step()
        finally:
            for net, was in zip(nets, saved_allowed, strict=True):
                net.allowed = was
            for p, f in zip(params, frozen, strict=True):
                p.requires_grad_(f)
        return alpha.detach().cpu()


class SupernetTrainer(_GradientGuided):
    """A supernet with its optimiser, data and RNG (see the module docstring).

    ``data`` is a :class:`~zcnas.data.training.TrainingData` (or it is loaded from ``root``
    with ``valid`` held out and the first ``limit`` training images); ``eval_limit`` caps the
    held-out images each accuracy reads.
    """

    def __init__(self, dataset: str = "cifar10", *, data: Any = None, root: Any = None,
                 valid: int | float = 0.1, limit: int | None = None, seed: int = 0,
                 device: str = "cpu", recipe: SupernetRecipe = SupernetRecipe(),
                 eval_limit: int | None = None) -> None:
        from zcnas.data.training import TrainingData
        from zcnas.models.supernet import Supernet

        self.data = data if data is not None else TrainingData.load(
            dataset, root, valid=valid, limit=limit)
        if self.data.spec.name != get_dataset(dataset).name:
            raise UserError(f"the supernet is for {get_dataset(dataset).name} but its images are "
                            f"{self.data.spec.name}")
        self.dataset = self.data.spec.name
        self.seed = seed
        self.device = device
        self.recipe = recipe
        self.eval_limit = eval_limit
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.net = Supernet(self.dataset, channels=recipe.channels,
                                cells=recipe.cells).to(device)
        self.opt = recipe.optimizer(self.net.parameters())
        self.rng = np.random.default_rng(seed)
        self.epochs_done = 0.0  # every epoch trained, fine-tuning included
        self.schedule_done = 0.0  # position on the uniform training schedule
        self.schedule_total: int | None = None
        #: Per-epoch progress bars (None: shown; a search's supernet stage turns them off).
        self.bar: bool | None = None
        self.history: list[dict[str, Any]] = []
        # the same recalibration batches for every cell and every seed: a fixed protocol
        self._recalib = self.data.fixed_train_batches(recipe.recalib_batches, recipe.batch_size,
                                                      seed=0, device=device)
        self._adapt: list[tuple[torch.Tensor, torch.Tensor]] = []

    # --- training ----------------------------------------------------------------------------

    def steps_per_epoch(self) -> int:
        return self.data.steps_per_epoch(self.recipe.batch_size)

    def train(self, epochs: float = 1.0, *, pool: Iterable[str] | None = None,
              lr: tuple[float, float] | Callable[[float], float] | None = None,
              max_steps: int | None = None, label: str = "train",
              deadline: float | None = None) -> dict[str, Any]:
        """Train ``epochs`` epochs (fractions allowed) of single paths, one per batch, drawn
        de-isomorphically from the supernet (or from ``pool``'s cells). ``lr``: (start, end)
        of a cosine over this call (default: the recipe's lr to its min_lr), or a function of
        the fraction of this call done. ``deadline`` (a ``time.perf_counter()`` value):
        stop at the first step past it and raise :class:`DeadlineExceeded`."""
        from zcnas.models.supernet import PathSampler

        sampler = PathSampler(self.net, pool)
        steps = max(1, round(epochs * self.steps_per_epoch()))
        if max_steps is not None:
            steps = min(steps, max_steps)
        if callable(lr):
            lr_of = lr
        else:
            lr0, lr1 = lr if lr is not None else (self.recipe.lr, self.recipe.min_lr)

            def lr_of(u: float) -> float:
                return _cosine(lr0, lr1, u)
        path: list[nats_tss.Cell] = []

        def draw(_i: int) -> None:
            if deadline is not None and time.perf_counter() > deadline:
                raise DeadlineExceeded(label)
            path[:] = [sampler.sample(self.rng)]

        t0 = time.perf_counter()
        self.net.train()
        done, loss, acc = 0, 0.0, 0.0
        shown = epoch_bar(steps, self.bar, self.epochs_done + epochs, self.schedule_total or
                          self.epochs_done + epochs, label=label)
        with shown:
            while done < steps:  # as many passes over the images as the steps need
                stats = run_epoch(lambda x: self.net(x, path[0]), self.opt,
                                  self.data.epoch(self.rng, self.recipe.batch_size,
                                                  device=self.device),
                                  lr=lambda i, d=done: lr_of((d + i) / steps),
                                  max_steps=steps - done, before_step=draw, after_step=shown)
                w = stats["steps"] / max(done + stats["steps"], 1)
                loss += w * (stats["train_loss"] - loss)
                acc += w * (stats["train_acc"] - acc)
                done += stats["steps"]
        self._sync()
        row = {"what": label, "steps": done, "epochs": done / self.steps_per_epoch(),
               "paths": len(sampler), "train_loss": loss, "train_acc": acc,
               "seconds": time.perf_counter() - t0}
        self.epochs_done += row["epochs"]
        self.history.append(row)
        return row

    def train_schedule(self, total_epochs: int, *, until: float | None = None,
                       checkpoint: str | os.PathLike | None = None, progress=None
                       ) -> list[dict[str, Any]]:
        """Train along one cosine schedule of ``total_epochs`` epochs (recipe lr to min_lr),
        from :attr:`schedule_done` up to ``until`` (default: the end), one epoch at a time;
        after each epoch the supernet is saved to ``checkpoint`` (so an interrupted schedule
        resumes where it stopped: :meth:`load` then call again) and ``progress(row)`` runs.
        Fine-tuning calls of :meth:`train` do not move the schedule's position."""
        if self.schedule_total not in (None, total_epochs):
            raise UserError(f"this supernet follows a {self.schedule_total}-epoch schedule, "
                            f"not {total_epochs}; pass --epochs {self.schedule_total}")
        self.schedule_total = total_epochs
        r = self.recipe
        end = float(total_epochs if until is None else min(until, total_epochs))
        rows = []
        while self.schedule_done < end - 1e-9:
            e0 = self.schedule_done
            e1 = min(end, math.floor(e0 + 1e-9) + 1.0)

            def lr(u: float, e0=e0, e1=e1) -> float:  # the global cosine at this point
                return _cosine(r.lr, r.min_lr, (e0 + u * (e1 - e0)) / total_epochs)

            rows.append(self.train(e1 - e0, lr=lr, label=f"epoch {e1:g}/{total_epochs}"))
            self.schedule_done = e1
            if checkpoint is not None:
                self.save(checkpoint)
            if progress is not None:
                progress(rows[-1])
        return rows

    def _sync(self) -> None:
        if str(self.device).startswith("cuda"):
            torch.cuda.synchronize()

    # --- evaluation --------------------------------------------------------------------------

    def accuracy(self, arch: Any, *, adapt_steps: int = 0,
                 adapt_lr: float = 0.01) -> tuple[float, float]:
        """(held-out accuracy %, loss) of ``arch`` with the supernet's weights, BN statistics
        re-estimated for that path. Raises :class:`OutsideSupernetError` for a cell that
        needs a pruned op (and has no isomorph inside).

        ``adapt_steps`` > 0: the path is first decoupled from the others (GENAS): its
        inherited weights take that many SGD steps of their own (lr ``adapt_lr``, the
        recipe's momentum and weight decay) on fixed training batches, it is scored, and its
        weights are put back, so no other cell ever sees the adaptation."""
        from zcnas.models.supernet import recalibrate_bn

        cell = self.net.resolve(arch)
        saved = None
        if adapt_steps > 0:
            params = self.net.path_parameters(cell)
            saved = [p.detach().clone() for p in params]
            r = self.recipe
            opt = torch.optim.SGD(params, lr=adapt_lr, momentum=r.momentum, nesterov=r.nesterov,
                                  weight_decay=r.weight_decay)
            self.net.train()
            for x, y in self._adapt_batches(adapt_steps):
                loss = torch.nn.functional.cross_entropy(self.net(x, cell), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
        try:
            recalibrate_bn(self.net, self._recalib, lambda x: self.net(x, cell))
            return accuracy(lambda x: self.net(x, cell),
                            self.data.valid_batches(device=self.device, limit=self.eval_limit))
        finally:
            if saved is not None:
                with torch.no_grad():
                    for p, v in zip(params, saved, strict=True):
                        p.copy_(v)
                        p.grad = None

    def _adapt_batches(self, n: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The same ``n`` labelled training batches for every cell (a fixed protocol)."""
        if len(self._adapt) < n:
            self._adapt = self.data.fixed_train_batches(n, self.recipe.batch_size, seed=1,
                                                        device=self.device, labels=True)
        return self._adapt[:n]

    # --- pruning and gradient-guided search ---------------------------------------------------

    def prune(self, elites: Sequence[str], *, label: str = "",
              edges: Iterable[int] | None = None) -> list[tuple[int, str]]:
        removed = self.net.prune(elites, label=label, edges=edges)
        self.history.append({"what": "prune", "elites": len(elites),
                             "removed": [f"{nats_tss.EDGES[e][0]}->{nats_tss.EDGES[e][1]}:{op}"
                                         for e, op in removed],
                             "space": self.net.space_size()})
        return removed

    # --- persistence -------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything :meth:`load_state` needs to continue exactly (weights, optimiser, RNG,
        schedule, history)."""
        return {
            "format": SUPERNET_FORMAT, "dataset": self.dataset,
            "images": self.data.fingerprint, "valid": len(self.data.y_valid),
            "limit": self.data.limit, "recipe": asdict(self.recipe), "seed": self.seed,
            "model": self.net.state_dict(), "optimizer": self.opt.state_dict(),
            "rng": json.dumps(self.rng.bit_generator.state),
            "epochs_done": self.epochs_done, "schedule_done": self.schedule_done,
            "schedule_total": self.schedule_total, "history": json.dumps(self.history)}

    def save(self, path: str | os.PathLike) -> None:
        save_state(path, self.state())

    def load(self, path: str | os.PathLike) -> None:
        """Restore a saved supernet; one-line errors for a missing, unreadable or
        mismatched (other dataset or images) checkpoint."""
        p = Path(path)
        self.load_state(read_supernet(p, self.device), p)

    def load_state(self, state: Mapping[str, Any], p: Path) -> None:
        """Restore :meth:`state` (read from ``p``, named in the errors)."""
        self.check_state(state, p)
        self.net.load_state_dict(state["model"])
        self.opt.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = json.loads(state["rng"])
        self.epochs_done = float(state["epochs_done"])
        self.schedule_done = float(state.get("schedule_done", 0.0))
        self.schedule_total = state.get("schedule_total")
        self.history = json.loads(state["history"])

    def check_state(self, state: Mapping[str, Any], p: Path) -> None:
        """One-line :class:`CheckpointError` when :meth:`state` ``state`` (read from ``p``)
        is of another dataset, other images or another supernet shape."""
        if state["dataset"] != self.dataset:
            raise CheckpointError(f"supernet checkpoint {p} was trained on {state['dataset']}, "
                                  f"not {self.dataset} (dataset mismatch)")
        if state["images"] != self.data.fingerprint:
            raise CheckpointError(f"supernet checkpoint {p} was trained on other images "
                                  f"({state['images']}, now {self.data.fingerprint}); use the "
                                  "same data, held-out size and limit")
        shape = (state["recipe"].get("channels", 16), state["recipe"].get("cells", 5))
        if shape != (self.recipe.channels, self.recipe.cells):
            raise CheckpointError(f"supernet checkpoint {p} has {shape[0]} channels and "
                                  f"{shape[1]} cells per stage, not {self.recipe.channels} and "
                                  f"{self.recipe.cells}")


class SupernetPool(_GradientGuided):
    """Several independently seeded supernets trained and scored alike: a small ensemble of
    supernets against one supernet's seed-to-seed instability at the CPU size
    (results/supernet, four seeds: fused with the zero-cost rank inside the top region, two
    supernets' mean held-out loss beats one supernet at 20-30 epochs and after fine-tuning,
    with a narrower spread at 20 epochs; at 10, 80 and 120 epochs it does not).

    It has the part of :class:`SupernetTrainer`'s interface the search fidelities use
    (``train``, ``accuracy``, ``prune``, ``gradient_search``, ``refine``, ``save``, ``load``
    and the attributes they read), so a ladder stage or a search fitness takes either; a
    schedule (``train_schedule``) is a single supernet's. Member ``k`` is seeded
    ``seed + MEMBER_SEED_STRIDE * k`` (its weights and its path sampling), so member 0 is the
    single supernet of the same seed. ``train``, ``prune`` and the fine-tuning act on every
    member in turn (a deadline can stop a later member part-way after the earlier ones
    finished, as it stops a single supernet part-way; :attr:`epochs_done` is then the least
    any member completed); ``accuracy`` is the members' mean held-out accuracy and mean loss;
    the gradient-guided searches move one relaxation on the mean of the members' losses. One
    checkpoint file holds every member."""

    def __init__(self, dataset: str = "cifar10", *, supernets: int, seed: int = 0,
                 **options: Any) -> None:
        if supernets < 2:
            raise UserError(f"a supernet pool needs at least 2 supernets, got {supernets}")
        first = SupernetTrainer(dataset, seed=seed, **options)
        options["data"] = first.data  # the same images (loaded once)
        self.members = [first] + [
            SupernetTrainer(dataset, seed=seed + MEMBER_SEED_STRIDE * k, **options)
            for k in range(1, supernets)]
        for m in self.members[1:]:  # the same fixed BN-recalibration batches, held once
            m._recalib = first._recalib

    # what a single trainer's users read: the first member's (the same for every member)
    net = property(lambda self: self.members[0].net)
    data = property(lambda self: self.members[0].data)
    recipe = property(lambda self: self.members[0].recipe)
    dataset = property(lambda self: self.members[0].dataset)
    device = property(lambda self: self.members[0].device)
    eval_limit = property(lambda self: self.members[0].eval_limit)
    seed = property(lambda self: self.members[0].seed)
    #: the first member's log (every member logs the same calls)
    history = property(lambda self: self.members[0].history)

    @property
    def epochs_done(self) -> float:
        return min(m.epochs_done for m in self.members)

    @property
    def bar(self) -> bool | None:
        return self.members[0].bar

    @bar.setter
    def bar(self, value: bool | None) -> None:
        for m in self.members:
            m.bar = value

    def _nets(self) -> list[Any]:
        return [m.net for m in self.members]

    def steps_per_epoch(self) -> int:
        return self.members[0].steps_per_epoch()

    def train(self, epochs: float = 1.0, **options: Any) -> dict[str, Any]:
        """Every member trains ``epochs`` (see :meth:`SupernetTrainer.train`); the row sums
        their seconds and averages their training loss and accuracy."""
        rows = [m.train(epochs, **options) for m in self.members]
        out = dict(rows[0])
        out["seconds"] = sum(r["seconds"] for r in rows)
        for key in ("train_loss", "train_acc"):
            out[key] = float(np.mean([r[key] for r in rows]))
        out["supernets"] = len(rows)
        return out

    def accuracy(self, arch: Any, **options: Any) -> tuple[float, float]:
        """The members' mean held-out accuracy and mean loss (see
        :meth:`SupernetTrainer.accuracy`)."""
        pairs = [m.accuracy(arch, **options) for m in self.members]
        return (float(np.mean([a for a, _ in pairs])), float(np.mean([x for _, x in pairs])))

    def prune(self, elites: Sequence[str], **options: Any) -> list[tuple[int, str]]:
        removed = [m.prune(elites, **options) for m in self.members]
        return removed[0]  # the same elites prune the same ops from every member

    def save(self, path: str | os.PathLike) -> None:
        save_state(path, {"format": POOL_FORMAT, "members": [m.state() for m in self.members]})

    def load(self, path: str | os.PathLike) -> None:
        p = Path(path)
        state = read_state(p, POOL_FORMAT, kind="supernet pool", device=self.device,
                           missing="check the path",
                           unreadable="delete it and start the search over")
        if len(state["members"]) != len(self.members):
            raise CheckpointError(f"supernet pool checkpoint {p} holds "
                                  f"{len(state['members'])} supernets, not {len(self.members)}")
        for m, st in zip(self.members, state["members"], strict=True):
            m.check_state(st, p)  # every member checked before any is overwritten
        for m, st in zip(self.members, state["members"], strict=True):
            m.load_state(st, p)


def supernets_label(trainer: Any) -> str:
    """"weight-sharing supernet", or "mean of N weight-sharing supernets" for a pool."""
    if isinstance(trainer, SupernetPool):
        return f"mean of {len(trainer.members)} weight-sharing supernets"
    return "weight-sharing supernet"


def make_supernet(dataset: str = "cifar10", *, supernets: int = 1,
                  **options: Any) -> SupernetTrainer | SupernetPool:
    """One :class:`SupernetTrainer`, or a :class:`SupernetPool` of ``supernets`` of them."""
    if supernets < 1:
        raise UserError(f"supernets must be >= 1, got {supernets}")
    if supernets == 1:
        return SupernetTrainer(dataset, **options)
    return SupernetPool(dataset, supernets=supernets, **options)


def read_supernet(path: str | os.PathLike, device: str = "cpu") -> dict[str, Any]:
    """A supernet checkpoint's contents; one-line :class:`CheckpointError` when it is
    missing, unreadable or not a supernet checkpoint."""
    return read_state(path, SUPERNET_FORMAT, kind="supernet", device=device,
                      missing="train one first (zcnas supernet train) or check the path",
                      unreadable="delete it and train again")


def _best_combinations(logp: np.ndarray, n: int) -> list[tuple[int, ...]]:
    """The ``n`` op choices (one per edge) with the highest total log-probability (finite
    entries only), best first; ties broken by op order."""
    choices = [np.flatnonzero(np.isfinite(row)) for row in logp]
    grids = np.meshgrid(*choices, indexing="ij")
    combos = np.stack([g.ravel() for g in grids], axis=1)
    score = sum(logp[e, combos[:, e]] for e in range(logp.shape[0]))
    order = np.lexsort((*[combos[:, e] for e in range(combos.shape[1] - 1, -1, -1)], -score))
    return [tuple(int(v) for v in combos[i]) for i in order[:n]]


class SupernetEvaluator(Evaluator):
    """The ``supernet`` fidelity of a search ladder.

    On the first evaluation the supernet is trained ``warmup_epochs`` (or loaded from
    ``load``). Then, counted in cells evaluated:

    * every ``finetune_every`` cells it trains ``finetune_epochs`` more, on paths from the
      last ``window`` cells it evaluated (the region the search is in), lr cosine from
      ``finetune_lr`` to the recipe's min;
    * every ``prune_every`` cells it prunes each edge to the ops of its ``elites`` best cells
      (:meth:`elites`; the gradient-guided search around them is a proposer on the
      searcher's side, :class:`zcnas.methods.oneshot.GradientProposer`).

    ``fuse``: the ladder's zero-cost evaluator; the stage's values are then the fusion of both
    ranks (:meth:`relative_values`). The value is the held-out accuracy (``metric="accuracy"``,
    the published choice) or the negative held-out loss (``metric="loss"``: smoother on small
    held-out sets; it ranks cells better in results/supernet). A cell outside the pruned
    supernet (no isomorph inside) gets NaN (ranks last) with ``meta['outside'] = 1``.
    ``checkpoint``: the supernet is saved beside it (``NAME-<n>.pt``, one file per save, the
    search's JSON naming the current one) whenever the search checkpoints, and a resumed
    search reloads it. ``supernets`` > 1: a :class:`SupernetPool` of that many independently
    seeded supernets, a cell's value their mean.
    """

    def __init__(self, *, dataset: str = "cifar10", root: Any = None, seed: int = 0,
                 device: str = "cpu", data: Any = None, valid: int | float = 0.1,
                 limit: int | None = None, eval_limit: int | None = None,
                 recipe: SupernetRecipe = SupernetRecipe(), warmup_epochs: float = 1.0,
                 finetune_every: int = 0, finetune_epochs: float = 0.25,
                 finetune_lr: float = 0.01, window: int = 50, prune_every: int = 0,
                 elites: int = 10, load: Any = None, checkpoint: Any = None,
                 metric: str = "accuracy", fuse: Any = None, supernets: int = 1) -> None:
        if metric not in ("accuracy", "loss"):
            raise UserError(f"unknown supernet metric {metric!r}; use accuracy or loss")
        self.metric = metric
        self.fuse = fuse
        self.relative = fuse is not None
        self.trainer = make_supernet(dataset, supernets=supernets, data=data, root=root,
                                     valid=valid, limit=limit, seed=seed, device=device,
                                     recipe=recipe, eval_limit=eval_limit)
        self.trainer.bar = False
        self.warmup_epochs = warmup_epochs
        self.finetune_every = finetune_every
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.window = window
        self.prune_every = prune_every
        self.n_elites = elites
        self.load = load
        self.checkpoint = Path(checkpoint) if checkpoint is not None else None
        self.name = "supernet"
        self._ready = False
        self._seen: dict[str, tuple[str, float]] = {}  # canonical -> (arch, value), in order
        self._count = 0
        self._saves = 0
        self._population: list[str] = []

    def describe(self) -> str:
        t = self.trainer
        shape = (f" ({t.recipe.channels} channels x {t.recipe.cells} cells per stage)"
                 if (t.recipe.channels, t.recipe.cells) != (16, 5) else "")
        parts = [f"{supernets_label(t)}{shape} on {len(t.data.y_train)} train / "
                 f"{len(t.data.y_valid)} held-out {t.dataset} images, warm-up "
                 f"{self.warmup_epochs:g} epochs, held-out {self.metric}"]
        if self.finetune_every:
            parts.append(f"fine-tune {self.finetune_epochs:g} epochs every "
                         f"{self.finetune_every} cells")
        if self.prune_every:
            parts.append(f"prune by the best {self.n_elites} every {self.prune_every} cells")
        if self.fuse is not None:
            parts.append(f"ranks fused with {self.fuse.name}")
        return ", ".join(parts) + f", {t.device}"

    def _warm_up(self, deadline: float | None = None) -> None:
        if self.load is not None:
            self.trainer.load(self.load)
        elif self.warmup_epochs > 0:
            self.trainer.train(self.warmup_epochs, label="warm-up", deadline=deadline)
        self._ready = True

    def elites(self) -> list[str]:
        """The ``elites`` best cells scored so far (finite values, fused when ``fuse`` is set;
        ties: the earlier)."""
        keys = list(self._seen)
        values = self.relative_values(keys) if self.fuse is not None \
            else [self._seen[k][1] for k in keys]
        pairs = enumerate(zip(keys, values, strict=True))
        ranked = sorted(((v, i, self._seen[k][0]) for i, (k, v) in pairs
                         if math.isfinite(v) and math.isfinite(self._seen[k][1])),
                        key=lambda t: (-t[0], t[1]))
        return [a for _, _, a in ranked[: self.n_elites]]

    def relative_values(self, keys: Sequence[str]) -> list[float]:
        """With ``fuse`` (the ladder's zero-cost stage, which scored every cell promoted
        here): the AZ-NAS fusion of the supernet's rank and the zero-cost rank among the cells
        of this stage (sum of log rank fractions; a cell outside the supernet ranks last)."""
        from zcnas.fidelity.supernet_fitness import log_rank_fractions

        if not keys:
            return []
        raw = np.array([self._seen[k][1] for k in keys], dtype=np.float64)
        zc = np.array(self.fuse.current_values(keys), dtype=np.float64)
        out = log_rank_fractions(raw) + log_rank_fractions(zc)
        return np.where(np.isfinite(raw), out, np.nan).tolist()

    def _due(self, every: int, before: int) -> bool:
        return every > 0 and self._count // every > before // every

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        """Score ``archs``; each is charged the wall time from the end of the previous one
        (so the warm-up goes to the first cell and upkeep to the cell that triggered it).
        With :attr:`time_limit` set (the ladder sets it to what is left), work that runs past
        it stops at the next training step and the cell being scored comes back killed, its
        cost the time it took."""
        start = mark = time.perf_counter()
        deadline = None if self.time_limit is None else start + self.time_limit
        out: list[Evaluation] = []
        try:
            if not self._ready:
                self._warm_up(deadline)
            for arch in archs:
                canonical = nats_tss.canonical_key(arch)
                meta: dict[str, Any] = {}
                try:
                    acc, loss = self.trainer.accuracy(arch)
                    meta["accuracy"], meta["loss"] = acc, loss
                    value = acc if self.metric == "accuracy" else -loss
                except OutsideSupernetError:
                    value, meta["outside"] = math.nan, 1.0
                self._seen[canonical] = (arch, value)
                before, self._count = self._count, self._count + 1
                self._maintain(before, deadline)
                now = time.perf_counter()
                out.append(Evaluation(arch, canonical, self.name, value, now - mark, meta))
                mark = now
        except DeadlineExceeded:
            arch = archs[len(out)]
            out.append(Evaluation(arch, nats_tss.canonical_key(arch), self.name, math.nan,
                                  time.perf_counter() - mark, {"killed": 1.0}))
        return out

    def _maintain(self, before: int, deadline: float | None) -> None:
        """Fine-tune / prune when due."""
        if self._due(self.finetune_every, before):
            region = self._population or [a for a, _ in list(self._seen.values())[-self.window:]]
            try:
                self.trainer.train(self.finetune_epochs, pool=region,
                                   lr=(self.finetune_lr, self.trainer.recipe.min_lr),
                                   label="fine-tune", deadline=deadline)
            except OutsideSupernetError:
                pass  # nothing of the region is left inside the supernet
        if self._due(self.prune_every, before):
            elites = self.elites()
            if elites:
                self.trainer.prune(elites, label=f"after {self._count} cells")

    def observe_population(self, members: Sequence[str]) -> None:
        """The searcher's current population: fine-tuning trains on its paths (falls back to
        the last ``window`` cells evaluated when the searcher holds no population)."""
        self._population = list(members)

    def admits(self, arch: str) -> bool:
        """Whether ``arch`` (or an isomorph) is inside the pruned supernet; a search refuses
        the others before spending anything on them."""
        return self.trainer.net.holds(arch)

    def forget(self, canonicals: Sequence[str]) -> None:
        for c in canonicals:
            self._seen.pop(c, None)

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"seen": [[c, a, v] for c, (a, v) in self._seen.items()],
                                 "count": self._count, "ready": self._ready,
                                 "saves": self._saves}
        if self.checkpoint is not None and self._ready:
            # a new numbered file per save, named by the search's checkpoint: a run killed
            # between the two writes resumes from the pair the JSON names
            self._saves += 1
            c = self.checkpoint
            path = c.with_name(f"{c.stem}-{self._saves}{c.suffix}")
            self.trainer.save(path)
            c.with_name(f"{c.stem}-{self._saves - 2}{c.suffix}").unlink(missing_ok=True)
            state["checkpoint"], state["saves"] = str(path), self._saves
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self._seen = {c: (a, float(v)) for c, a, v in state.get("seen", [])}
        self._count = int(state.get("count", 0))
        self._saves = int(state.get("saves", 0))
        if state.get("ready") and state.get("checkpoint"):
            self.trainer.load(state["checkpoint"])
            self._ready = True
