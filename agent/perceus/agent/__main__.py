"""`python -m perceus.agent` / `perceus-agent`: stage one (from /init) or provisiond, by `perceus.mode=`.

Exit codes are /init's contract (stage1/perceus/stage1/init): 0 power off, 3 shell then power off, anything
else reboot after a countdown.  provisiond exits 0 on SIGTERM and 1 on a configuration error.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import structlog

from perceus import logsetup
from perceus.agent import __version__, cmdline
from perceus.agent.cmdline import AgentConfig, Mode
from perceus.agent.console import EXIT_REBOOT, Console, configure_logging, fatal
from perceus.agent.failures import FatalBoot
from perceus.errors import PerceusError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="perceus-agent", description=__doc__.splitlines()[0])
    p.add_argument("--cmdline-file", type=Path, default=Path("/proc/cmdline"),
                   help="read the configuration from this file instead of /proc/cmdline")  # fmt: skip
    p.add_argument("--cmdline", help="the configuration as a kernel command line string (overrides the file)")
    p.add_argument("--mode", choices=[m.value for m in Mode], help="override perceus.mode=")
    p.add_argument("--no-hardware", action="store_true",
                   help="no mounts, drivers or network set-up: use the host's network as it is (tests)")  # fmt: skip
    p.add_argument("--once", action="store_true", help="stage one: stop after the first answered hello")
    p.add_argument("--run-dir", type=Path, default=Path("/run/perceus"), help="scratch directory")
    p.add_argument("--conf-file", type=Path, default=Path("/etc/perceus/provisiond.conf"),
                   help="provisiond: master address etc. when the kernel command line has none")  # fmt: skip
    p.add_argument("--root", type=Path, default=Path("/"),
                   help="provisiond: the root that module actions write under (tests use a temp dir)")  # fmt: skip
    p.add_argument("--max-checkins", type=int, default=0, help="provisiond: stop after N check-ins (tests)")
    return p.parse_args(argv)


def _config(args: argparse.Namespace) -> AgentConfig:
    config = cmdline.parse(args.cmdline) if args.cmdline is not None else cmdline.load(args.cmdline_file)
    if args.mode:
        config = dataclasses.replace(config, mode=Mode(args.mode))
    if config.mode is Mode.RUNTIME and not config.masters:
        from perceus.agent.modules import provisiond_conf

        config = provisiond_conf.fill(config, args.conf_file)
    return config


def stage1_main(config: AgentConfig, args: argparse.Namespace) -> int:
    from perceus.agent.stage1 import Options, Stage1

    console = (Console.open(config.consoles, config.debug) if not args.no_hardware
               else Console([sys.stdout], config.debug))  # fmt: skip
    configure_logging(console)
    try:
        return Stage1(config, console, Options(hardware=not args.no_hardware, once=args.once,
                                               run_dir=args.run_dir)).run()  # fmt: skip
    except FatalBoot as exc:
        return fatal(console, str(exc))
    except PerceusError as exc:
        return fatal(console, str(exc))
    except Exception as exc:  # the last line of defence on a node: show it, never die silently  # noqa: BLE001
        return fatal(console, f"{type(exc).__name__}: {exc}")
    finally:
        console.close()


def runtime_main(config: AgentConfig, args: argparse.Namespace) -> int:
    from perceus.agent.runtime import Options, Runtime

    logsetup.configure(level="debug" if config.debug >= 2 else "info", stream=sys.stdout)
    structlog.get_logger("perceus.agent").info("agent_starting", version=__version__, mode="runtime",
                                               node=config.node)  # fmt: skip
    try:
        if not args.no_hardware:
            from perceus.agent import bare

            bare.bring_up(config)
        agent = Runtime(config, Options(run_dir=args.run_dir, max_checkins=args.max_checkins, root=args.root))
        return agent.run()
    except PerceusError as exc:
        print(f"perceus-agent: error: {exc}", file=sys.stderr)
        return 1


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        config = _config(args)
    except PerceusError as exc:
        print(f"perceus-agent: error: {exc}", file=sys.stderr, flush=True)
        return EXIT_REBOOT
    if config.mode is Mode.RUNTIME:
        return runtime_main(config, args)
    return stage1_main(config, args)


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
