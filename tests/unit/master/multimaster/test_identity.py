"""A master's id survives restarts; the advertised address is one nodes can reach."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from perceus.master.multimaster.identity import ID_FILE, advertised, master_id


def test_master_id_is_created_once_and_kept(tmp_path: Path) -> None:
    first = master_id(tmp_path)
    assert len(first) == 36 and (tmp_path / ID_FILE).read_text().strip() == first
    assert master_id(tmp_path) == first


def test_other_state_dirs_get_other_ids(tmp_path: Path) -> None:
    assert master_id(tmp_path / "a") != master_id(tmp_path / "b")


@pytest.mark.parametrize(
    ("endpoint", "fallback", "expected"),
    [
        ("tcp://10.0.0.1:9987", "192.168.1.1", "10.0.0.1:9987"),
        ("tcp://0.0.0.0:9987", "10.0.0.2", "10.0.0.2:9987"),
        ("tcp://*:9987", "10.0.0.2", "10.0.0.2:9987"),
        ("tcp://[::1]:9987", "", "[::1]:9987"),
    ],
)
def test_advertised_address(endpoint: str, fallback: str, expected: str) -> None:
    assert advertised(endpoint, fallback) == expected


def test_wildcard_without_interface_address_falls_back_to_the_host_name() -> None:
    assert advertised("tcp://0.0.0.0:9987", "") == f"{socket.gethostname()}:9987"
