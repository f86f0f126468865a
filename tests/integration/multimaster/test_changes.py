"""A node change made on one master reaches the other masters' event streams within a second (LISTEN/NOTIFY)."""

from __future__ import annotations

import io
import json
import time

import pytest
from tests.integration.multimaster.conftest import Masters
from tests.integration.store.backends import Backend

from perceus.agent.bus import BusClient, Subscriber
from perceus.master.cli.context import CliContext
from perceus.master.cli.main import main
from perceus.protocol import hwaddr
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Event, Hello, Welcome

pytestmark = pytest.mark.postgres

MAC = "0C:AA:00:00:00:01"


def test_change_on_one_master_is_published_by_the_others(three_masters: Masters) -> None:
    a, b, c = three_masters.masters
    assert b.bus is not None and c.bus is not None
    subs = [Subscriber(m.bus.events, ["event"]) for m in (b, c) if m.bus is not None]
    time.sleep(0.3)  # PUB/SUB: let the subscriptions reach the publishers
    client = BusClient([a.address])
    try:
        t0 = time.monotonic()
        client.request(Hello(macs=(MAC,), state="init", stage=Stage.STAGE1, boot_id="x"), timeout=10)
        for sub in subs:
            seen = None
            while time.monotonic() - t0 < 1.0:
                msg = sub.wait(max(0.0, 1.0 - (time.monotonic() - t0)))
                if isinstance(msg, Event) and msg.event == "node_changed" and msg.node == hwaddr.normalize(MAC):
                    seen = msg
                    break
            assert seen is not None, "enrollment on master A not published by B/C within 1 s"
        # A change from the CLI side (a plain store write, as `perceus node set` does) is published too.
        with Backend("postgresql", three_masters.url).open() as store:
            t0 = time.monotonic()
            store.update([hwaddr.normalize(MAC)], {"desc": "rack 4"})
        msg = subs[0].wait(1.0)
        while msg is not None and not (isinstance(msg, Event) and msg.event == "node_changed"):
            msg = subs[0].wait(max(0.0, 1.0 - (time.monotonic() - t0)))
        assert msg is not None and time.monotonic() - t0 < 1.0

        # Every live master is advertised to nodes in the welcome (masters started later show up after the
        # next heartbeat, within a second or two).
        deadline = time.monotonic() + 3
        while True:
            welcome = client.request(Hello(macs=(MAC,), state="ready", stage=Stage.RUNTIME, boot_id="x"), timeout=10)
            assert isinstance(welcome, Welcome)
            if len(welcome.masters) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert sorted(welcome.masters) == sorted(three_masters.addresses)
        assert welcome.masters[0] == a.address
    finally:
        client.close()
        for sub in subs:
            sub.close()


def test_info_shows_every_master(three_masters: Masters) -> None:
    """`perceus info` on any master lists all three, live, with their heartbeats and served counts."""
    paths = three_masters.masters[1].paths
    time.sleep(1.5)  # one heartbeat after start
    for args, check in ((["info", "--json"], "json"), (["info"], "text")):
        out, err = io.StringIO(), io.StringIO()
        ctx = CliContext(paths=paths, stdin=io.StringIO(), stdout=out, stderr=err)
        assert main(args, context=ctx) == 0, err.getvalue()
        if check == "json":
            section = json.loads(out.getvalue())["masters"]
            assert section["shared"] and section["live"] == 3
            assert sorted(m["endpoint"] for m in section["masters"]) == sorted(three_masters.addresses)
            assert all(m["heartbeat_age_s"] < 3 for m in section["masters"])
        else:
            assert "masters:           3 live of 3" in out.getvalue()
            assert all(a in out.getvalue() for a in three_masters.addresses)
