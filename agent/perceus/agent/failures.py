"""Agent-side errors, in the one PerceusError hierarchy (candidates to move into perceus/errors.py)."""

from __future__ import annotations

from perceus.errors import PerceusError


class DriverError(PerceusError):
    """A kernel module could not be loaded, or the module index is unreadable."""

    def __init__(self, message: str, *, module: str = "", errno: int = 0) -> None:
        super().__init__(message)
        self.module = module
        self.errno = errno


class NetworkError(PerceusError):
    """No link came up, or no DHCP lease / static address could be configured."""

    def __init__(self, message: str, *, iface: str = "") -> None:
        super().__init__(message)
        self.iface = iface


class PhaseError(PerceusError):
    """An illegal boot-phase transition (a bug in the flow, never a node condition)."""

    def __init__(self, current: str, wanted: str) -> None:
        super().__init__(f"illegal phase transition {current} -> {wanted}")
        self.current = current
        self.wanted = wanted


class FatalBoot(PerceusError):
    """Stage one cannot go on: the console shows `reason`, then a shell (debug >= 1) or a reboot."""
