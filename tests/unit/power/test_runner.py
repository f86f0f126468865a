"""The runner's scheduling: per-node deadlines, bounded concurrency, retries only where they can help.

The driver here is the runner's injection point with controlled timing; the real adapters are exercised
against ipmi_sim and sushy-tools in tests/integration/power."""

from __future__ import annotations

import threading
import time

from perceus.master.power.errors import BmcError
from perceus.master.power.records import BmcRecord
from perceus.master.power.runner import IPMI_THREADS, Job, run

REC = BmcRecord("redfish", "bmc", 443, "u", "p", scheme="https")


def test_a_slow_bmc_times_out_alone_and_holds_up_nobody() -> None:
    def driver(record: BmcRecord, action: str, timeout: float) -> str:
        if record.host == "slow":
            time.sleep(30)
        return "on"

    slow = BmcRecord("redfish", "slow", 443, "u", "p", scheme="https")
    jobs = [Job("a", REC), Job("b", slow), Job("c", REC), Job("d", problem="no BMC configured")]
    t = time.monotonic()
    out = run(jobs, "status", timeout=0.5, parallel=2, driver=driver)
    assert time.monotonic() - t < 1.5
    assert [(o.node, o.ok, o.kind) for o in out] == [
        ("a", True, ""),
        ("b", False, "timeout"),
        ("c", True, ""),
        ("d", False, "config"),
    ]
    assert out[2].seconds < 0.4  # c ran in b's slot's neighbour, not after b's deadline


def test_concurrency_is_bounded() -> None:
    active, peak, lock = [0], [0], threading.Lock()

    def driver(record: BmcRecord, action: str, timeout: float) -> str:
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return "off"

    out = run([Job(f"n{i}", REC) for i in range(40)], "status", parallel=5, driver=driver)
    assert all(o.ok for o in out) and peak[0] == 5


def test_network_errors_are_retried_wrong_credentials_are_not() -> None:
    calls: dict[str, int] = {}

    def driver(record: BmcRecord, action: str, timeout: float) -> str:
        calls[record.user] = calls.get(record.user, 0) + 1
        if record.user == "flaky" and calls["flaky"] == 1:
            raise BmcError("unreachable", record.url, "connection refused")
        if record.user == "wrong":
            raise BmcError("auth", record.url, "login refused")
        return "on"

    flaky = BmcRecord("ipmi", "h", 623, "flaky", "p")
    wrong = BmcRecord("ipmi", "h", 623, "wrong", "p")
    out = run([Job("f", flaky), Job("w", wrong)], "on", retries=2, retry_delay=0.01, driver=driver)
    assert (out[0].ok, out[0].attempts) == (True, 2)
    assert (out[1].ok, out[1].kind, out[1].attempts) == (False, "auth", 1)


def test_ipmi_jobs_are_capped_below_parallel_redfish_jobs_are_not() -> None:
    active: dict[str, int] = {"ipmi": 0, "redfish": 0}
    peak: dict[str, int] = {"ipmi": 0, "redfish": 0}
    lock = threading.Lock()

    def driver(record: BmcRecord, action: str, timeout: float) -> str:
        with lock:
            active[record.protocol] += 1
            peak[record.protocol] = max(peak[record.protocol], active[record.protocol])
        time.sleep(0.05)
        with lock:
            active[record.protocol] -= 1
        return "on"

    ipmi = BmcRecord("ipmi", "h", 623, "u", "p")
    jobs = [Job(f"i{i}", ipmi) for i in range(30)] + [Job(f"r{i}", REC) for i in range(30)]
    out = run(jobs, "status", parallel=40, driver=driver)
    assert all(o.ok for o in out)
    assert peak["ipmi"] == IPMI_THREADS and peak["redfish"] > IPMI_THREADS
