"""Prometheus `/metrics`: what the store snapshots, the bus's events and its control-socket counters give.

Counted here, from events: hellos, enrollments, boot-phase durations (a phase's start → done event pair) and
failures.  Read at scrape time from the bus over its control socket (`stats`): messages received,
replies, bad frames, group commits, capsule bytes served (`capsule_stats`) and the boot-storm queue
(`capsule_queue`, when pacing is on).  From the latest snapshot: nodes by state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

# Boot phases last from a fraction of a second (enroll) to minutes (a capsule over a busy network).
PHASE_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600, float("inf"))
MAX_OPEN = 100_000  # phase starts remembered while waiting for their `done`


class Metrics:
    """One registry per web process (never the global one: tests start several)."""

    def __init__(self, counts: Callable[[], Mapping[str, int]], bus: Callable[[], Mapping[str, Any]]) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.hellos = Counter("perceus_hellos", "hello messages seen (first contact of a boot)", ["stage"], registry=r)
        self.enrollments = Counter("perceus_enrollments", "nodes enrolled", ["how"], registry=r)
        self.checkins = Counter(
            "perceus_node_checkins", "check-ins seen as a node's last contact advancing between snapshots", registry=r
        )
        self.phase_seconds = Histogram(
            "perceus_boot_phase_duration_seconds", "boot phase durations", ["phase"], buckets=PHASE_BUCKETS, registry=r
        )
        self.phase_failures = Counter("perceus_boot_phase_failures", "boot phases that failed", ["phase"], registry=r)
        self.events = Counter("perceus_bus_events", "bus events received by perceus-web", ["event"], registry=r)
        self.web_writes = Counter(
            "perceus_web_writes", "approve/revoke through the web", ["action", "result"], registry=r
        )
        self.sse_clients = Gauge("perceus_web_sse_clients", "browsers on the live feed", registry=r)
        r.register(_Live(counts, bus))
        self._open: dict[tuple[str, str], float] = {}

    def on_event(self, ev: Mapping[str, Any]) -> None:
        name = str(ev.get("event", ""))
        self.events.labels(name).inc()
        data = ev.get("data") or {}
        if name == "hello":
            self.hellos.labels(str(data.get("stage", ""))).inc()
        elif name == "node_enrolled":
            self.enrollments.labels("auto").inc()
        elif name == "phase":
            self._phase(str(ev.get("node", "")), data, float(ev.get("at") or 0.0))

    def _phase(self, node: str, data: Mapping[str, Any], at: float) -> None:
        phase = str(data.get("phase", ""))
        key = (node, phase)
        if not data.get("ok", True):
            self.phase_failures.labels(phase).inc()
            self._open.pop(key, None)
            return
        if not data.get("done", True):
            if len(self._open) >= MAX_OPEN:
                self._open.clear()
            self._open[key] = at
            return
        start = self._open.pop(key, None)
        if start is not None and at >= start:
            self.phase_seconds.labels(phase).observe(at - start)


class _Live(Collector):
    """Values read when Prometheus scrapes: nodes by state (snapshot) and the bus's own counters."""

    def __init__(self, counts: Callable[[], Mapping[str, int]], bus: Callable[[], Mapping[str, Any]]) -> None:
        self.counts = counts
        self.bus = bus

    def collect(self) -> Iterator[Metric]:
        g = GaugeMetricFamily("perceus_nodes", "nodes by state (pending = waiting for approval)", labels=["state"])
        for state, n in sorted(self.counts().items()):
            g.add_metric([state], n)
        yield g
        stats = self.bus()
        up = GaugeMetricFamily("perceus_bus_up", "1 when perceus-bus answered on its control socket")
        up.add_metric([], 1 if stats else 0)
        yield up
        if not stats:
            return
        for key, name, text in (
            ("received", "perceus_bus_messages_received", "requests the bus received (check-ins, hellos, chunks …)"),
            ("replied", "perceus_bus_replies", "replies the bus sent"),
            ("commits", "perceus_bus_group_commits", "group commits of check-ins"),
            ("sent_bytes", "perceus_capsule_bytes_served", "capsule chunk bytes served by this master"),
        ):
            if key in stats:
                c = CounterMetricFamily(name, text, labels=["source"] if key == "sent_bytes" else None)
                c.add_metric(["master"] if key == "sent_bytes" else [], float(stats[key]))
                yield c
        errors = CounterMetricFamily("perceus_bus_errors", "errors by code", labels=["code"])
        errors.add_metric(["bad_message"], float(stats.get("bad", 0)))
        yield errors
        if "queue_depth" in stats:
            q = GaugeMetricFamily("perceus_capsule_queue_depth", "nodes queued for a capsule transfer slot (storm)")
            q.add_metric([], float(stats["queue_depth"]))
            yield q
            a = GaugeMetricFamily("perceus_capsule_transfers_active", "capsule transfers holding a slot")
            a.add_metric([], float(stats["active"]))
            yield a
