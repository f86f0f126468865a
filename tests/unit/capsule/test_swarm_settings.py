"""`capsule swarm …` settings of perceus.conf as perceus-bus reads them (swarm_bus.settings_from_config)."""

from __future__ import annotations

import pytest

from perceus.errors import PerceusError
from perceus.master.capsule.swarm_bus import settings_from_config


def test_defaults_follow_the_pacing_link_rates() -> None:
    s = settings_from_config({"capsule uplink": ["40mbit"], "capsule node rate": ["4mbit"]})
    assert s.enabled and s.master_slots == 11 and s.peer_slots == 4


def test_swarm_off_with_one_setting() -> None:
    assert not settings_from_config({"capsule swarm": ["no"]}).enabled


def test_peer_slots_setting() -> None:
    assert settings_from_config({"capsule swarm peer slots": ["2"]}).peer_slots == 2


@pytest.mark.parametrize("value", ["0", "17", "two", "1.5"])
def test_bad_peer_slots_is_one_clear_error(value: str) -> None:
    with pytest.raises(PerceusError, match="capsule swarm peer slots"):
        settings_from_config({"capsule swarm peer slots": [value]})
