"""The benchmark fidelity: an accuracy read from a NATS-Bench lookup, charged its training time.

``LookupEvaluator(bench, dataset, epochs=12, split="valid")`` is what NATS-Bench's
``simulate_train_eval`` does for ``hp='12'``: the accuracy after a 12-epoch schedule, at the
cost of training it (``epochs x`` the benchmark's seconds per epoch, plus one pass over the
evaluation split when the benchmark records it). With ``hp=200`` it reads a point of the
200-epoch learning curve instead and charges only the epochs not paid yet for that cell
(warm-start continuation, as MF-NAS's successive halving does).

Selection must never see the number that is finally reported: the full-schedule *test*
accuracy is refused here. A lower-fidelity test accuracy (the compact table has no validation
split) is allowed and marked ``uses_test_split``; reports flag it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from zcnas.errors import UserError
from zcnas.fidelity.base import Evaluation, Evaluator
from zcnas.lookup.base import canonical_split


class LookupEvaluator(Evaluator):
    def __init__(self, bench: Any, dataset: str, *, epochs: int, split: str = "valid",
                 hp: int | None = None, paid: dict[str, int] | None = None) -> None:
        split = canonical_split(split)
        full = bench.full_epochs
        schedule = epochs if hp is None else hp
        if split != "valid" and schedule == full:  # any point of the reported schedule
            raise UserError(
                f"the {full}-epoch {split} accuracy is the reported outcome of a search and "
                "is never used to select; use split='valid' (official archive) or a shorter "
                "schedule")
        if hp is not None and not 0 < epochs <= hp:
            raise UserError(f"epoch {epochs} is outside the {hp}-epoch schedule")
        bench.schedule(schedule)  # one clear error for a schedule the benchmark lacks
        self.bench = bench
        self.dataset = dataset
        self.epochs = int(epochs)
        self.split = split
        self.hp = hp
        self.uses_test_split = split != "valid"
        self._paid = paid if paid is not None else {}
        curve = "" if hp is None else f"/{hp}"
        self.name = f"lookup:{self.epochs}ep{curve}:{split}"

    def describe(self) -> str:
        what = (f"{self.epochs}-epoch schedule" if self.hp is None
                else f"epoch {self.epochs} of the {self.hp}-epoch curve")
        return f"{self.split} accuracy on {self.dataset} after the {what} (lookup)"

    def _cost_info(self, arch: str):
        return self.bench.cost(arch, self.dataset, epochs=self.hp or self.epochs,
                               split=self.split if self.split == "valid" else "test")

    def estimate_cost(self, arch: str) -> float:
        from zcnas.spaces import get_space

        return self._cost(self._cost_info(arch), get_space(self.bench.space).canonical_key(arch))

    def _cost(self, info, canon: str) -> float:
        """Seconds to train the schedule (or the curve epochs not paid yet) and evaluate."""
        new = self.epochs if self.hp is None else max(0, self.epochs - self._paid.get(canon, 0))
        return info.train_seconds_per_epoch * new + (info.eval_seconds or 0.0)

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        from zcnas.spaces import get_space

        key = get_space(self.bench.space).canonical_key
        out = []
        for arch in archs:
            index = self.bench.index(arch)
            if self.hp is None:
                acc = self.bench.accuracy(index, self.dataset, epochs=self.epochs,
                                          split=self.split)
            else:
                acc = self.bench.accuracy_at_epoch(index, self.dataset, self.epochs,
                                                   hp=self.hp, split=self.split)
            canon = key(arch)
            info = self._cost_info(arch)
            cost = self._cost(info, canon)
            if self.hp is not None:
                self._paid[canon] = max(self._paid.get(canon, 0), self.epochs)
            out.append(Evaluation(arch, canon, self.name, float(acc.value), float(cost),
                                  {"index": index, "split": acc.split,
                                   "cost_estimated": bool(info.estimated)}))
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"paid": dict(self._paid)} if self.hp is not None else {}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if self.hp is not None:
            self._paid.clear()
            self._paid.update({k: int(v) for k, v in state.get("paid", {}).items()})
