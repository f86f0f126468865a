"""The two-namespace perceus-bus fixture `net` (defined in test_dnsmasq_netns) for every netmgr test here."""

from tests.integration.netmgr.test_dnsmasq_netns import net

__all__ = ["net"]
