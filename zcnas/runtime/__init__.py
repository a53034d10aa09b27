"""Running evaluations: executors, the persistent score store, progress.

Nothing here imports torch.
"""

from zcnas.runtime.store import (
    SCHEMA_VERSION,
    STORE_FORMAT,
    ScoreKey,
    ScoreRecord,
    ScoreStore,
    StoreError,
    config_string,
)

__all__ = [
    "SCHEMA_VERSION",
    "STORE_FORMAT",
    "ScoreKey",
    "ScoreRecord",
    "ScoreStore",
    "StoreError",
    "config_string",
]
