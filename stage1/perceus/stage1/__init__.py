"""Stage-one image builder: Debian kernel + a busybox/CPython initramfs carrying the Perceus agent.

Build-host apt packages this needs (the lead lists them in .ci/run):
    busybox-static python3.11 python3-pip libudev1 kmod zstd binutils apt dpkg libc-bin
(``kmod`` for depmod, ``binutils`` for strip, ``libc-bin`` for ldconfig; the kernel
itself is fetched with ``apt-get download linux-image-amd64``, never installed.)
The lab harness (perceus.lab) additionally needs:
    qemu-system-x86 ipxe-qemu dnsmasq-base iproute2
"""

from __future__ import annotations

from perceus.stage1.builder import BuildResult, build, default_cache_dir

__all__ = ["BuildResult", "build", "default_cache_dir"]
