"""Several perceus-bus masters on one PostgreSQL store: heartbeats, change notification, failover.

The feature entry point is `install(daemon)` (listed in features.py).  `perceus info` reads the masters
through `info.masters_section(ctx)`; that module is kept out of this import so the daemon never loads the CLI.
"""

from __future__ import annotations

from perceus.master.multimaster.feature import install

__all__ = ["install"]
