"""Node-script assembly: one sh script, environment exported and quoted, bodies in the given order."""

from __future__ import annotations

from perceus.agent.scripts import assemble
from perceus.protocol.messages import Script


def test_assembly_order_env_and_quoting() -> None:
    text = assemble(
        [Script(name="00-init.sh", body="#!/bin/sh\nA=1\n"), Script(name="10-vnfs.sh", body="echo $A $NODENAME")],
        {"NODENAME": "n0001", "DEBUG": "", "WEIRD": "it's $(x)", "bad-name": "x", "1X": "y"},
        state="init",
    )
    lines = text.splitlines()
    assert lines[0] == "#!/bin/sh"
    assert "state init: 00-init.sh 10-vnfs.sh" in lines[1]
    assert "export NODENAME=n0001" in lines
    assert "export DEBUG=''" in lines
    assert "export WEIRD='it'\"'\"'s $(x)'" in lines
    assert not any("bad-name" in line or "1X" in line for line in lines)
    assert lines.index("A=1") < lines.index("echo $A $NODENAME")
    assert max(i for i, line in enumerate(lines) if line.startswith("export")) < lines.index("# --- 00-init.sh")
    assert text.endswith("\n")


def test_empty_script_list_is_still_a_valid_script() -> None:
    assert assemble([], {}) == "#!/bin/sh\n# perceus node scripts, state ?: \n"
