"""A node's console, read as its timeline: the agent's own line format, phases in order, queue, failures."""

from __future__ import annotations

from pathlib import Path

from perceus.lab.fleet_console import NodeTrack, parse_line

LINES = """\
[  100.00] perceus: agent_starting version=2 mode=stage1 debug=1
[  100.05] perceus: dhcp_lease iface=eth0 ip=10.96.1.7 prefixlen=16
[  100.10] perceus: node_welcomed node=52:54:01:00:00:07 hostname=n0007 group=cluster
[  100.20] perceus: capsule_queued position=3 of=9 eta_s=4.5 retry_in=0.2 message='capsule transfer queued: position 3'
[  101.00] perceus: WARNING chunk_retry chunk=ab reason=timeout attempt=1
[  104.00] perceus: capsule_fetch_started capsule=fleet chunks=5 missing=5
[  108.00] perceus: kexec_emulated kernel=/run/perceus/capsule/kernel cmdline='perceus.mode=runtime perceus.node=x'
[  108.01] perceus: agent_starting version=2 mode=runtime node=52:54:01:00:00:07 emulated=True
[  108.02] perceus: node_welcomed node=52:54:01:00:00:07 hostname=n0007 interval=60.0
"""


def test_parse_line_keeps_quoted_values() -> None:
    parsed = parse_line("[  1.50] perceus: WARNING x_happened a=1 b='two words' c=")
    assert parsed == (1.5, "warning", "x_happened", {"a": "1", "b": "two words", "c": ""})
    assert parse_line("Linux version 6.1") is None


def test_a_boot_read_from_the_console(tmp_path: Path) -> None:
    console = tmp_path / "console.log"
    console.write_text(LINES[:200])  # half a line at first: nothing is read twice or lost
    track = NodeTrack("node0007", console, spawned=99.9)
    track.poll()
    with console.open("a") as fh:
        fh.write(LINES[200:])
    track.poll()
    assert track.ready and track.step == "ready"
    assert (track.hostname, track.ip, track.chunk_retries) == ("n0007", "10.96.1.7", 1)
    assert "perceus.mode=runtime" in track.kexec_cmdline
    row = track.summary(origin=100.0)
    assert row["dhcp"] == 0.05 and row["enrolled"] == 0.1 and row["ready"] == 8.02
    assert row["queue_wait"] == 3.8 and row["capsule"] == 4.0 and row["failed"] is None


def test_fatal_and_exit_say_why(tmp_path: Path) -> None:
    console = tmp_path / "console.log"
    fatal = "perceus: FATAL: stateful install refused: no disk\n"
    console.write_text("[ 5.00] perceus: phase_started phase=capsule\n" + fatal)
    track = NodeTrack("node0001", console, spawned=0.0)
    track.poll()
    assert track.step == "failed" and track.failed == "stateful install refused: no disk"
    silent = NodeTrack("node0002", tmp_path / "none.log", spawned=0.0, exit_status=-9)
    assert silent.step == "exited" and silent.summary(0.0)["failed"] == "exited -9"
