"""`perceus vnfs verify`: the manifest against its hash and the master's signature, every chunk against it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from perceus.errors import CapsuleError
from perceus.master.capsule.chunkstore import ChunkStore
from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.config import Paths
from perceus.master.security.signing import verify_stored
from perceus.protocol.capsule import decode_manifest


@dataclass
class Report:
    """What verify found; `problems` empty means the capsule is intact."""

    name: str
    manifest: str
    chunks: int
    bytes: int
    problems: list[str] = field(default_factory=list)


def verify(paths: Paths, name: str, *, progress: Callable[[int], None] | None = None) -> Report:
    store = Store(paths)
    cap = store.existing(name)
    m = current(cap)
    if m is None:
        raise CapsuleError(f"VNFS {name!r} has never been packed (run `perceus vnfs rebuild {name}`)")
    report = Report(name, m.hash, 0, 0)
    try:
        served = store.manifest_path(m.hash).read_bytes()
        decode_manifest(served, m.hash)
        unsigned = verify_stored(paths, m.hash, served)  # nodes refuse a manifest without this
        if unsigned is not None:
            report.problems.append(f"signature: {unsigned}")
    except FileNotFoundError:
        report.problems.append(f"manifest {m.hash[:16]}… is missing from {store.manifests}")
    except CapsuleError as exc:
        report.problems.append(f"served manifest: {exc}")
    chunks = ChunkStore(store)
    for ref in m.all_chunks():
        problem = chunks.check(ref)
        report.chunks += 1
        report.bytes += ref.size
        if problem is not None:
            report.problems.append(f"chunk {ref.hash[:16]}…: {problem}")
        if progress is not None:
            progress(ref.raw_size)
    return report
