"""Name allocation: lowest free numbers first, gaps refilled, running out is an error."""

from __future__ import annotations

import pytest

from perceus.errors import ConflictError
from perceus.master.config import NodeDefaults
from perceus.master.store.naming import allocate_names


def defaults(first: int = 0, total: int = 10000) -> NodeDefaults:
    return NodeDefaults(
        prefix="n",
        width=4,
        suffix="",
        group="cluster",
        vnfs="",
        enabled=True,
        first=first,
        total=total,
        debug=0,
    )


def test_gaps_refilled_in_order() -> None:
    assert allocate_names({"n0000", "n0002", "web1"}, defaults(), 3) == ["n0001", "n0003", "n0004"]


def test_first_node() -> None:
    assert allocate_names(set(), defaults(first=100), 2) == ["n0100", "n0101"]


def test_exhausted() -> None:
    with pytest.raises(ConflictError, match="no free node name"):
        allocate_names({"n0000", "n0001"}, defaults(total=2), 1)
