"""Starting worker processes safely.

zcnas's pools use the ``spawn`` start method: a worker imports the main script again. A
script that starts a pool at its top level, outside ``if __name__ == "__main__":``, would
then start pools from every worker, and hang. :func:`check_main_guard` refuses that with one
clear line *before* any worker starts.
"""

from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path

from zcnas.errors import UserError


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either side)."""
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1
            and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    names = [s for s in sides if isinstance(s, ast.Name) and s.id == "__name__"]
    consts = [s for s in sides if isinstance(s, ast.Constant) and s.value == "__main__"]
    return bool(names and consts)


def check_main_guard() -> None:
    """Raise :class:`UserError` when the caller chain reaches the top level of the main
    script outside an ``if __name__ == "__main__":`` block (spawned workers would re-run it)."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if getattr(getattr(main, "__spec__", None), "name", None) is not None:
        path = getattr(main.__spec__, "origin", None) or path  # python -m: re-imported by name
    if not path:
        return  # interactive, -c, or an embedded interpreter: nothing is re-imported
    if not Path(path).is_file():  # e.g. "<stdin>": a spawned worker would die looking for it
        raise UserError(
            f"worker processes cannot start from a script without a file ({path}, e.g. "
            "`python - < script.py`): save it to a file and run `python file.py`, or pass "
            "workers=1")
    frame = inspect.currentframe()
    while frame is not None:
        if frame.f_globals.get("__name__") == "__main__" and frame.f_code.co_name == "<module>":
            line = frame.f_lineno
            try:
                tree = ast.parse(Path(path).read_text(), filename=str(path))
            except (OSError, SyntaxError, ValueError):
                return
            guarded = any(isinstance(n, ast.If) and _is_main_test(n.test)
                          and n.lineno <= line <= (n.end_lineno or n.lineno)
                          for n in ast.walk(tree))
            if not guarded:
                raise UserError(
                    f"{Path(path).name} line {line} starts worker processes at the top level "
                    "of the script: put that code under `if __name__ == \"__main__\":` (each "
                    "worker imports the script again), or pass workers=1")
            return
        frame = frame.f_back
