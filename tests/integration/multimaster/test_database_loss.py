"""A master cut off from the shared database stops answering nodes, agents fail over, and it comes back.

Master A logs in as its own PostgreSQL role; the test cuts A off by `ALTER ROLE … NOLOGIN` and terminating
that role's sessions (what a network partition or revoked access looks like to A), while master B keeps the
database.  A must not answer from stale state: no reply at all, so the agent's BusClient fails over to B.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from tests.integration.multimaster.conftest import Master, write_config
from tests.integration.store.conftest import PgCluster, _free_port

from perceus.agent.bus import BusClient
from perceus.errors import BusError
from perceus.master.config import Paths
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Ack, CheckIn, Hello

pytestmark = pytest.mark.postgres

MAC = "0C:BB:00:00:00:01"


def _checkin(client: BusClient, timeout: float) -> object:
    return client.request(CheckIn(node=MAC, state="ready", boot_id="x"), timeout=timeout)


def test_cut_off_master_goes_silent_and_returns(pg_cluster: PgCluster, shared_db: str, tmp_path: Path) -> None:
    role = f"cut{os.getpid()}"
    pg_cluster.admin(f"CREATE ROLE {role} LOGIN SUPERUSER")
    url_a = shared_db.replace(f"//{pg_cluster.user}@", f"//{role}@")
    masters = []
    for name, url in (("a", url_a), ("b", shared_db)):
        paths = Paths(tmp_path / name / "etc", tmp_path / name / "var")
        write_config(paths, url)
        masters.append(Master(paths, _free_port()))
    a, b = masters
    to_a: BusClient | None = None
    try:
        a.start()
        b.start()
        # One client for A throughout: requests carry a growing seq, which the bus's replay guard checks.
        to_a = BusClient([a.address])
        to_a.request(Hello(macs=(MAC,), state="init", stage=Stage.STAGE1, boot_id="x"), timeout=10)
        assert isinstance(_checkin(to_a, 5), Ack)

        pg_cluster.admin(f"ALTER ROLE {role} NOLOGIN")
        pg_cluster.admin(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{role}'")
        time.sleep(1.0)
        # A is silent (not an error reply: an agent acts on error codes, but fails over on silence) …
        with pytest.raises(BusError) as silent:
            _checkin(to_a, 3)
        assert silent.value.code == "TIMEOUT"
        # … so an agent that knows both masters is served by B.
        agent = BusClient([a.address, b.address])
        try:
            reply = agent.call(CheckIn(node=MAC, state="ready", boot_id="x"), timeout=2, attempts=3)
            assert isinstance(reply, Ack) and agent.master == b.address
        finally:
            agent.close()
        assert a.bus is not None
        assert "master_unavailable" in a.bus.log_text()

        # Access restored: A answers again (after its pool reconnects and a fresh LISTEN is up).
        pg_cluster.admin(f"ALTER ROLE {role} LOGIN")
        deadline = time.monotonic() + 30
        while True:
            try:
                if isinstance(_checkin(to_a, 2), Ack):
                    break
            except BusError:
                pass
            assert time.monotonic() < deadline, f"master A did not come back: {a.bus.log_text()[-2000:]}"
        assert "master_available" in a.bus.log_text()
    finally:
        if to_a is not None:
            to_a.close()
        for m in masters:
            m.stop()
        pg_cluster.admin(f"DROP DATABASE IF EXISTS {shared_db.rsplit('/', 1)[1]} WITH (FORCE)")
        pg_cluster.admin(f"DROP ROLE IF EXISTS {role}")
