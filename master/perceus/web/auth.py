"""Who may do what: a read token and an admin token in a 0600 file under the config dir, CSRF for writes.

Perceus 1.x's perceus-cgi ran under httpd with whatever access the web server gave it; here nothing is readable
without a token (or the session cookie a token buys at /login), and a write needs the admin token *and* the
CSRF token derived from it, so a page on another site cannot make an admin's browser approve a node.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from dataclasses import dataclass
from enum import IntEnum
from pathlib import Path

from perceus.errors import ConfigError
from perceus.master.config import Paths
from perceus.master.fsutil import atomic_write

COOKIE = "perceus_web"
CSRF_HEADER = "x-csrf-token"


class Role(IntEnum):
    """Ordered: an admin may read."""

    NONE = 0
    READ = 1
    ADMIN = 2


def tokens_path(paths: Paths) -> Path:
    return paths.config_dir / "web" / "tokens.json"


@dataclass(frozen=True)
class Tokens:
    """The two bearer tokens and the key CSRF tokens are derived with."""

    read: str
    admin: str
    csrf_key: str

    @classmethod
    def load_or_create(cls, path: Path) -> Tokens:
        """Read the token file; create it (0600, fresh random tokens) when missing.  Never widens its mode."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            tokens = cls(secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_hex(32))
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            body = {"read": tokens.read, "admin": tokens.admin, "csrf_key": tokens.csrf_key}
            atomic_write(path, (json.dumps(body, indent=2) + "\n").encode(), mode=0o600)
            return tokens
        except (OSError, ValueError) as exc:
            raise ConfigError(f"cannot read web tokens: {exc}", path=str(path)) from None
        if os.stat(path).st_mode & 0o077:
            raise ConfigError("web token file is readable by others (chmod 600)", path=str(path))
        try:
            return cls(str(data["read"]), str(data["admin"]), str(data["csrf_key"]))
        except (KeyError, TypeError):
            raise ConfigError("web token file lacks read/admin/csrf_key", path=str(path)) from None

    def role(self, token: str) -> Role:
        """Constant-time comparison against both tokens."""
        if not token:
            return Role.NONE
        if hmac.compare_digest(token.encode(), self.admin.encode()):
            return Role.ADMIN
        if hmac.compare_digest(token.encode(), self.read.encode()):
            return Role.READ
        return Role.NONE

    def csrf_for(self, token: str) -> str:
        """The CSRF token of a session: bound to its bearer token, so it is useless with another one."""
        return hmac.new(bytes.fromhex(self.csrf_key), token.encode(), hashlib.sha256).hexdigest()[:40]

    def csrf_ok(self, token: str, presented: str) -> bool:
        return bool(presented) and hmac.compare_digest(self.csrf_for(token).encode(), presented.encode())
