"""zcnas: benchmark-driven zero-cost and multi-fidelity neural architecture search.

The top-level package imports nothing heavy (no torch) so that ``zcnas --help`` and the
genotype code stay fast; import the sub-packages you need. ``zcnas.score_model`` (scoring any
torch model family with the proxies) is loaded on first use.
"""

from zcnas._version import __version__


def __getattr__(name: str):
    if name == "score_model":  # imported on first use: torch loads only then
        from zcnas.experiments.scoring import score_model

        return score_model
    raise AttributeError(f"module 'zcnas' has no attribute {name!r}")


__all__ = ["__version__", "score_model"]
