"""The default node scripts `perceus init` puts in `nodescripts/init/all` (1.x shipped 00-init and 99-zzzlast).

A Perceus 1.x provisiond (stage one's rc.perceus) runs the reply as one shell script and gets no environment
from the master, only the script; the Perceus 2 agent exports NODEID, VNFSMETHOD=bus and the rest before the
bodies.  So both scripts key on `$VNFSMETHOD`: for a 1.x node 00-init sets what 1.x scripts expect
(STARTTIME, DESTDIR, loadbin, a getfile that explains itself) and 99-zzzlast ends the script with the
reason this master cannot hand a 1.x stage one a capsule (capsules travel as signed chunks over the bus,
not NFS/HTTP) and what to do; for the new agent both are silent no-ops.  They are plain files (not
executables), so no process runs on the master per boot.  Admins may edit or delete them; `perceus init`
never overwrites them.
"""

from __future__ import annotations

from pathlib import Path

from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write

INIT = """\
# Perceus default node script (1.x: 00-init.sh): the common header of every `init` reply.
#!/bin/sh
if [ "$VNFSMETHOD" != bus ]; then
    # A Perceus 1.x stage one: nothing but this script came from the master (the new agent exports VNFSMETHOD=bus).
    PERCEUS_LEGACY_NODE=1
    STARTTIME=`date +%s`
    DESTDIR=/newroot
    export STARTTIME DESTDIR PERCEUS_LEGACY_NODE
    loadbin() {
        [ -n "$DEBUG" ] && echo "NOTE: loadbin $* (no initbins on this master)"
        return 0
    }
    getfile() {
        echo "ERROR: getfile $*: this Perceus master serves capsules over its bus, not NFS or HTTP" >&2
        return 1
    }
    echo "Perceus: connected to a Perceus 2 master (legacy listener)"
fi
"""

LAST = """\
# Perceus default node script (1.x: 99-zzzlast.sh): the end of every `init` reply.
#!/bin/sh
if [ -n "$PERCEUS_LEGACY_NODE" ]; then
    echo "ERROR: this master provisions with the Perceus 2 stage one; a 1.x stage one cannot boot its capsules."
    echo "ERROR: PXE-boot this node from the master (its DHCP/TFTP serve the new stage one); see upgrade-from-1x.md."
    exit 1
fi
"""

SCRIPTS = {"00-init": INIT, "99-zzzlast": LAST}


def install(paths: Paths) -> list[Path]:
    """Write the default scripts that do not exist yet; returns those written."""
    target = paths.nodescripts / "init" / "all"
    target.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    for name, text in SCRIPTS.items():
        path = target / name
        if not path.exists():
            atomic_write(path, text.encode(), mode=0o644)
            made.append(path)
    return made
