"""What can go wrong talking to a BMC, as one PerceusError subclass with a kind the runner acts on."""

from __future__ import annotations

from perceus.errors import PerceusError

# Kinds of failure: retried (the BMC may answer next time) or final (trying again cannot help).
RETRIED = frozenset({"unreachable", "timeout", "bmc"})
FINAL = frozenset({"auth", "unsupported", "config"})


class BmcError(PerceusError):
    """One BMC request failed; `kind` is one of RETRIED | FINAL, `bmc` the address (never a password)."""

    def __init__(self, kind: str, bmc: str, detail: str) -> None:
        super().__init__(f"{bmc}: {detail}" if bmc else detail)
        self.kind = kind
        self.bmc = bmc
        self.detail = detail

    @property
    def retry(self) -> bool:
        return self.kind in RETRIED
