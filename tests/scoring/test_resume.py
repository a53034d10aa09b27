"""A `zcnas score` run killed with SIGKILL and started again recomputes at most what was in
flight, and the store stays readable (a real subprocess, a real kill)."""

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from zcnas.runtime import ScoreStore

ROOT = Path(__file__).resolve().parents[2]
N = 12
PROXIES = "synflow,stable(batch_size=24)"


def _cmd(tmp_path, data_root, out):
    return [sys.executable, "-m", "zcnas.cli", "score", "--archs", str(N), "--seed", "5",
            "--proxies", PROXIES, "--data", str(data_root), "--workers", "1",
            "--store", str(tmp_path / "scores.sqlite"), "--out", str(tmp_path / out),
            "--no-progress"]


def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    return env


def _stored_archs(path: Path) -> int:
    if not path.exists():
        return 0
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(DISTINCT canonical) FROM scores").fetchone()[0]
        finally:
            con.close()
    except sqlite3.Error:
        return 0


def test_sigkill_then_restart_recomputes_only_what_was_in_flight(tmp_path, data_root):
    store_path = tmp_path / "scores.sqlite"
    proc = subprocess.Popen(_cmd(tmp_path, data_root, "first"), env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    try:
        while _stored_archs(store_path) < 4:
            if proc.poll() is not None:
                pytest.fail(f"run ended before it could be killed: {proc.stderr.read()!r}")
            if time.monotonic() > deadline:
                pytest.fail("no scores were committed within 120 s")
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (tmp_path / "first.parquet").exists()  # it really died mid-run

    with ScoreStore(store_path, readonly=True) as store:  # readable after the kill
        stored = {(r.key.canonical, r.key.proxy) for r in store.records()}
    done = {c for c, _ in stored}
    assert 4 <= len(done) < N
    assert all((c, p) in stored for c in done for p in ("synflow", "stable"))  # whole archs

    rerun = subprocess.run(_cmd(tmp_path, data_root, "second"), env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    df = pd.read_parquet(tmp_path / "second.parquet")
    # computed in this run (on an item, or on its class's representative: ``isomorph``)
    computed = set(df.loc[df.origin.isin(["computed", "isomorph"]), "canonical"])
    assert computed.isdisjoint(done)  # nothing already stored is computed again
    assert set(df.loc[df.origin == "store", "canonical"]) == done
    assert len(computed | done) == df.canonical.nunique()
