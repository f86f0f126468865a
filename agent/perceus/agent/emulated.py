"""Stage one as an emulated node runs it: the real flow, with kexec recorded instead of performed.

The fleet emulator (perceus.lab.fleet) runs one process per node in the node's own network namespace, mount
namespace and tmpfs.  Everything of stage one runs as on hardware — API mounts (already there), DHCP with
pyroute2's client on the node's veth, hello, enrollment, node scripts, module actions, the verified capsule
fetch — with two substitutions: there are no NIC drivers to load (a veth needs none), and a process cannot
kexec.  At the kexec point the agent logs `kexec_emulated` with the exact command line it would have booted,
and this module starts provisiond in the same process from that command line, as the runtime kernel would.
The same holds for `reprovision` (perceus.agent.reprovision): provisiond downloads and verifies stage one and
hands its key over as on a node, then logs `kexec_emulated target=stage1` and stage one starts again here.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import TextIO

import structlog

from perceus.agent import __version__, cmdline, reprovision, security
from perceus.agent.cmdline import Master
from perceus.agent.console import Console, configure_logging, fatal
from perceus.agent.failures import FatalBoot
from perceus.agent.stage1 import FetchedCapsule, Options, Stage1, kexec_cmdline
from perceus.errors import PerceusError
from perceus.protocol.enums import Phase

log = structlog.get_logger("perceus.agent.emulated")

STAGE1_ROOT = "stage1-root"  # the emulated stage one's initramfs root (what a re-entry hands over lands here)


class KexecRecorded(Exception):
    """Raised where a real node would jump into the capsule's kernel; carries what it would have booted."""

    def __init__(self, cmdline: str, kernel: Path, initrd: Path | None) -> None:
        super().__init__("kexec recorded (emulated node)")
        self.cmdline = cmdline
        self.kernel = kernel
        self.initrd = initrd


class EmulatedStage1(Stage1):
    """Stage1 with the two substitutions of an emulated node (see the module docstring)."""

    def _drivers(self) -> None:
        self.phases.enter(Phase.DRIVERS)
        self.drivers_detail = "emulated node: a veth, no drivers to load"
        log.info("drivers_skipped", reason=self.drivers_detail)

    def _kexec(self, fetched: FetchedCapsule, node: str, master: Master) -> None:
        line = kexec_cmdline(fetched.cmdline, self.config, node, self.lease, master)
        before = fetched.initrd.stat().st_size if fetched.initrd is not None else 0
        self._hand_over(fetched, node)  # provisiond's session key into the initrd, restated to the master
        if fetched.initrd is not None:
            unpack_appended(fetched.initrd, before, self.options.run_dir / "root")
        size = fetched.kernel.stat().st_size + (fetched.initrd.stat().st_size if fetched.initrd else 0)
        log.info("kexec_emulated", kernel=str(fetched.kernel), bytes=size, cmdline=line,
                 note="an emulated node cannot kexec; provisiond starts in this process instead")  # fmt: skip
        self.phases.flush()
        raise KexecRecorded(line, fetched.kernel, fetched.initrd)


def unpack_appended(initrd: Path, offset: int, root: Path) -> list[str]:
    """What the runtime kernel would unpack from the newc segment(s) appended to `initrd` after `offset`.

    Only regular files and directories (what stage one appends: the session credential), each path kept
    under `root`; the capsule's own root stream before `offset` is what a real kernel unpacks first.
    """
    with open(initrd, "rb") as fh:
        fh.seek(offset + (-offset % 4))  # an appended segment starts 4-aligned (the appender pads first)
        data = fh.read(1 << 20)
    pos, written = 0, []
    while pos + 110 <= len(data):
        if data[pos : pos + 6] != b"070701":
            pos += 4  # zero padding between segments
            continue
        fields = [int(data[pos + 6 + 8 * i : pos + 14 + 8 * i], 16) for i in range(13)]
        mode, size, namesize = fields[1], fields[6], fields[11]
        name_end = pos + 110 + namesize
        name = data[pos + 110 : name_end - 1].decode("utf-8", "replace")
        body = name_end + (-name_end % 4)
        payload = data[body : body + size]
        pos = body + size + (-(body + size) % 4)
        if name == "TRAILER!!!":
            continue
        target = root / name.lstrip("/")
        if ".." in Path(name).parts:
            continue
        if mode & 0o170000 == 0o040000:
            target.mkdir(parents=True, exist_ok=True)
        elif mode & 0o170000 == 0o100000:
            target.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode & 0o7777)
            with os.fdopen(fd, "wb") as out:
                out.write(payload)
            written.append(name)
    return written


class ReentryRecorded(Exception):
    """Raised where a real provisiond would kexec back into stage one (`reprovision`): its command line."""

    def __init__(self, cmdline: str) -> None:
        super().__init__("kexec into stage one recorded (emulated node)")
        self.cmdline = cmdline


class EmulatedReentry:
    """`reprovision` on an emulated node: the verified stage-one files stay unbooted; what the new kernel would
    unpack from the appended hand-over (the re-entered stage one's session key) goes under the node's RAM."""

    def __init__(self, run_dir: Path) -> None:
        self.root = run_dir / STAGE1_ROOT

    def load(self, prepared: reprovision.Prepared) -> None:
        unpack_appended(prepared.initrd, prepared.image_bytes, self.root)

    def execute(self, prepared: reprovision.Prepared) -> None:
        log.info("kexec_emulated", kernel=str(prepared.kernel), bytes=prepared.initrd.stat().st_size,
                 cmdline=prepared.cmdline, target="stage1",
                 note="an emulated node cannot kexec; stage one starts again in this process instead")  # fmt: skip
        raise ReentryRecorded(prepared.cmdline)


def run(text: str, run_dir: Path, console_stream: TextIO, *, max_checkins: int = 0) -> int:
    """Stage one from kernel command line `text`, then provisiond (and stage one again after each
    `reprovision`, as after a real kexec); returns what /init would get."""
    while True:
        try:
            return _boot(text, run_dir, console_stream, max_checkins)
        except ReentryRecorded as again:
            text = again.cmdline


def _boot(text: str, run_dir: Path, console_stream: TextIO, max_checkins: int) -> int:
    config = cmdline.parse(text)
    security.use(security.discover(text))
    console = Console([console_stream], config.debug)
    configure_logging(console)
    options = Options(hardware=True, run_dir=run_dir, handover_root=run_dir / STAGE1_ROOT)
    try:
        return EmulatedStage1(config, console, options).run()
    except KexecRecorded as kexec:
        return _runtime(kexec.cmdline, run_dir, max_checkins)
    except FatalBoot as exc:
        return fatal(console, str(exc))
    except PerceusError as exc:
        return fatal(console, str(exc))
    except Exception as exc:  # as on a real node: show it, never die silently  # noqa: BLE001
        return fatal(console, f"{type(exc).__name__}: {exc}")


def _runtime(text: str, run_dir: Path, max_checkins: int) -> int:
    """provisiond from the command line stage one handed over, as after a real kexec."""
    from perceus.agent import bare
    from perceus.agent.runtime import Options as RuntimeOptions
    from perceus.agent.runtime import Runtime

    config = cmdline.parse(text)
    security.use(security.discover(text))
    log.info("agent_starting", version=__version__, mode="runtime", node=config.node, emulated=True)
    shutil.rmtree(run_dir / STAGE1_ROOT, ignore_errors=True)  # stage one's key is spent (a real kexec drops it)
    try:
        bare.bring_up(config)  # a no-op: the address stage one leased is still on eth0
        root = run_dir / "root"  # the runtime root: module actions write here, the session key is here
        root.mkdir(parents=True, exist_ok=True)
        agent = Runtime(config, RuntimeOptions(run_dir=run_dir / "runtime", root=root, max_checkins=max_checkins,
                                               reenter=EmulatedReentry(run_dir)))  # fmt: skip
        return agent.run()
    except PerceusError as exc:
        log.error("runtime_failed", error=str(exc))
        return 1
