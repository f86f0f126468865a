"""Real BMCs on 127.0.0.1 for the power tests: ipmi_sim processes and sushy-tools' Redfish emulator."""

from __future__ import annotations

import shutil
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from perceus.lab.bmc import IpmiSim, SushyEmulator, free_port


@pytest.fixture(scope="module")
def need_ipmi_sim() -> None:
    if shutil.which("ipmi_sim") is None:
        pytest.skip("needs OpenIPMI's ipmi_sim (Debian openipmi; scripts/setup installs it)")


@pytest.fixture(scope="module")
def ipmi_bmcs(need_ipmi_sim: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[IpmiSim]]:
    """Two ipmi_sim BMCs whose power-on runs `sleep` (a machine that is on while it sleeps)."""
    root = tmp_path_factory.mktemp("ipmi")
    bmcs = [IpmiSim(root / f"bmc{i}", name=f"bmc{i}").start() for i in range(2)]
    yield bmcs
    for b in bmcs:
        b.stop()


@pytest.fixture(scope="module")
def redfish(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SushyEmulator]:
    """sushy-tools' emulator (its own Flask server) with three fake systems, powered off."""
    emulator = SushyEmulator(tmp_path_factory.mktemp("redfish"), systems=3).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def silent_tcp() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a BMC that hangs mid-request)."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(64)
    yield int(srv.getsockname()[1])
    srv.close()


@pytest.fixture
def silent_udp() -> Iterator[int]:
    """A UDP port that is bound (no ICMP refusal) but never answers: an IPMI BMC that is slow forever."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield int(s.getsockname()[1])
    s.close()


@pytest.fixture
def serial_port() -> Iterator[tuple[int, list[str]]]:
    """A TCP 'serial port' (what ipmi_sim's SOL attaches to) that prints numbered lines every 0.1 s."""
    port = free_port()
    srv = socket.socket()
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind(("127.0.0.1", port))
    srv.listen(4)
    sent: list[str] = []
    stop = threading.Event()

    def talk(conn: socket.socket) -> None:
        with conn:
            i = 0
            while not stop.is_set():
                line = f"serial says {i}"
                try:
                    conn.sendall(line.encode() + b"\r\n")
                except OSError:
                    return
                sent.append(line)
                i += 1
                stop.wait(0.1)

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = srv.accept()
            except OSError:
                return
            threading.Thread(target=talk, args=(conn,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield port, sent
    stop.set()
    srv.close()


def write_password_file(path: Path, password: str) -> str:
    path.write_text(password + "\n")
    path.chmod(0o600)
    return f"@{path}"
