"""The HTML pages: fleet, boot progress, node, capsules, pending — rendered from the same snapshot as the API."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from perceus.errors import PerceusError
from perceus.master.capsule.manage import infos
from perceus.master.cli.nodespec import fold
from perceus.master.cli.vnfs_cmds.common import mib
from perceus.master.cli.vnfs_cmds.list_ import capsule_users, list_data
from perceus.master.store.models import PhaseEvent
from perceus.web.access import Caller, caller
from perceus.web.auth import COOKIE, Role, tokens_path
from perceus.web.fleet import Filter, hardware_line
from perceus.web.state import WebState

CONSOLE_TAIL = 16384  # bytes of the console capture read for the node page
STATES = ("new", "init", "ready", "failed", "disabled", "revoked")


def timeline_rows(events: list[PhaseEvent]) -> list[dict[str, Any]]:
    """Boot events → one row per phase: start offset, duration (start → done, or since the previous phase ended)."""
    if not events:
        return []
    t0 = events[0].t
    rows: list[dict[str, Any]] = []
    open_: dict[str, dict[str, Any]] = {}
    last_end = t0
    for e in events:
        row: dict[str, Any] | None
        if not e.done and e.ok:
            row = {"phase": e.phase, "start": e.t - t0, "duration": None, "ok": True, "detail": e.detail}
            open_[e.phase] = row
            rows.append(row)
            continue
        row = open_.pop(e.phase, None)
        if row is None:
            row = {"phase": e.phase, "start": last_end - t0, "duration": None, "ok": e.ok, "detail": e.detail}
            rows.append(row)
        row["duration"] = e.t - t0 - row["start"]
        row["ok"] = e.ok
        row["detail"] = e.detail or row["detail"]
        last_end = e.t
    return rows


def ago(t: float, now: float | None = None) -> str:
    """`1h 2m 5s ago`, as app.js writes it (the page arrives with the text; the script only advances it)."""
    if not t:
        return "(never)"
    s = max(0, round((now or time.time()) - t))
    h, m, s = s // 3600, s % 3600 // 60, s % 60
    return (f"{h}h " if h else "") + (f"{m}m " if h or m else "") + f"{s}s ago"


def console_tail(path: Path, lines: int = 40) -> str | None:
    try:
        with path.open("rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - CONSOLE_TAIL))
            text = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    return "\n".join(text.replace("\r", "").splitlines()[-lines:])


class Pages:
    def __init__(self, state: WebState) -> None:
        self.state = state
        self.env = Environment(loader=PackageLoader("perceus.web", "templates"), autoescape=select_autoescape())
        self.env.globals.update(mib=mib, fold=fold)
        self.env.filters["ago"] = ago

    def routes(self) -> list[Route]:
        return [
            Route("/", self.fleet),
            Route("/login", self.login),
            Route("/logout", self.logout),
            Route("/boot", self.boot),
            Route("/nodes/{hostname}", self.node),
            Route("/capsules", self.capsules),
            Route("/pending", self.pending),
        ]

    def _who(self, request: Request) -> Caller | Response:
        who = caller(request, self.state.tokens)
        if who.role < Role.READ:
            return self._render(
                "denied.html",
                None,
                401,
                message="You are not signed in.",
                tokens_path=str(tokens_path(self.state.paths)),
            )
        return who

    def _render(self, name: str, who: Caller | None, status: int = 200, **ctx: Any) -> HTMLResponse:
        snap = self.state.fleet.current
        base = {
            "role": who.actor if who else "",
            "csrf": self.state.tokens.csrf_for(who.token) if who and who.role >= Role.ADMIN else "",
            "counts": snap.counts if snap else {},
        }
        html = self.env.get_template(name).render(**base, **ctx)
        return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})

    async def login(self, request: Request) -> Response:
        token = request.query_params.get("token", "")
        if self.state.tokens.role(token) < Role.READ:
            return self._render(
                "denied.html",
                None,
                401,
                message="That token is not valid.",
                tokens_path=str(tokens_path(self.state.paths)),
            )
        nxt = request.query_params.get("next", "/")
        resp = RedirectResponse(nxt if nxt.startswith("/") and not nxt.startswith("//") else "/", status_code=303)
        resp.set_cookie(COOKIE, token, httponly=True, samesite="strict", secure=self.state.tls, path="/")
        return resp

    async def logout(self, request: Request) -> Response:
        resp = RedirectResponse("/", status_code=303)
        resp.delete_cookie(COOKIE, path="/")
        return resp

    async def fleet(self, request: Request) -> Response:
        who = self._who(request)
        if isinstance(who, Response):
            return who
        snap = await self.state.snapshot()
        filt = Filter.of(request.query_params)
        error = ""
        try:
            nodes = filt.apply(snap.nodes) if filt else snap.nodes
        except PerceusError as exc:
            nodes, error = [], str(exc)
        rows = [snap.rows[n.nodeid] for n in nodes]
        states = sorted({*STATES, *(k for k in snap.counts if k != "pending")})
        return self._render(
            "fleet.html",
            who,
            active="fleet",
            rows=rows,
            filt=filt,
            groups=snap.groups,
            states=states,
            total=len(snap.nodes),
            error=error,
        )

    async def boot(self, request: Request) -> Response:
        who = self._who(request)
        if isinstance(who, Response):
            return who
        await self.state.snapshot()
        return self._render("boot.html", who, active="boot")

    async def node(self, request: Request) -> Response:
        who = self._who(request)
        if isinstance(who, Response):
            return who
        snap = await self.state.snapshot()
        name = request.path_params["hostname"]
        node = snap.by_hostname(name)
        if node is None:
            return self._render("denied.html", who, 404, message=f"No node named {name!r}.", tokens_path="")
        events = await self.state.read(lambda s: s.events(node.nodeid))
        timeline = timeline_rows(events)
        failure = next((r for r in timeline if not r["ok"]), None)
        console_path = self.state.paths.logs / "console" / f"{node.hostname}.log"
        console = await asyncio.get_running_loop().run_in_executor(None, console_tail, console_path)
        found = await self.state.read(lambda s: s.inventories([node.nodeid]))
        held = found.get(node.nodeid)
        inventory = [(k, v) for k, v in sorted(node.attrs.items()) if k != "revoked"]
        hw = hardware_line(node.attrs, held.inventory if held else None)
        if hw:
            inventory.insert(0, ("summary", hw))
        if held is not None:
            inventory += list(held.inventory.items().items())
            inventory += [(f"change: {c.item}", c.describe()) for c in held.changes]
        return self._render(
            "node.html",
            who,
            active="fleet",
            node=node,
            row=snap.rows[node.nodeid],
            timeline=timeline,
            failure=failure,
            boot_id=events[0].boot_id if events else "",
            console=console,
            console_path=str(console_path),
            inventory=inventory,
            events=list(self.state.recent.get(node.nodeid, ()))[-20:],
        )

    async def capsules(self, request: Request) -> Response:
        who = self._who(request)
        if isinstance(who, Response):
            return who
        snap = await self.state.snapshot()
        rows = await asyncio.get_running_loop().run_in_executor(None, infos, self.state.paths)
        return self._render(
            "capsules.html", who, active="capsules", capsules=list_data(rows, capsule_users(snap.nodes))
        )

    async def pending(self, request: Request) -> Response:
        who = self._who(request)
        if isinstance(who, Response):
            return who
        snap = await self.state.snapshot()
        revoked = [n for n in snap.nodes if n.attrs.get("revoked")]
        return self._render(
            "pending.html",
            who,
            active="pending",
            pending=snap.pending,
            revoked=revoked,
            policy=self.state.config.enrollment_policy,
        )


def login_url(base: str, token: str) -> str:
    return f"{base}/login?token={quote(token)}"
