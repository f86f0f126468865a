"""Agents learn every master a welcome advertises, so failover reaches masters not on their command line."""

from __future__ import annotations

from perceus.agent.bus import BusClient


def test_learn_adds_only_new_masters_in_order() -> None:
    client = BusClient(["10.0.0.1:9987"])
    try:
        assert client.learn(["10.0.0.1:9987", "10.0.0.2:9987", "", "tcp://10.0.0.3:9987"]) == [
            "10.0.0.2:9987",
            "tcp://10.0.0.3:9987",
        ]
        assert client.learn(["10.0.0.2"]) == []  # same endpoint: the default port
        assert client.masters == ["10.0.0.1:9987", "10.0.0.2:9987", "tcp://10.0.0.3:9987"]
        client.failover()
        assert client.master == "10.0.0.2:9987"
    finally:
        client.close()
