"""With a real perceus-bus: bus events reach browsers over SSE, the fleet table changes without a reload, and
/metrics counts hellos, enrollments, phase durations and reads the bus's counters (plaintext and CurveZMQ)."""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest

from perceus.agent.bus import BusClient, CurveClient
from perceus.lab.bus import RunningBus, start_local_bus
from perceus.master.config import Paths
from perceus.master.security import keys as master_keys
from perceus.protocol.enums import Phase, Stage
from perceus.protocol.messages import Ack, Hello, Report, Wait, Welcome
from perceus.web.client import RunningWeb, start_web

MAC = "52:54:00:BB:00:01"


class Sse:
    """A minimal EventSource: (event, data) pairs from /api/v1/events on a thread."""

    def __init__(self, web: RunningWeb, node: str = "") -> None:
        path = "/api/v1/events" + (f"?node={urllib.parse.quote(node)}" if node else "")
        req = urllib.request.Request(web.url + path, headers={"Authorization": f"Bearer {web.tokens.read}"})
        self.resp = urllib.request.urlopen(req, timeout=60)
        self.q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.names: list[str] = []  # every event name received, in order
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        event = ""
        try:
            for raw in self.resp:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    self.names.append(event)
                    self.q.put((event, json.loads(line[6:])))
        except Exception:  # closed under us at the end of the test
            return

    def wait_for(self, pred: Any, timeout: float = 20.0) -> tuple[str, Any]:
        deadline = time.monotonic() + timeout
        seen = []
        while time.monotonic() < deadline:
            try:
                item = self.q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            seen.append(item[0])
            if pred(*item):
                return item
        raise AssertionError(f"no matching SSE event within {timeout} s; saw {seen}")

    def close(self) -> None:
        self.resp.close()


@pytest.fixture(params=["none", "curve"])
def live(request: pytest.FixtureRequest, paths: Paths) -> Iterator[tuple[RunningBus, RunningWeb, BusClient]]:
    bus = start_local_bus(paths, security=request.param)
    web = start_web(paths, "--interval", "0.2")
    curve = None
    if request.param == "curve":
        loaded = master_keys.load(paths)
        assert loaded is not None
        curve = CurveClient(loaded.bus_public)
    client = BusClient([bus.endpoint], curve=curve)
    try:
        yield bus, web, client
    finally:
        client.close()
        web.stop()
        bus.stop()


def _metric(web: RunningWeb, name: str) -> float | None:
    status, _, body = web.request("/metrics", token=web.tokens.read)
    assert status == 200
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or (line.startswith(name + "{") and line.split(" ")[0] == name):
            return float(line.rsplit(" ", 1)[1])
    return None


def _wait_metric(web: RunningWeb, name: str, want: float, timeout: float = 15.0) -> float | None:
    deadline = time.monotonic() + timeout
    value = _metric(web, name)
    while value != want and time.monotonic() < deadline:
        time.sleep(0.2)
        value = _metric(web, name)
    return value


def test_a_booting_node_reaches_the_browser_and_metrics(live: tuple[RunningBus, RunningWeb, BusClient]) -> None:
    _bus, web, client = live
    sse = Sse(web, node=MAC)  # the node page's stream: fleet updates plus this node's bus events
    fleet_only = Sse(web)
    try:
        sse.wait_for(lambda ev, _: ev == "counts")
        # The feed connects in the background; a hello sent before it subscribed would be missed.
        deadline = time.monotonic() + 15
        while "web_events_connected" not in web.log_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # PUB/SUB: the subscription reaches the bus a moment after connect
        rid = client.send(Hello(macs=(MAC,), state="init", stage=Stage.STAGE1, boot_id="boot-1"))
        reply = client.receive(rid, 20.0)[0]
        assert isinstance(reply, Welcome | Wait) and reply.node == MAC, reply  # enrolled (no capsule: told to wait)
        _, ev = sse.wait_for(lambda ev, d: ev == "event" and d["event"] == "hello")
        assert (ev["node"], ev["data"]["stage"]) == (MAC, "stage1")
        # Enrolled first (state new), then its contact is group-committed: init, phase enroll.
        _, rows = sse.wait_for(
            lambda ev, d: ev == "nodes" and any(r["nodeid"] == MAC and r["state"] == "init" for r in d["rows"])
        )
        row = next(r for r in rows["rows"] if r["nodeid"] == MAC)
        assert (row["hostname"], row["state"], row["phase"]) == ("n0000", "init", "enroll")
        t = time.time()
        for done, at in ((False, t), (True, t + 2.5)):
            rid = client.send(Report(node=MAC, boot_id="boot-1", phase=Phase.CAPSULE, at=at, done=done))
            assert isinstance(client.receive(rid, 20.0)[0], Ack)
        sse.wait_for(lambda ev, d: ev == "event" and d["event"] == "phase" and d["data"]["done"])
        # A fleet view's stream gets the rows but not every node's bus events (a storm would flood it).
        fleet_only.wait_for(lambda ev, d: ev == "nodes" and any(r["nodeid"] == MAC for r in d["rows"]))
        assert "nodes" in fleet_only.names and "event" not in fleet_only.names
    finally:
        sse.close()
        fleet_only.close()
    assert _wait_metric(web, 'perceus_hellos_total{stage="stage1"}', 1.0) == 1.0
    assert _wait_metric(web, 'perceus_enrollments_total{how="auto"}', 1.0) == 1.0
    assert _wait_metric(web, 'perceus_boot_phase_duration_seconds_count{phase="capsule"}', 1.0) == 1.0
    assert _metric(web, 'perceus_boot_phase_duration_seconds_sum{phase="capsule"}') == pytest.approx(2.5)
    assert _metric(web, "perceus_bus_up") == 1.0
    received = _metric(web, "perceus_bus_messages_received_total")
    assert received is not None and received >= 3
    assert _metric(web, 'perceus_nodes{state="init"}') == 1.0
    assert _metric(web, 'perceus_capsule_bytes_served_total{source="master"}') == 0.0  # no capsule fetched
    assert web.get_json("/api/v1/boot")["bytes_served"] == 0  # the boot page reads the same counter
    recent = [e["event"] for e in web.get_json("/api/v1/nodes/n0000/events")]
    assert recent == ["node_enrolled", "hello", "phase", "phase"]
