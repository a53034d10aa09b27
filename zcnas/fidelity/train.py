"""Stand-alone training: a genotype trained from scratch with the NATS-Bench recipe.

The recipe (NATS-Bench / NAS-Bench-201 ``hp=12`` and ``hp=200`` configs): SGD with momentum
0.9 and Nesterov, learning rate 0.1 annealed by a cosine to 0 *per iteration* over the whole
schedule, weight decay 5e-4 on every parameter, batch 256, cross-entropy, random crop (zero
padding 4, 2 for ImageNet16-120) + horizontal flip. Any number of epochs works; 12 and 200 are
the benchmark's schedules.

Training reads the training split with a seeded held-out part (see
:class:`~zcnas.data.training.TrainingData`); the value is the accuracy on the held-out images.
With a ``checkpoint`` path the state (weights, optimiser, data-order RNG, history) is written
atomically after every epoch, and an interrupted training resumes from it to the same weights
as an uninterrupted one. Costs are measured seconds, per epoch and in total;
:class:`TrainEvaluator` charges them to a search's budget.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from zcnas.datasets import get_dataset
from zcnas.errors import CheckpointError, UserError
from zcnas.fidelity.base import Evaluation, Evaluator

CHECKPOINT_FORMAT = "zcnas-train-1"


class DeadlineExceeded(Exception):  # noqa: N818 (a signal, not a failure)
    """Raised inside training when an evaluation's time limit passes: the fidelity ladder
    kills an evaluation that would run past the budget, as a real job would be."""


@dataclass(frozen=True)
class Recipe:
    """Optimisation hyper-parameters; the defaults are NATS-Bench's."""

    epochs: int = 200
    lr: float = 0.1
    min_lr: float = 0.0
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    batch_size: int = 256

    def __post_init__(self) -> None:
        if self.epochs < 1:
            raise UserError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise UserError(f"batch size must be >= 1, got {self.batch_size}")

    def lr_at(self, epoch: float) -> float:
        """Cosine annealing over the schedule, evaluated at a fractional epoch."""
        t = min(max(epoch / self.epochs, 0.0), 1.0)
        return self.min_lr + (self.lr - self.min_lr) * (1 + math.cos(math.pi * t)) / 2

    def optimizer(self, params: Iterable[nn.Parameter]) -> torch.optim.SGD:
        return torch.optim.SGD(params, lr=self.lr, momentum=self.momentum,
                               nesterov=self.nesterov, weight_decay=self.weight_decay)


def run_epoch(forward: Callable[[torch.Tensor], torch.Tensor], optimizer: torch.optim.Optimizer,
              batches: Iterable[tuple[torch.Tensor, torch.Tensor]], *,
              lr: Callable[[int], float], max_steps: int | None = None,
              before_step: Callable[[int], None] | None = None,
              after_step: Callable[[int, float], None] | None = None) -> dict[str, float]:
    """One training pass: for batch ``i`` set the learning rate ``lr(i)``, cross-entropy,
    backward, step. ``before_step(i)`` runs first (a supernet draws its path there);
    ``after_step(i, loss)`` after (a progress bar). Returns the mean loss, accuracy (%) and
    number of steps."""
    loss_sum, correct, seen, steps = 0.0, 0, 0, 0
    for i, (x, y) in enumerate(batches):
        if max_steps is not None and i >= max_steps:
            break
        if before_step is not None:
            before_step(i)
        for g in optimizer.param_groups:
            g["lr"] = lr(i)
        optimizer.zero_grad(set_to_none=True)
        logits = forward(x)
        loss = nn.functional.cross_entropy(logits, y)
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach()) * len(y)
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
        steps += 1
        if after_step is not None:
            after_step(i, loss_sum / seen)
    seen = max(seen, 1)
    return {"train_loss": loss_sum / seen, "train_acc": 100.0 * correct / seen, "steps": steps}


@torch.no_grad()
def accuracy(forward: Callable[[torch.Tensor], torch.Tensor],
             batches: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> tuple[float, float]:
    """(accuracy %, mean cross-entropy) of ``forward`` over labelled batches."""
    loss_sum, correct, seen = 0.0, 0, 0
    for x, y in batches:
        logits = forward(x)
        loss_sum += float(nn.functional.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        seen += len(y)
    if not seen:
        raise UserError("no held-out images to evaluate on")
    return 100.0 * correct / seen, loss_sum / seen


class epoch_bar:  # noqa: N801 - a context manager used like a function
    """A per-epoch progress bar; calling it after a step advances it and shows the loss."""

    def __init__(self, steps: int, show: bool | None, epoch: float, epochs: float,
                 label: str = "epoch") -> None:
        from zcnas.runtime.progress import progress_bar

        self._bar = progress_bar(steps, show, unit="batch",
                                 desc=f"{label} {epoch:g}/{epochs:g}")

    def __enter__(self) -> epoch_bar:
        return self

    def __call__(self, _i: int, loss: float) -> None:
        self._bar.update(1)
        self._bar.set_postfix_str(f"loss {loss:.3f}", refresh=False)

    def __exit__(self, *exc) -> None:
        self._bar.close()


def stop_at(deadline: float | None) -> Callable[[int], None] | None:
    """A per-step check that raises :class:`DeadlineExceeded` past ``deadline`` (a
    ``time.perf_counter()`` value); None without a deadline."""
    if deadline is None:
        return None

    def check(_i: int) -> None:
        if time.perf_counter() > deadline:
            raise DeadlineExceeded("training")
    return check


@dataclass(frozen=True)
class TrainResult:
    """The outcome of training one genotype."""

    arch: str
    dataset: str
    epochs: int
    valid_acc: float
    valid_loss: float
    seconds: float  # training + evaluation, all epochs (including those before a resume)
    history: list[dict[str, float]] = field(default_factory=list)
    resumed_from: int = 0  # epochs already done when this call started

    @property
    def seconds_per_epoch(self) -> float:
        return self.seconds / max(self.epochs, 1)


def save_state(path: str | os.PathLike, state: dict[str, Any]) -> None:
    """``torch.save`` atomically (a temporary file, then a rename): a crash never leaves a
    half-written checkpoint."""
    import io

    from zcnas._io import atomic_write

    buf = io.BytesIO()
    torch.save(state, buf)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(p, buf.getvalue())  # a unique temporary file: concurrent writers never clash


def read_state(path: str | os.PathLike, fmt: str, *, kind: str, missing: str,
               unreadable: str, device: str = "cpu") -> dict[str, Any]:
    """A checkpoint written by :func:`save_state` whose ``format`` is ``fmt``; one-line
    :class:`CheckpointError` when it is missing (``missing`` says what to do), unreadable
    (``unreadable``) or of another kind."""
    p = Path(path)
    label = f"{kind} checkpoint" if kind else "checkpoint"
    if not p.is_file():
        raise CheckpointError(f"no {label} at {p}; {missing}")
    try:
        state = torch.load(p, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 (any unreadable file is the same user error)
        raise CheckpointError(f"{label} {p} is unreadable ({type(e).__name__}); "
                              f"{unreadable}") from None
    if not isinstance(state, dict) or state.get("format") != fmt:
        raise CheckpointError(f"{p} is not a zcnas {kind or 'training'} checkpoint")
    return state


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """A training checkpoint's state; one-line :class:`CheckpointError` when it is missing
    or unreadable."""
    return read_state(path, CHECKPOINT_FORMAT, kind="",
                      missing="train without resuming to create one",
                      unreadable="delete it to train from scratch")


def _check_matches(path: Path, state: Mapping[str, Any], want: Mapping[str, Any]) -> None:
    for key, value in want.items():
        if state.get(key) != value:
            raise CheckpointError(
                f"checkpoint {path} was made for {key} {state.get(key)!r}, not {value!r} "
                "(dataset mismatch?); use another checkpoint path or delete it")


def train_arch(arch: str, *, data, recipe: Recipe = Recipe(), epochs: int | None = None,
               seed: int = 0, device: str = "cpu", checkpoint: str | os.PathLike | None = None,
               resume: bool | str = "auto", max_steps: int | None = None,
               eval_limit: int | None = None, space: str = "nats-tss",
               progress: Callable[[dict[str, float]], None] | None = None,
               deadline: float | None = None, bar: bool | None = None) -> TrainResult:
    """Train ``arch`` from scratch on ``data`` (:class:`~zcnas.data.training.TrainingData`).

    ``epochs`` overrides ``recipe.epochs`` (the cosine spans the full schedule). ``checkpoint``:
    a file updated after every epoch; ``resume`` = ``"auto"`` continues from it when it exists,
    ``True`` requires it (a missing one is an error), ``False`` starts over. A checkpoint made
    for another arch, dataset, recipe or images is refused. ``max_steps`` caps the steps per
    epoch (quick checks); ``eval_limit`` the held-out images scored. ``deadline`` (a
    ``time.perf_counter()`` value): raise :class:`DeadlineExceeded` at the first step past
    it (the epochs already checkpointed stay). ``bar``: a per-epoch progress bar on stderr
    (batches, running loss, ETA; a line every 30 s when stderr is not a terminal); None or
    True shows it, False (a search's training fidelity) does not.
    """
    from zcnas.models import build_network
    from zcnas.spaces import get_space

    recipe = replace(recipe, epochs=epochs) if epochs is not None else recipe
    sp = get_space(space)
    arch = sp.format_arch(sp.parse_arch(arch))
    ident = {"arch": arch, "dataset": data.spec.name, "recipe": asdict(recipe),
             "images": data.fingerprint, "seed": seed, "max_steps": max_steps}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_network(arch, space, data.spec.name).to(device)
    opt = recipe.optimizer(net.parameters())
    rng = np.random.default_rng(seed)
    history: list[dict[str, float]] = []
    start = 0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and (resume is True or (resume == "auto" and ckpt.is_file())):
        state = load_checkpoint(ckpt)
        _check_matches(ckpt, state, ident)
        net.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        rng.bit_generator.state = json.loads(state["rng"])
        history = json.loads(state["history"])
        start = int(state["epoch"])
    elif resume is True:
        raise CheckpointError("resume=True needs a checkpoint path")
    steps = data.steps_per_epoch(recipe.batch_size)
    if max_steps is not None:
        steps = min(steps, max_steps)
    for epoch in range(start, recipe.epochs):
        t0 = time.perf_counter()
        net.train()
        with epoch_bar(steps, bar, epoch + 1, recipe.epochs) as shown:
            stats = run_epoch(net, opt, data.epoch(rng, recipe.batch_size, device=device),
                              lr=lambda i, e=epoch: recipe.lr_at(e + i / steps),
                              max_steps=max_steps, before_step=stop_at(deadline),
                              after_step=shown)
        net.eval()
        acc, loss = accuracy(net, data.valid_batches(device=device, limit=eval_limit))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        row = {"epoch": epoch + 1, **stats, "valid_acc": acc, "valid_loss": loss,
               "seconds": time.perf_counter() - t0}
        history.append(row)
        if ckpt is not None:
            save_state(ckpt, {"format": CHECKPOINT_FORMAT, **ident, "epoch": epoch + 1,
                         "model": net.state_dict(), "optimizer": opt.state_dict(),
                         "rng": json.dumps(rng.bit_generator.state),
                         "history": json.dumps(history)})
        if progress is not None:
            progress(row)
    if not history:
        raise UserError("nothing trained: the schedule has no epochs")
    last = history[-1]
    return TrainResult(arch, data.spec.name, recipe.epochs, float(last["valid_acc"]),
                       float(last["valid_loss"]), float(sum(r["seconds"] for r in history)),
                       history, start)


class TrainEvaluator(Evaluator):
    """The stand-alone-training fidelity ``train@E``: train each cell ``epochs`` epochs with
    the NATS recipe and return its held-out accuracy; cost = measured seconds (training and
    evaluation). With ``checkpoint_dir`` every training checkpoints there (one file per cell),
    so a search killed mid-training resumes it, and a finished cell is read back at the cost
    it took."""

    def __init__(self, epochs: int = 12, *, dataset: str = "cifar10", root: Any = None,
                 seed: int = 0, device: str = "cpu", checkpoint_dir: Any = None,
                 valid: int | float = 0.1, limit: int | None = None,
                 max_steps: int | None = None, batch_size: int = 256,
                 space: str = "nats-tss", data: Any = None) -> None:
        from zcnas.data.training import TrainingData

        self.epochs = int(epochs)
        self.recipe = Recipe(epochs=self.epochs, batch_size=batch_size)
        self.dataset = dataset
        self.seed = seed
        self.device = device
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir is not None else None
        self.max_steps = max_steps
        self.space = space
        self.data = data if data is not None else TrainingData.load(
            dataset, root, valid=valid, limit=limit)
        if self.data.spec.name != get_dataset(dataset).name:
            raise UserError(f"training data is {self.data.spec.name}, not {dataset}")
        self.name = f"train@{self.epochs}"
        self.seconds_per_epoch: list[float] = []
        self.time_limit: float | None = None  # see Evaluator.set_deadline

    def describe(self) -> str:
        return (f"stand-alone training, {self.epochs} epochs, NATS recipe, "
                f"{len(self.data.y_train)} train / {len(self.data.y_valid)} held-out "
                f"{self.dataset} images, {self.device}")

    def _path(self, arch: str) -> Path | None:
        """One file per training: everything the resume check compares is in its name."""
        if self.checkpoint_dir is None:
            return None
        import hashlib

        ident = json.dumps([arch, self.data.fingerprint, asdict(self.recipe), self.seed,
                            self.max_steps])
        h = hashlib.sha1(ident.encode()).hexdigest()[:16]
        return self.checkpoint_dir / f"{self.dataset}-e{self.epochs}-s{self.seed}-{h}.pt"

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        from zcnas.spaces import get_space

        sp = get_space(self.space)
        out = []
        start = time.perf_counter()
        deadline = None if self.time_limit is None else start + self.time_limit
        for arch in archs:
            canonical = sp.canonical_key(arch)
            arch = sp.format_arch(sp.parse_arch(arch))
            t0 = time.perf_counter()
            try:
                res = train_arch(arch, data=self.data, recipe=self.recipe, seed=self.seed,
                                 device=self.device, checkpoint=self._path(arch),
                                 max_steps=self.max_steps, space=self.space,
                                 deadline=deadline, bar=False)
            except DeadlineExceeded:  # killed: the ladder discards it
                out.append(Evaluation(arch, canonical, self.name, math.nan,
                                      time.perf_counter() - t0, {"killed": 1.0}))
                break
            self.seconds_per_epoch.append(res.seconds_per_epoch)
            meta = {"valid_loss": res.valid_loss, "seconds_per_epoch": res.seconds_per_epoch,
                    "resumed_from": float(res.resumed_from)}
            out.append(Evaluation(arch, canonical, self.name, res.valid_acc, res.seconds, meta))
        return out

