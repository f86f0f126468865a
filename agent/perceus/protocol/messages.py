"""Protocol v1 messages, declared once and shared by master and agent (design.md §3).

Every message is a frozen keyword-only dataclass; the codec (codec.py) turns it into one msgpack map with
``v`` (protocol version), ``t`` (type) and ``rid`` (request id, echoed in the reply).  Unknown keys are
ignored so older agents keep working; fields added later must have defaults.

`seq` (every node → master request): a per-boot sequence number the agent's BusClient stamps on each send;
the master refuses a `seq` at or below the last one it saw for that (node, boot) as REPLAYED (0 = an agent
older than the security work, not sequenced).  See docs/security.md for how it layers under CurveZMQ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from perceus.protocol.enums import ErrorCode, Phase, Stage, WaitReason

PROTOCOL_VERSION = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """Base of every message; `rid` pairs a reply with its request (0 for unsolicited messages)."""

    TYPE: ClassVar[str] = ""
    rid: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    """One node script: its basename (sort key) and the POSIX sh text the node runs."""

    name: str
    body: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Action:
    """A typed module action the agent applies itself (not shell): `module` names it, `data` is its input."""

    module: str
    kind: str
    data: Mapping[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- node → master


@dataclass(frozen=True, slots=True, kw_only=True)
class Hello(Message):
    """node → master, v1: first contact of a boot (stage one `init`, or provisiond starting)."""

    TYPE: ClassVar[str] = "hello"
    macs: tuple[str, ...]
    state: str
    stage: Stage
    boot_id: str
    agent_version: str = ""
    seq: int = 0
    nodename: str = ""
    inventory: Mapping[str, Any] = field(default_factory=dict)
    # since v1 + security (issue 14): stage one announces the curve public key (hex) provisiond will use after
    # kexec; that key then continues this boot's session (docs/security.md, "Session continuity").
    next_key: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckIn(Message):
    """node → master, v1: periodic (or pushed "sync now") check-in of an enrolled node."""

    TYPE: ClassVar[str] = "checkin"
    node: str
    state: str
    boot_id: str
    seq: int = 0
    stage: Stage = Stage.RUNTIME
    events: tuple[Mapping[str, Any], ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Report(Message):
    """node → master, v1: a boot phase started or ended (`ok` false = failed with `detail`)."""

    TYPE: ClassVar[str] = "report"
    node: str
    boot_id: str
    phase: Phase
    at: float
    ok: bool = True
    done: bool = True
    detail: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ScriptResult(Message):
    """node → master, v1: exit status and tail of output of the node scripts of one state."""

    TYPE: ClassVar[str] = "script_result"
    node: str
    boot_id: str
    state: str
    status: int
    output: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GetManifest(Message):
    """node → master, v1: ask for the signed manifest of a capsule (by name, or by manifest hash)."""

    TYPE: ClassVar[str] = "get_manifest"
    node: str
    capsule: str
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GetChunks(Message):
    """node → master, v1: request chunks by hash; the master answers one `chunk` per hash (credit flow)."""

    TYPE: ClassVar[str] = "get_chunks"
    node: str
    hashes: tuple[str, ...]
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecResult(Message):
    """node → master, v1: result of a `perceus node exec` command run by the agent."""

    TYPE: ClassVar[str] = "exec_result"
    node: str
    job: str
    status: int
    stdout: bytes = b""
    stderr: bytes = b""
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class GetSources(Message):
    """node → master, v1 + swarm (issue 21): where to fetch the next chunks of `manifest` from.

    Chunks are named by index into the manifest's distinct chunk list (`CapsuleManifest.all_chunks()`).
    `have`: indices verified since the last call (the node now serves them on `port`, 0 = not serving);
    `bad`: peers (node ids) that served bytes failing verification; `dead`: peers that did not answer."""

    TYPE: ClassVar[str] = "get_sources"
    node: str
    manifest: str
    want: tuple[int, ...] = ()
    credit: int = 0  # how many of `want` the node can take now (0: as many as listed)
    have: tuple[int, ...] = ()
    bad: tuple[str, ...] = ()
    dead: tuple[str, ...] = ()
    port: int = 0
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class Handover(Message):
    """node → master, v1 + security (issue 14): stage one, just before kexec, restates the key provisiond will
    use (`next_key`, hex), or "" when none can be handed over (root on disk): the master then stops holding
    the node's session for it (docs/security.md, "Session continuity")."""

    TYPE: ClassVar[str] = "handover"
    node: str
    boot_id: str
    next_key: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ReprovisionAck(Message):
    """node → master, v1 + reprovision (issue 19): provisiond's answer to `reprovision`.  `ok`: stage one is
    downloaded, verified and loaded, and the kexec follows this message; `next_key` (hex) is the CurveZMQ key
    the re-entered stage one will use (handed over inside its initramfs).  `ok` false: why not (`detail`)."""

    TYPE: ClassVar[str] = "reprovision_ack"
    node: str
    boot_id: str
    job: str
    ok: bool
    detail: str = ""
    next_key: str = ""
    seq: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PeerGet(Message):
    """node → peer node, v1 + swarm (issue 21): one chunk of `manifest` by hash; `token` is the master's
    signed voucher for the asking node (answered with `chunk` + raw frame, or `error`)."""

    TYPE: ClassVar[str] = "peer_get"
    node: str
    manifest: str
    hash: str
    token: bytes = b""


# ---------------------------------------------------------------------------------------------- master → node


@dataclass(frozen=True, slots=True, kw_only=True)
class Welcome(Message):
    """master → node, v1: reply to `hello`: who the node is and what to do (scripts, actions, capsule)."""

    TYPE: ClassVar[str] = "welcome"
    node: str
    hostname: str
    group: str = ""
    vnfs: str = ""
    debug: int = 0
    interval: float = 300.0
    capsule: str = ""
    scripts: tuple[Script, ...] = ()
    actions: tuple[Action, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    masters: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Wait(Message):
    """master → node, v1: not now — come back after `retry_after` seconds (pending, disabled, no capsule)."""

    TYPE: ClassVar[str] = "wait"
    reason: WaitReason
    retry_after: float
    message: str = ""
    node: str = ""
    hostname: str = ""
    # since v1 + pacing (issue 18): reason `busy` for a capsule transfer — the node's place in the queue (1 =
    # next), the queue's length and an estimate in seconds until its turn (0 = none yet).
    position: int = 0
    queue: int = 0
    eta: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Ack(Message):
    """master → node, v1: reply to `checkin`, `report` and results: next interval and any actions."""

    TYPE: ClassVar[str] = "ack"
    interval: float = 300.0
    scripts: tuple[Script, ...] = ()
    actions: tuple[Action, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Manifest(Message):
    """master → node, v1: the capsule manifest as the exact signed bytes (`data`) and their hash."""

    TYPE: ClassVar[str] = "manifest"
    capsule: str
    hash: str
    data: bytes
    signature: bytes = b""


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk(Message):
    """master → node, v1: one capsule chunk; the compressed bytes follow as the next raw frame."""

    TYPE: ClassVar[str] = "chunk"
    hash: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class SwarmPeer:
    """One peer in `sources`: its node id, where its peer server listens and its CurveZMQ public key (hex)."""

    node: str
    endpoint: str
    key: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Sources(Message):
    """master → node, v1 + swarm (issue 21): reply to `get_sources`.

    `assign` pairs a wanted chunk index with an index into `peers` (-1: fetch it from the master); wanted
    chunks not assigned are asked for again later (`retry_after`).  `token` is the master's Ed25519 signature
    that this node may fetch `manifest` from peers (docs/capsules.md, Swarm); `now` is the master's clock."""

    TYPE: ClassVar[str] = "sources"
    manifest: str
    peers: tuple[SwarmPeer, ...] = ()
    assign: tuple[tuple[int, ...], ...] = ()
    token: bytes = b""
    issued: float = 0.0
    now: float = 0.0
    retry_after: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class BootFile:
    """One file of the stage-one image in `reprovision`: where to fetch it, its size and its SHA-256 (hex)."""

    url: str
    sha256: str
    size: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Reprovision(Message):
    """master → node over the ROUTER to the bound session only, v1 + reprovision (issue 19): provisiond, go
    back into stage one without firmware — fetch `kernel` and `initrds` (concatenated in order), check each
    against its size and SHA-256, kexec with `cmdline`, answer `reprovision_ack` first (docs/power.md)."""

    TYPE: ClassVar[str] = "reprovision"
    job: str
    node: str
    kernel: BootFile
    initrds: tuple[BootFile, ...]
    cmdline: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Error(Message):
    """master → node, v1: the request failed; `code` says why."""

    TYPE: ClassVar[str] = "error"
    code: ErrorCode
    message: str = ""


# ---------------------------------------------------------------------------------------------- master PUB


@dataclass(frozen=True, slots=True, kw_only=True)
class Sync(Message):
    """master PUB, v1: the listed nodes (NodeIDs; empty = all) should check in now."""

    TYPE: ClassVar[str] = "sync"
    nodes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Exec(Message):
    """master → node over the ROUTER (PUB before issue 14), v1: run a command (xcpu module), answer `exec_result`."""

    TYPE: ClassVar[str] = "exec"
    job: str
    nodes: tuple[str, ...]
    argv: tuple[str, ...]
    timeout: float = 60.0


@dataclass(frozen=True, slots=True, kw_only=True)
class Event(Message):
    """master PUB, v1: something happened to a node (enrolled, phase, check-in) — for watchers and the demo."""

    TYPE: ClassVar[str] = "event"
    event: str
    node: str = ""
    hostname: str = ""
    at: float = 0.0
    data: Mapping[str, Any] = field(default_factory=dict)


AGENT_TO_MASTER: tuple[type[Message], ...] = (
    Hello,
    CheckIn,
    Report,
    ScriptResult,
    GetManifest,
    GetChunks,
    ExecResult,
    GetSources,
    PeerGet,
    Handover,
    ReprovisionAck,
)
MASTER_TO_AGENT: tuple[type[Message], ...] = (Welcome, Wait, Ack, Manifest, Chunk, Error, Sources, Reprovision)
PUBLISHED: tuple[type[Message], ...] = (Sync, Exec, Event)
ALL_MESSAGES: tuple[type[Message], ...] = AGENT_TO_MASTER + MASTER_TO_AGENT + PUBLISHED
