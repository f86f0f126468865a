"""Roles ↔ activations: parsing (names with -_. allowed), scope matching, overlap for the conflict check."""

from __future__ import annotations

import pytest

from perceus.errors import UsageError
from perceus.master.modules.roles import applies, overlap, parse_role
from perceus.master.store.models import Activation, Node


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("init/all", Activation("m", "init", "all")),
        ("ready/group/gpu-a_1.x", Activation("m", "ready", "group", "gpu-a_1.x")),
        ("ready/vnfs/debian-12", Activation("m", "ready", "vnfs", "debian-12")),
        ("init/node/n0001", Activation("m", "init", "node", "n0001")),
        ("/ready/all/", Activation("m", "ready", "all")),
    ],
)
def test_roles_parse(role: str, expected: Activation) -> None:
    assert parse_role("m", role) == expected
    assert parse_role("m", role).role == role.strip("/")


@pytest.mark.parametrize(
    "role",
    ["init", "init/", "init/bogus/x", "init/group", "init/group/../etc", "in it/all", "init/node/a/b", "x/all/y"],
)
def test_bad_roles_are_usage_errors(role: str) -> None:
    with pytest.raises(UsageError, match="inappropriate role"):
        parse_role("m", role)


NODE = Node(nodeid="52:54:00:00:00:01", hostname="n0001", group="gpu", vnfs="deb12")


@pytest.mark.parametrize(
    ("scope", "target", "hit"),
    [
        ("all", "", True),
        ("group", "gpu", True),
        ("group", "cpu", False),
        ("vnfs", "deb12", True),
        ("vnfs", "el9", False),
        ("node", "n0001", True),
        ("node", "n0002", False),
    ],
)
def test_applies(scope: str, target: str, hit: bool) -> None:
    assert applies(Activation("m", "ready", scope, target), NODE) is hit


@pytest.mark.parametrize(
    ("a", "b", "meet"),
    [
        (("all", ""), ("node", "n1"), True),
        (("group", "g"), ("vnfs", "v"), True),  # a node in group g with capsule v gets both
        (("group", "g"), ("group", "h"), False),
        (("node", "n1"), ("node", "n1"), True),
        (("node", "n1"), ("node", "n2"), False),
    ],
)
def test_overlap_ignores_state(a: tuple[str, str], b: tuple[str, str], meet: bool) -> None:
    assert overlap(Activation("x", "init", *a), Activation("y", "ready", *b)) is meet
