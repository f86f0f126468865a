"""Issue 17 item 3 — no 1.x capsule setting silently ignored, through `perceus …` main(argv):
KEXEC_ARGS, global-vnfs.config, `vnfs configure --kernel`, the import console question, hybrid without a list,
a missing defaults.conf `Vnfs Name` at `node add`, `info config KEY` for every documented key."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.unit.capsule.conftest import make_tree
from tests.unit.cli.clirun import run

from perceus.master.capsule.layout import Store
from perceus.master.capsule.pack import current
from perceus.master.cli.info_config import DEFAULTS
from perceus.master.config import Paths
from perceus.master.store.sqlite import SQLiteStore
from perceus.protocol.capsule import kernel_cmdline


@pytest.fixture
def small(tmp_path: Path) -> Path:
    root = make_tree(tmp_path / "chroot", files=5)
    (root / "boot/vmlinuz-6.12.0-test").write_bytes(b"\x01" * 4096)
    return root


def manifest(paths: Paths, name: str):  # type: ignore[no-untyped-def]
    m = current(Store(paths).existing(name))
    assert m is not None
    return m


def config_text(paths: Paths, name: str) -> str:
    return (paths.vnfs / name / "config").read_text()


# (KEXEC_ARGS, KERNEL_ARGS in the manifest, kexec_args in the manifest, note in `vnfs show`)
KEXEC_OK = [
    ("--args-linux", "ramdisk_blocksize=1024", "", "KEXEC_ARGS --args-linux: accepted, no effect with kexec_file_load"),
    ('--append="quiet mitigations=off"', "ramdisk_blocksize=1024 quiet mitigations=off", "",
     "KEXEC_ARGS --append adds to KERNEL_ARGS: quiet mitigations=off"),
    ("--command-line=root=/dev/ram0 --args-linux", "root=/dev/ram0", "", "KEXEC_ARGS --command-line replaces"),
    ("--reuse-cmdline", "ramdisk_blocksize=1024", "--reuse-cmdline",
     "KEXEC_ARGS --reuse-cmdline: the node keeps its stage-one command line"),
]  # fmt: skip


@pytest.mark.parametrize(("kexec", "kernel_args", "for_node", "note"), KEXEC_OK)
def test_kexec_args_folded_into_the_manifest(
    paths: Paths, small: Path, kexec: str, kernel_args: str, for_node: str, note: str
) -> None:
    result = run(paths, "vnfs", "import", str(small), "--name", "c1", f"--kexec-args={kexec}")
    assert result.code == 0 and "perceus: error" not in result.err
    assert f"note: {note}" in result.out
    m = manifest(paths, "c1")
    assert (m.kernel_args, m.kexec_args) == (kernel_args, for_node)
    assert "KEXEC_ARGS=" in config_text(paths, "c1")  # the capsule's config keeps the 1.x words
    shown = run(paths, "vnfs", "show", "c1")
    assert shown.code == 0 and note in shown.out
    assert re.search(r"(?m)^   cmdline\s+" + re.escape(kernel_args) + "$", shown.out), shown.out


def test_reuse_cmdline_on_the_node_keeps_stage_ones_words_the_capsule_does_not_set(paths: Paths, small: Path) -> None:
    assert run(paths, "vnfs", "import", str(small), "--name", "c1", "--kexec-args=--reuse-cmdline",
               "--kernel-args=quiet root=/dev/ram0").code == 0  # fmt: skip
    line = kernel_cmdline(manifest(paths, "c1"), current="BOOT_IMAGE=/k root=/dev/sda1 nomodeset perceus.master=x")
    assert line == "quiet root=/dev/ram0 nomodeset"


KEXEC_BAD = [
    ("--type=multiboot-x86", "KEXEC_ARGS '--type=multiboot-x86' has no meaning for kexec_file_load"),
    ("--initrd=/boot/initrd.img", "KEXEC_ARGS --initrd: a stateless capsule's initrd is its root filesystem"),
    ("-l", "KEXEC_ARGS '-l' has no meaning for kexec_file_load"),
    ("--append", "KEXEC_ARGS: --append needs a value"),
]


@pytest.mark.parametrize(("kexec", "message"), KEXEC_BAD)
def test_other_kexec_words_refused_at_import(paths: Paths, small: Path, kexec: str, message: str) -> None:
    result = run(paths, "vnfs", "import", str(small), "--name", "c1", f"--kexec-args={kexec}")
    assert result.code == 1 and result.out == ""
    assert result.err.startswith("perceus: error: ") and message in result.err and result.err.count("\n") == 1
    assert not (paths.vnfs / "c1").exists()  # nothing left behind


def test_stateful_initrd_from_kexec_args(paths: Paths, small: Path) -> None:
    (small / "boot/initrd.img-6.1.0-9-amd64").write_bytes(b"\x02" * 2048)
    result = run(paths, "vnfs", "import", str(small), "--name", "s1", "--type", "stateful",
                 "--kexec-args=--initrd=/boot/initrd.img-6.1.0-9-amd64")  # fmt: skip
    assert result.code == 0, result.err
    m = manifest(paths, "s1")
    assert m.initrd is not None and m.initrd.size == 2048


def test_global_vnfs_config_overrides_every_capsule(paths: Paths, small: Path) -> None:
    (paths.config_dir / "global-vnfs.config").write_text('KERNEL_ARGS="quiet panic=30"\nCONSOLE="ttyS1,9600"\n')
    assert run(paths, "vnfs", "import", str(small), "--name", "c1").code == 0
    m = manifest(paths, "c1")
    assert (m.kernel_args, m.console) == ("quiet panic=30", "ttyS1,9600")
    assert 'KERNEL_ARGS="ramdisk_blocksize=1024"' in config_text(paths, "c1")  # the capsule's own file is kept
    shown = run(paths, "vnfs", "show", "c1").out
    assert "global-vnfs.config applies" in shown and "(effective: quiet panic=30)" in shown


def test_node_and_group_vnfs_config_named_at_import(paths: Paths, small: Path) -> None:
    (paths.config_dir / "groups" / "gpu").mkdir(parents=True)
    (paths.config_dir / "groups" / "gpu" / "vnfs.config").write_text('KERNEL_ARGS="nouveau.modeset=0"\n')
    result = run(paths, "vnfs", "import", str(small), "--name", "c1")
    assert result.code == 0
    assert "groups/gpu/vnfs.config applies to its node/group (a signed manifest variant" in result.out


def test_configure_kernel_version(paths: Paths, small: Path) -> None:
    assert run(paths, "vnfs", "import", str(small), "--name", "c1").code == 0
    before = manifest(paths, "c1")
    assert before.kernel.size == 4096  # import picked the newest, 6.12.0-test
    result = run(paths, "vnfs", "configure", "c1", "--kernel", "6.1.0-9-amd64")
    assert result.code == 0 and "perceus: error" not in result.err
    assert "VNFS 'c1' has been configured." in result.out
    assert 'KERNEL="/boot/vmlinuz-6.1.0-9-amd64"' in config_text(paths, "c1")
    after = manifest(paths, "c1")
    assert after.version == before.version + 1 and after.kernel.size == 300_000
    assert run(paths, "vnfs", "configure", "c1", "--kernel", "6.1.0-9-amd64").out == "VNFS 'c1' is unchanged.\n"
    bad = run(paths, "vnfs", "configure", "c1", "--kernel", "5.0")
    assert bad.code == 1
    assert "has no kernel '5.0' in /boot (installed: 6.1.0-9-amd64, 6.12.0-test)" in bad.err
    assert manifest(paths, "c1").version == after.version


CONSOLES = [
    # (argv extra, stdin on a terminal or None, CONSOLE in the capsule)
    (["--console", "ttyS0"], None, "ttyS0,115200"),
    (["--console", "ttyS1,57600 tty0"], None, "ttyS1,57600 tty0"),
    ([], "ttyS0\n", "ttyS0,115200"),
    ([], "\n", "tty0"),  # the 1.x default
    (["--console", "tty0"], "ignored\n", "tty0"),  # a flag answers the question
    ([], None, ""),  # not a terminal and no flag: no console= word
]


@pytest.mark.parametrize(("extra", "answer", "console"), CONSOLES)
def test_import_console(paths: Paths, small: Path, extra: list[str], answer: str | None, console: str) -> None:
    result = run(
        paths, "vnfs", "import", str(small), "--name", "c1", *extra, stdin=answer or "", tty=answer is not None
    )
    assert result.code == 0, result.err
    assert ("Console device for the runtime kernel" in result.out) == (answer is not None and not extra)
    assert manifest(paths, "c1").console == console


def test_hybrid_without_a_hybridize_list_refused(paths: Paths, small: Path) -> None:
    # Hybrid capsules themselves: tests/unit/capsule/test_hybrid*.py
    result = run(paths, "vnfs", "import", str(small), "--name", "c1", "--type", "hybrid")
    assert result.code == 1
    assert "is hybrid but has no hybridize list: give --hybridize FILE" in result.err
    assert not (paths.vnfs / "c1").exists()


def test_node_add_warns_about_a_missing_default_vnfs(paths: Paths) -> None:
    text = paths.defaults_conf.read_text()
    paths.defaults_conf.write_text(re.sub(r"(?m)^Vnfs Name =.*$", "Vnfs Name = centos5", text))
    result = run(paths, "node", "add", "52:54:00:00:00:09")
    assert result.code == 0
    assert f"perceus: warning: VNFS 'centos5' (Vnfs Name in {paths.defaults_conf}) does not exist" in result.err
    with SQLiteStore(paths.database) as store:
        node = store.get("52:54:00:00:00:09")
    assert node is not None and node.vnfs == "centos5"  # added anyway, as 1.x


def test_info_config_prints_every_documented_key(paths: Paths) -> None:
    everything = run(paths, "--json", "info", "config")
    assert everything.code == 0
    data = json.loads(everything.out)
    assert set(DEFAULTS) <= set(data)
    for key in DEFAULTS:
        one = run(paths, "info", "config", key)
        assert (one.code, one.err) == (0, ""), key
        assert one.out == data[key] + "\n", key
    assert run(paths, "info", "config", "vnfs transfer method").out == "bus\n"
    assert run(paths, "info", "config", "node timeout").out == "600\n"
    assert run(paths, "info", "config", "statedir").out == f"{paths.state_dir}\n"
    missing = run(paths, "info", "config", "no such key")
    assert missing.code == 1 and "no such configuration key 'no such key'" in missing.err
