"""The security keys of perceus.conf, read from MasterConfig.raw (config.py keeps the original's syntax).

bus security = curve        # curve (default) | none — none only for benchmarks and 1.x-style labs
bus rate limit = 500        # requests per second per source (curve key, else IP); 0 = off
bus rate burst = 2000       # requests a quiet source may send at once
bus handshake limit = 50    # new CurveZMQ sessions per second per IP address; 0 = off
bus handshake burst = 500
bus session probe = 20      # seconds a live session has to answer when another key claims its node
bus kexec window = 120      # … and how long after stage one announced provisiond's key and went silent
bus reprovision window = 300  # … and after provisiond acknowledged `perceus node reprovision` (re-entry key)
"""

from __future__ import annotations

from dataclasses import dataclass

from perceus.errors import ConfigError
from perceus.master.config import MasterConfig

MODES = ("curve", "none")


@dataclass(frozen=True)
class SecuritySettings:
    mode: str = "curve"
    rate: float = 500.0
    burst: float = 2000.0
    handshake_rate: float = 50.0
    handshake_burst: float = 500.0
    session_probe: float = 20.0
    kexec_window: float = 120.0
    reprovision_window: float = 300.0

    @property
    def curve(self) -> bool:
        return self.mode == "curve"


def _number(raw: dict[str, list[str]], key: str, default: float) -> float:
    if key not in raw:
        return default
    text = raw[key][0]
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"'{key} = {text}' is not a number", path="perceus.conf") from None
    if not 0 <= value <= 1e9:
        raise ConfigError(f"'{key} = {text}' is out of range", path="perceus.conf")
    return value


def load(config: MasterConfig, override: str | None = None) -> SecuritySettings:
    raw = config.raw
    mode = (override or raw.get("bus security", ["curve"])[0]).lower()
    if mode not in MODES:
        raise ConfigError(f"'bus security = {mode}' not understood (use curve or none)", path="perceus.conf")
    rate = _number(raw, "bus rate limit", SecuritySettings.rate)
    hs = _number(raw, "bus handshake limit", SecuritySettings.handshake_rate)
    return SecuritySettings(
        mode=mode,
        rate=rate,
        burst=max(1.0, _number(raw, "bus rate burst", max(SecuritySettings.burst, rate * 4))),
        handshake_rate=hs,
        handshake_burst=max(1.0, _number(raw, "bus handshake burst", max(SecuritySettings.handshake_burst, hs * 4))),
        session_probe=max(0.5, _number(raw, "bus session probe", SecuritySettings.session_probe)),
        kexec_window=_number(raw, "bus kexec window", SecuritySettings.kexec_window),
        reprovision_window=_number(raw, "bus reprovision window", SecuritySettings.reprovision_window),
    )
