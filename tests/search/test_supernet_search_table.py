"""benchmarks.supernet_search: a method's runs with a supernet pool get rows of their own."""

from __future__ import annotations

import json

from benchmarks.supernet_search import main


def _run(root, folder, method, seed, acc, params) -> None:
    runs = root / folder / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    result = {"config": {"method": method, "seed": seed, "budget": 300.0, "params": params},
              "index": seed, "reported": acc, "cost": 300.0, "wall_seconds": 100.0,
              "evals_by_stage": [10], "stages": ["supernet"], "cost_by_stage": [300.0],
              "cost_parts": {}}
    (runs / f"{method}-{seed}.json").write_text(json.dumps({"result": result}))


def test_pool_runs_are_tabled_apart_from_single_supernet_runs(tmp_path, capsys):
    for seed, acc in enumerate((90.0, 92.0)):
        _run(tmp_path, "trains", "oneshot", seed, acc, {"warmup_epochs": 15})
        _run(tmp_path, "trains-pool2", "oneshot", seed, acc + 1, {"supernets": 2})
        _run(tmp_path, "mfea-proxy", "mfea", seed, 93.0, {})
    main([str(tmp_path)])
    text = (tmp_path / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| oneshot")
            or line.startswith("| mfea")][:3]
    assert rows[0].startswith("| oneshot | 2 | 91.00 +- 1.41 |")
    assert rows[1].startswith("| oneshot (2 supernets) | 2 | 92.00 +- 1.41 |")
    assert rows[2].startswith("| mfea | 2 | 93.00 +- 0.00 |")
    assert len(json.loads((tmp_path / "results.json").read_text())) == 6


def test_committed_results_are_kept_when_their_checkpoints_are_gone(tmp_path, capsys):
    for seed in range(2):
        _run(tmp_path, "trains", "genas", seed, 92.0, {})
    main([str(tmp_path)])
    for f in (tmp_path / "trains" / "runs").iterdir():  # as on a fresh clone
        f.unlink()
    _run(tmp_path, "trains-pool2", "genas", 0, 94.0, {"supernets": 2})
    _run(tmp_path, "trains", "genas", 1, 90.0, {})  # a re-run of seed 1 replaces its row
    main([str(tmp_path)])
    text = (tmp_path / "README.md").read_text()
    assert "| genas | 2 | 91.00 +- 1.41 |" in text
    assert "| genas (2 supernets) | 1 | 94.00 +- 0.00 |" in text
    assert len(json.loads((tmp_path / "results.json").read_text())) == 3


def test_runs_of_other_settings_are_all_kept(tmp_path, capsys):
    # the same method and seed under two settings: two runs, neither replaces the other
    _run(tmp_path, "mfea-proxy", "mfea", 0, 93.0, {"population_size": 20})
    _run(tmp_path, "mfea-large", "mfea", 0, 94.0, {"population_size": 50})
    for k in (2, 10):
        _run(tmp_path, f"pool{k}", "genas", 0, 90.0 + k, {"supernets": k})
    main([str(tmp_path)])
    assert len(json.loads((tmp_path / "results.json").read_text())) == 4
    text = (tmp_path / "README.md").read_text()
    assert "| mfea | 2 | 93.50 +- 0.71 |" in text
    # pools in the order of their size, not of their label's text
    assert text.index("| genas (2 supernets)") < text.index("| genas (10 supernets)")
