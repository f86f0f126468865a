"""Stage one: drivers → network → hello → node scripts → capsule → kexec (1.x ref §6.2, design.md §2).

Replies are handled by type and error code, never by text.  Unlike 1.x, which re-sent `init` about once a
second forever while a node was disabled or had no VNFS (1.x ref §6.4), every retry here waits the master's
`retry_after` or a jittered exponential back-off, so a room of idle nodes never floods the master.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import random
import subprocess
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import structlog

from perceus.agent import __version__, cmdline, inventory, scripts, security
from perceus.agent import handover as session_handover
from perceus.agent.bus import BusClient, CurveHook, backoff, new_keypair
from perceus.agent.cmdline import AgentConfig, Master, handover
from perceus.agent.console import EXIT_POWEROFF, Console, debug_shell
from perceus.agent.failures import FatalBoot
from perceus.agent.isolate import run_isolated
from perceus.agent.network import Lease
from perceus.agent.phases import Phases
from perceus.errors import BusError, ConfigError, PerceusError
from perceus.protocol.enums import ErrorCode, Phase, Stage
from perceus.protocol.messages import Handover, Hello, Message, Report, Wait, Welcome

log = structlog.get_logger("perceus.agent.stage1")

HELLO_TIMEOUT = 5.0
HELLO_ATTEMPTS = 3
MAX_UNREACHABLE = 5  # rounds of failed hellos before giving up (1.x: MAX_TRIES=5, then reboot30)
RETRY_CAP = 60.0
FATAL_CODES = {ErrorCode.BAD_MESSAGE, ErrorCode.UNSUPPORTED_VERSION, ErrorCode.TOO_LARGE}
_API_MOUNTS = (("proc", "/proc", "proc"), ("sysfs", "/sys", "sysfs"), ("devtmpfs", "/dev", "devtmpfs"),
               ("tmpfs", "/run", "tmpfs"))  # fmt: skip


class FetchedCapsule(Protocol):
    """What `perceus.agent.capsule_fetch.fetch_capsule` returns (owned by the capsule work)."""

    kernel: Path
    initrd: Path | None
    cmdline: str


class CapsuleFetcher(Protocol):
    def __call__(
        self, client: BusClient, node: str, manifest_hash: str, dest_dir: Path, *,
        need_rootfs: Callable[[Any], bool] | None = None,
    ) -> FetchedCapsule: ...  # fmt: skip


@dataclass
class _DiskBoot:
    """A stateful capsule's kexec inputs: its kernel, its own initrd (or none) and `root=` of the disk."""

    kernel: Path
    initrd: Path | None
    cmdline: str


@dataclass
class Options:
    """How this run differs from a real node boot (tests and development)."""

    hardware: bool = True  # mounts, drivers, network; off = use the host's network as it is
    once: bool = False  # return after the first answered hello (tests)
    run_dir: Path = Path("/run/perceus")
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    # Where a session key handed over by provisiond's `reprovision` would be (perceus.agent.reprovision): "/"
    # on a node (the initramfs root); the fleet emulator's node keeps it under its own RAM.
    handover_root: Path = Path("/")


def ensure_mounts() -> None:
    """Mount the API filesystems /init should have mounted; idempotent (already-mounted ones are kept)."""
    for source, target, fstype in _API_MOUNTS:
        if os.path.ismount(target):
            continue
        os.makedirs(target, exist_ok=True)
        result = subprocess.run(["mount", "-t", fstype, source, target], capture_output=True, text=True, check=False)
        (log.info if result.returncode == 0 else log.warning)(
            "api_fs_mounted" if result.returncode == 0 else "api_fs_mount_failed", target=target,
            error=result.stderr.strip(),
        )  # fmt: skip


def master_addresses(config: AgentConfig, lease: Lease | None) -> list[Master]:
    """`perceus.master=`/`masterip=`, else the DHCP server id, else next-server (1.x ref §6.2 order)."""
    if config.masters:
        return list(config.masters)
    if lease is not None and (lease.server_id or lease.next_server):
        return [Master(lease.server_id or lease.next_server)]
    return []


def kexec_cmdline(base: str, config: AgentConfig, node: str, lease: Lease | None, master: Master | None) -> str:
    """The capsule's own arguments + stage one's consoles (unless it names its own) + the hand-over keys.

    Everything after a `--` in the capsule's arguments belongs to init, not the kernel (and provisiond stops
    reading there), so our words go before it."""
    words = base.split()
    tail: list[str] = []
    if "--" in words:
        cut = words.index("--")
        words, tail = words[:cut], words[cut:]
    if not any(w.startswith("console=") for w in words):
        words.extend(f"console={c}" for c in config.consoles)
    words = [w for w in words if not w.startswith(("perceus.", "masterip="))]
    net = lease.as_static() if lease is not None else config.net
    words.extend(handover(config, node=node, net=net, master=master))
    words.extend(security.handover_words())  # provisiond trusts the same master keys as stage one
    return " ".join(words + tail)


class Stage1:
    """One boot of stage one; `run()` returns /init's exit code (or never returns: kexec)."""

    def __init__(self, config: AgentConfig, console: Console, options: Options | None = None) -> None:
        self.config = config
        self.console = console
        self.options = options or Options()
        self.boot_id = uuid.uuid4().hex
        self.phases = Phases(self.boot_id)
        self.lease: Lease | None = None
        self.client: BusClient | None = None
        self.failures = 0
        self.drivers_detail = ""
        self.curve: CurveHook | None = None
        # provisiond's keypair, made now and announced in every hello (`next_key`); handed over inside the
        # runtime initramfs at kexec so the master sees provisiond as this boot's continuation (handover.py).
        self.runtime_key: tuple[bytes, bytes] | None = None

    # ------------------------------------------------------------------ the flow
    def run(self) -> int:
        cfg, opts = self.config, self.options
        log.info("agent_starting", version=__version__, mode="stage1", debug=cfg.debug, boot_id=self.boot_id,
                 masters=",".join(str(m) for m in cfg.masters))  # fmt: skip
        if cfg.unknown:
            log.info("cmdline_keys_ignored", keys=",".join(cfg.unknown))
        if opts.hardware:
            ensure_mounts()
        if cfg.debug >= 3:
            debug_shell(self.console, "debug level 3: a shell before provisioning")
        if opts.hardware:
            self._drivers()
            self._network()
        else:
            self.phases.enter(Phase.ENROLL)
        masters = master_addresses(cfg, self.lease)
        if not masters:
            raise FatalBoot("no master address: neither perceus.master= nor a DHCP server identifier")
        # Re-entered from provisiond without firmware (`reprovision`): talk with the key it handed over inside
        # this initramfs, which it announced over its proven session; a PXE boot has none (a fresh key).
        reentry = session_handover.read_credential(self.options.handover_root)
        if reentry is not None:
            log.info("session_reentered", key=reentry[0].hex()[:16])
        self.curve = security.curve_hook(keypair=reentry)
        if self.curve is not None:
            self.runtime_key = new_keypair()
        self.client = BusClient([str(m) for m in masters], curve=self.curve)
        try:
            if opts.hardware:
                self.phases.enter(Phase.ENROLL)
            return self._provision(masters[0])
        finally:
            self.client.close()

    def _drivers(self) -> None:
        from perceus.agent import bmc_self, drivers

        self.phases.enter(Phase.DRIVERS)
        # The IPMI modules only where the firmware declares a BMC (nothing matches ipmi_devintf by modalias).
        kmods, noload = (*self.config.kmods, *bmc_self.modules_needed()), self.config.noload
        try:
            result = run_isolated(lambda: drivers.load_drivers(kmods, noload), what="driver loading")
        except PerceusError as exc:  # built-in NIC drivers may still work: the network phase decides
            log.warning("drivers_failed", error=str(exc))
            self.drivers_detail = f"driver loading failed: {exc}"
            return
        self.drivers_detail = result.summary()
        log.info("drivers_loaded", summary=self.drivers_detail)

    def _network(self) -> None:
        from perceus.agent import network

        self.phases.enter(Phase.DHCP, detail=self.drivers_detail)
        try:
            config = self.config
            self.lease = run_isolated(lambda: network.bring_up(config, hostname=config.nodename), what="network")
        except PerceusError as exc:
            self.phases.fail(str(exc))
            raise FatalBoot(str(exc)) from None

    # ------------------------------------------------------------------ talking to the master
    def _send_report(self, report: Report) -> None:
        assert self.client is not None
        try:
            self.client.request(report, timeout=3.0)
            log.debug("report_sent", phase=report.phase.value, done=report.done, ok=report.ok)
        except BusError as exc:  # a lost timeline entry must never stop a boot
            log.warning("report_failed", phase=report.phase.value, error=str(exc))

    def _pause(self, seconds: float, why: str) -> None:
        log.info("retry_wait", reason=why, seconds=round(seconds, 1))
        self.options.sleep(seconds)

    def _hello(self) -> Message | None:
        """One hello round; None when it failed in a way that was already waited out."""
        assert self.client is not None
        first = self.config.node or (self.lease.mac if self.lease else "")
        macs = inventory.hardware_macs(first=first)
        if not macs:
            raise FatalBoot("no hardware address to identify this node (no NIC, no perceus.node=)")
        hello = Hello(macs=tuple(macs), state="init", stage=Stage.STAGE1, boot_id=self.boot_id,
                      agent_version=__version__, nodename=self.config.nodename,
                      inventory=inventory.collect(),
                      next_key=self.runtime_key[0].hex() if self.runtime_key else "")  # fmt: skip
        log.debug("bus_request", type=hello.TYPE, master=self.client.master, macs=",".join(macs))
        try:
            reply = self.client.call(hello, timeout=HELLO_TIMEOUT, attempts=HELLO_ATTEMPTS, sleep=self.options.sleep)
        except BusError as exc:
            self.failures += 1
            code = exc.code
            if code in FATAL_CODES:
                raise FatalBoot(f"the master refused this agent: {exc}") from None
            if code == "TIMEOUT":
                log.warning("master_unreachable", master=self.client.master, round=self.failures, of=MAX_UNREACHABLE)
                if self.failures >= MAX_UNREACHABLE:
                    raise FatalBoot(f"could not reach the Perceus master ({exc})") from None
            else:
                log.warning("hello_refused", code=code, error=str(exc))
            self._pause(backoff(self.failures, base=2.0, cap=RETRY_CAP, rng=self.options.rng), code or "error")
            return None
        log.debug("bus_reply", type=reply.TYPE)
        self.failures = 0
        return reply

    def _provision(self, master: Master) -> int:
        while True:
            reply = self._hello()
            if isinstance(reply, Wait):
                if reply.node:
                    self.phases.identify(reply.node, self._send_report)
                log.info("master_says_wait", reason=reply.reason.value, message=reply.message,
                         hostname=reply.hostname, retry_after=reply.retry_after)  # fmt: skip
                if self.options.once:
                    return EXIT_POWEROFF
                rng = self.options.rng
                self._pause(max(1.0, reply.retry_after * rng.uniform(0.8, 1.2)), reply.reason.value)
            elif isinstance(reply, Welcome):
                self._welcomed(reply, master)
                if self.options.once:
                    return EXIT_POWEROFF
            elif reply is not None:
                log.warning("unexpected_reply", type=reply.TYPE)
                self._pause(backoff(1, base=2.0, cap=RETRY_CAP, rng=self.options.rng), "unexpected reply")
            elif self.options.once:
                return EXIT_POWEROFF

    def _retry(self, detail: str) -> None:
        self.phases.fail(detail, retry=Phase.ENROLL)
        self.failures += 1
        self._pause(backoff(self.failures, base=5.0, cap=RETRY_CAP, rng=self.options.rng), detail)

    def _welcomed(self, welcome: Welcome, master: Master) -> None:
        assert self.client is not None
        self.phases.identify(welcome.node, self._send_report)
        self._learn_masters(welcome.masters)
        if welcome.debug > self.console.debug:  # `perceus node set debug N` raises verbosity from the master
            self.console.debug = min(welcome.debug, 3)
        log.info("node_welcomed", node=welcome.node, hostname=welcome.hostname, group=welcome.group,
                 vnfs=welcome.vnfs, scripts=len(welcome.scripts))  # fmt: skip
        self.phases.enter(Phase.SCRIPTS)
        if welcome.scripts:
            outcome = scripts.run_and_report(self.client, welcome.scripts, welcome.env, state="init",
                                             node=welcome.node, boot_id=self.boot_id,
                                             workdir=self.options.run_dir)  # fmt: skip
            if outcome.status != 0:
                self._retry(f"node scripts exited {outcome.status}")
                return
        if self._modules(welcome, master):
            return
        self.phases.enter(Phase.CAPSULE)
        if not welcome.capsule:
            self._retry("the master named no capsule")
            return
        fetch = self._fetcher()
        if fetch is None:
            self._retry("capsule support missing")
            return
        stateful: dict[str, Any] = {}
        try:
            fetched = fetch(self.client, welcome.node, welcome.capsule, self.options.run_dir / "capsule",
                            need_rootfs=lambda m: self._need_rootfs(m, stateful))  # fmt: skip
        except PerceusError as exc:
            if stateful.get("refused"):
                self.phases.fail(str(exc))
                raise FatalBoot(f"stateful install refused: {exc}") from None
            self._retry(f"capsule fetch failed: {exc}")
            return
        if stateful:
            try:
                fetched = self._stateful(fetched, stateful, welcome.node, master)
            except PerceusError as exc:
                self.phases.fail(str(exc))
                raise FatalBoot(f"stateful install failed: {exc}") from None
        self.phases.enter(Phase.KEXEC, detail=str(stateful.get("detail", "")))
        self._kexec(fetched, welcome.node, master)

    def _need_rootfs(self, manifest: Any, state: dict[str, Any]) -> bool:
        """Stateless: always.  Stateful: only to (re)install; a disk marked with this manifest boots as it is."""
        from perceus.agent import install

        if manifest.type != "stateful":
            return True
        state["refused"] = True  # until the settings and the disk check out
        settings = install.Settings.parse(manifest.extra.get("stateful") or {})
        state.update(settings=settings, name=manifest.name, hash=manifest.hash,
                     install=install.wants_install(settings, manifest.hash, self.options.run_dir))  # fmt: skip
        if state["install"]:  # refuse a missing or too small disk before fetching the root stream
            install.make_plan(settings, install.block_disks(), manifest.rootfs.size)
        state["refused"] = False
        return bool(state["install"])

    def _stateful(self, fetched: FetchedCapsule, state: dict[str, Any], node: str, master: Master) -> _DiskBoot:
        from perceus.agent import install

        settings: install.Settings = state["settings"]
        rootfs = cast(Path, getattr(fetched, "rootfs"))  # noqa: B009 - not in the FetchedCapsule protocol
        initrd = fetched.initrd if fetched.initrd is not None and fetched.initrd.name == "initrd" else None
        words = [w for w in fetched.cmdline.split() if not w.startswith(("root=", "rootfstype="))]
        disk_initrd = self.options.run_dir / "disk-initrd.img"

        def entry_cmdline(root: str, fs: str) -> str:  # the boot loader's: what _kexec would pass
            return kexec_cmdline(" ".join(words + install.boot_args(root, fs)), self.config, node, self.lease, master)

        if state["install"]:
            plan = install.make_plan(settings, install.block_disks(), rootfs.stat().st_size)
            disks = " ".join(f"/dev/{d}" for d in plan.disks)
            self.phases.enter(Phase.INSTALL, detail=f"{rootfs.stat().st_size} bytes to {disks}")
            boot = install.BootFiles(fetched.kernel, entry_cmdline, disk_initrd)
            marker = install.install(plan, rootfs, manifest_hash=state["hash"], capsule=state["name"],
                                     mountpoint=self.options.run_dir / "disk", load_modules=self._load_modules,
                                     boot=boot)  # fmt: skip
            rootfs.unlink()  # on the disk now; the RAM is the next kernel's
            detail = f"installed {state['name']} on {marker.root}"
        else:
            marker, detail = install.installed_marker(settings), "disk already holds this capsule"
            log.info("install_skipped", root=marker.root, capsule=state["name"], reason=detail)
        if marker.esp:  # the generated disk initrd (md, the capsule kernel's modules) instead of the capsule's
            initrd = disk_initrd if state["install"] else install.read_esp_initrd(
                marker, disk_initrd, load_modules=self._load_modules)  # fmt: skip
        state["detail"] = detail
        fs = marker.filesystem or settings.filesystem
        return _DiskBoot(fetched.kernel, initrd, " ".join(words + install.boot_args(marker.root, fs)))

    def _load_modules(self, mods: list[str]) -> None:
        failed = self._kmods(mods)  # stage one's own modules: md, the root filesystem, vfat for the ESP
        if failed:
            log.warning("fs_module_failed", errors="; ".join(failed))

    def _learn_masters(self, advertised: Sequence[str]) -> None:
        """Every master the welcome names joins the failover list, here and (via the hand-over) in provisiond."""
        learned: list[Master] = []
        for text in advertised:
            try:
                learned.append(cmdline.parse_master("welcome.masters", text))
            except ConfigError:
                log.warning("master_address_ignored", address=text[:80])
        new = [m for m in learned if m not in self.config.masters]
        if new:
            self.config = dataclasses.replace(self.config, masters=(*self.config.masters, *new))
            assert self.client is not None
            self.client.learn([str(m) for m in new])
            log.info("masters_learned", masters=",".join(str(m) for m in new))

    def _modules(self, welcome: Welcome, master: Master) -> bool:
        """Apply the stage-one module actions (modprobe, stateful, xcpu); True when xcpu keeps the node here."""
        from perceus.agent.modules import xcpu
        from perceus.agent.modules.apply import Applier

        if not welcome.actions:
            return False
        applier = Applier(stage1=True, load_kmods=self._kmods, flags_dir=self.options.run_dir)
        applier.apply(welcome.actions)
        if not applier.xcpu:
            return False
        events = self.config.event_endpoint or Master(master.host, master.port + 1)
        assert self.client is not None
        xcpu.serve(self.client, str(events), welcome.node, self.boot_id, welcome.interval, curve=self.curve,
                   rng=self.options.rng)  # fmt: skip
        return True

    def _kmods(self, mods: Sequence[str]) -> list[str]:
        """modprobe module in stage one: the driver loader (finit_module in a forked child), not busybox."""
        if not self.options.hardware:
            log.info("modprobe_skipped", modules=" ".join(mods), reason="no hardware mode")
            return []
        from perceus.agent import drivers

        explicit = tuple(mods)
        result = run_isolated(lambda: drivers.load_drivers(explicit, walk=list), what="modprobe module")
        return [f"{m}: {e}" for m, e in result.failed.items()] + [f"{m}: not found" for m in result.missing]

    def _fetcher(self) -> CapsuleFetcher | None:
        try:
            module = importlib.import_module("perceus.agent.capsule_fetch")
        except ImportError as exc:
            log.error("capsule_support_missing", error=str(exc))
            return None
        return cast(CapsuleFetcher, module.fetch_capsule)

    def _hand_over(self, fetched: FetchedCapsule, node: str) -> None:
        """Put provisiond's session key into the runtime initramfs (stateless: it becomes the root fs)."""
        if self.runtime_key is None:
            return
        key = ""
        if isinstance(fetched, _DiskBoot) or fetched.initrd is None:
            # A disk root (or a capsule initrd that switches root) would not keep the file: provisiond then
            # starts with a fresh key and its session is not proven (no secrets; docs/security.md).
            log.warning("session_handover_skipped", reason="root on disk")
        else:
            try:
                session_handover.append_credential(fetched.initrd, *self.runtime_key)
                key = self.runtime_key[0].hex()
            except OSError as exc:
                log.warning("session_handover_failed", error=str(exc))
        # Restate it to the master: "" tells it no provisiond will hold this boot's key, so it stops keeping
        # the node's session for one (a stateful node's provisiond then waits a probe, not the kexec window).
        assert self.client is not None
        try:
            self.client.request(Handover(node=node, boot_id=self.boot_id, next_key=key), timeout=3.0)
        except BusError as exc:  # an older master, or a lost reply: the hello's `next_key` still stands
            log.info("session_handover_not_acknowledged", code=exc.code)

    def _kexec(self, fetched: FetchedCapsule, node: str, master: Master) -> None:
        from perceus.agent import kexec

        cmdline = kexec_cmdline(fetched.cmdline, self.config, node, self.lease, master)
        self._hand_over(fetched, node)
        try:
            kexec.load(fetched.kernel, fetched.initrd, cmdline)
            self.phases.flush()
            kexec.execute()
        except PerceusError as exc:
            self._retry(str(exc))
