"""Applet link list for busybox in a merged-/usr image."""

from __future__ import annotations

from perceus.stage1.busybox import applet_links

LISTING = "bin/sh\nbin/busybox\nsbin/modprobe\nusr/bin/wget\nbin/cttyhack\nsbin/poweroff\nbin/sh\n"


def test_skips_busybox_itself() -> None:
    # Linking busybox to itself makes /init fail with ELOOP (error -40).
    assert not any(link.endswith("/busybox") for link in applet_links(LISTING))


def test_maps_bin_and_sbin_into_usr_and_dedupes() -> None:
    assert applet_links(LISTING) == [
        "usr/bin/cttyhack",
        "usr/bin/sh",
        "usr/bin/wget",
        "usr/sbin/modprobe",
        "usr/sbin/poweroff",
    ]


def test_empty_listing() -> None:
    assert applet_links("") == []
