"""perceus.conf / defaults.conf parsing with the original's rules (1.x ref §2.1–2.3)."""

from __future__ import annotations

from pathlib import Path

import pytest

from perceus.errors import ConfigError
from perceus.master.config import MasterConfig, NodeDefaults, Paths, parse_config


def test_parser_rules(tmp_path: Path) -> None:
    f = tmp_path / "x.conf"
    f.write_text(
        "# comment\n"
        "  # indented comment\n"
        "master network device = eth1\n"
        "key with spaces = a, b ,c   \n"
        'quoted = "hello # not a comment"\n'
        "empty =\n"
        "dup = first\n"
        "dup = last\n"
        "noequals line\n"
    )
    conf = parse_config(f)
    assert conf["master network device"] == ["eth1"]
    assert conf["key with spaces"] == ["a", "b", "c"]
    assert conf["quoted"] == ["hello # not a comment"]
    assert "empty" not in conf  # an empty value means absent, as in Perceus 1.x
    assert conf["dup"] == ["last"]  # the last occurrence wins
    assert "noequals line" not in conf


def test_missing_file_is_empty(tmp_path: Path) -> None:
    assert parse_config(tmp_path / "nope") == {}


def test_ensure_creates_defaults_once(tmp_path: Path) -> None:
    paths = Paths(tmp_path / "etc", tmp_path / "var")
    paths.ensure()
    conf = paths.perceus_conf.read_text()
    assert "master network device" in conf
    paths.perceus_conf.write_text("master network device = eth9\n")
    paths.ensure()  # never overwrites
    assert paths.perceus_conf.read_text() == "master network device = eth9\n"
    assert (paths.nodescripts / "init" / "all").is_dir()


def test_paths_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PERCEUS_CONFIG_DIR", str(tmp_path / "c"))
    monkeypatch.setenv("PERCEUS_STATE_DIR", str(tmp_path / "s"))
    paths = Paths.resolve()
    assert paths.config_dir == tmp_path / "c" and paths.state_dir == tmp_path / "s"
    assert Paths.resolve(str(tmp_path / "x"), None).config_dir == tmp_path / "x"


def test_master_config(paths: Paths) -> None:
    cfg = MasterConfig.load(paths)
    assert cfg.enrollment_policy == "open" and cfg.checkin_interval == 300 and cfg.database == "sqlite"
    paths.perceus_conf.write_text("database type = btree\nnode auto-add = no\n")
    cfg = MasterConfig.load(paths)
    assert cfg.database == "sqlite" and cfg.enrollment_policy == "approve"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("enrollment policy = maybe", "enrollment policy = maybe"),
        ("node timeout = soon", "not a whole number"),
        ("bus port = 70000", "out of range"),
        ("database type = oracle", "not understood"),
        ("manage dnsmasq = perhaps", "not yes/no"),
    ],
)
def test_bad_values(paths: Paths, line: str, message: str) -> None:
    paths.perceus_conf.write_text(line + "\n")
    with pytest.raises(ConfigError) as err:
        MasterConfig.load(paths)
    assert message in str(err.value) and "perceus.conf" in str(err.value)


@pytest.mark.parametrize(
    ("template", "first", "names"),
    [
        ("n####", "0", ["n0000", "n0001"]),
        ("node##-ib", "5", ["node05-ib", "node06-ib"]),
        ("####", "0", ["n0000", "n0001"]),  # no prefix: the original falls back to n####
        ("a#b#", "0", ["n0000", "n0001"]),
    ],
)
def test_node_defaults_template(paths: Paths, template: str, first: str, names: list[str]) -> None:
    paths.defaults_conf.write_text(f"Node Name = {template}\nFirst Node = {first}\nGroup Name = gpu\n")
    d = NodeDefaults.load(paths)
    assert [d.name(d.first), d.name(d.first + 1)] == names
    assert d.group == "gpu" and d.enabled and d.vnfs == ""
