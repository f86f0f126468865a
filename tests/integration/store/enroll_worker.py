"""Enrollment race worker: several threads, each with its own store connection, enroll unknown nodes at once.

Run by test_contract.py as a separate process:
`enroll_worker.py KIND TARGET PROC THREADS PER_THREAD START_AT`.
Prints {nodeid: hostname} as JSON.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path

from perceus.master.config import NodeDefaults
from perceus.master.store.base import NodeStore
from perceus.master.store.models import EnrollRequest

DEFAULTS = NodeDefaults(
    prefix="n",
    width=4,
    suffix="",
    group="cluster",
    vnfs="centos",
    enabled=True,
    first=0,
    total=10000,
    debug=1,
)


def open_store(kind: str, target: str) -> NodeStore:
    if kind == "sqlite":
        from perceus.master.store.sqlite import SQLiteStore

        return SQLiteStore(Path(target))
    from perceus.master.store.postgres import PostgresStore

    return PostgresStore(target)


def main() -> None:
    kind, target = sys.argv[1], sys.argv[2]
    proc, threads, per_thread, start_at = (
        int(sys.argv[3]),
        int(sys.argv[4]),
        int(sys.argv[5]),
        float(sys.argv[6]),
    )
    results: dict[str, str] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(thread: int) -> None:
        try:
            with open_store(kind, target) as store:
                macs = [f"52:54:{proc:02x}:{thread:02x}:00:{i:02x}" for i in range(per_thread)]
                time.sleep(max(0.0, start_at - time.time()))
                # Single requests and small batches, as the bus's group commit hands them over.
                i = 0
                while i < len(macs):
                    size = 1 if i % 2 == 0 else 3
                    nodes = store.enroll([EnrollRequest(nodeid=m) for m in macs[i : i + size]], DEFAULTS)
                    with lock:
                        results.update({n.nodeid: n.hostname for n in nodes})
                    i += size
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
