"""The version of zcnas (one place; the package and the store read it)."""

__version__ = "0.1.0"
