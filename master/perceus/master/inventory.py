"""A node's hardware inventory as the master keeps it: validated from the wire, compared between boots.

The agent (perceus.agent.inventory) sends CPU, memory, NICs, disks and DMI ids with every `hello`.  The node is
not trusted: every field is type-checked, every string and list capped; what does not fit becomes "" or 0.
Comparing two inventories of the same stage (stage one with stage one, runtime with runtime: their kernels
may see different hardware) yields changes such as "disk sdb missing", kept while they hold.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_TEXT = 256
MAX_ITEMS = 128
MAX_CHANGES = 64
MEMORY_TOLERANCE = 0.1  # MemTotal differs by kernel reservations: a smaller difference is the same memory


def _text(value: Any) -> str:
    return value[:MAX_TEXT] if isinstance(value, str) else ""


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 1 << 62 else 0


def _dicts(value: Any) -> list[Mapping[str, Any]]:
    return [v for v in value[:MAX_ITEMS] if isinstance(v, Mapping)] if isinstance(value, list | tuple) else []


@dataclass(frozen=True)
class Disk:
    name: str
    size: int  # bytes
    model: str = ""


@dataclass(frozen=True)
class Nic:
    name: str
    mac: str
    driver: str = ""
    speed: int = 0  # Mb/s; 0 = unknown or link down
    link: bool = False


@dataclass(frozen=True)
class Inventory:
    """What a node's hello said about its hardware."""

    cpu_model: str = ""
    cpu_count: int = 0
    memory: int = 0  # bytes (MemTotal)
    disks: tuple[Disk, ...] = ()
    nics: tuple[Nic, ...] = ()
    vendor: str = ""
    product: str = ""
    serial: str = ""
    bmc: str = ""  # the BMC's LAN address, when the node could read it (node-reported: a hint, never trusted)
    kernel: str = ""
    bmc_mac: str = ""
    bmc_source: str = ""  # "static", "dhcp", … (LAN configuration parameter 4)

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> Inventory:
        """The agent's `inventory` mapping (see perceus.agent.inventory.collect), checked field by field."""
        cpu = data.get("cpu") if isinstance(data.get("cpu"), Mapping) else {}
        dmi = data.get("dmi") if isinstance(data.get("dmi"), Mapping) else {}
        bmc = data.get("bmc") if isinstance(data.get("bmc"), Mapping) else {}
        assert isinstance(cpu, Mapping) and isinstance(dmi, Mapping) and isinstance(bmc, Mapping)
        return cls(
            cpu_model=_text(cpu.get("model")),
            cpu_count=_count(cpu.get("count")),
            memory=_count(data.get("memory")),
            disks=tuple(
                Disk(_text(d.get("name")), _count(d.get("size")), _text(d.get("model")))
                for d in _dicts(data.get("disks"))
                if _text(d.get("name"))
            ),
            nics=tuple(
                Nic(
                    _text(n.get("name")),
                    _text(n.get("mac")).upper(),
                    _text(n.get("driver")),
                    _count(n.get("speed")),
                    n.get("link") is True,
                )
                for n in _dicts(data.get("nics"))
                if _text(n.get("mac"))
            ),
            vendor=_text(dmi.get("vendor")),
            product=_text(dmi.get("product")),
            serial=_text(dmi.get("serial")),
            bmc=_text(bmc.get("address")),
            kernel=_text(data.get("kernel")),
            bmc_mac=_text(bmc.get("mac")).upper(),
            bmc_source=_text(bmc.get("source")),
        )

    @classmethod
    def from_json(cls, text: str) -> Inventory:
        data = json.loads(text)
        return cls(
            **{k: v for k, v in data.items() if k not in ("disks", "nics")},
            disks=tuple(Disk(**d) for d in data.get("disks", ())),
            nics=tuple(Nic(**n) for n in data.get("nics", ())),
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    def as_dict(self) -> dict[str, Any]:
        """The `--json` shape."""
        return {
            "cpu": {"model": self.cpu_model, "count": self.cpu_count},
            "memory": self.memory,
            "disks": [asdict(d) for d in self.disks],
            "nics": [asdict(n) for n in self.nics],
            "dmi": {"vendor": self.vendor, "product": self.product, "serial": self.serial},
            "bmc": self.bmc,
            "kernel": self.kernel,
        }

    def items(self) -> dict[str, str]:
        """The hardware as comparable items (link state and speed are not hardware; the kernel is software)."""
        out = {
            "cpu": f"{self.cpu_count} × {self.cpu_model}" if self.cpu_model else str(self.cpu_count),
            "memory": human_bytes(self.memory),
        }
        out |= {f"disk {d.name}": f"{human_bytes(d.size)} {d.model}".rstrip() for d in self.disks}
        out |= {f"nic {n.mac}": n.driver for n in self.nics}
        if self.vendor or self.product or self.serial:
            out["system"] = " ".join(
                x for x in (self.vendor, self.product, f"serial {self.serial}" * bool(self.serial)) if x
            )
        if self.bmc:
            out["bmc"] = self.bmc
        return out

    def same_memory(self, other: Inventory) -> bool:
        high = max(self.memory, other.memory)
        return abs(self.memory - other.memory) <= MEMORY_TOLERANCE * high


@dataclass(frozen=True)
class Change:
    """A difference from an earlier boot, listed while it holds."""

    item: str  # "disk sdb", "nic 52:54:…", "memory", "cpu", "system", "bmc"
    kind: str  # "missing", "added" or "changed"
    since: float
    was: str = ""
    now: str = ""

    def describe(self) -> str:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(self.since))
        if self.kind == "missing":
            return (
                f"{self.item} missing since {when} (was {self.was})"
                if self.was
                else f"{self.item} missing since {when}"
            )
        if self.kind == "added":
            return f"{self.item} added {when} ({self.now})" if self.now else f"{self.item} added {when}"
        return f"{self.item} changed {when}: {self.was} → {self.now}"

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "text": self.describe()}


@dataclass(frozen=True)
class ReportedBmc:
    """The BMC address a node last read of its own BMC (stage one reads it through /dev/ipmi0; a runtime OS
    often cannot).  Node-reported and unauthenticated: shown to the admin, never used to reach or trust a BMC."""

    address: str
    mac: str
    source: str
    stage: str
    t: float

    @classmethod
    def of(cls, inventory: Inventory, stage: str, t: float) -> ReportedBmc | None:
        return cls(inventory.bmc, inventory.bmc_mac, inventory.bmc_source, stage, t) if inventory.bmc else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NodeInventory:
    """The latest inventory of a node and the changes that still hold."""

    inventory: Inventory
    stage: str
    boot_id: str
    t: float
    changes: tuple[Change, ...] = field(default=())
    reported_bmc: ReportedBmc | None = None  # from the newest inventory (of either stage) that had one

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.inventory.as_dict(),
            "stage": self.stage,
            "boot_id": self.boot_id,
            "t": self.t,
            "changes": [c.as_dict() for c in self.changes],
            "bmc_reported": self.reported_bmc.as_dict() if self.reported_bmc else None,
        }


def compare(previous: Inventory | None, current: Inventory, held: Mapping[str, Change], t: float) -> list[Change]:
    """The changes that hold after `current` arrived: `held` ones still true, plus new differences from
    `previous` (the same stage's last inventory; None on a first inventory, which changes nothing)."""
    now_items = current.items()
    out: dict[str, Change] = {}
    for item, change in held.items():  # what was reported earlier, while it still holds
        if (change.kind == "missing" and item not in now_items) or (
            change.kind != "missing" and now_items.get(item) == change.now
        ):
            out[item] = change
    if previous is not None:
        before = previous.items()
        for item, was in before.items():
            if item not in now_items:
                out.setdefault(item, Change(item, "missing", t, was=was))
            elif now_items[item] != was and not (item == "memory" and previous.same_memory(current)):
                out[item] = Change(item, "changed", t, was=was, now=now_items[item])
        for item, desc in now_items.items():
            if item not in before and item not in held:
                out[item] = Change(item, "added", t, now=desc)
    return sorted(out.values(), key=lambda c: (c.since, c.item))[:MAX_CHANGES]


def human_bytes(n: int) -> str:
    """1.5 GiB, 512 MiB, 20 GiB: memory and disk sizes as admins read them."""
    for unit, size in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{n} B"
