"""The store side of `perceus import`: the plan checked against the stored nodes, then one transaction."""

from __future__ import annotations

import dataclasses

from perceus.importers.plan import Plan, PlanOptions, build
from perceus.importers.records import ParseResult
from perceus.master.cli.context import CliContext
from perceus.master.config import MasterConfig
from perceus.master.power.imported import merge_imported
from perceus.master.store import NodeStore, open_store
from perceus.master.store.models import ImportOutcome, NewNode


def stored_macs(store: NodeStore) -> dict[str, str]:
    """Every MAC (NodeID and further MACs) of the stored nodes → the node's hostname."""
    return {mac: node.hostname for node in store.list_nodes() for mac in (node.nodeid, *node.macs)}


def _existing_store(ctx: CliContext) -> NodeStore | None:
    """The store if it exists already: a dry run reads it but must not create one."""
    config = MasterConfig.load(ctx.paths)
    if config.database == "sqlite" and not ctx.paths.database.exists():
        return None
    return open_store(ctx.paths, config)


def dry_run(ctx: CliContext, result: ParseResult, options: PlanOptions) -> Plan:
    """The plan the real run would make, from the same stored nodes; nothing is written or created."""
    store = _existing_store(ctx)
    if store is None:
        return build(result, options)
    try:
        return build(result, _with_store(options, store))
    finally:
        store.close()


def apply(
    ctx: CliContext, result: ParseResult, options: PlanOptions, *, strict: bool
) -> tuple[Plan, ImportOutcome | None]:
    """Plan against the store and store the nodes in one transaction; strict with errors: nothing (None)."""
    store = ctx.store
    plan = build(result, _with_store(options, store))
    if plan.errors and strict:
        return plan, None
    outcome = store.import_nodes(new_nodes(plan), update=options.update)
    # BMC addresses the source names (xCAT bmc, Warewulf ipmi, CSM HWControlPoint) become IPMI entries of the
    # BMC file for nodes that have none yet; never a password (no source gives one).
    found = [(n.mac, n.record.bmc.address, n.record.bmc.username) for n in plan.nodes if n.record.bmc]
    if found:
        merge_imported(ctx.paths, found)
    return plan, outcome


def _with_store(options: PlanOptions, store: NodeStore) -> PlanOptions:
    return dataclasses.replace(options, stored=stored_macs(store))


def new_nodes(plan: Plan) -> list[NewNode]:
    """The store's NewNode values of the planned nodes."""
    return [NewNode(nodeid=n.mac, hostname=n.hostname, group=n.group, vnfs=n.vnfs, ip=n.ip) for n in plan.nodes]
