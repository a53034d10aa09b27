"""zcnas: benchmark-driven zero-cost and multi-fidelity neural architecture search.

The top-level package imports nothing heavy (no torch) so that ``zcnas --help`` and the
genotype code stay fast; import the sub-packages you need.
"""

__version__ = "0.1.0"
