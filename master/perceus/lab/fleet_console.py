"""What an emulated node's console says, turned into its timeline: phases, queue positions, retries, failure.

The agent's console lines are `[<monotonic s>] perceus: [LEVEL] event key=value …` (perceus.agent.console);
the stamp is CLOCK_MONOTONIC of the node's process, the same clock as the harness's.  Each node's console file
is read incrementally (only new bytes), so watching 200 nodes costs a few reads per second.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"^\[\s*([\d.]+)\] perceus: (?:(WARNING|ERROR|CRITICAL) )?(\S+)(.*)$")
_KV = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S*)")

# Labels of a node's way through a boot, in order (the live view and the timeline use these).
STEPS = ("spawned", "dhcp", "enrolled", "queued", "capsule", "kexec", "ready")
DOING = {
    "spawned": "DHCP",
    "dhcp": "hello / enroll",
    "enrolled": "node scripts",
    "queued": "queued for capsule",
    "capsule": "capsule fetch+verify",
    "kexec": "kexec (emulated) → provisiond",
    "ready": "ready",
    "failed": "FAILED",
    "exited": "exited",
}


def parse_line(line: str) -> tuple[float, str, str, dict[str, str]] | None:
    """(stamp, level, event, fields) of one console line, or None for anything else."""
    m = _LINE.match(line)
    if m is None:
        return None
    fields = {}
    for k, v in _KV.findall(m.group(4)):
        if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
            v = v[1:-1]  # noqa: PLW2901 - the loop value normalised in place
        fields[k] = v
    return float(m.group(1)), (m.group(2) or "info").lower(), m.group(3), fields


@dataclass
class NodeTrack:
    """One emulated node, as its console tells it."""

    name: str
    console: Path
    spawned: float
    pid: int = 0
    times: dict[str, float] = field(default_factory=dict)
    runtime: bool = False
    hostname: str = ""
    ip: str = ""
    position: int = 0
    queue_len: int = 0
    eta: float = 0.0
    retries: int = 0
    chunk_retries: int = 0
    failed: str = ""
    exit_status: int | None = None
    kexec_cmdline: str = ""
    _offset: int = 0
    _partial: str = ""

    @property
    def step(self) -> str:
        if self.failed:
            return "failed"
        if "ready" in self.times:
            return "ready"
        if self.exit_status is not None:
            return "exited"
        for label in reversed(STEPS):
            if label in self.times:
                return label
        return "spawned"

    @property
    def ready(self) -> bool:
        return "ready" in self.times

    def poll(self) -> None:
        """Read what the console gained since the last poll."""
        try:
            with self.console.open("rb") as fh:
                fh.seek(self._offset)
                data = fh.read()
        except FileNotFoundError:
            return
        self._offset += len(data)
        text = self._partial + data.decode("utf-8", "replace")
        lines = text.split("\n")
        self._partial = lines.pop()
        for line in lines:
            self.feed(line)

    def feed(self, line: str) -> None:
        if "FATAL:" in line and not self.failed:
            self.failed = line.split("FATAL:", 1)[1].strip()[:200]
            return
        parsed = parse_line(line)
        if parsed is None:
            return
        t, _level, event, f = parsed
        if event == "dhcp_lease":
            self.times.setdefault("dhcp", t)
            self.ip = f.get("ip", "")
        elif event == "node_welcomed" and not self.runtime:
            self.times.setdefault("enrolled", t)
            self.hostname = f.get("hostname", self.hostname)
        elif event == "capsule_queued":
            self.times.setdefault("queued", t)
            self.position, self.eta = int(f.get("position", "0") or 0), float(f.get("eta_s", "0") or 0)
            self.queue_len = int(f.get("of", "0") or 0)
        elif event == "capsule_fetch_started":
            self.times.setdefault("capsule", t)
            self.position = 0
        elif event == "kexec_emulated":
            self.times["kexec"] = t
            self.kexec_cmdline = f.get("cmdline", "")
        elif event == "agent_starting" and f.get("mode") == "runtime":
            self.runtime = True
        elif event in ("node_welcomed", "checked_in") and self.runtime:
            self.times.setdefault("ready", t)
        elif event == "chunk_retry":
            self.chunk_retries += 1
        elif event == "retry_wait" and f.get("reason") != "busy":
            self.retries += 1

    def summary(self, origin: float) -> dict[str, float | int | str | None]:
        """Per-node timeline in seconds since `origin` (the storm's start), plus what went wrong."""
        t = self.times

        def at(label: str) -> float | None:
            return round(t[label] - origin, 3) if label in t else None

        def span(a: str, b: str) -> float | None:
            return round(t[b] - t[a], 3) if a in t and b in t else None

        queued = span("queued", "capsule") if "queued" in t else 0.0
        return {
            "node": self.name,
            "hostname": self.hostname,
            "ip": self.ip,
            "power_on": round(self.spawned - origin, 3),
            "dhcp": at("dhcp"),
            "enrolled": at("enrolled"),
            "queue_wait": queued,
            "capsule_start": at("capsule"),
            "capsule": span("capsule", "kexec"),
            "kexec": at("kexec"),
            "ready": at("ready"),
            "retries": self.retries,
            "chunk_retries": self.chunk_retries,
            "failed": self.failed or (None if self.ready or self.exit_status is None else f"exited {self.exit_status}"),
        }
