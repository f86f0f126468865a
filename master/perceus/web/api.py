"""The JSON API: the same shapes as `perceus … --json`, built by the same functions (cli/node.py, vnfs list)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from perceus.errors import PerceusError
from perceus.master.capsule.manage import infos
from perceus.master.cli.node import pending_data, status_extras, status_records, summary_data, timeline_data
from perceus.master.cli.node_inventory import configured_bmcs, show_records
from perceus.master.cli.vnfs_cmds.list_ import capsule_users, list_data
from perceus.master.store.models import Node
from perceus.protocol import hwaddr, names
from perceus.web import writes
from perceus.web.access import Caller, check_read, check_write, denied
from perceus.web.auth import Role
from perceus.web.fleet import Filter
from perceus.web.sse import frame
from perceus.web.state import WebState

KEEPALIVE = 15.0


def _json(data: Any, status: int = 200) -> Response:
    body = json.dumps(data, separators=(",", ":"), default=str).encode()
    return Response(body, status_code=status, media_type="application/json")


class Api:
    def __init__(self, state: WebState) -> None:
        self.state = state
        self._cache: dict[str, tuple[int, bytes]] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/session", self.session),
            Route("/api/v1/fleet", self.fleet),
            Route("/api/v1/nodes", self.nodes),
            Route("/api/v1/show", self.show),
            Route("/api/v1/status", self.status),
            Route("/api/v1/summary", self.summary),
            Route("/api/v1/nodes/{hostname}", self.node),
            Route("/api/v1/nodes/{hostname}/timeline", self.timeline),
            Route("/api/v1/nodes/{hostname}/events", self.node_events),
            Route("/api/v1/nodes/{hostname}/revoke", self.revoke, methods=["POST"]),
            Route("/api/v1/pending", self.pending),
            Route("/api/v1/pending/{nodeid}/approve", self.approve, methods=["POST"]),
            Route("/api/v1/capsules", self.capsules),
            Route("/api/v1/boot", self.boot),
            Route("/api/v1/events", self.events),
        ]

    # ------------------------------------------------------------------ helpers
    async def _nodes(self, request: Request) -> tuple[list[Node], bool]:
        snap = await self.state.snapshot()
        filt = Filter.of(request.query_params)
        return (filt.apply(snap.nodes) if filt else snap.nodes), bool(filt)

    async def _readable_nodes(self, request: Request) -> list[Node] | Response:
        """The nodes a read request selects (its filters), or the response refusing it (401, 403, 400)."""
        who = check_read(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        try:
            nodes, _ = await self._nodes(request)
        except PerceusError as exc:
            return denied(400, str(exc))
        return nodes

    async def _cached(self, request: Request, key: str, build: Callable[[list[Node]], Any]) -> Response:
        """Unfiltered lists are encoded once per snapshot (10k nodes: ~15 MB of dicts otherwise per call)."""
        who = check_read(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        try:
            nodes, filtered = await self._nodes(request)
        except PerceusError as exc:
            return denied(400, str(exc))
        version = self.state.fleet.current.version if self.state.fleet.current else 0
        if not filtered:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                return Response(hit[1], media_type="application/json")
        body = json.dumps(build(nodes), separators=(",", ":"), default=str).encode()
        if not filtered:
            self._cache[key] = (version, body)
        return Response(body, media_type="application/json")

    async def _node(self, request: Request) -> Node | Response:
        """The node a read request names, or the response refusing it (401, 403, 404)."""
        who = check_read(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        snap = await self.state.snapshot()
        node = snap.by_hostname(request.path_params["hostname"])
        if node is None:
            return denied(404, f"node {request.path_params['hostname']!r} does not exist")
        return node

    # ------------------------------------------------------------------ reads
    async def session(self, request: Request) -> Response:
        who = check_read(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        csrf = self.state.tokens.csrf_for(who.token) if who.role >= Role.ADMIN else ""
        return _json({"role": who.actor, "csrf": csrf})

    async def nodes(self, request: Request) -> Response:
        """= `perceus node list --json`."""
        return await self._cached(request, "nodes", lambda ns: [n.as_dict() for n in ns])

    async def status(self, request: Request) -> Response:
        """= `perceus node status --json` (seconds_since as of this request; swarm exclusion, capsule queue)."""
        nodes = await self._readable_nodes(request)
        if isinstance(nodes, Response):
            return nodes
        timeout = float(self.state.config.node_timeout)
        bad, queue = await asyncio.get_running_loop().run_in_executor(None, status_extras, self.state.paths)
        return _json(status_records(nodes, timeout, time.time(), bad, queue))

    async def summary(self, request: Request) -> Response:
        """= `perceus node summary --json`."""
        return await self._cached(request, "summary", summary_data)

    async def fleet(self, request: Request) -> Response:
        """The fleet view's rows (state, phase, last contact, capsule, IP, group, hardware), counts, groups."""
        nodes = await self._readable_nodes(request)
        if isinstance(nodes, Response):
            return nodes
        snap = self.state.fleet.current
        assert snap is not None
        rows = [snap.rows[n.nodeid] for n in nodes if n.nodeid in snap.rows]
        return _json(
            {"version": snap.version, "t": snap.taken, "counts": snap.counts, "groups": snap.groups, "rows": rows}
        )

    async def _show(self, nodes: list[Node]) -> list[dict[str, object]]:
        ids = [n.nodeid for n in nodes]
        inventories = await self.state.read(lambda s: s.inventories(ids) if ids else {})
        bmcs = await asyncio.get_running_loop().run_in_executor(None, configured_bmcs, self.state.paths, nodes)
        return show_records(nodes, inventories, bmcs)

    async def show(self, request: Request) -> Response:
        """= `perceus node show --json` (every field plus the inventory)."""
        nodes = await self._readable_nodes(request)
        if isinstance(nodes, Response):
            return nodes
        return _json(await self._show(nodes))

    async def node(self, request: Request) -> Response:
        """= the one element of `perceus node show NAME --json`."""
        node = await self._node(request)
        return node if isinstance(node, Response) else _json((await self._show([node]))[0])

    async def timeline(self, request: Request) -> Response:
        """= `perceus node timeline NAME --json`."""
        node = await self._node(request)
        if isinstance(node, Response):
            return node
        boot_id = request.query_params.get("boot_id", "")
        events = await self.state.read(lambda s: s.events(node.nodeid, boot_id))
        return _json(timeline_data(events))

    async def node_events(self, request: Request) -> Response:
        """Bus events about this node seen since perceus-web started (newest last)."""
        node = await self._node(request)
        if isinstance(node, Response):
            return node
        return _json(list(self.state.recent.get(node.nodeid, ())))

    async def pending(self, request: Request) -> Response:
        """= `perceus node pending --json`."""
        who = check_read(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        snap = await self.state.snapshot()
        return _json(pending_data(snap.pending))

    async def capsules(self, request: Request) -> Response:
        """= `perceus vnfs list --json`."""
        who = check_read(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        snap = await self.state.snapshot()
        loop = asyncio.get_running_loop()
        rows = await loop.run_in_executor(None, infos, self.state.paths)
        return _json(list_data(rows, capsule_users(snap.nodes)))

    async def boot(self, request: Request) -> Response:
        """Nodes per phase over time (one sample per refresh) for the boot progress plot."""
        who = check_read(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        await self.state.snapshot()
        try:
            since = float(request.query_params.get("since", "0") or 0)
        except ValueError:
            return denied(400, "since must be a number (epoch seconds)")
        served = await asyncio.get_running_loop().run_in_executor(None, self.state.bytes_served)
        return _json({**self.state.fleet.series(since), "bytes_served": served, "now": time.time()})

    # ------------------------------------------------------------------ writes
    async def _write(self, request: Request, do: Callable[[Caller], writes.WriteResult], action: str) -> Response:
        who = check_write(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        result = await asyncio.get_running_loop().run_in_executor(None, do, who)
        self.state.metrics.web_writes.labels(action, "ok" if result.ok else "failed").inc()
        await self.state.refresh()
        return _json({"ok": result.ok, "message": result.message}, 200 if result.ok else 409)

    async def approve(self, request: Request) -> Response:
        """`perceus node approve MAC` for one pending node."""
        mac = request.path_params["nodeid"]
        if not hwaddr.is_valid(mac):  # one node: the CLI verb behind this would also take patterns
            return denied(400, f"not a hardware address: {mac!r}")
        ok = await self._write(
            request, lambda who: writes.approve(self.state.paths, [mac], actor=who.actor, remote=who.remote), "approve"
        )
        if ok.status_code == 200:
            self.state.metrics.enrollments.labels("approved").inc()
        return ok

    async def revoke(self, request: Request) -> Response:
        """`perceus node revoke NAME` (body {"undo": true} = `--undo`)."""
        try:
            body = await request.json() if await request.body() else {}
        except ValueError:
            return denied(400, "body must be JSON")
        undo = bool(body.get("undo")) if isinstance(body, dict) else False
        name = request.path_params["hostname"]
        if not names.valid("node", name):  # one node by name, never a glob or range (the CLI verb takes both)
            return denied(400, f"not a node name: {name!r}")
        return await self._write(
            request,
            lambda who: writes.revoke(self.state.paths, [name], undo=undo, actor=who.actor, remote=who.remote),
            "unrevoke" if undo else "revoke",
        )

    # ------------------------------------------------------------------ live feed
    async def events(self, request: Request) -> Response:
        """Server-sent events: `counts`, `nodes` (changed fleet rows), `contacts`, `resync`; with ?node=NODEID
        also that node's bus events (`event`)."""
        who = check_read(request, self.state.tokens)
        if isinstance(who, Response):
            return who
        snap = await self.state.snapshot()
        queue = self.state.broker.subscribe(request.query_params.get("node", ""))

        async def stream() -> AsyncIterator[bytes]:
            try:
                yield b"retry: 2000\n\n" + frame(
                    "counts", {"version": snap.version, "counts": snap.counts, "t": snap.taken, "phases": snap.phases}
                )
                while True:
                    try:
                        yield await asyncio.wait_for(queue.get(), timeout=KEEPALIVE)
                    except TimeoutError:
                        yield b": keepalive\n\n"
            finally:
                self.state.broker.unsubscribe(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
        )


def json_error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)
