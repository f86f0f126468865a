"""The built-in module set: names, default roles (1.x `defaultroles`), and which modules exclude each other."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModuleKind:
    name: str
    summary: str
    default_roles: tuple[str, ...]
    writes_users: bool = False  # writes /etc/passwd or /etc/group on the node


BUILTIN: dict[str, ModuleKind] = {
    m.name: m
    for m in (
        ModuleKind("masterauth", "the master's users and groups (NSS, no shadow)", ("init/all", "ready/all"), True),
        ModuleKind(
            "passwdfile", "/etc/passwd merged from modules/passwdfile/{all,vnfs,group,node}", ("ready/all",), True
        ),
        ModuleKind("groupfile", "/etc/group merged from modules/groupfile/{all,vnfs,group,node}", ("ready/all",), True),
        ModuleKind("hostname", "the node's host name", ("init/all",)),
        ModuleKind("ipaddr", "static addresses from modules/ipaddr (the 1.x language)", ("init/all",)),
        ModuleKind("modprobe", "extra kernel modules from modules/modprobe", ("init/all",)),
        ModuleKind("stateful", "install / reinstall flags for stateful capsules", ("init/all", "ready/all")),
        ModuleKind("syncnodes", "reboot a node whose capsule or enabled flag changed", ("ready/all",)),
        ModuleKind("xcpu", "stay in stage one without a capsule and run `perceus node exec` commands", ("init/all",)),
        ModuleKind("rootkey", "the master's root SSH keys in the nodes' /root/.ssh/authorized_keys", ("ready/all",)),
    )
}

# masterauth replaces the whole account set; passwdfile/groupfile assemble it from files.  Both on one node
# fight over /etc/passwd at every check-in (the FAQ warns), so the pair is refused.
CONFLICTS: tuple[tuple[str, frozenset[str]], ...] = (("masterauth", frozenset({"passwdfile", "groupfile"})),)

# Modules whose `init` actions configure the runtime OS; provisiond gets them once at start (virtual state
# `boot`), because stage one cannot write into the capsule it kexecs (1.x wrote $DESTDIR before switching).
BOOT_FROM_INIT = frozenset({"masterauth", "passwdfile", "groupfile", "hostname", "ipaddr", "modprobe", "syncnodes"})
BOOT_STATE = "boot"


def conflicting(names: set[str]) -> tuple[str, str] | None:
    """The first pair of modules in `names` that must not meet on one node."""
    for one, others in CONFLICTS:
        if one in names:
            for other in sorted(others & names):
                return one, other
    return None
