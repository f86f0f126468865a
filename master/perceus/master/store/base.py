"""The node store interface: what handlers and the CLI see.  SQL stays in the backends.

Every method is one transaction.  A second backend (PostgreSQL, multi-master) implements the same class
and passes the same contract tests (tests/integration/store/).
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Sequence
from types import TracebackType
from typing import Any, Self

from perceus.master.config import NodeDefaults
from perceus.master.inventory import Change, NodeInventory
from perceus.master.store.models import (
    Activation,
    ContactUpdate,
    EnrollRequest,
    ImportOutcome,
    InventoryReport,
    MasterInfo,
    NewNode,
    Node,
    Pending,
    PhaseEvent,
)

SCHEMA_VERSION = 3
# Events kept per node (every backend); older ones are pruned so the table cannot grow without bound.
EVENTS_PER_NODE = 200


class NodeStore(abc.ABC):
    """Repository of nodes, pending nodes and boot events."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @abc.abstractmethod
    def close(self) -> None: ...

    @abc.abstractmethod
    def schema_version(self) -> int: ...

    # -- reads
    @abc.abstractmethod
    def get(self, nodeid: str) -> Node | None:
        """The node owning hardware address `nodeid` (primary or extra MAC)."""

    @abc.abstractmethod
    def get_by_hostname(self, hostname: str) -> Node | None: ...

    @abc.abstractmethod
    def find_by_macs(self, macs: Iterable[str]) -> Node | None:
        """The node owning any of `macs` (hello carries every MAC of a node)."""

    @abc.abstractmethod
    def list_nodes(self) -> list[Node]:
        """Every node, sorted by hostname."""

    @abc.abstractmethod
    def count_by_status(self) -> dict[str, int]: ...

    @abc.abstractmethod
    def groups(self) -> list[str]:
        """Sorted names of groups that have nodes."""

    # -- writes (each one transaction)
    @abc.abstractmethod
    def add(self, node: NewNode) -> Node:
        """Add one node; AlreadyExistsError on a MAC or hostname clash."""

    @abc.abstractmethod
    def add_auto(self, nodeid: str, defaults: NodeDefaults, *, nodename: str = "") -> Node:
        """`perceus node add MAC` without a name: the lowest free name from defaults.conf."""

    @abc.abstractmethod
    def enroll(self, requests: Sequence[EnrollRequest], defaults: NodeDefaults) -> list[Node]:
        """Auto-add unknown nodes in one transaction, lowest free names first, in request order.

        Idempotent: a request whose MAC is already known returns the existing node.  Safe against
        concurrent enrollment from other processes (and, for shared backends, other masters).
        """

    @abc.abstractmethod
    def update(self, nodeids: Sequence[str], changes: dict[str, Any]) -> int:
        """Set node columns (see models.SETTABLE) and/or extra attributes (`attrs.<key>`) on nodes."""

    @abc.abstractmethod
    def delete(self, nodeids: Sequence[str]) -> int: ...

    @abc.abstractmethod
    def replace(self, old: str, new: str) -> Node:
        """`node replace OLD NEW` (hostnames): NEW's hardware takes over OLD's name and attributes."""

    @abc.abstractmethod
    def rename_group(self, old: str, new: str) -> int: ...

    @abc.abstractmethod
    def import_nodes(self, nodes: Sequence[NewNode], *, update: bool) -> ImportOutcome: ...

    @abc.abstractmethod
    def record_contacts(self, updates: Sequence[ContactUpdate]) -> None:
        """Group commit of check-ins: status, ip, lastcontact, boot_id, phase for many nodes at once."""

    @abc.abstractmethod
    def record_events(self, events: Sequence[PhaseEvent]) -> None: ...

    @abc.abstractmethod
    def events(self, nodeid: str, boot_id: str = "") -> list[PhaseEvent]:
        """A node's boot timeline (latest boot when boot_id is empty), oldest first."""

    # -- hardware inventory (issue 17)
    @abc.abstractmethod
    def record_inventories(self, reports: Sequence[InventoryReport]) -> list[tuple[InventoryReport, Change]]:
        """Keep each node's latest inventory per stage; returns the changes from earlier boots first seen now.
        Reports of unknown nodes are dropped."""

    @abc.abstractmethod
    def inventories(self, nodeids: Sequence[str] | None = None) -> dict[str, NodeInventory]:
        """The newest inventory (of either stage) and the changes that hold, per nodeid (every node if None)."""

    # -- enrollment approval
    @abc.abstractmethod
    def note_pending(self, request: EnrollRequest, ip: str, t: float) -> None: ...

    @abc.abstractmethod
    def pending(self) -> list[Pending]: ...

    @abc.abstractmethod
    def drop_pending(self, nodeids: Sequence[str]) -> int: ...

    # -- module activations (issue 7)
    @abc.abstractmethod
    def activate(self, activations: Sequence[Activation]) -> int:
        """Add activations (idempotent); returns how many were new."""

    @abc.abstractmethod
    def deactivate(self, activations: Sequence[Activation]) -> int:
        """Remove activations; returns how many existed."""

    @abc.abstractmethod
    def activations(self, module: str = "") -> list[Activation]:
        """Every activation (of one module), sorted by module, state, scope, target."""

    # -- masters sharing the store (issue 9)
    @abc.abstractmethod
    def heartbeat(self, master: MasterInfo) -> None:
        """Insert or refresh this master's row."""

    @abc.abstractmethod
    def masters(self) -> list[MasterInfo]:
        """Every master that ever beat, sorted by id."""

    @abc.abstractmethod
    def forget_master(self, master_id: str) -> int: ...
