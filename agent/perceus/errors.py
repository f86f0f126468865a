"""The one exception hierarchy of Perceus; every error keeps its inputs and builds a one-line message."""

from __future__ import annotations


class PerceusError(Exception):
    """Base class: `str(err)` is a complete one-line message fit for `perceus: error: …`."""

    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(PerceusError):
    """The command line itself is wrong (exit 2)."""

    exit_code = 2


class ConfigError(PerceusError):
    """A configuration file or value is invalid."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        where = f"{path}:{line}: " if path and line else (f"{path}: " if path else "")
        super().__init__(where + message)
        self.path = path
        self.line = line


class InvalidHardwareAddress(PerceusError):
    """A MAC / InfiniBand hardware address that cannot be normalised."""

    def __init__(self, value: str) -> None:
        super().__init__(f"invalid hardware address {value!r} (expected a 6-octet MAC or 20-octet IPoIB address)")
        self.value = value


class NotFoundError(PerceusError):
    """A named object (node, group, capsule, module) does not exist."""

    def __init__(self, kind: str, name: str) -> None:
        super().__init__(f"{kind} {name!r} does not exist")
        self.kind = kind
        self.name = name


class AlreadyExistsError(PerceusError):
    """Creating an object that exists already (duplicate hostname or MAC, capsule name …)."""

    def __init__(self, kind: str, name: str, detail: str = "") -> None:
        super().__init__(f"{kind} {name!r} already exists" + (f" ({detail})" if detail else ""))
        self.kind = kind
        self.name = name


class ConflictError(PerceusError):
    """The request contradicts the current state (node in use, capsule mounted, …)."""


class ProtocolError(PerceusError):
    """A frame on the bus could not be decoded or validated; the only error the codec raises."""

    def __init__(self, message: str, *, code: str = "BAD_MESSAGE") -> None:
        super().__init__(message)
        self.code = code


class BusError(PerceusError):
    """Talking to a master failed (timeout, error reply)."""

    def __init__(self, message: str, *, code: str = "") -> None:
        super().__init__(message)
        self.code = code


class CapsuleError(PerceusError):
    """A VNFS capsule is invalid, unsafe or fails verification."""


class KexecError(PerceusError):
    """kexec_file_load or reboot(KEXEC) failed; `errno` tells why."""

    def __init__(self, message: str, *, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno
