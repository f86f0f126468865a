"""Enumerations that travel on the wire: error codes, stages, boot phases."""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """What went wrong; agents act on the code, never on the message text."""

    BAD_MESSAGE = "BAD_MESSAGE"
    UNSUPPORTED_VERSION = "UNSUPPORTED_VERSION"
    TOO_LARGE = "TOO_LARGE"
    UNKNOWN_NODE = "UNKNOWN_NODE"
    DISABLED = "DISABLED"
    NO_CAPSULE = "NO_CAPSULE"
    PENDING_APPROVAL = "PENDING_APPROVAL"
    NOT_FOUND = "NOT_FOUND"
    RATE_LIMITED = "RATE_LIMITED"
    REVOKED = "REVOKED"
    REPLAYED = "REPLAYED"
    INTERNAL = "INTERNAL"


class Stage(StrEnum):
    """Which program is talking: the stage-one agent or provisiond in the runtime OS."""

    STAGE1 = "stage1"
    RUNTIME = "runtime"


class Phase(StrEnum):
    """Boot phases a node reports so the master can draw a per-node timeline."""

    BOOT = "boot"
    DRIVERS = "drivers"
    DHCP = "dhcp"
    ENROLL = "enroll"
    SCRIPTS = "scripts"
    CAPSULE = "capsule"
    INSTALL = "install"
    KEXEC = "kexec"
    RUNTIME = "runtime"
    FAILED = "failed"


class WaitReason(StrEnum):
    """Why the master asks a node to come back later."""

    PENDING_APPROVAL = "pending_approval"
    DISABLED = "disabled"
    NO_CAPSULE = "no_capsule"
    SCRIPT_FAILED = "script_failed"
    BUSY = "busy"
