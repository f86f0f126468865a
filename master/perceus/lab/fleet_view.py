"""The fleet's live progress (nodes per phase, bytes, ETA) and its per-node timeline at the end."""

from __future__ import annotations

import time
from collections import Counter
from typing import TYPE_CHECKING, TextIO

from perceus.lab.fleet_console import DOING, STEPS

if TYPE_CHECKING:
    from perceus.lab.fleet import FleetResult, FleetRun

ORDER = (*STEPS, "failed", "exited")


class Live:
    """On a terminal the block is redrawn in place; elsewhere one line every few seconds or on change."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.tty = out.isatty()
        self._last = ""
        self._last_t = 0.0

    def say(self, text: str) -> None:
        self.out.write(f"fleet: {text}\n")
        self.out.flush()

    def update(self, run: FleetRun, final: bool) -> None:
        now = time.monotonic()
        counts = Counter(t.step for t in run.tracks)
        n = len(run.tracks) or 1
        total = run.capsule_bytes * len(run.tracks)
        done = min(run.wire_bytes, total)
        rate = run.rate()
        eta = (total - done) / rate if rate > 0 and done < total else 0.0
        queued = sorted((t for t in run.tracks if t.step == "queued"), key=lambda t: t.position)
        head = ", ".join(f"{t.name}#{t.position}~{t.eta:.0f}s" for t in queued[:3])
        if self.tty:
            rows = [f"fleet: {len(run.tracks)} nodes, {now - run.origin:6.1f} s   capsule bytes {done / 1e6:8.1f} / "
                    f"{total / 1e6:.1f} MB   {rate * 8 / 1e6:6.1f} Mbit/s   ETA {eta:5.0f} s"]  # fmt: skip
            for step in ORDER:
                c = counts.get(step, 0)
                if c or step in STEPS:
                    bar = "#" * int(40 * c / n)
                    rows.append(f"  {DOING[step]:<32} {c:5d} {bar}")
            if head:
                rows.append(f"  queue head: {head}")
            self.out.write("\x1b[H\x1b[J" + "\n".join(rows) + "\n")
            self.out.flush()
            return
        line = " ".join(f"{s}={counts[s]}" for s in ORDER if counts.get(s))
        if final or (line != self._last and now - self._last_t >= 2.0) or now - self._last_t >= 10.0:
            queue = f"  queue: {head}" if head else ""
            self.out.write(f"[{now - run.origin:6.1f}s] {line}  bytes={done / 1e6:.1f}/{total / 1e6:.1f}MB "
                           f"rate={rate * 8 / 1e6:.0f}Mbit/s eta={eta:.0f}s{queue}\n")  # fmt: skip
            self.out.flush()
            self._last, self._last_t = line, now


def _cell(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}"
    return str(v)


def timeline_table(result: FleetResult) -> str:
    """One row per node: when it got its lease, enrolled, waited, fetched, 'kexec'ed and was ready."""
    cols = ("dhcp", "enrolled", "queue_wait", "capsule_start", "capsule", "kexec", "ready", "retries")
    head = f"{'node':<9} {'hostname':<9} {'ip':<13} " + " ".join(f"{c:>13}" for c in cols) + "  failed"
    lines = [head, "-" * len(head)]
    for row in (t.summary(result.origin) for t in result.tracks):
        cells = " ".join(f"{_cell(row[c]):>13}" for c in cols)
        lines.append(f"{row['node']!s:<9} {row['hostname'] or '-'!s:<9} {row['ip'] or '-'!s:<13} {cells}  "
                     f"{row['failed'] or ''}")  # fmt: skip
    return "\n".join(lines)


def summary(result: FleetResult) -> str:
    d = result.as_dict()

    def s(v: object) -> str:
        return f"{v:.1f} s" if isinstance(v, float) else "-"

    return "\n".join([
        f"{d['nodes']} nodes, capsule {d['capsule_bytes'] / 1e6:.1f} MB on the wire, "
        f"uplink {d['uplink_mbit']:g} Mbit/s, node links {d['node_mbit']:g} Mbit/s, loss {d['loss'] * 100:g} %, "
        f"pacing {'on' if d['pacing'] else 'off'}",
        f"ready: p50 {s(d['p50_s'])}, p99 {s(d['p99_s'])}, last {s(d['last_ready_s'])}; physical bound "
        f"{d['bound_s']:.1f} s (nodes x capsule / uplink); failures {d['failures']}, retries {d['retries']}, "
        f"chunk retries {d['chunk_retries']}",
        f"memory: {d['node_rss_mb']:.1f} MB RSS / {d['node_pss_mb']:.1f} MB PSS per emulated node (capsule tmpfs "
        f"not included), master {d['master_rss_mb']:.1f} MB RSS; host memory used {d['host_used_mb']:.0f} MB "
        f"(~{d['host_used_mb'] / max(1, d['nodes']):.1f} MB per node with its tmpfs and namespaces: "
        f"~{d['max_nodes_in_24gb']} such nodes fit in 24 GB)",
        f"note: {d['kexec']}",
    ])  # fmt: skip
