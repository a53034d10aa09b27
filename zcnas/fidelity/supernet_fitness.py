"""The fitness of the supernet-based search methods (``genas``, ``gevonas``, ``ftga``).

:class:`SupernetFitness` scores cells with a :class:`~zcnas.fidelity.supernet.SupernetTrainer`
and keeps the supernet in step with the search. Unlike the ``supernet`` rung of a ladder
(:class:`~zcnas.fidelity.supernet.SupernetEvaluator`), it is the searcher's own fitness, so it
must never compare values taken under different supernet weights:

* every value carries the *version* of the weights it was taken with, and the values the
  search sees (:meth:`relative_values`) are those of the current version only; a cell scored
  under older weights is NaN (ranks last) until it is scored again;
* ``upkeep="finetune"`` (FTGA): when the searcher starts a new generation, the supernet is
  fine-tuned on paths of the current population (the search region), the version moves on,
  and every member of the population is scored again with the new weights before any child
  is scored, so parents and children are compared under the same weights;
* ``upkeep="growth"`` (G-EvoNAS): when the searcher moves to the next growth stage, the
  supernet is pruned to the ops the previous stage's elite group uses on the grown edges,
  trained on the next stage's cells inside the pruned space, and the version moves on (a
  stage's cells are all new, so nothing older is compared);
* ``adapt_steps`` (GENAS's decoupled evaluation): each cell's inherited weights take a few
  SGD steps of their own before it is scored, then are put back.

The value is the negative held-out loss (``metric="loss"``, the better ranking on small
held-out sets, results/supernet) or the held-out accuracy. With ``fuse`` (a scorer of the
run's zero-cost fitness), the value the search sees is the AZ-NAS fusion of the supernet's
rank and the zero-cost rank among the current version's cells (sum of log rank fractions),
the rule results/supernet measured. Every second (warm-up, upkeep, re-scoring, zero-cost
scoring) is charged to the evaluation that triggered it.

The supernet is checkpointed with the search: each save writes a new numbered file and the
search's JSON names it, so a run killed between the two writes resumes from a consistent pair.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from zcnas.errors import OutsideSupernetError, UserError
from zcnas.fidelity.base import Evaluation, Evaluator
from zcnas.fidelity.train import DeadlineExceeded
from zcnas.spaces import nats_tss

UPKEEP = ("none", "finetune", "growth")


def log_rank_fractions(values: np.ndarray) -> np.ndarray:
    """log(rank / n) with rank 1 = worst (NaN and -inf rank lowest, tied): one component of
    the AZ-NAS aggregation."""
    from scipy.stats import rankdata

    v = np.where(np.isfinite(values) | (values == np.inf), values, -np.inf)
    return np.log(rankdata(v, method="average") / max(len(v), 1))


class SupernetFitness(Evaluator):
    """See the module docstring. ``searcher``: the run's searcher (its ``generation``,
    ``stage``, ``stage_elites`` and ``members()`` drive the upkeep)."""

    relative = True

    def __init__(self, trainer: Any, *, searcher: Any = None, warmup_epochs: float = 1.0,
                 upkeep: str = "none", adapt_steps: int = 0, adapt_lr: float = 0.01,
                 finetune_epochs: float = 1.0, finetune_lr: float = 0.01,
                 stage_epochs: float = 2.0, metric: str = "loss", fuse: Any = None,
                 checkpoint_dir: Any = None) -> None:
        if upkeep not in UPKEEP:
            raise UserError(f"unknown supernet upkeep {upkeep!r}; valid: {', '.join(UPKEEP)}")
        if metric not in ("accuracy", "loss"):
            raise UserError(f"unknown supernet metric {metric!r}; use accuracy or loss")
        self.trainer = trainer
        self.trainer.bar = False
        self.searcher = searcher
        self.warmup_epochs = warmup_epochs
        self.upkeep = upkeep
        self.adapt_steps = adapt_steps
        self.adapt_lr = adapt_lr
        self.finetune_epochs = finetune_epochs
        self.finetune_lr = finetune_lr
        self.stage_epochs = stage_epochs
        self.metric = metric
        self.fuse = fuse
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.name = "supernet+zc" if fuse is not None else "supernet"
        self.version = 0
        #: canonical -> [arch, value, version, zero-cost value when scored]
        self.values: dict[str, list[Any]] = {}
        self.upkeep_log: list[dict[str, Any]] = []
        self._ready = False
        #: seconds by part (warm-up, upkeep: fine-tuning / pruning and training / re-scoring,
        #: zero-cost, scoring); a killed evaluation's share is not booked here
        self.parts = {"warm-up": 0.0, "upkeep": 0.0, "zero-cost": 0.0, "scoring": 0.0}
        self._seen_generation = 0
        self._seen_stage = 0
        self._saves = 0

    def describe(self) -> str:
        t = self.trainer
        from zcnas.fidelity.supernet import supernets_label

        parts = [f"{supernets_label(t)} ({t.recipe.channels} channels x {t.recipe.cells} "
                 f"cells per stage) on {len(t.data.y_train)} train / {len(t.data.y_valid)} "
                 f"held-out {t.dataset} images, warm-up {self.warmup_epochs:g} epochs, "
                 f"held-out {self.metric}"]
        if self.adapt_steps:
            parts.append(f"each cell adapted {self.adapt_steps} steps of its own")
        if self.upkeep == "finetune":
            parts.append(f"fine-tuned {self.finetune_epochs:g} epochs on the population each "
                         "generation, the population re-scored")
        if self.upkeep == "growth":
            parts.append(f"pruned by the elites and trained {self.stage_epochs:g} epochs at "
                         "each growth stage")
        if self.fuse is not None:
            parts.append(f"fused with {self.fuse.name}")
        return ", ".join(parts) + f", {t.device}"

    # --- scoring -----------------------------------------------------------------------------

    def _score(self, arch: str) -> tuple[float, dict[str, Any]]:
        try:
            acc, loss = self.trainer.accuracy(arch, adapt_steps=self.adapt_steps,
                                              adapt_lr=self.adapt_lr)
        except OutsideSupernetError:
            return math.nan, {"outside": 1.0}
        return (acc if self.metric == "accuracy" else -loss), {"accuracy": acc, "loss": loss}

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        start = mark = time.perf_counter()
        deadline = None if self.time_limit is None else start + self.time_limit
        out: list[Evaluation] = []
        parts = self.parts
        try:
            if not self._ready:
                if self.warmup_epochs > 0:
                    self.trainer.train(self.warmup_epochs, label="warm-up", deadline=deadline)
                self._ready = True
                parts["warm-up"] += time.perf_counter() - mark
            t0 = time.perf_counter()
            self._maintain(deadline)
            parts["upkeep"] += time.perf_counter() - t0
            zc, zc_cost = [math.nan] * len(archs), [0.0] * len(archs)
            if self.fuse is not None:  # charged its own compute seconds (cached or not)
                t0 = time.perf_counter()
                scored = self.fuse.evaluate(list(archs))
                wall = time.perf_counter() - t0
                zc, zc_cost = [e.value for e in scored], [e.cost for e in scored]
                mark += wall
                if deadline is not None:  # the deadline counts charged seconds too
                    deadline += wall - sum(zc_cost)
            for arch, z, z_cost in zip(archs, zc, zc_cost, strict=True):
                if deadline is not None and time.perf_counter() > deadline:
                    raise DeadlineExceeded("supernet")
                t0 = time.perf_counter()
                value, meta = self._score(arch)
                parts["scoring"] += time.perf_counter() - t0
                canonical = nats_tss.canonical_key(arch)
                self.values[canonical] = [arch, value, self.version, z]
                if self.fuse is not None:
                    meta["zero_cost"] = z
                now = time.perf_counter()
                out.append(Evaluation(arch, canonical, self.name, value,
                                      now - mark + z_cost, meta))
                parts["zero-cost"] += z_cost
                mark = now
        except DeadlineExceeded:
            if self.fuse is not None:  # the cells not scored are forgotten by both
                self.fuse.forget([nats_tss.canonical_key(a) for a in archs[len(out):]])
            arch = archs[len(out)]
            out.append(Evaluation(arch, nats_tss.canonical_key(arch), self.name, math.nan,
                                  time.perf_counter() - mark, {"killed": 1.0}))
        return out

    def _maintain(self, deadline: float | None) -> None:
        """The upkeep due before the next cell is scored (see the module docstring)."""
        s = self.searcher
        if self.upkeep == "finetune" and s is not None and s.generation > self._seen_generation:
            members = s.members()
            t0 = time.perf_counter()
            if members:
                self.trainer.train(self.finetune_epochs, pool=members,
                                   lr=(self.finetune_lr, self.trainer.recipe.min_lr),
                                   label="fine-tune", deadline=deadline)
            rescored = {}
            for a in members:  # the parents, under the weights their children will meet
                if deadline is not None and time.perf_counter() > deadline:
                    raise DeadlineExceeded("supernet re-scoring")
                key = nats_tss.canonical_key(a)
                entry = self.values.get(key)
                rescored[key] = [a, self._score(a)[0], self.version + 1,
                                 entry[3] if entry is not None else math.nan]
            # the new version only once every parent has a value under it
            self.values.update(rescored)
            self.version += 1
            self._seen_generation = s.generation
            self.upkeep_log.append({"what": "fine-tune", "generation": s.generation,
                                    "version": self.version, "rescored": len(members),
                                    "seconds": time.perf_counter() - t0})
        if self.upkeep == "growth" and s is not None and s.stage > self._seen_stage:
            t0 = time.perf_counter()
            stage = s.stage
            elites = s.stage_elites.get(stage - 1, [])
            removed = []
            if elites:
                grown = [e for k in range(1, stage) for e in nats_tss.NODE_EDGES[k]]
                removed = self.trainer.prune(elites, edges=grown,
                                             label=f"growth stage {stage}")
                if self.stage_epochs > 0:
                    self.trainer.train(self.stage_epochs, pool=self._stage_cells(stage),
                                       label=f"stage {stage}", deadline=deadline)
            self.version += 1
            self._seen_stage = stage
            self.upkeep_log.append({"what": "growth", "stage": stage, "version": self.version,
                                    "removed": len(removed),
                                    "space": self.trainer.net.space_size(),
                                    "seconds": time.perf_counter() - t0})

    def _stage_cells(self, stage: int) -> list[str]:
        """Every cell of growth ``stage`` inside the pruned supernet."""
        import itertools

        allowed = self.trainer.net.allowed
        grown = [e for k in range(1, stage + 1) for e in nats_tss.NODE_EDGES[k]]
        choices = [[nats_tss.OPS[k] for k in np.flatnonzero(allowed[e])] for e in grown]
        out = set()
        for combo in itertools.product(*choices):
            ops = ["none"] * nats_tss.NUM_EDGES
            for e, op in zip(grown, combo, strict=True):
                ops[e] = op
            out.add(nats_tss.grown_cell(ops, stage))
        return sorted(out)

    def relative_values(self, keys: Sequence[str]) -> list[float]:
        """The current version's values (NaN for a cell scored under older weights); fused
        with the zero-cost ranks among those cells when ``fuse`` is set."""
        current = [k in self.values and self.values[k][2] == self.version for k in keys]
        raw = np.array([self.values[k][1] if c else math.nan
                        for k, c in zip(keys, current, strict=True)], dtype=np.float64)
        if self.fuse is None:
            return raw.tolist()
        idx = np.flatnonzero(current)
        out = np.full(len(keys), math.nan)
        if len(idx):
            mine = [keys[i] for i in idx]
            zc = np.array(self.fuse.current_values(mine), dtype=np.float64)
            out[idx] = log_rank_fractions(raw[idx]) + log_rank_fractions(zc)
        return out.tolist()

    def cost_parts(self) -> dict[str, float]:
        return dict(self.parts)

    def forget(self, canonicals: Sequence[str]) -> None:
        for c in canonicals:
            self.values.pop(c, None)
        if self.fuse is not None:
            self.fuse.forget(canonicals)

    # --- checkpoints -------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "values": {k: v for k, v in self.values.items()}, "version": self.version,
            "ready": self._ready, "generation": self._seen_generation,
            "stage": self._seen_stage, "upkeep_log": self.upkeep_log, "saves": self._saves,
            "fuse": self.fuse.state_dict() if self.fuse is not None else None,
            "parts": dict(self.parts)}
        if self.checkpoint_dir is not None and self._ready:
            self._saves += 1
            path = self.checkpoint_dir / f"supernet-{self._saves}.pt"
            self.trainer.save(path)
            old = self.checkpoint_dir / f"supernet-{self._saves - 2}.pt"
            old.unlink(missing_ok=True)  # the one before stays until this save is named
            state["checkpoint"], state["saves"] = str(path), self._saves
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.values = {k: list(v) for k, v in state.get("values", {}).items()}
        self.version = int(state.get("version", 0))
        self._seen_generation = int(state.get("generation", 0))
        self._seen_stage = int(state.get("stage", 0))
        self.upkeep_log = list(state.get("upkeep_log", []))
        self._saves = int(state.get("saves", 0))
        self.parts.update({k: float(v) for k, v in state.get("parts", {}).items()})
        self._ready = bool(state.get("ready"))
        if self.fuse is not None and state.get("fuse") is not None:
            self.fuse.load_state_dict(state["fuse"])
        if self._ready:
            if not state.get("checkpoint"):
                raise UserError("the search checkpoint has a trained supernet but no supernet "
                                "file (it was run without a working folder); start it over")
            self.trainer.load(state["checkpoint"])
