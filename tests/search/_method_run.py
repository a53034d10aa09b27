"""Run one supernet search method for the resume tests: ``python -m tests.search._method_run
METHOD CHECKPOINT MAX_STEPS DATA [SUPERNETS]`` (one torch thread, a checkpoint after every
step, a budget that never binds, so the run is a deterministic function of its steps)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from zcnas.search import SearchConfig, build

EXTRA = {"genas": {"adapt_steps": 2, "local_search_every": 1, "local_search_steps": 2,
                   "local_search_top": 2},
         "gevonas": {"stage_generations": 2, "stage_epochs": 0.1, "elites": 2},
         "ftga": {"finetune_epochs": 0.1}}


def config(method: str, supernets: int = 1) -> SearchConfig:
    return SearchConfig(method=method, budget=1e6, fitness="synflow", params={
        "population": 4, "warmup_epochs": 0.1, "image_limit": 96, "held_out": 64,
        "channels": 4, "supernets": supernets, **EXTRA[method]})


def run(method: str, checkpoint: Path, max_steps: int, data: str, supernets: int = 1):
    torch.set_num_threads(1)
    plan = build(config(method, supernets), root=data, workdir=checkpoint.with_suffix(""))
    result = plan.run(checkpoint=checkpoint, checkpoint_seconds=0.0, max_steps=max_steps)
    return plan, result


if __name__ == "__main__":
    run(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4],
        int(sys.argv[5]) if len(sys.argv) > 5 else 1)
