"""`perceus-bus`: the master daemon (the original's perceusd, 1.x ref §5.1), ZeroMQ instead of TCP 987 + fork."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

import structlog
import zmq

from perceus import logsetup
from perceus.errors import PerceusError
from perceus.master.bus.control import control_endpoint, write_endpoints
from perceus.master.bus.handlers import Dispatcher
from perceus.master.bus.server import BusServer
from perceus.master.config import MasterConfig, Paths
from perceus.master.daemon import Daemon
from perceus.master.features import install_all
from perceus.master.security.privileges import drop_privileges
from perceus.master.security.service import prepare as prepare_security
from perceus.master.store import open_store

log = structlog.get_logger("perceus.bus")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="perceus-bus", description="Perceus master daemon (node bus).")
    p.add_argument("--config-dir", help="configuration directory (default /etc/perceus, $PERCEUS_CONFIG_DIR)")
    p.add_argument("--state-dir", help="state directory (default /var/lib/perceus, $PERCEUS_STATE_DIR)")
    p.add_argument("--bind", help="node bus endpoint, e.g. tcp://10.0.0.1:9987 (default from perceus.conf)")
    p.add_argument("--events", help="event PUB endpoint (default from perceus.conf)")
    p.add_argument("--foreground", action="store_true", help="stay in the foreground (systemd, debugging)")
    p.add_argument("--debug", action="store_true", help="debug logging; implies --foreground")
    p.add_argument("--log-json", action="store_true", help="log JSON lines instead of key=value")
    p.add_argument("--master", action="append", default=[], help="advertise another master (host:port) to nodes")
    p.add_argument("--security", choices=("curve", "none"), help="override 'bus security' of perceus.conf")
    p.add_argument("--user", help="drop root privileges to this user once the sockets are bound")
    return p.parse_args(argv)


def _daemonize(pidfile: Path) -> None:
    """Classic double fork; the pid file holds the daemon's own PID (1.x wrote the pre-fork one)."""
    if os.fork():
        os._exit(0)
    os.setsid()
    if os.fork():
        os._exit(0)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    pidfile.write_text(f"{os.getpid()}\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    foreground = args.foreground or args.debug
    paths = Paths.resolve(args.config_dir, args.state_dir)
    logsetup.configure(level="debug" if args.debug else "info", json=args.log_json, stream=sys.stdout)
    try:
        paths.ensure()
        config = MasterConfig.load(paths)
    except PerceusError as exc:
        print(f"perceus-bus: error: {exc}", file=sys.stderr)
        return 1
    bind = args.bind or f"tcp://{config.bus_address}:{config.bus_port}"
    events = args.events or f"tcp://{config.bus_address}:{config.event_port}"
    if not foreground:
        # Before opening the store: a connection pool's threads do not survive fork().
        _daemonize(paths.run / "perceus-bus.pid")
    control = paths.control_socket
    try:
        store = open_store(paths, config)
    except PerceusError as exc:
        log.error("bus_start_failed", error=str(exc))
        print(f"perceus-bus: error: {exc}", file=sys.stderr)
        return 1
    daemon: Daemon | None = None
    try:
        control.unlink(missing_ok=True)
        dispatcher = Dispatcher(store=store, paths=paths, masters=tuple(args.master))
        # Keys, ZAP handler and CurveZMQ options exist before the sockets bind (security/service.py).
        security = prepare_security(paths, config, override=args.security)
        server = BusServer(
            dispatcher, bind=bind, pub_bind=events, control=control_endpoint(control), curve=security.curve
        )
        # From here a SIGTERM or Ctrl-C only asks the server to stop, so the clean-up below always runs (a bus
        # killed by the default action during start-up would leave its dnsmasq behind).
        signal.signal(signal.SIGTERM, server.stop)
        signal.signal(signal.SIGINT, server.stop)
        daemon = Daemon(paths=paths, config=config, store=store, dispatcher=dispatcher, server=server)
        daemon.on_close(security.close)
        install_all(daemon)
        security.install(daemon)
    except (PerceusError, OSError, zmq.ZMQError) as exc:
        log.error("bus_start_failed", error=str(exc))
        print(f"perceus-bus: error: cannot start: {exc}", file=sys.stderr)
        if daemon is not None:
            daemon.close()
            daemon.server.close()
        store.close()
        return 1
    write_endpoints(paths.run, server.endpoint, server.pub_endpoint)
    if args.user:
        try:
            drop_privileges(args.user, paths)
        except (PerceusError, OSError) as exc:
            log.error("bus_start_failed", error=str(exc))
            print(f"perceus-bus: error: {exc}", file=sys.stderr)
            daemon.close()
            server.close()
            store.close()
            return 1
    try:
        server.serve()
    finally:
        daemon.close()
        server.close()
        store.close()
        control.unlink(missing_ok=True)
        log.info("bus_stopped")
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
