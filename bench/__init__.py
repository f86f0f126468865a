"""Benchmarks: clients of the installed ``perceus`` package, each run as ``python -m bench.<name>``.

Each prints its peer measured in the same run and ends with one ``key=value`` line naming what it measured;
``--smoke`` runs it in seconds on tiny sizes (CI checks only that it completes and prints that line).
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]  # bench/ is run from a checkout: subprocesses start here
