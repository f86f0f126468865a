"""Rotated log order and the program/message split of syslog lines."""

from __future__ import annotations

import pytest

from perceus.importers.source import Source
from perceus.importers.syslog import message, oldest_first


def _src(path: str) -> Source:
    return Source(path, b"", "", truncated=False)


def test_rotations_oldest_first_whatever_the_command_line_order() -> None:
    given = ["messages", "messages.1", "messages.10.gz", "messages.2.gz", "other.log"]
    assert [s.path for s in oldest_first([_src(p) for p in given])] == [
        "messages.10.gz",
        "messages.2.gz",
        "messages.1",
        "messages",
        "other.log",
    ]
    dated = ["/var/log/daemon.log", "/var/log/daemon.log-20240225", "/var/log/daemon.log-20240218.gz"]
    assert [s.path.rsplit("/", 1)[1] for s in oldest_first([_src(p) for p in dated])] == [
        "daemon.log-20240218.gz",
        "daemon.log-20240225",
        "daemon.log",
    ]


@pytest.mark.parametrize(
    ("line", "program", "text"),
    [
        ("Jan  2 08:00:00 head dhcpd[812]: DHCPDISCOVER from x", "dhcpd", "DHCPDISCOVER from x"),
        ("Apr  1 10:00:05 dnsmasq-dhcp[3300]: 1 DHCPDISCOVER(eth1) x", "dnsmasq-dhcp", "1 DHCPDISCOVER(eth1) x"),
        ("Apr 01 10:00:00.123456 head dhcpd[812]: m", "dhcpd", "m"),
        ("2024-04-01T10:00:00+00:00 head dhcpd: m", "dhcpd", "m"),
        ('<30>1 2024-04-01T10:00:00Z h dhcpd 812 - [a b="x\\"] y"][c] \ufeffm', "dhcpd", "m"),
        ("<30>1 2024-04-01T10:00:00Z h dhcpd 812 - - m", "dhcpd", "m"),
        ("no header at all", None, "no header at all"),
    ],
)
def test_message(line: str, program: str | None, text: str) -> None:
    assert message(line) == (program, text)
