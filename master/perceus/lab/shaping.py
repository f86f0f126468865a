"""Link shaping for the emulated fleet: `tc tbf` rate limits and `iptables statistic` packet loss.

This kernel has no netem (lab-recipes.md): bandwidth is a token bucket on each end of a veth (the peer end
shapes the other direction), loss is an nft-backed iptables rule that drops a random share of packets inside
a node's namespace.  Delay cannot be emulated in the kernel here and is not.
"""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from dataclasses import dataclass

from perceus.lab.netns import LabError


@dataclass(frozen=True)
class Rate:
    """A link rate in Mbit/s, with what tbf needs: a burst of at least one timer tick at that rate."""

    mbit: float

    def __post_init__(self) -> None:
        if self.mbit <= 0:
            raise ValueError(f"link rate {self.mbit} Mbit/s must be positive")

    @property
    def bytes_per_s(self) -> float:
        return self.mbit * 1e6 / 8

    @property
    def burst_bytes(self) -> int:
        # 4 ms worth (a 250 Hz tick) and never below 4 KiB: smaller bursts cap the rate below the setting.
        return max(4096, int(self.bytes_per_s * 0.004))

    def __str__(self) -> str:
        return f"{self.mbit:g} Mbit/s"


def parse_rate(text: str) -> Rate:
    """`20`, `20mbit`, `1gbit`, `500kbit` → Rate (Mbit/s)."""
    raw = text.strip().lower().removesuffix("/s").removesuffix("ps")
    scale = 1.0
    for suffix, factor in (("gbit", 1000.0), ("mbit", 1.0), ("kbit", 0.001), ("g", 1000.0), ("m", 1.0)):
        if raw.endswith(suffix):
            raw, scale = raw[: -len(suffix)], factor
            break
    try:
        return Rate(float(raw) * scale)
    except ValueError:
        raise LabError(f"not a link rate: {text!r} (e.g. 20mbit, 1gbit)") from None


def _run(argv: Sequence[str]) -> None:
    proc = subprocess.run(list(argv), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise LabError(f"{' '.join(argv)}: {proc.stderr.strip() or proc.returncode}")


def tbf_argv(netns: str, dev: str, rate: Rate, *, latency_ms: int = 100) -> list[str]:
    """`tc qdisc replace … tbf` on `dev` in `netns`: egress of that end of the link limited to `rate`."""
    return ["tc", "-n", netns, "qdisc", "replace", "dev", dev, "root", "tbf",
            "rate", f"{int(rate.mbit * 1000)}kbit", "burst", str(rate.burst_bytes),
            "latency", f"{latency_ms}ms"]  # fmt: skip


def shape(netns: str, dev: str, rate: Rate, *, latency_ms: int = 100) -> None:
    _run(tbf_argv(netns, dev, rate, latency_ms=latency_ms))


def loss_rules(probability: float) -> list[list[str]]:
    """iptables rules (INPUT and OUTPUT) that drop `probability` of packets at random, both directions."""
    if not 0.0 < probability < 1.0:
        raise LabError(f"loss probability {probability} outside (0, 1)")
    return [["-A", chain, "-m", "statistic", "--mode", "random", "--probability", f"{probability:.4f}", "-j", "DROP"]
            for chain in ("INPUT", "OUTPUT")]  # fmt: skip


def set_loss(netns: str, probability: float) -> None:
    """Drop `probability` of this namespace's packets (both directions); 0 removes the rules."""
    _run(["ip", "netns", "exec", netns, "iptables", "-F", "INPUT"])
    _run(["ip", "netns", "exec", netns, "iptables", "-F", "OUTPUT"])
    if probability > 0:
        for rule in loss_rules(probability):
            _run(["ip", "netns", "exec", netns, "iptables", *rule])


def link_bytes(netns: str) -> dict[str, tuple[int, int]]:
    """{device: (rx_bytes, tx_bytes)} of every link in `netns` (one `ip -s -j link` call)."""
    import json

    proc = subprocess.run(["ip", "-n", netns, "-s", "-j", "link", "show"], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return {}
    out: dict[str, tuple[int, int]] = {}
    for link in json.loads(proc.stdout or "[]"):
        stats = link.get("stats64") or {}
        out[str(link.get("ifname"))] = (
            int(stats.get("rx", {}).get("bytes", 0)),
            int(stats.get("tx", {}).get("bytes", 0)),
        )
    return out
