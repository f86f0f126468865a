"""The node side of the fleet emulator: a zygote that forks one agent process per emulated node.

`python -m perceus.lab.fleet_node` imports the agent once (pyroute2, pyzmq, zstandard, PyNaCl …), then reads
JSON commands on stdin and forks a child per `spawn`.  The child enters the node's network namespace, gets a
mount namespace of its own with a fresh sysfs (so /sys/class/net shows the node's eth0) and a tmpfs on /run
(the node's RAM: the capsule lands in /run/perceus/capsule), then runs the real stage-one flow
(perceus.agent.emulated) and provisiond.  Forking from a warm zygote makes a node cost milliseconds of CPU to
start and shares the imported code between all nodes (copy on write), instead of ~1 s and ~30 MB each.
Every node still has its own process, namespace, sockets, keys and agent state; killing one kills only it.

This module imports nothing from perceus.master: what runs in a node is only what a node carries.
Events go back on stdout as JSON lines: {"ev": "spawned"|"exited", "name", "pid", "status"}.
"""

from __future__ import annotations

import ctypes
import json
import os
import selectors
import signal
import sys
from pathlib import Path
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWNET = 0x40000000
MS_REC = 0x4000
MS_SLAVE = 1 << 19
MNT_DETACH = 2

_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str, target: str, fstype: str, flags: int = 0, data: str = "") -> None:
    _check(_libc.mount(source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
                       data.encode() if data else None), f"mount {fstype} on {target}")  # fmt: skip


def enter_node(netns: str, tmpfs_mb: int) -> None:
    """Join `netns`; own mount namespace with this netns's sysfs and a private tmpfs /run (the node's RAM)."""
    fd = os.open(f"/run/netns/{netns}", os.O_RDONLY | os.O_CLOEXEC)
    try:
        _check(_libc.setns(fd, CLONE_NEWNET), f"setns {netns}")
    finally:
        os.close(fd)
    _check(_libc.unshare(CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    _mount("none", "/", "none", MS_REC | MS_SLAVE)  # nothing we mount propagates back to the host
    _libc.umount2(b"/sys", MNT_DETACH)
    _mount("sysfs", "/sys", "sysfs")
    _mount("tmpfs", "/run", "tmpfs", 0, f"size={tmpfs_mb}m,mode=0755")
    for path in ("/proc/sys/net/ipv6/conf/all/disable_ipv6", "/proc/sys/net/ipv6/conf/default/disable_ipv6"):
        try:
            Path(path).write_text("1")
        except OSError:
            pass


def preload() -> None:
    """Import everything a node will use, once, before any fork (never create a ZeroMQ context here)."""
    import nacl.signing  # noqa: F401
    import pyroute2.dhcp.client
    import pyroute2.dhcp.fsm  # noqa: F401
    import zmq  # noqa: F401
    import zstandard  # noqa: F401

    import perceus.agent.capsule_fetch
    import perceus.agent.emulated
    import perceus.agent.modules.apply
    import perceus.agent.network
    import perceus.agent.runtime  # noqa: F401


def _child(cmd: dict[str, Any]) -> int:
    from perceus.agent import emulated

    node_dir = Path(cmd["dir"])
    node_dir.mkdir(parents=True, exist_ok=True)
    console = open(node_dir / "console.log", "a", buffering=1, encoding="utf-8", errors="replace")  # noqa: SIM115
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.dup2(console.fileno(), 1)
    os.dup2(console.fileno(), 2)
    try:
        enter_node(str(cmd["netns"]), int(cmd.get("tmpfs_mb", 256)))
    except OSError as exc:
        console.write(f"fleet-node: cannot enter the node's namespaces: {exc}\n")
        return 70
    run_dir = Path("/run/perceus")
    run_dir.mkdir(parents=True, exist_ok=True)
    return emulated.run(str(cmd["cmdline"]), run_dir, console, max_checkins=int(cmd.get("max_checkins", 0)))


def _emit(event: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _spawn(cmd: dict[str, Any], children: dict[int, str]) -> None:
    pid = os.fork()
    if pid == 0:
        status = 1
        try:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            status = _child(cmd)
        except BaseException as exc:  # the child never returns into the zygote's loop  # noqa: BLE001
            try:
                sys.stderr.write(f"fleet-node: {type(exc).__name__}: {exc}\n")
                sys.stderr.flush()
            except Exception:  # noqa: BLE001, S110 - an error boundary: any failure here is one line and the caller goes on; nothing to release
                pass
        finally:
            os._exit(status if isinstance(status, int) else 1)
    children[pid] = str(cmd["name"])
    _emit({"ev": "spawned", "name": cmd["name"], "pid": pid})


def _reap(children: dict[int, str]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        name = children.pop(pid, "?")
        _emit({"ev": "exited", "name": name, "pid": pid, "status": os.waitstatus_to_exitcode(status)})


def main() -> int:
    preload()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the harness stops us (and the nodes) itself
    children: dict[int, str] = {}
    sel = selectors.DefaultSelector()
    sel.register(sys.stdin, selectors.EVENT_READ)
    _emit({"ev": "ready", "pid": os.getpid()})
    buffer = ""
    while True:
        for _key, _ in sel.select(timeout=0.2):
            data = os.read(sys.stdin.fileno(), 1 << 16).decode()
            if not data:
                for pid in list(children):
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                return 0
            buffer += data
            while "\n" in buffer:
                line, buffer = buffer.split("\n", 1)
                if line.strip():
                    cmd = json.loads(line)
                    if cmd.get("op") == "spawn":
                        _spawn(cmd, children)
        _reap(children)


if __name__ == "__main__":
    sys.exit(main())
