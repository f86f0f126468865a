"""What perceus-bus tells provisiond to re-enter stage one with: the files boot.ipxe loads, and its words.

The files are the ones the bus serves over HTTP to PXE-booting nodes (netmgr/http_boot.py) — the stage-one
kernel and initramfs from `<state>/tftp` — each with its size and SHA-256, so provisiond refuses anything
else.  The command line is boot.ipxe's (netmgr/ipxe.stage1_words) with the node's debug level filled in; the
master keys are not sent (provisiond keeps the ones it trusts).  The digests are computed once per file
version (size and mtime), not per node.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from perceus.errors import ConfigError, PerceusError
from perceus.master.config import MasterConfig, Paths
from perceus.master.netmgr import settings as netsettings
from perceus.master.netmgr.ipxe import INITRD, KERNEL, stage1_words
from perceus.master.store.models import Node
from perceus.protocol.messages import BootFile, Reprovision


@dataclass
class Digests:
    """SHA-256 of files, cached by (size, mtime_ns)."""

    cache: dict[Path, tuple[tuple[int, int], str]] = field(default_factory=dict)

    def of(self, path: Path) -> tuple[int, str]:
        st = path.stat()
        stamp = (st.st_size, st.st_mtime_ns)
        hit = self.cache.get(path)
        if hit is not None and hit[0] == stamp:
            return st.st_size, hit[1]
        h = hashlib.sha256()
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                h.update(block)
        self.cache[path] = (stamp, h.hexdigest())
        return st.st_size, h.hexdigest()


@dataclass
class StageOne:
    """Builds `reprovision` messages for this master (raises ConfigError when stage one is not served)."""

    paths: Paths
    config: MasterConfig
    digests: Digests = field(default_factory=Digests)

    def settings(self) -> netsettings.NetSettings:
        if not self.config.manage_dnsmasq:
            raise ConfigError("stage one is served over HTTP only with 'manage dnsmasq = yes'", path="perceus.conf")
        try:
            s = netsettings.from_system(self.config)
        except PerceusError as exc:
            raise ConfigError(f"stage one is not served: {exc}", path="perceus.conf") from None
        if not s.http_port:
            raise ConfigError("stage one is not served over HTTP ('boot http port = 0')", path="perceus.conf")
        return s

    def files(self, base: str) -> tuple[BootFile, BootFile]:
        out = []
        for name in (KERNEL, INITRD):
            path = self.paths.tftp / name
            try:
                size, digest = self.digests.of(path)
            except OSError:
                raise ConfigError(f"no stage-one image at {path} (perceus stage1 build)", path=str(path)) from None
            out.append(BootFile(url=f"{base}/{name}", sha256=digest, size=size))
        return out[0], out[1]

    def messages(self, job: str, nodes: list[Node]) -> list[Reprovision]:
        s = self.settings()
        kernel, initrd = self.files(s.http_base)
        out = []
        for n in nodes:
            words = " ".join(stage1_words(s, debug=str(int(n.debug))))
            out.append(Reprovision(job=job, node=n.nodeid, kernel=kernel, initrds=(initrd,), cmdline=words))
        return out
