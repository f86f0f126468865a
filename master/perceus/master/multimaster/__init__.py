"""Several perceus-bus masters on one PostgreSQL store: heartbeats, change notification, failover.

The feature entry point is `install(daemon)` (listed in features.py).  `perceus info` reads the masters
through `info.masters_section(store, shared=…)`; that module is kept out of this import (the daemon never needs it).
"""

from __future__ import annotations

from perceus.master.multimaster.feature import install

__all__ = ["install"]
