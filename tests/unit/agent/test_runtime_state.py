"""provisiond's shutdown state (1.x ref §7.3) from $RUNLEVEL or systemd's queued jobs."""

from __future__ import annotations

import pytest

from perceus.agent.runtime import last_state


@pytest.mark.parametrize(
    ("env", "jobs", "state"),
    [
        ({"RUNLEVEL": "0"}, "", "halt"),
        ({"RUNLEVEL": "6"}, "", "reboot"),
        ({"RUNLEVEL": "1"}, "", "single-user"),
        ({"RUNLEVEL": "3"}, "", "unmonitored"),
        ({}, "1 poweroff.target start waiting", "halt"),
        ({}, "7 reboot.target start waiting", "reboot"),
        ({}, "9 rescue.target start running", "single-user"),
        ({}, "", "unmonitored"),
    ],
)
def test_last_state(env: dict[str, str], jobs: str, state: str) -> None:
    assert last_state(env, lambda: jobs) == state
