"""run_isolated: a forked child's result or exception comes back; a child that dies is a clear error."""

from __future__ import annotations

import os
import sys

import pytest

from perceus.agent.failures import NetworkError
from perceus.agent.isolate import ChildFailed, run_isolated


def test_result_comes_back_and_child_imports_stay_in_the_child() -> None:
    assert "json.tool" not in sys.modules

    def work() -> dict[str, object]:
        import json.tool  # noqa: F401  (stands in for pyroute2: imported in the child only)

        return {"pid": os.getpid(), "seen": "json.tool" in sys.modules}

    out = run_isolated(work, what="test")
    assert out["seen"] is True and out["pid"] != os.getpid()
    assert "json.tool" not in sys.modules


def test_exception_is_reraised_with_its_attributes() -> None:
    def fail() -> None:
        raise NetworkError("no lease", iface="eth0")

    with pytest.raises(NetworkError, match="no lease") as err:
        run_isolated(fail, what="network")
    assert err.value.iface == "eth0"


def test_child_that_dies_without_a_result() -> None:
    with pytest.raises(ChildFailed, match="network: child process died"):
        run_isolated(lambda: os._exit(3), what="network")
