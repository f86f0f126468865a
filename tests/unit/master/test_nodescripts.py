"""Node-script selection and ordering as Perceus 1.x's scriptrunner (1.x ref §5.5)."""

from __future__ import annotations

import os
from pathlib import Path

from perceus.master.config import Paths
from perceus.master.nodescripts import NodeScripts, environment
from perceus.master.store.models import Node

NODE = Node(
    nodeid="52:54:00:00:00:01",
    hostname="n0001",
    group="gpu",
    vnfs="deb",
    enabled=True,
    debug=2,
    ip="10.0.0.5",
)


def write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)


def test_scopes_override_by_basename_and_sort(paths: Paths) -> None:
    root = paths.nodescripts / "init"
    write(root / "vnfs/deb/10-vnfs.sh", "#!/bin/sh\necho vnfs\n")
    write(root / "vnfs/deb/50-x.sh", "#!/bin/sh\necho vnfs-x\n")
    write(root / "all/50-x.sh", "#!/bin/sh\necho all-x\n")
    write(root / "all/05-first.sh", "junk before\n#!/bin/sh\necho first\n")
    write(root / "all/60-backup.sh~", "#!/bin/sh\necho never\n")
    write(root / "group/gpu/50-x.sh", "#!/bin/sh\necho group-x\n")
    write(root / "node/n0001/70-mine.sh", "#!/bin/sh\necho mine\n")
    write(root / "node/n0002/70-other.sh", "#!/bin/sh\necho other\n")
    ns = NodeScripts(paths.nodescripts)
    plan = ns.plan("init", NODE)
    assert [e.name for e in plan.entries] == ["05-first.sh", "10-vnfs.sh", "50-x.sh", "70-mine.sh"]
    assert not plan.needs_master
    scripts = ns.render(plan, {})
    assert scripts[0].body == "#!/bin/sh\necho first\n"  # sent from the first #!/bin/sh line
    assert scripts[2].body == "#!/bin/sh\necho group-x\n"  # group beats all beats vnfs


def test_executable_marks_master_side(paths: Paths) -> None:
    write(paths.nodescripts / "ready/all/50-gen.sh", "#!/bin/sh\necho gen\n", 0o755)
    assert NodeScripts(paths.nodescripts).plan("ready", NODE).needs_master


def test_state_names_cannot_escape(paths: Paths) -> None:
    write(paths.state_dir / "secret/all/x.sh", "#!/bin/sh\necho no\n")
    assert NodeScripts(paths.nodescripts).plan("../secret", NODE).entries == ()


def test_listing_cache_sees_new_files(paths: Paths) -> None:
    ns = NodeScripts(paths.nodescripts)
    assert ns.plan("init", NODE).entries == ()
    write(paths.nodescripts / "init/all/20-new.sh", "#!/bin/sh\n")
    os.utime(paths.nodescripts / "init/all", ns=(1, 10**18))
    assert [e.name for e in ns.plan("init", NODE).entries] == ["20-new.sh"]


def test_environment_matches_original(paths: Paths) -> None:
    env = environment(NODE, "init", paths.state_dir, "10.0.0.1")
    assert env["NODENAME"] == "n0001" and env["GROUPNAME"] == "gpu" and env["VNFS"] == "deb"
    assert env["ENABLED"] == "1" and env["DEBUG"] == "2" and env["STATE"] == "init"
    assert env["IPADDR"] == "10.0.0.5"  # always empty in Perceus 1.x (a bug)
    assert env["VNFSMASTER"] == "10.0.0.1" and env["PATH"] == "/bin:/usr/bin:/sbin:/usr/sbin"
