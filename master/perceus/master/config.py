"""perceus.conf / defaults.conf in the original syntax (1.x ref §2.1–2.3), plus where they live.

Differences from Perceus 1.x, on purpose: files are re-read on every load (the original daemon cached them
forever, 1.x ref §13), and bad values give a one-line ConfigError naming the file instead of silent defaults.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from perceus.errors import ConfigError
from perceus.master.fsutil import atomic_write

DEFAULT_CONFIG_DIR = Path("/etc/perceus")
DEFAULT_STATE_DIR = Path("/var/lib/perceus")
ENROLLMENT_POLICIES = ("open", "approve", "allowlist")

PERCEUS_CONF = """\
# Perceus master configuration (perceus.conf).  Syntax as Perceus 1.x: `key = value`,
# a line starting with # is a comment, the last occurrence of a key wins.

# The network device on the provisioning network (DHCP/TFTP and the bus listen here).
master network device = eth1

# Perceus 1.x used NFS or HTTP; capsules now travel over the bus as verified chunks.
# The key is still read so old files keep parsing; `bus` is the only method.
vnfs transfer method = bus

# Node store: `sqlite` (default, <statedir>/perceus.db) or a postgresql:// URL (multi-master).
database type = sqlite

# Seconds after which a node that has not checked in counts as stale (`perceus node status`).
node timeout = 600

# Seconds between provisiond check-ins of running nodes (jittered by the agent).
checkin interval = 300

# Unknown nodes: open (auto-add, as Perceus 1.x), approve (wait for `perceus node approve`),
# allowlist (only MACs already in the database).
enrollment policy = open

# The bus: ROUTER for node requests and PUB for events / "sync now".
bus address = 0.0.0.0
bus port = 9987
event port = 9988

# Leave dnsmasq to perceus-bus (`yes`), or run your own DHCP/TFTP (`no`).
manage dnsmasq = yes

controlport bind address = 127.0.0.1
controlport allow address = 127.0.0.1
"""

DEFAULTS_CONF = """\
# Defaults for nodes added automatically or with `perceus node add` (defaults.conf).

# Name template: a prefix, one run of # (the zero-padded number) and an optional suffix.
Node Name = n####

# The group, capsule (VNFS) and enabled flag new nodes get.
Group Name = cluster
Vnfs Name =
Enabled = 1

# The first number tried when naming nodes; gaps left by deleted nodes are refilled.
First Node = 0

# Optional: limit the name search, and an initial debug level (0-3).
#Total Nodes = 10000
#Debug = 0
"""


def parse_config(path: Path) -> dict[str, list[str]]:
    """Parse a Perceus 1.x config file: {key: [values split on commas]}; last occurrence wins."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(path)) from None
    result: dict[str, list[str]] = {}
    for raw in text.splitlines():
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if len(value) >= 2 and value[0] == value[-1] == '"':
            value = value[1:-1]
        if not key or not value:
            continue  # Perceus 1.x treats `key =` as absent
        result[key] = [v.strip() for v in value.split(",")]
    return result


@dataclass(frozen=True)
class Paths:
    """Where the master keeps its configuration and state."""

    config_dir: Path
    state_dir: Path

    @classmethod
    def resolve(cls, config_dir: str | None = None, state_dir: str | None = None) -> Paths:
        """Command-line flag, else PERCEUS_CONFIG_DIR / PERCEUS_STATE_DIR, else /etc/perceus, /var/lib/perceus."""
        cfg = config_dir or os.environ.get("PERCEUS_CONFIG_DIR") or str(DEFAULT_CONFIG_DIR)
        st = state_dir or os.environ.get("PERCEUS_STATE_DIR") or str(DEFAULT_STATE_DIR)
        return cls(Path(cfg).absolute(), Path(st).absolute())

    @property
    def perceus_conf(self) -> Path:
        return self.config_dir / "perceus.conf"

    @property
    def defaults_conf(self) -> Path:
        return self.config_dir / "defaults.conf"

    @property
    def database(self) -> Path:
        return self.state_dir / "perceus.db"

    @property
    def nodescripts(self) -> Path:
        return self.state_dir / "nodescripts"

    @property
    def vnfs(self) -> Path:
        return self.state_dir / "vnfs"

    @property
    def tftp(self) -> Path:
        return self.state_dir / "tftp"

    @property
    def run(self) -> Path:
        return self.state_dir / "run"

    @property
    def control_socket(self) -> Path:
        return self.run / "control.sock"

    @property
    def logs(self) -> Path:
        return self.state_dir / "log"

    def ensure(self) -> None:
        """Create missing directories and default files (first use); never overwrite anything."""
        try:
            for d in (
                self.config_dir,
                self.state_dir,
                self.nodescripts,
                self.vnfs,
                self.tftp,
                self.run,
                self.logs,
            ):
                d.mkdir(parents=True, exist_ok=True)
            for path, text in ((self.perceus_conf, PERCEUS_CONF), (self.defaults_conf, DEFAULTS_CONF)):
                if not path.exists():
                    atomic_write(path, text.encode(), mode=0o644)
            for state in ("init", "ready"):
                (self.nodescripts / state / "all").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot initialise {exc.filename}: {exc.strerror}") from None


def _int(conf: dict[str, list[str]], key: str, default: int, path: Path, lo: int = 0, hi: int = 2**31) -> int:
    if key not in conf:
        return default
    raw = conf[key][0]
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"'{key} = {raw}' is not a whole number", path=str(path)) from None
    if not lo <= value <= hi:
        raise ConfigError(f"'{key} = {raw}' is out of range {lo}..{hi}", path=str(path))
    return value


def _bool(conf: dict[str, list[str]], key: str, default: bool, path: Path) -> bool:
    if key not in conf:
        return default
    raw = conf[key][0].lower()
    if raw in ("yes", "true", "1", "on"):
        return True
    if raw in ("no", "false", "0", "off"):
        return False
    raise ConfigError(f"'{key} = {raw}' is not yes/no", path=str(path))


@dataclass(frozen=True)
class MasterConfig:
    """The typed view of perceus.conf that the daemon and CLI use."""

    master_device: str
    database: str
    node_timeout: int
    checkin_interval: int
    enrollment_policy: str
    bus_address: str
    bus_port: int
    event_port: int
    manage_dnsmasq: bool
    raw: dict[str, list[str]]

    @classmethod
    def load(cls, paths: Paths) -> MasterConfig:
        path = paths.perceus_conf
        conf = parse_config(path)
        policy = conf.get("enrollment policy", ["open"])[0].lower()
        if "node auto-add" in conf and conf["node auto-add"][0].lower() in ("no", "0", "false"):
            policy = "approve" if policy == "open" else policy
        if policy not in ENROLLMENT_POLICIES:
            raise ConfigError(
                f"'enrollment policy = {policy}' not understood (use {', '.join(ENROLLMENT_POLICIES)})",
                path=str(path),
            )
        database = conf.get("database type", ["sqlite"])[0]
        if database in ("btree", "hash", "mysql"):
            database = "sqlite"  # Perceus 1.x backends: migrated by `perceus import perceus1`
        if database != "sqlite" and not database.startswith(("postgresql://", "postgres://")):
            raise ConfigError(f"'database type = {database}' not understood", path=str(path))
        return cls(
            master_device=conf.get("master network device", [""])[0],
            database=database,
            node_timeout=_int(conf, "node timeout", 600, path, 1),
            checkin_interval=_int(conf, "checkin interval", 300, path, 1, 86400),
            enrollment_policy=policy,
            bus_address=conf.get("bus address", ["0.0.0.0"])[0],  # noqa: S104 - the any-address: 1.x's documented default, or a value compared
            bus_port=_int(conf, "bus port", 9987, path, 0, 65535),
            event_port=_int(conf, "event port", 9988, path, 0, 65535),
            manage_dnsmasq=_bool(conf, "manage dnsmasq", True, path),
            raw=conf,
        )


_TEMPLATE = re.compile(r"^([^#]+)(#+)([^#]*)$")


@dataclass(frozen=True)
class NodeDefaults:
    """defaults.conf: how new nodes are named and what they get."""

    prefix: str
    width: int
    suffix: str
    group: str
    vnfs: str
    enabled: bool
    first: int
    total: int
    debug: int

    def name(self, number: int) -> str:
        return f"{self.prefix}{number:0{self.width}d}{self.suffix}"

    @property
    def last(self) -> int:
        return self.first + self.total - 1

    @classmethod
    def load(cls, paths: Paths) -> NodeDefaults:
        path = paths.defaults_conf
        conf = parse_config(path)
        template = conf.get("Node Name", ["n####"])[0]
        match = _TEMPLATE.match(template)
        # Perceus 1.x falls back to n#### for a template it cannot use; so do we.
        prefix, hashes, suffix = match.groups() if match else ("n", "####", "")
        width = len(hashes)
        enabled_raw = conf.get("Enabled", ["1"])[0]
        return cls(
            prefix=prefix,
            width=width,
            suffix=suffix,
            group=conf.get("Group Name", ["cluster"])[0],
            vnfs=conf.get("Vnfs Name", [""])[0],
            enabled=enabled_raw not in ("", "0", "no"),
            first=_int(conf, "First Node", 0, path),
            total=_int(conf, "Total Nodes", 10**width - _int(conf, "First Node", 0, path), path, 1),
            debug=_int(conf, "Debug", 0, path, 0, 3),
        )
