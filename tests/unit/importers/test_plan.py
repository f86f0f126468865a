"""Cross-record checks and naming: duplicates, bad addresses, templates, --group/--vnfs overrides."""

from __future__ import annotations

from perceus.importers.naming import NameTemplate
from perceus.importers.plan import PlanOptions, build
from perceus.importers.records import Location, NodeRecord, ParseResult


def _rec(line: int, mac: str, hostname: str = "", ip: str = "", group: str = "") -> NodeRecord:
    return NodeRecord(Location("f", line), mac, hostname, ip, group)


def test_duplicates_are_errors_on_the_later_record() -> None:
    result = ParseResult(
        nodes=[
            _rec(1, "00:00:00:00:00:01", "a", "10.0.0.1"),
            _rec(2, "00:00:00:00:00:01", "b", "10.0.0.2"),
            _rec(3, "00:00:00:00:00:03", "c", "10.0.0.1"),
            _rec(4, "00:00:00:00:00:04", "A", "10.0.0.4"),
            _rec(5, "00:00:00:00:00:05", "e", "10.0.0.300"),
            _rec(6, "00:00:00:00:00:06", "bad_name!", ""),
        ]
    )
    plan = build(result, PlanOptions())
    assert [n.hostname for n in plan.nodes] == ["a"]
    assert [(p.where.line, p.reason.split(" (")[0]) for p in plan.errors] == [
        (2, "duplicate MAC 00:00:00:00:00:01"),
        (3, "duplicate IP 10.0.0.1"),
        (4, "duplicate hostname A"),
        (5, "invalid IPv4 address '10.0.0.300'"),
        (6, "invalid host name 'bad_name!'"),
    ]
    assert "first at f:1" in plan.errors[0].reason


def test_template_names_skip_taken_names_and_keep_known_ones() -> None:
    result = ParseResult(
        nodes=[_rec(1, "00:00:00:00:00:01"), _rec(2, "00:00:00:00:00:02", "c0002"), _rec(3, "00:00:00:00:00:03")]
    )
    stored = {"00:00:00:00:00:09": "c0000", "00:00:00:00:00:03": "old7"}
    options = PlanOptions(template=NameTemplate.parse("c####"), stored=stored, update=True)
    assert [n.hostname for n in build(result, options).nodes] == ["c0001", "c0002", "old7"]


def test_the_store_is_consulted_as_the_real_run_would() -> None:
    result = ParseResult(
        nodes=[
            _rec(1, "00:00:00:00:00:01", "a"),
            _rec(2, "00:00:00:00:00:02", "taken"),
            _rec(3, "00:00:00:00:00:03", "new"),
        ]
    )
    stored = {"00:00:00:00:00:01": "a", "00:00:00:00:00:09": "taken"}
    strict = build(result, PlanOptions(stored=stored))
    assert [n.hostname for n in strict.nodes] == ["new"]
    assert [(p.where.line, p.reason) for p in strict.errors] == [
        (1, "NodeID 00:00:00:00:00:01 already exists (node a); --update overwrites it"),
        (2, "hostname taken already exists (node 00:00:00:00:00:09)"),
    ]
    update = build(result, PlanOptions(stored=stored, update=True))
    assert [n.hostname for n in update.nodes] == ["a", "new"]
    assert [p.where.line for p in update.errors] == [2]


def test_admin_group_and_vnfs_override_the_source() -> None:
    result = ParseResult(nodes=[_rec(1, "00:00:00:00:00:01", "a", group="compute")])
    assert build(result, PlanOptions()).nodes[0].group == "compute"
    node = build(result, PlanOptions(group="gpu", vnfs="rocky")).nodes[0]
    assert (node.group, node.vnfs) == ("gpu", "rocky")


def test_template_syntax() -> None:
    assert NameTemplate.parse("rack1-n###.x").name(7) == "rack1-n007.x"
