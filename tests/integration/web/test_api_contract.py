"""The JSON API answers with what `perceus … --json` prints for the same store (one schema, shared builders)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from perceus.web.client import RunningWeb

from .conftest import cli_json

CASES = [
    ("/api/v1/nodes", ["node", "list"]),
    ("/api/v1/nodes?nodes=n%5B0001-0003%5D", ["node", "list", "n[0001-0003]"]),
    ("/api/v1/nodes?nodes=n000*", ["node", "list", "n000*"]),
    ("/api/v1/show", ["node", "show"]),
    ("/api/v1/show?nodes=n000%5B3-4%5D", ["node", "show", "n000[3-4]"]),
    ("/api/v1/summary", ["node", "summary"]),
    ("/api/v1/summary?nodes=n%5B0000-0002%5D%2Cn0005", ["node", "summary", "n[0000-0002],n0005"]),
    ("/api/v1/pending", ["node", "pending"]),
    ("/api/v1/nodes/n0001/timeline", ["node", "timeline", "n0001"]),
    ("/api/v1/capsules", ["vnfs", "list"]),
]


@pytest.mark.parametrize(("path", "argv"), CASES, ids=[c[0] for c in CASES])
def test_api_equals_cli_json(web: RunningWeb, path: str, argv: list[str]) -> None:
    api = web.get_json(path)
    assert api == cli_json(web.paths, *argv)
    assert api or argv[:2] == ["vnfs", "list"], "an empty answer would compare equal by accident"


def _without_clock(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k != "seconds_since"} for r in rows]


def test_status_equals_cli_json_but_for_the_clock(web: RunningWeb) -> None:
    api, cli = web.get_json("/api/v1/status"), cli_json(web.paths, "node", "status")
    assert _without_clock(api) == _without_clock(cli)
    for a, c in zip(api, cli, strict=True):  # seconds since last contact, as of each request
        assert (a["seconds_since"] is None) == (c["seconds_since"] is None)
        if a["seconds_since"] is not None:
            assert abs(a["seconds_since"] - c["seconds_since"]) < 30


def test_node_is_the_element_of_node_show(web: RunningWeb) -> None:
    assert [web.get_json("/api/v1/nodes/n0002")] == cli_json(web.paths, "node", "show", "n0002")


def test_filters_by_group_and_state(web: RunningWeb) -> None:
    gpu = web.get_json("/api/v1/nodes?group=gpu")
    assert [n["hostname"] for n in gpu] == ["n0000", "n0003"]
    fleet = web.get_json("/api/v1/fleet?state=ready")
    assert [r["hostname"] for r in fleet["rows"]] == ["n0000", "n0001", "n0002", "n0003"]
    assert fleet["counts"] == {"ready": 4, "new": 2, "pending": 2}
    assert fleet["groups"] == ["cluster", "gpu"]
    assert fleet["rows"][1]["hw"] == "5 cores"  # no inventory: the node's hardware attributes
    everyone = {r["hostname"]: r for r in web.get_json("/api/v1/fleet")["rows"]}
    assert everyone["n0004"]["hw"] == "2× Xeon Gold 6248 · 192 GiB · 2 disks · Dell R640"


def test_bad_range_is_a_400_with_the_cli_message(web: RunningWeb) -> None:
    status, _, body = web.request("/api/v1/nodes?nodes=n%5B0001-", token=web.tokens.read)
    assert status == 400
    assert "bad node range" in json.loads(body)["error"]


def test_unknown_node_is_404(web: RunningWeb) -> None:
    status, _, body = web.request("/api/v1/nodes/n9999/timeline", token=web.tokens.read)
    assert (status, json.loads(body)) == (404, {"error": "node 'n9999' does not exist"})


def test_openapi_documents_every_api_path(web: RunningWeb) -> None:
    doc = web.get_json("/openapi.json")
    assert doc["openapi"].startswith("3.")
    documented = set(doc["paths"])
    for path, _ in CASES:
        template = path.split("?")[0].replace("n0001", "{hostname}")
        assert template in documented, template
    assert {"/api/v1/pending/{nodeid}/approve", "/api/v1/nodes/{hostname}/revoke", "/metrics"} <= documented


def test_node_page_shows_timeline_failure_and_inventory(web: RunningWeb) -> None:
    status, _, page = web.request("/nodes/n0001", token=web.tokens.read)
    html = page.decode()
    assert status == 200
    assert "Failed in capsule: manifest signature mismatch" in html
    assert "<td>dhcp</td><td>+0.00 s</td><td>1.50 s</td>" in html  # start → done of the phase
    assert "<td>capsule</td><td>+2.00 s</td><td>6.00 s</td><td>FAILED</td>" in html
    status, _, page = web.request("/nodes/n0004", token=web.tokens.read)
    assert "2 × Xeon Gold 6248" in page.decode() and "disk sdb" in page.decode()
