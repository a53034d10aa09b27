"""Child process of the kill test in ``test_store.py`` (not a test module).

``python _store_writer.py STORE BATCH`` appends batches of ``BATCH`` records to the score store
forever, each batch in one ``put_many`` together with a ``next`` marker record (its value is the
index of the next record), and prints ``committed START END`` after each commit. The parent
kills it with SIGKILL at some point and checks what is on disk.
"""

from __future__ import annotations

import struct
import sys
import time

from zcnas.runtime.store import ScoreKey, ScoreRecord, ScoreStore, config_string

CONFIG = config_string({"batch_size": 8, "input": "gaussian"})
NEXT = ScoreKey("nats_tss", "next", "kill_test", "1", "cifar10", CONFIG, 7, "cpu")
_SPECIAL = (float("inf"), float("-inf"), -0.0, 5e-324, 1.7976931348623157e308)


def key(i: int) -> ScoreKey:
    return ScoreKey("nats_tss", f"arch-{i}", "kill_test", "1", "cifar10", CONFIG, 7, "cpu")


def value(i: int) -> float:
    """Awkward values: NaNs with distinct payloads, infinities, -0.0, extremes, plain floats."""
    kind = i % 8
    if kind == 0:  # a quiet NaN whose payload encodes i (both signs)
        bits = 0x7FF8000000000000 | (i & 0x7FFFFFFFFFF) | (((i >> 3) & 1) << 63)
        return struct.unpack(">d", struct.pack(">Q", bits))[0]
    if kind <= len(_SPECIAL):
        return _SPECIAL[kind - 1]
    return (i + 0.5) / 3.0


def bits(x: float) -> bytes:
    return struct.pack(">d", x)


def main(path: str, batch: int) -> None:
    with ScoreStore(path) as store:
        marker = store.get(NEXT)
        start = 0 if marker is None else int(marker.value)
        while True:
            now = time.time()
            records = [
                ScoreRecord(key(i), value(i), 0.001 * i, f"arch #{i}", now)
                for i in range(start, start + batch)
            ]
            records.append(ScoreRecord(NEXT, float(start + batch), 0.0, "next", now))
            store.put_many(records)
            print(f"committed {start} {start + batch}", flush=True)
            start += batch


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
