"""The OpenAPI 3.1 description served at /openapi.json; shapes named after the CLI verbs that print them."""

from __future__ import annotations

from typing import Any

_FILTER = [
    {"name": "nodes", "in": "query", "schema": {"type": "string"}, "description": "ranges or globs: n[0000-0127]"},
    {"name": "group", "in": "query", "schema": {"type": "string"}},
    {"name": "state", "in": "query", "schema": {"type": "string"}, "description": "new, init, ready, failed, …"},
]
_HOST = [{"name": "hostname", "in": "path", "required": True, "schema": {"type": "string"}}]

_NODE = {
    "type": "object",
    "description": "one node as `perceus node list --json` prints it",
    "properties": {
        **{
            k: {"type": "string"}
            for k in ("nodeid", "hostname", "group", "vnfs", "desc", "ip", "status", "boot_id", "phase")
        },
        "enabled": {"type": "boolean"},
        "debug": {"type": "integer"},
        "lastcontact": {"type": "number"},
        "created": {"type": "number"},
        "macs": {"type": "array", "items": {"type": "string"}},
        "attrs": {"type": "object", "additionalProperties": {"type": "string"}},
        "inventory": {"type": ["object", "null"], "description": "node show only: cpu, memory, disks, nics, dmi"},
    },
}
_STATUS = {
    "type": "object",
    "description": "`perceus node status --json`",
    "properties": {
        **{k: {"type": "string"} for k in ("hostname", "nodeid", "status", "ip", "phase")},
        "lastcontact": {"type": "number"},
        "seconds_since": {"type": ["number", "null"]},
        "stale": {"type": "boolean"},
        "swarm_excluded": {"type": "boolean"},
        "capsule_queue": {"type": ["string", "null"]},
    },
}
_SUMMARY = {
    "type": "object",
    "description": "`perceus node summary --json`",
    "properties": {
        "hostname": {"type": "string"},
        "group": {"type": "string"},
        "enabled": {"type": "boolean"},
        "vnfs": {"type": "string"},
    },
}
_EVENT = {
    "type": "object",
    "description": "`perceus node timeline --json`",
    "properties": {
        "phase": {"type": "string"},
        "t": {"type": "number"},
        "ok": {"type": "boolean"},
        "done": {"type": "boolean"},
        "detail": {"type": "string"},
        "boot_id": {"type": "string"},
    },
}
_PENDING = {
    "type": "object",
    "description": "`perceus node pending --json`",
    "properties": {
        "nodeid": {"type": "string"},
        "macs": {"type": "array", "items": {"type": "string"}},
        "ip": {"type": "string"},
        "first_seen": {"type": "number"},
        "last_seen": {"type": "number"},
        "nodename": {"type": "string"},
    },
}
_CAPSULE = {
    "type": "object",
    "description": "`perceus vnfs list --json`",
    "properties": {
        "name": {"type": "string"},
        "type": {"type": "string"},
        "version": {"type": "integer"},
        "kernel": {"type": "string"},
        "raw_size": {"type": "integer"},
        "packed_size": {"type": "integer"},
        "chunks": {"type": "integer"},
        "mounted": {"type": "boolean"},
        "manifest": {"type": "string"},
        "nodes": {"type": "array", "items": {"type": "string"}},
    },
}
_WRITE = {"type": "object", "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"}}}


def _ok(schema: dict[str, Any], text: str = "OK") -> dict[str, Any]:
    return {"200": {"description": text, "content": {"application/json": {"schema": schema}}}}


def _list(ref: str) -> dict[str, Any]:
    return {"type": "array", "items": {"$ref": f"#/components/schemas/{ref}"}}


def _get(summary: str, schema: dict[str, Any], params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": params or [],
            "responses": {**_ok(schema), "401": {"description": "no or unknown token"}},
        }
    }


def _post(summary: str, params: list[dict[str, Any]], body: bool = False) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary + " Needs the admin token and the X-CSRF-Token header from /api/v1/session.",
        "parameters": [
            *params,
            {"name": "X-CSRF-Token", "in": "header", "required": True, "schema": {"type": "string"}},
        ],
        "responses": {
            **_ok(_WRITE),
            "401": {"description": "no token"},
            "403": {"description": "read-only token, bad CSRF token or foreign Origin"},
            "409": {"description": "the verb failed (message says why)"},
        },
    }
    if body:
        op["requestBody"] = {
            "content": {"application/json": {"schema": {"type": "object", "properties": {"undo": {"type": "boolean"}}}}}
        }
    return {"post": op}


def document() -> dict[str, Any]:
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Perceus web API",
            "version": "1",
            "description": "The shapes of `perceus … --json`, over HTTP.  Authorization: Bearer <token>.",
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Node": _NODE,
                "Status": _STATUS,
                "Summary": _SUMMARY,
                "PhaseEvent": _EVENT,
                "Pending": _PENDING,
                "Capsule": _CAPSULE,
            },
        },
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/session": _get(
                "Role of the token and, for admins, the CSRF token for writes",
                {"type": "object", "properties": {"role": {"type": "string"}, "csrf": {"type": "string"}}},
            ),
            "/api/v1/nodes": _get("= perceus node list --json", _list("Node"), _FILTER),
            "/api/v1/show": _get("= perceus node show --json (fields and inventory)", _list("Node"), _FILTER),
            "/api/v1/status": _get("= perceus node status --json", _list("Status"), _FILTER),
            "/api/v1/summary": _get("= perceus node summary --json", _list("Summary"), _FILTER),
            "/api/v1/fleet": _get("Fleet view rows, counts per state, groups", {"type": "object"}, _FILTER),
            "/api/v1/nodes/{hostname}": _get(
                "= perceus node show NAME --json (its one element)", {"$ref": "#/components/schemas/Node"}, _HOST
            ),
            "/api/v1/nodes/{hostname}/timeline": _get(
                "= perceus node timeline NAME --json",
                _list("PhaseEvent"),
                [*_HOST, {"name": "boot_id", "in": "query", "schema": {"type": "string"}}],
            ),
            "/api/v1/nodes/{hostname}/events": _get(
                "Bus events about the node since perceus-web started", {"type": "array"}, _HOST
            ),
            "/api/v1/nodes/{hostname}/revoke": _post("= perceus node revoke NAME (undo: --undo).", _HOST, body=True),
            "/api/v1/pending": _get("= perceus node pending --json", _list("Pending")),
            "/api/v1/pending/{nodeid}/approve": _post(
                "= perceus node approve MAC.",
                [{"name": "nodeid", "in": "path", "required": True, "schema": {"type": "string"}}],
            ),
            "/api/v1/capsules": _get("= perceus vnfs list --json", _list("Capsule")),
            "/api/v1/boot": _get(
                "Nodes per phase over time; capsule bytes served",
                {"type": "object"},
                [{"name": "since", "in": "query", "schema": {"type": "number"}}],
            ),
            "/api/v1/events": {
                "get": {
                    "summary": "Server-sent events: counts, nodes, contacts, resync; ?node=NODEID adds its bus events",
                    "responses": {"200": {"description": "text/event-stream"}},
                }
            },
            "/metrics": {
                "get": {"summary": "Prometheus text format", "responses": {"200": {"description": "text/plain"}}}
            },
        },
    }
