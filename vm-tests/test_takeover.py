"""Issue 14: a QEMU node boots normally (stage one → capsule → kexec → provisiond) while an attacker process on
the same bridge keeps trying the MAC takeover (fresh Curve keys, `hello stage=runtime` with fresh boot ids, then
stage-one hellos once the node is known).  The node reaches runtime and receives the cluster's SSH host keys
through the session its stage one handed over; the attacker never gets a welcome, scripts or keys.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from perceus.lab import DirectBoot, Lab, SerialTimeout
from perceus.lab.bus import LabBus, perceus_cli, python_env, start_bus
from perceus.master.bus.control import poke
from perceus.master.config import Paths
from perceus.master.security.audit import audit_path, read
from perceus.stage1 import BuildResult

pytestmark = pytest.mark.vm

ATTACKER = r"""
import json, os, sys, time
from perceus.agent.bus import BusClient, CurveClient
from perceus.errors import BusError
from perceus.protocol.enums import Stage
from perceus.protocol.messages import Hello, Welcome

endpoint, key_hex, mac, out, stop = sys.argv[1:6]
key = bytes.fromhex(key_hex)
seen = {"attempts": 0, "welcomes": 0, "scripts": 0, "keys": 0, "replies": {}}
known = False
deadline = time.monotonic() + 900
while time.monotonic() < deadline and not os.path.exists(stop):
    for stage in (Stage.RUNTIME, Stage.STAGE1) if known else (Stage.RUNTIME,):
        c = BusClient([endpoint], curve=CurveClient(key))  # a fresh key every time
        hello = Hello(macs=(mac,), state="ready" if stage == Stage.RUNTIME else "init", stage=stage,
                      boot_id=os.urandom(16).hex())
        seen["attempts"] += 1
        try:
            reply = c.request(hello, timeout=3.0)
            name = reply.TYPE + ":" + str(getattr(reply, "reason", ""))
            if isinstance(reply, Welcome):
                seen["welcomes"] += 1
                seen["scripts"] += len(reply.scripts)
                seen["keys"] += sum(1 for a in reply.actions if a.kind == "host_keys")
        except BusError as exc:
            name = str(exc.code)
        finally:
            c.close()
        known = known or name != "UNKNOWN_NODE"
        seen["replies"][name] = seen["replies"].get(name, 0) + 1
        with open(out + ".tmp", "w") as fh:
            json.dump(seen, fh)
        os.replace(out + ".tmp", out)
    time.sleep(0.3)
"""


@pytest.fixture
def master(
    lab: Lab, stage1_image: BuildResult, tmp_path: Path, record_time: Callable[[str, float], None]
) -> Iterator[LabBus]:
    """perceus-bus (Curve, open policy) with capsule `mini` for every new node and cluster SSH host keys."""
    paths = Paths(config_dir=tmp_path / "etc", state_dir=tmp_path / "var")
    paths.ensure()
    defaults = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = mini", defaults))
    keys = paths.config_dir / "keys"
    keys.mkdir(parents=True, exist_ok=True)
    (keys / "ssh_host_ed25519_key").write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nvm-test\n-----END-----\n")
    (keys / "ssh_host_ed25519_key").chmod(0o600)
    (keys / "ssh_host_ed25519_key.pub").write_text("ssh-ed25519 AAAA vm-test\n")
    t = time.monotonic()
    imported = perceus_cli(paths, "vnfs", "import", str(stage1_image.initrd), "--kernel", str(stage1_image.kernel),
                           "--name", "mini")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    record_time("capsule import", time.monotonic() - t)
    yield start_bus(lab, paths, port=9987)


def test_node_boots_to_runtime_while_an_attacker_tries_the_takeover(
    lab: Lab, master: LabBus, stage1_image: BuildResult, tmp_path: Path, record_time: Callable[[str, float], None]
) -> None:
    key = master.bus_public_hex
    assert key, "the lab master runs CurveZMQ"
    lab.start_dnsmasq()
    append = f"console=ttyS0 quiet panic=-1 {master.kernel_args} perceus.debug=1"
    node = lab.add_node(DirectBoot(stage1_image.kernel, stage1_image.initrd, append), memory_mb=1024)
    result, stop = tmp_path / "attacker.json", tmp_path / "attacker.stop"
    lab.spawn("attacker", [sys.executable, "-c", ATTACKER, master.endpoint, key, node.mac.upper(),
                                      str(result), str(stop)], env=python_env())  # fmt: skip
    try:
        kexec = node.wait_for(r"kexec_started", 400)
        record_time("kexec started (attacker running)", kexec.t)
        keys = node.wait_for(r"host_keys_installed", 240, start=kexec.index)
        record_time("provisiond installed the host keys", keys.t)
    except SerialTimeout as exc:
        state = "running" if master.process.running() else "dead"
        pytest.fail(f"{exc}\n--- perceus-bus ({state}) log tail:\n{master.log_tail()}")
    finally:
        stop.touch()
    deadline = time.monotonic() + 30
    while True:
        nodes = json.loads(master.cli("node", "list", "--json").stdout or "[]")
        mine = [n for n in nodes if str(n.get("nodeid", "")).lower() == node.mac]
        if mine and mine[0]["status"] == "ready":
            break
        assert time.monotonic() < deadline, f"node {node.mac} never ready on the master: {mine}"
        time.sleep(0.5)
    time.sleep(1.0)
    seen = json.loads(result.read_text())
    print(f"attacker: {seen}")  # attempts and the replies it got, for the log of the run
    assert seen["attempts"] >= 20, seen
    assert seen["welcomes"] == 0 and seen["scripts"] == 0 and seen["keys"] == 0, seen
    assert any(k.startswith(("wait:busy", "REPLAYED")) for k in seen["replies"]), seen
    stats = poke(master.paths.control_socket, "security")
    assert stats is not None and stats["host_keys_sent"] == 1, stats
    events = {str(r.get("event")) for r in read(audit_path(master.paths))}
    assert "session_continued" in events and "session_probe" in events, events
