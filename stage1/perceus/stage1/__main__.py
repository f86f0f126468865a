"""``python -m perceus.stage1 build --out DIR [--compress 3|19] [--cache DIR]``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from perceus.errors import PerceusError
from perceus.logsetup import configure


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m perceus.stage1", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build (or reuse) the stage-one kernel + initramfs")
    b.add_argument("--out", type=Path, required=True, help="directory for vmlinuz, stage1.cpio.zst, stage1.json")
    b.add_argument(
        "--compress",
        type=int,
        default=3,
        choices=range(1, 23),
        metavar="LEVEL",
        help="zstd level: 3 for the edit-build-boot loop, 19 for release images (default 3)",
    )
    b.add_argument("--cache", type=Path, default=None, help="download/build cache (default ~/.cache/perceus)")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    configure()
    from perceus.stage1.builder import build  # after logging is configured

    try:
        result = build(args.out, level=args.compress, cache_dir=args.cache)
    except PerceusError as exc:
        if args.debug:
            raise
        print(f"perceus: error: {exc}", file=sys.stderr)
        return exc.exit_code
    summary = {
        "kernel": str(result.kernel),
        "initrd": str(result.initrd),
        "initrd_size": result.initrd_size,
        "kernel_release": result.kernel_release,
        "key": result.key,
        "cached": result.cached,
        "seconds": round(result.seconds, 2),
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
