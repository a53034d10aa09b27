"""Every fenced Python block of the README runs as pasted into a file (``python file.py``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def _id(i: int) -> str:
    first = next((ln for ln in BLOCKS[i].splitlines() if ln.startswith(("class ", "def "))
                  or "import" not in ln and ln.strip()), "")
    return f"{i}-{re.sub(r'[^A-Za-z0-9]+', '_', first)[:30]}"


def test_the_readme_has_python_blocks():
    assert len(BLOCKS) >= 8


@pytest.mark.parametrize("i", range(len(BLOCKS)), ids=_id)
def test_readme_block_runs_as_pasted(i, data_root, tmp_path):
    script = tmp_path / "snippet.py"
    script.write_text(BLOCKS[i])
    env = {**os.environ, "ZCNAS_DATA": str(data_root), "ZCNAS_CACHE": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_an_unguarded_pool_is_refused_before_any_worker_starts(tmp_path):
    script = tmp_path / "unguarded.py"
    script.write_text(
        "from zcnas.registry import create_scorers\n"
        "from zcnas.scoring.engine import make_items, score_archs\n"
        "items = make_items(['|none~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|',\n"
        "                    '|nor_conv_1x1~0|+|none~0|none~1|+|skip_connect~0|none~1|nor_conv_1x1~2|'],"
        " 'nats-tss')\n"
        "score_archs(items, create_scorers('synflow'), workers=2)\n")
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode != 0
    assert 'under `if __name__ == "__main__":`' in proc.stderr
    guarded = tmp_path / "guarded.py"
    guarded.write_text(script.read_text().replace(
        "score_archs(", "if __name__ == '__main__':\n    score_archs("))
    proc = subprocess.run([sys.executable, str(guarded)], cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    # read from stdin there is no file a spawned worker could import: refused, not hung
    proc = subprocess.run([sys.executable, "-"], input=guarded.read_text(), cwd=tmp_path,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "save it to a file" in proc.stderr, proc.stderr[-2000:]
